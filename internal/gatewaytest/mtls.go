package gatewaytest

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// MTLSIssuerEnv makes the issuer read client certificates from
// X-SSL-Client-Cert (nginx's escaped PEM) sent from loopback, where a
// TLS-terminating proxy, or a test standing in for one, sends them.
var MTLSIssuerEnv = map[string]string{
	"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER":        "x-ssl-client-cert",
	"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT": "nginx",
	"OAUTH2_MTLS_TRUSTED_PROXIES":                  "127.0.0.1/32",
}

// ClientCertificate is a self-signed TLS client certificate made in the
// test.
func ClientCertificate(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	tmpl := testbin.CertTemplate(cn)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	c, _, _ := (&testbin.CA{}).Issue(t, tmpl)
	return c
}

// EscapedPEM is cert as nginx's $ssl_client_escaped_cert carries it:
// URL-encoded PEM.
func EscapedPEM(cert tls.Certificate) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw})
	return strings.ReplaceAll(url.QueryEscape(string(p)), "+", "%20")
}

// XFCC is cert as Envoy's x-forwarded-client-cert element carries it.
func XFCC(cert tls.Certificate) string {
	return `Hash=` + strings.Repeat("0", 64) + `;Cert="` + EscapedPEM(cert) + `";Subject="CN=x"`
}

// CertBoundClient registers a self_signed_tls_client_auth client whose
// key is cert's and whose tokens (of the access token strategy, "" for
// the issuer's default) are bound to it (RFC 8705 §2.2, §3).
func CertBoundClient(t *testing.T, is *testbin.Issuer, cert tls.Certificate, strategy string) testbin.Client {
	t.Helper()
	pub := cert.Leaf.PublicKey.(*ecdsa.PublicKey)
	jwk, _ := json.Marshal(map[string]any{"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(pub.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(pub.Y.FillBytes(make([]byte, 32)))})
	fields := map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read",
		"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": map[string]any{"keys": []json.RawMessage{jwk}},
		"tls_client_certificate_bound_access_tokens": true}
	if strategy != "" {
		fields["access_token_strategy"] = strategy
	}
	return is.RegisterClient(t, fields)
}

// CertBoundToken gets a token bound to cert for c from an issuer started
// with MTLSIssuerEnv: the test stands where the TLS-terminating proxy
// would and sends the certificate's header.
func CertBoundToken(t *testing.T, is *testbin.Issuer, c testbin.Client, cert tls.Certificate) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "client_id": {c.ID}}
	req, _ := http.NewRequest("POST", is.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-SSL-Client-Cert", EscapedPEM(cert))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok testbin.Tokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("certificate-bound token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// TrustedCertHeader is the sidecar configuration under which
// CheckForgedCertificateHeader runs: the certificate header is believed
// from loopback, the gateway's address.
func TrustedCertHeader(header string) string {
	return "binding:\n  mtls:\n    client_cert_header: " + strings.ToLower(header) + "\n    trusted_proxies: [127.0.0.1]\n"
}

// CheckForgedCertificateHeader: behind the gateway at gw (plain HTTP, no
// client certificate), a sidecar that believes header from the gateway
// (TrustedCertHeader) must never see a client's own copy of it. A client
// holding a stolen certificate-bound token and the certificate (public)
// sends both; the gateway must remove or overwrite the header, so the
// request gets 401 Bearer invalid_token (RFC 8705 §3). The stack's issuer
// runs with MTLSIssuerEnv.
func CheckForgedCertificateHeader(t *testing.T, s *Stack, gw, header string) {
	t.Helper()
	cert := ClientCertificate(t, "victim")
	c := CertBoundClient(t, s.Issuer, cert, "")
	tok := CertBoundToken(t, s.Issuer, c, cert)
	value := EscapedPEM(cert)
	if strings.EqualFold(header, "x-forwarded-client-cert") {
		value = XFCC(cert)
	}
	a := Call(t, "GET", "http://"+gw+"/api/orders", map[string]string{"Authorization": "Bearer " + tok, header: value})
	if www := a.Header.Get("WWW-Authenticate"); a.Status != 401 || !strings.HasPrefix(www, `Bearer error="invalid_token"`) || a.Seen != nil {
		t.Fatalf("a forged %s through the gateway: %d %q, want 401 invalid_token", header, a.Status, www)
	}
	// The sidecar does read the header when it comes from the gateway:
	// the same request straight to it, from loopback, passes.
	req, _ := http.NewRequest("GET", "http://"+s.SidecarHTTP+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(header, value)
	req.Header.Set("X-Forwarded-Uri", "/api/orders")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the sidecar refused %s from its trusted gateway address: %d", header, resp.StatusCode)
	}
}

// CheckForgedCertificateHeaders runs CheckForgedCertificateHeader for
// X-SSL-Client-Cert (nginx's form) and X-Forwarded-Client-Cert (Envoy's),
// each behind a gateway that start puts in front of a new stack with an
// issuer (MTLSIssuerEnv) and a sidecar configured with extra.
func CheckForgedCertificateHeaders(t *testing.T, start func(t *testing.T, is *testbin.Issuer, extra ...string) (*Stack, string)) {
	t.Helper()
	is := testbin.StartIssuer(t, MTLSIssuerEnv)
	for _, h := range []string{"X-SSL-Client-Cert", "X-Forwarded-Client-Cert"} {
		t.Run(h, func(t *testing.T) {
			s, gw := start(t, is, TrustedCertHeader(h))
			CheckForgedCertificateHeader(t, s, gw, h)
		})
	}
}
