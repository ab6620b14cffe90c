package nginx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// selfSigned makes a certificate and key in the test (nothing committed).
func selfSigned(t *testing.T, cn string, edit func(*x509.Certificate)) (tls.Certificate, []byte, []byte) {
	tmpl := testbin.CertTemplate(cn)
	if edit != nil {
		edit(tmpl)
	}
	return (&testbin.CA{}).Issue(t, tmpl)
}

// TestNginxMutualTLS runs examples/nginx/issuer-mtls.conf in a real nginx
// in front of the issuer: a self_signed_tls_client_auth client gets a
// certificate-bound token through it with golang.org/x/oauth2, and the
// same client without its certificate is refused (invalid_client).
func TestNginxMutualTLS(t *testing.T) {
	nginx := nginxBinary(t)
	is := testbin.StartIssuer(t, map[string]string{
		"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER":        "x-ssl-client-cert",
		"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT": "nginx",
		"OAUTH2_MTLS_TRUSTED_PROXIES":                  "127.0.0.1/32",
	})
	_, srvCert, srvKey := selfSigned(t, "127.0.0.1", func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	dir := t.TempDir()
	for name, b := range map[string][]byte{"tls/server.crt": srvCert, "tls/server.key": srvKey} {
		_ = os.MkdirAll(filepath.Join(dir, "tls"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	gw := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	pubAddr := is.PublicURL[len("http://"):]
	conf := rewrite(t, "issuer-mtls.conf", map[string]string{"127.0.0.1:8443": gw, "127.0.0.1:4444": pubAddr})
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := testbin.Start(t, nginx, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srvCert)
	clientCert, _, _ := selfSigned(t, "client", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	hc := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc(nil).Get("https://" + gw + "/health/alive")
		if err == nil {
			resp.Body.Close()
			break
		}
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("nginx did not answer over TLS: %v\n%s", err, proc.Output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	pub, _ := json.Marshal(map[string]any{"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(clientCert.Leaf.PublicKey.(*ecdsa.PublicKey).X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(clientCert.Leaf.PublicKey.(*ecdsa.PublicKey).Y.FillBytes(make([]byte, 32)))})
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"},
		"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": map[string]any{"keys": []json.RawMessage{pub}},
		"tls_client_certificate_bound_access_tokens": true})
	token := func(cert *tls.Certificate) (*oauth2.Token, error) {
		cc := clientcredentials.Config{ClientID: c.ID, TokenURL: "https://" + gw + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
		return cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, hc(cert)))
	}
	tok, err := token(&clientCert)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(is.AdminURL+"/admin/oauth2/introspect", url.Values{"token": {tok.AccessToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var intro struct {
		Cnf map[string]string `json:"cnf"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&intro)
	sum := sha256.Sum256(clientCert.Leaf.Raw)
	if got, want := intro.Cnf["x5t#S256"], base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("cnf x5t#S256 %q, want %q", got, want)
	}
	_, err = token(nil)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
		t.Fatalf("without a certificate: want 401 invalid_client, got %v", err)
	}
}
