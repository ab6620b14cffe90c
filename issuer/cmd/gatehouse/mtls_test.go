package main_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

func clientCertTemplate(cn string, edit func(*x509.Certificate)) *x509.Certificate {
	tmpl := testbin.CertTemplate(cn)
	tmpl.Subject.Organization = []string{"Acme"}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if edit != nil {
		edit(tmpl)
	}
	return tmpl
}

// mtlsPKI is a server certificate for 127.0.0.1 and a client CA.
type mtlsPKI struct {
	ca                *testbin.CA
	serverCertPEM     []byte
	serverKeyPEM      []byte
	caFile            string
	roots             *x509.CertPool
	serverCertificate tls.Certificate
}

func newMTLSPKI(t testing.TB) *mtlsPKI {
	t.Helper()
	ca := testbin.NewCA(t, "Test CA")
	srv := testbin.CertTemplate("127.0.0.1")
	srv.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	srvPair, certPEM, keyPEM := ca.Issue(t, srv)
	caFile := filepath.Join(t.TempDir(), "clients-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &mtlsPKI{ca: ca, serverCertPEM: certPEM, serverKeyPEM: keyPEM, caFile: caFile, roots: roots, serverCertificate: srvPair}
}

// httpsClient trusts the test CA and presents cert (none when nil).
func (p *mtlsPKI) httpsClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// x5tS256 is RFC 8705 §3.1's thumbprint of a certificate.
func x5tS256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func jwksOf(t testing.TB, pub any) map[string]any {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(k)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return map[string]any{"keys": []any{m}}
}

// ccToken runs the client credentials grant with golang.org/x/oauth2 over
// hc (client_id in the body, RFC 8705 §2).
func ccToken(hc *http.Client, tokenURL, clientID, secret string) (*oauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}
	if secret != "" {
		cc.AuthStyle = oauth2.AuthStyleInHeader
	}
	return cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, hc))
}

// wantOAuthError checks that err is the token endpoint's status and code.
func wantOAuthError(t testing.TB, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want a %d %s answer, got %v", status, code, err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %q: %s", status, code, re.Response.StatusCode, re.ErrorCode, re.Body)
	}
}

func cnfX5T(m map[string]any) string {
	cnf, _ := m["cnf"].(map[string]any)
	s, _ := cnf["x5t#S256"].(string)
	return s
}

// TestMTLSServedTLS: the binary serves TLS on the public listener
// (certificate and key as base64 PEM), asks for client certificates
// without requiring them, and authenticates clients with tls_client_auth
// (chain checked against the configured CA bundle, subject DN or SAN
// matched) and self_signed_tls_client_auth (key in the client's jwks);
// tokens of clients registered with
// tls_client_certificate_bound_access_tokens carry cnf.x5t#S256, in the
// JWT and in introspection. On SQLite and PostgreSQL.
func TestMTLSServedTLS(t *testing.T) {
	for _, db := range allBackends[:2] {
		t.Run(db.name, func(t *testing.T) {
			p := newMTLSPKI(t)
			is := testbin.StartIssuer(t, map[string]string{
				"DSN":                          db.dsn(t),
				"SERVE_PUBLIC_TLS_CERT_BASE64": b64(p.serverCertPEM),
				"SERVE_PUBLIC_TLS_KEY_BASE64":  b64(p.serverKeyPEM),
				"OAUTH2_MTLS_CA_BUNDLE":        p.caFile,
				"OAUTH2_MTLS_ALIAS_URL":        "https://mtls.auth.example.com",
			})
			testMTLSServedTLS(t, is, p)
		})
	}
}

func testMTLSServedTLS(t *testing.T, is *testbin.Issuer, p *mtlsPKI) {
	pub := strings.Replace(is.PublicURL, "http://", "https://", 1)
	tokenURL := pub + "/oauth2/token"

	// Discovery, read over TLS without a client certificate.
	resp, err := p.httpsClient(nil).Get(pub + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disco map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&disco)
	resp.Body.Close()
	methods := fmt.Sprint(disco["token_endpoint_auth_methods_supported"])
	mustf(t, strings.Contains(methods, "tls_client_auth") && strings.Contains(methods, "self_signed_tls_client_auth"), "token_endpoint_auth_methods_supported %s", methods)
	mustf(t, disco["tls_client_certificate_bound_access_tokens"] == true, "tls_client_certificate_bound_access_tokens %v", disco["tls_client_certificate_bound_access_tokens"])
	aliases, _ := disco["mtls_endpoint_aliases"].(map[string]any)
	mustf(t, aliases["token_endpoint"] == "https://mtls.auth.example.com/oauth2/token" &&
		aliases["pushed_authorization_request_endpoint"] == "https://mtls.auth.example.com/oauth2/par", "mtls_endpoint_aliases %v", disco["mtls_endpoint_aliases"])

	good, _, _ := p.ca.Issue(t, clientCertTemplate("client-a", func(c *x509.Certificate) {
		c.DNSNames = []string{"client-a.example.com"}
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/client-a"}}
		c.IPAddresses = []net.IP{net.ParseIP("192.0.2.7")}
		c.EmailAddresses = []string{"ops@example.com"}
	}))
	withCert := p.httpsClient(&good)
	register := func(fields map[string]any) string {
		base := map[string]any{"grant_types": []string{"client_credentials"}, "access_token_strategy": "jwt",
			"token_endpoint_auth_method": "tls_client_auth"}
		for k, v := range fields {
			base[k] = v
		}
		return is.RegisterClient(t, base).ID
	}

	// tls_client_auth with each kind of registered name (RFC 8705 §2.1.2),
	// the DN written in another order of spaces and case.
	for _, f := range []map[string]any{
		{"tls_client_auth_subject_dn": "cn=client-a, O=ACME", "tls_client_certificate_bound_access_tokens": true},
		{"tls_client_auth_san_dns": "client-a.example.com"},
		{"tls_client_auth_san_uri": "spiffe://example.com/client-a"},
		{"tls_client_auth_san_ip": "192.0.2.7"},
		{"tls_client_auth_san_email": "ops@example.com"},
	} {
		id := register(f)
		tok, err := ccToken(withCert, tokenURL, id, "")
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		claims := jwtClaims(t, tok.AccessToken)
		if f["tls_client_certificate_bound_access_tokens"] == true {
			mustf(t, cnfX5T(claims) == x5tS256(good.Leaf), "cnf %v, want x5t#S256 %s", claims["cnf"], x5tS256(good.Leaf))
			intro := introspectToken(t, is, tok.AccessToken)
			mustf(t, cnfX5T(intro) == x5tS256(good.Leaf), "introspection cnf %v", intro["cnf"])
		} else {
			mustf(t, claims["cnf"] == nil, "unbound token with cnf %v", claims["cnf"])
		}
	}

	// PAR authenticates mutual-TLS clients like the token endpoint (RFC 9126 §2).
	parClient := register(map[string]any{"tls_client_auth_san_dns": "client-a.example.com",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}, "redirect_uris": []string{callback}})
	par := url.Values{"client_id": {parClient}, "response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
		"state": {randomState()}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	for _, tc := range []struct {
		hc     *http.Client
		status int
	}{{withCert, http.StatusCreated}, {p.httpsClient(nil), http.StatusUnauthorized}} {
		resp, err := tc.hc.PostForm(pub+"/oauth2/par", par)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mustf(t, resp.StatusCode == tc.status, "PAR: %d %s, want %d", resp.StatusCode, body, tc.status)
	}

	// Opaque certificate-bound tokens: cnf from the stored session.
	opaque := register(map[string]any{"tls_client_auth_san_dns": "client-a.example.com",
		"tls_client_certificate_bound_access_tokens": true, "access_token_strategy": "opaque"})
	tok, err := ccToken(withCert, tokenURL, opaque, "")
	if err != nil {
		t.Fatal(err)
	}
	intro := introspectToken(t, is, tok.AccessToken)
	mustf(t, intro["active"] == true && cnfX5T(intro) == x5tS256(good.Leaf), "opaque introspection %v", intro)

	// Failures: invalid_client (401), never a 5xx.
	wrongDN := register(map[string]any{"tls_client_auth_subject_dn": "CN=client-b,O=Acme"})
	_, err = ccToken(withCert, tokenURL, wrongDN, "")
	wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client")

	dnsClient := register(map[string]any{"tls_client_auth_san_dns": "client-a.example.com"})
	_, err = ccToken(p.httpsClient(nil), tokenURL, dnsClient, "")
	wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client") // no certificate

	otherCA := testbin.NewCA(t, "Other CA")
	foreign, _, _ := otherCA.Issue(t, clientCertTemplate("client-a", func(c *x509.Certificate) { c.DNSNames = []string{"client-a.example.com"} }))
	_, err = ccToken(p.httpsClient(&foreign), tokenURL, dnsClient, "")
	wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client") // not from the CA

	// self_signed_tls_client_auth: the certificate's key is in jwks.
	self, _, _ := (&testbin.CA{}).Issue(t, clientCertTemplate("self", nil))
	selfID := register(map[string]any{"token_endpoint_auth_method": "self_signed_tls_client_auth",
		"jwks": jwksOf(t, self.Leaf.PublicKey), "tls_client_certificate_bound_access_tokens": true})
	tok, err = ccToken(p.httpsClient(&self), tokenURL, selfID, "")
	if err != nil {
		t.Fatal(err)
	}
	mustf(t, cnfX5T(jwtClaims(t, tok.AccessToken)) == x5tS256(self.Leaf), "self-signed cnf")
	other, _, _ := (&testbin.CA{}).Issue(t, clientCertTemplate("self", nil))
	_, err = ccToken(p.httpsClient(&other), tokenURL, selfID, "")
	wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client") // key not in jwks

	// A bound-tokens client with a secret but no certificate is refused.
	boundSecret := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"},
		"tls_client_certificate_bound_access_tokens": true})
	_, err = ccToken(p.httpsClient(nil), tokenURL, boundSecret.ID, boundSecret.Secret)
	wantOAuthError(t, err, http.StatusBadRequest, "invalid_request")

	// Ordinary clients still connect without a certificate.
	plain := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}})
	if _, err := ccToken(p.httpsClient(nil), tokenURL, plain.ID, plain.Secret); err != nil {
		t.Fatalf("client_secret_basic over TLS without a certificate: %v", err)
	}
}

// TestMTLSServeTLSBothListeners: serve.tls (path form) applies to both
// listeners; the admin listener never asks for a client certificate.
func TestMTLSServeTLSBothListeners(t *testing.T) {
	p := newMTLSPKI(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, p.serverCertPEM, 0o600)
	_ = os.WriteFile(keyFile, p.serverKeyPEM, 0o600)
	bin := testbin.Build(t, "./issuer/cmd/gatehouse")
	pubPort, admPort := testbin.FreePort(t), testbin.FreePort(t)
	proc := testbin.Start(t, bin, map[string]string{
		"DSN": "memory", "SECRETS_SYSTEM": testbin.TestSecret, "LOG_LEVEL": "warn",
		"SERVE_PUBLIC_HOST": "127.0.0.1", "SERVE_PUBLIC_PORT": fmt.Sprint(pubPort),
		"SERVE_ADMIN_HOST": "127.0.0.1", "SERVE_ADMIN_PORT": fmt.Sprint(admPort),
		"URLS_SELF_ISSUER":    fmt.Sprintf("https://127.0.0.1:%d", pubPort),
		"SERVE_TLS_CERT_PATH": certFile, "SERVE_TLS_KEY_PATH": keyFile,
	}, "serve", "all")
	hc := p.httpsClient(nil)
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range []string{fmt.Sprintf("https://127.0.0.1:%d/health/ready", admPort), fmt.Sprintf("https://127.0.0.1:%d/.well-known/openid-configuration", pubPort)} {
		for {
			resp, err := hc.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mustf(t, resp.TLS != nil, "%s not over TLS", u)
					break
				}
			}
			if proc.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s did not answer over TLS: %v\n%s", u, err, proc.Output.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// xfccTransport adds a client certificate header to every request, as a
// TLS-terminating gateway would.
type xfccTransport struct{ name, value string }

func (x xfccTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if x.name != "" {
		r.Header.Set(x.name, x.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// nginxEscape escapes as nginx's $ssl_client_escaped_cert does.
func nginxEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestMTLSGatewayHeader: behind a gateway that terminates TLS, the
// certificate comes from Envoy's x-forwarded-client-cert or nginx's
// escaped PEM header, only from trusted proxy addresses; a header from
// elsewhere is ignored (invalid_client), a malformed one is
// invalid_client, never a 5xx; a certificate-bound token is refused at
// userinfo without its certificate (401 invalid_token, RFC 8705 §3).
func TestMTLSGatewayHeader(t *testing.T) {
	p := newMTLSPKI(t)
	good, certPEM, _ := p.ca.Issue(t, clientCertTemplate("client-a", func(c *x509.Certificate) { c.DNSNames = []string{"client-a.example.com"} }))
	xfcc := `By=spiffe://example.com/gatehouse;Hash=abc;Cert="` + url.PathEscape(string(certPEM)) + `";Subject="CN=client-a,O=Acme";DNS=client-a.example.com`
	start := func(header, format, trusted string) *testbin.Issuer {
		return testbin.StartIssuer(t, flowEnv(map[string]string{
			"DSN":                                   sqliteDSN(t),
			"OAUTH2_MTLS_CA_BUNDLE":                 p.caFile,
			"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER": header,
			"OAUTH2_MTLS_CLIENT_CERTIFICATE_HEADER_FORMAT": format,
			"OAUTH2_MTLS_TRUSTED_PROXIES":                  trusted,
		}))
	}
	via := func(name, value string) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: xfccTransport{name, value}}
	}
	register := func(is *testbin.Issuer, extra map[string]any) string {
		f := map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "tls_client_auth",
			"tls_client_auth_san_dns": "client-a.example.com", "tls_client_certificate_bound_access_tokens": true}
		for k, v := range extra {
			f[k] = v
		}
		return is.RegisterClient(t, f).ID
	}

	t.Run("envoy", func(t *testing.T) {
		is := start("x-forwarded-client-cert", "envoy", "127.0.0.1/32,::1")
		id := register(is, nil)
		tok, err := ccToken(via("x-forwarded-client-cert", xfcc), is.PublicURL+"/oauth2/token", id, "")
		if err != nil {
			t.Fatal(err)
		}
		intro := introspectToken(t, is, tok.AccessToken)
		mustf(t, cnfX5T(intro) == x5tS256(good.Leaf), "cnf %v", intro["cnf"])
		for _, bad := range []string{`Cert="not-a-certificate"`, `Cert="unterminated`, `Hash=abc`, xfcc + "," + xfcc,
			`Cert="` + url.PathEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") + `"`, strings.Repeat("A", 40000)} {
			_, err := ccToken(via("x-forwarded-client-cert", bad), is.PublicURL+"/oauth2/token", id, "")
			wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client")
		}
		// Discovery advertises the mutual-TLS methods (the header can carry certificates).
		d, err := oidc.NewProvider(context.Background(), is.PublicURL)
		if err != nil {
			t.Fatal(err)
		}
		var disco struct {
			Methods []string `json:"token_endpoint_auth_methods_supported"`
		}
		_ = d.Claims(&disco)
		mustf(t, slices.Contains(disco.Methods, "tls_client_auth"), "methods %v", disco.Methods)

		// Userinfo: a code flow whose token exchange goes through the
		// gateway with the certificate.
		c := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "tls_client_auth",
			"tls_client_auth_san_dns": "client-a.example.com", "tls_client_certificate_bound_access_tokens": true})
		delete(c, "client_secret")
		rp := newRP(t, is, c, oidc.ScopeOpenID)
		rp.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "alice")
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, via("x-forwarded-client-cert", xfcc))
		at, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		userinfo := func(hc *http.Client) (int, string, string) {
			req, _ := http.NewRequest(http.MethodGet, is.PublicURL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+at.AccessToken)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
		}
		status, _, body := userinfo(via("x-forwarded-client-cert", xfcc))
		mustf(t, status == http.StatusOK, "userinfo with the certificate: %d %s", status, body)
		status, wwwAuth, body := userinfo(via("", ""))
		mustf(t, status == http.StatusUnauthorized && strings.Contains(wwwAuth, `error="invalid_token"`), "userinfo without the certificate: %d %s %s", status, wwwAuth, body)
		_, otherPEM, _ := p.ca.Issue(t, clientCertTemplate("client-b", nil))
		status, wwwAuth, _ = userinfo(via("x-forwarded-client-cert", `Cert="`+url.PathEscape(string(otherPEM))+`"`))
		mustf(t, status == http.StatusUnauthorized && strings.Contains(wwwAuth, `error="invalid_token"`), "userinfo with another certificate: %d %s", status, wwwAuth)

		// A public client's refresh token is bound to its certificate
		// (RFC 8705 §4): refreshing with another one is invalid_grant.
		pc := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "none", "client_secret": nil,
			"tls_client_certificate_bound_access_tokens": true})
		delete(pc, "client_secret")
		prp := newRP(t, is, pc, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
		q, verifier = codeFlow(t, is, newBrowser(t, is), prp, "bob")
		ptok, err := prp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || ptok.RefreshToken == "" {
			t.Fatalf("public client exchange: %v %v", ptok, err)
		}
		refresh := func(hc *http.Client) (*oauth2.Token, error) {
			old := &oauth2.Token{RefreshToken: ptok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
			return prp.conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, hc), old).Token()
		}
		_, err = refresh(via("x-forwarded-client-cert", `Cert="`+url.PathEscape(string(otherPEM))+`"`))
		wantOAuthError(t, err, http.StatusBadRequest, "invalid_grant")
		if _, err := refresh(via("x-forwarded-client-cert", xfcc)); err != nil {
			t.Fatalf("refresh with the certificate: %v", err)
		}
	})

	t.Run("nginx", func(t *testing.T) {
		is := start("x-ssl-client-cert", "nginx", "127.0.0.0/8")
		id := register(is, nil)
		tok, err := ccToken(via("x-ssl-client-cert", nginxEscape(string(certPEM))), is.PublicURL+"/oauth2/token", id, "")
		if err != nil {
			t.Fatal(err)
		}
		mustf(t, cnfX5T(introspectToken(t, is, tok.AccessToken)) == x5tS256(good.Leaf), "nginx cnf")
		_, err = ccToken(via("x-ssl-client-cert", "%zz"), is.PublicURL+"/oauth2/token", id, "")
		wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("untrusted address", func(t *testing.T) {
		is := start("x-forwarded-client-cert", "envoy", "10.0.0.0/8")
		id := register(is, nil)
		_, err := ccToken(via("x-forwarded-client-cert", xfcc), is.PublicURL+"/oauth2/token", id, "")
		wantOAuthError(t, err, http.StatusUnauthorized, "invalid_client")
	})
}
