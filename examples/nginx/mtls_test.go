package nginx_test

import (
	"context"
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
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/gatewaytest"
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

// tlsNginx runs conf (ports rewritten) in a real nginx with a server
// certificate made here, waits until it answers over TLS, and returns
// its host:port and an HTTP client that trusts it and presents cert
// (none when nil).
func tlsNginx(t *testing.T, conf string, ports map[string]string, listen string) (string, func(cert *tls.Certificate) *http.Client) {
	nginx := nginxBinary(t)
	_, srvCert, srvKey := selfSigned(t, "127.0.0.1", func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	dir := t.TempDir()
	for _, d := range []string{"tls", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gw := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	ports[listen] = gw
	files := map[string][]byte{"tls/server.crt": srvCert, "tls/server.key": srvKey, "nginx.conf": []byte(rewrite(t, conf, ports))}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc := testbin.Start(t, nginx, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", globals())
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srvCert)
	hc := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc(nil).Get("https://" + gw + "/")
		if err == nil {
			resp.Body.Close()
			return gw, hc
		}
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("nginx did not answer over TLS: %v\n%s", err, proc.Output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNginxMutualTLS runs examples/nginx/issuer-mtls.conf in a real nginx
// in front of the issuer: a self_signed_tls_client_auth client gets a
// certificate-bound token through it with golang.org/x/oauth2, and the
// same client without its certificate is refused (invalid_client).
func TestNginxMutualTLS(t *testing.T) {
	is := testbin.StartIssuer(t, gatewaytest.MTLSIssuerEnv)
	gw, hc := tlsNginx(t, "issuer-mtls.conf", map[string]string{"127.0.0.1:4444": is.PublicURL[len("http://"):]}, "127.0.0.1:8443")
	clientCert := gatewaytest.ClientCertificate(t, "client")
	c := gatewaytest.CertBoundClient(t, is, clientCert, "")
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

// TestNginxCertificateBoundTokens runs examples/nginx/api-mtls.conf in a
// real nginx in front of the app, with the sidecar trusting nginx's
// X-SSL-Client-Cert: a certificate-bound token from the real issuer
// (JWT and opaque) passes only over a TLS connection made with its
// certificate (RFC 8705 §3); another client's certificate, none, or a
// forged X-SSL-Client-Cert header get Bearer invalid_token.
func TestNginxCertificateBoundTokens(t *testing.T) {
	is := testbin.StartIssuer(t, gatewaytest.MTLSIssuerEnv)
	s := gatewaytest.StartStackWithIssuer(t, is, "sidecar.yaml",
		"binding:\n  mtls:\n    client_cert_header: x-ssl-client-cert\n    trusted_proxies: [127.0.0.1]\n")
	gw, hc := tlsNginx(t, "api-mtls.conf", map[string]string{"127.0.0.1:4456": s.SidecarHTTP, "127.0.0.1:8081": s.Upstream}, "127.0.0.1:8444")
	mine, theirs := gatewaytest.ClientCertificate(t, "client-a"), gatewaytest.ClientCertificate(t, "client-b")
	for _, strategy := range []string{"jwt", "opaque"} {
		t.Run(strategy, func(t *testing.T) {
			c := gatewaytest.CertBoundClient(t, is, mine, strategy)
			tok := gatewaytest.CertBoundToken(t, is, c, mine)
			for _, tc := range []struct {
				name   string
				cert   *tls.Certificate
				forged string
				status int
			}{
				{"own certificate", &mine, "", 200},
				{"certificate of another client", &theirs, "", 401},
				{"no certificate", nil, "", 401},
				{"no certificate, forged X-SSL-Client-Cert", nil, gatewaytest.EscapedPEM(mine), 401},
				{"another certificate, forged X-SSL-Client-Cert", &theirs, gatewaytest.EscapedPEM(mine), 401},
			} {
				t.Run(tc.name, func(t *testing.T) {
					req, _ := http.NewRequest("GET", "https://"+gw+"/api/orders", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					if tc.forged != "" {
						req.Header.Set("X-SSL-Client-Cert", tc.forged)
					}
					resp, err := hc(tc.cert).Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					var seen gatewaytest.Seen
					_ = json.NewDecoder(resp.Body).Decode(&seen)
					www := resp.Header.Get("WWW-Authenticate")
					if resp.StatusCode != tc.status || (tc.status == 401 && !strings.HasPrefix(www, `Bearer error="invalid_token"`)) {
						t.Fatalf("%d %q, want %d", resp.StatusCode, www, tc.status)
					}
					if tc.status == 200 && seen.Headers["x-client-id"] != c.ID {
						t.Fatalf("the app saw %v", seen.Headers)
					}
				})
			}
		})
	}
}
