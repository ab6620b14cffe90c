package server

import (
	"crypto/tls"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

// TLSConfig is the TLS a listener serves, or nil when it serves plain
// HTTP: its certificate and key (or serve.tls's), TLS 1.2 at least, and
// with client_auth request a request for a client certificate that is
// neither required nor verified here, since the mutual-TLS client
// authentication methods (RFC 8705 §2) check it, each in its own way.
func TLSConfig(l config.Listener, shared config.TLSPair) (*tls.Config, error) {
	pair := l.TLS.Effective(shared)
	if !pair.Enabled() {
		return nil, nil
	}
	certPEM, err := pair.Cert.Read()
	if err != nil {
		return nil, err
	}
	keyPEM, err := pair.Key.Read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if l.TLS.ClientAuth == config.ClientAuthRequest {
		c.ClientAuth = tls.RequestClientCert
	}
	return c, nil
}
