package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

func TestTLSConfig(t *testing.T) {
	tmpl := testbin.CertTemplate("127.0.0.1")
	tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	_, certPEM, keyPEM := testbin.NewCA(t, "CA").Issue(t, tmpl)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "tls.key")
	_ = os.WriteFile(keyFile, keyPEM, 0o600)
	b64 := config.PEMSource{Base64: base64.StdEncoding.EncodeToString(certPEM)}

	// Off without a certificate and key.
	if c, err := TLSConfig(config.Default().Serve.Public, config.TLSPair{}); c != nil || err != nil {
		t.Fatalf("no TLS configured: %v %v", c, err)
	}
	// The listener's own pair (base64 cert, key file), client certificates requested.
	pub := config.Default().Serve.Public
	pub.TLS.Cert, pub.TLS.Key = b64, config.PEMSource{Path: keyFile}
	c, err := TLSConfig(pub, config.TLSPair{})
	if err != nil || c == nil || c.ClientAuth != tls.RequestClientCert || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("public TLS: %+v %v", c, err)
	}
	// serve.tls applies when the listener has none; the admin listener never asks.
	c, err = TLSConfig(config.Default().Serve.Admin, config.TLSPair{Cert: b64, Key: config.PEMSource{Path: keyFile}})
	if err != nil || c == nil || c.ClientAuth != tls.NoClientCert {
		t.Fatalf("admin TLS from serve.tls: %+v %v", c, err)
	}
	// Unreadable material is an error at startup, never a plain-HTTP fallback.
	for name, pair := range map[string]config.TLSPair{
		"missing key file": {Cert: b64, Key: config.PEMSource{Path: filepath.Join(dir, "none")}},
		"bad base64":       {Cert: config.PEMSource{Base64: "%%%"}, Key: config.PEMSource{Path: keyFile}},
		"key is no cert":   {Cert: config.PEMSource{Path: keyFile}, Key: config.PEMSource{Path: keyFile}},
	} {
		if c, err := TLSConfig(config.Default().Serve.Admin, pair); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}
