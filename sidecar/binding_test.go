package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// dpopConfig is baseConfig with a route behind a proxy that rewrites
// the URL, and a one-minute proof window.
var dpopConfig = strings.Replace(baseConfig, "rules:\n", `rules:
  - name: behind-rewriting-proxy
    match: {path_prefix: /ext}
    external_base_url: https://public.example.com/svc
`, 1) + `
binding:
  dpop:
    proof_max_age: 1m
`

// gateway is one way of asking the sidecar: Envoy's gRPC Check or the
// forward-auth /auth endpoint. ask returns the HTTP status, the
// WWW-Authenticate challenge and the DPoP-Nonce header of the answer.
type gateway struct {
	name string
	ask  func(t *testing.T, s *sidecarProc, method, host, uri string, hdr map[string]string) (int, string, string)
}

var gateways = []gateway{
	{"envoy grpc", func(t *testing.T, s *sidecarProc, method, host, uri string, hdr map[string]string) (int, string, string) {
		return checkAnswer(s.check(t, method, host, uri, hdr))
	}},
	{"forward-auth", func(t *testing.T, s *sidecarProc, method, host, uri string, hdr map[string]string) (int, string, string) {
		resp := forwardAuth(t, s, method, host, uri, hdr)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("DPoP-Nonce")
	}},
}

func checkAnswer(r *authv3.CheckResponse) (int, string, string) {
	if r.GetOkResponse() != nil {
		return 200, "", ""
	}
	var www, nonce string
	for _, h := range r.GetDeniedResponse().GetHeaders() {
		switch h.GetHeader().GetKey() {
		case "www-authenticate":
			www = h.GetHeader().GetValue()
		case "dpop-nonce":
			nonce = h.GetHeader().GetValue()
		}
	}
	return int(r.GetDeniedResponse().GetStatus().GetCode()), www, nonce
}

// TestDPoPBoundTokensAtTheGateway: DPoP-bound tokens minted by the real
// issuer (JWT and opaque) pass the real sidecar only with the DPoP scheme
// and a fresh proof for the request, over gRPC and /auth (RFC 9449 §7).
func TestDPoPBoundTokensAtTheGateway(t *testing.T) {
	p := newRealProvider(t)
	s := startSidecarYAML(t, p, dpopConfig, "serve")
	key, other := testbin.NewDPoPKey(t), testbin.NewDPoPKey(t)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	unbound, _ := p.JWT(t)
	const host, htu = "api.example.com", "https://api.example.com/orders"
	dpopHdr := func(tok, proof string) map[string]string {
		return map[string]string{"authorization": "DPoP " + tok, "dpop": proof}
	}
	for _, strategy := range []string{"jwt", "opaque"} {
		tok := p.is.DPoPToken(t, p.client(t, strategy), key, form)
		for _, g := range gateways {
			t.Run(strategy+"/"+g.name, func(t *testing.T) {
				ask := func(method, uri string, hdr map[string]string) (int, string) {
					st, www, _ := g.ask(t, s, method, host, uri, hdr)
					return st, www
				}
				// Allowed twice with fresh proofs: the second check finds
				// the token cached and still checks the proof.
				for range 2 {
					if st, www := ask("GET", "/orders?page=2", dpopHdr(tok, key.Proof(t, "GET", htu, tok, nil))); st != 200 {
						t.Fatalf("bound token with a valid proof: %d %q", st, www)
					}
				}
				replayed := key.Proof(t, "GET", htu, tok, nil)
				if st, _ := ask("GET", "/orders", dpopHdr(tok, replayed)); st != 200 {
					t.Fatalf("first use of a proof: %d", st)
				}
				algs := `algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`
				for _, tc := range []struct {
					name, method, uri string
					hdr               map[string]string
					challenge         string
				}{
					{"bound token as Bearer", "GET", "/orders", bearer(tok), `DPoP error="invalid_token"`},
					{"no proof", "GET", "/orders", map[string]string{"authorization": "DPoP " + tok}, `DPoP error="invalid_dpop_proof"`},
					{"proof for another URL", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", "https://api.example.com/admin", tok, nil)), `DPoP error="invalid_dpop_proof"`},
					{"proof for another host", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", "https://evil.example.com/orders", tok, nil)), `DPoP error="invalid_dpop_proof"`},
					{"proof for another method", "DELETE", "/orders", dpopHdr(tok, key.Proof(t, "GET", htu, tok, nil)), `DPoP error="invalid_dpop_proof"`},
					{"replayed proof", "GET", "/orders", dpopHdr(tok, replayed), `DPoP error="invalid_dpop_proof", error_description="The DPoP proof was already used."`},
					{"proof with another key", "GET", "/orders", dpopHdr(tok, other.Proof(t, "GET", htu, tok, nil)), `DPoP error="invalid_token"`},
					{"proof without ath", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", htu, "", nil)), `DPoP error="invalid_dpop_proof"`},
					{"proof for another token", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", htu, unbound, nil)), `DPoP error="invalid_dpop_proof"`},
					{"stale proof", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", htu, tok, func(_, c map[string]any) {
						c["iat"] = time.Now().Add(-5 * time.Minute).Unix()
					})), `DPoP error="invalid_dpop_proof"`},
					{"symmetric alg", "GET", "/orders", dpopHdr(tok, key.Proof(t, "GET", htu, tok, func(h, _ map[string]any) { h["alg"] = "HS256" })), `DPoP error="invalid_dpop_proof"`},
					{"unbound token with the DPoP scheme", "GET", "/orders", dpopHdr(unbound, key.Proof(t, "GET", htu, unbound, nil)), `DPoP error="invalid_token"`},
				} {
					st, www := ask(tc.method, tc.uri, tc.hdr)
					if st != 401 || !strings.HasPrefix(www, tc.challenge) || !strings.Contains(www, algs) {
						t.Errorf("%s: %d %q, want 401 %s ... %s", tc.name, st, www, tc.challenge, algs)
					}
				}
				// The route behind a rewriting proxy: htu is its external URL.
				ext := "https://public.example.com/svc/ext/items"
				if st, www := ask("POST", "/ext/items", dpopHdr(tok, key.Proof(t, "POST", ext, tok, nil))); st != 200 {
					t.Errorf("external base URL: %d %q", st, www)
				}
				if st, _ := ask("POST", "/ext/items", dpopHdr(tok, key.Proof(t, "POST", "https://"+host+"/ext/items", tok, nil))); st != 401 {
					t.Errorf("a proof for the internal URL of a rewritten route: %d, want 401", st)
				}
			})
		}
	}
	s.assertNoTokenLogged(t, unbound)
}

// TestDPoPNoncesAtTheGateway: with use_nonce, a proof without the
// sidecar's nonce gets use_dpop_nonce and a DPoP-Nonce (RFC 9449 §9); the
// retry with it passes.
func TestDPoPNoncesAtTheGateway(t *testing.T) {
	p := newRealProvider(t)
	s := startSidecar(t, p, "binding:\n  dpop:\n    use_nonce: true\n    nonce_secret: 0123456789abcdef0123456789abcdef\n")
	key := testbin.NewDPoPKey(t)
	tok := p.is.DPoPToken(t, p.client(t, "jwt"), key, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	const htu = "https://api.example.com/orders"
	for _, g := range gateways {
		t.Run(g.name, func(t *testing.T) {
			st, www, nonce := g.ask(t, s, "GET", "api.example.com", "/orders", map[string]string{
				"authorization": "DPoP " + tok, "dpop": key.Proof(t, "GET", htu, tok, nil)})
			if st != 401 || !strings.HasPrefix(www, `DPoP error="use_dpop_nonce"`) || nonce == "" {
				t.Fatalf("proof without nonce: %d %q nonce %q", st, www, nonce)
			}
			withNonce := func(n string) string {
				return key.Proof(t, "GET", htu, tok, func(_, c map[string]any) { c["nonce"] = n })
			}
			if st, www, _ := g.ask(t, s, "GET", "api.example.com", "/orders", map[string]string{"authorization": "DPoP " + tok, "dpop": withNonce(nonce)}); st != 200 {
				t.Errorf("proof with the nonce: %d %q", st, www)
			}
			if st, www, _ := g.ask(t, s, "GET", "api.example.com", "/orders", map[string]string{"authorization": "DPoP " + tok, "dpop": withNonce("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")}); st != 401 || !strings.HasPrefix(www, `DPoP error="use_dpop_nonce"`) {
				t.Errorf("proof with a forged nonce: %d %q", st, www)
			}
		})
	}
}

// testCert is a self-signed client certificate.
type testCert struct {
	pem string
	x5t string // base64url SHA-256 of the DER (RFC 8705 §3.1)
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return testCert{pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), x5t: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// escaped is the certificate as Envoy's source.certificate, XFCC's Cert
// and nginx's $ssl_client_escaped_cert carry it: URL-encoded PEM.
func (c testCert) escaped() string { return url.PathEscape(c.pem) }

// TestCertificateBoundTokensAtTheGateway: a token with cnf.x5t#S256 (from
// the test issuer: the real one cannot mint them yet) passes only with
// its client certificate: Envoy's source.certificate, an XFCC header
// from a trusted address, or nginx's escaped certificate on /auth from a
// trusted address (RFC 8705 §3). Failures are Bearer invalid_token.
func TestCertificateBoundTokensAtTheGateway(t *testing.T) {
	p := newFakeProvider(t)
	mine, theirs := newTestCert(t, "client-a"), newTestCert(t, "client-b")
	tok := p.is.Token(p.key, map[string]any{"cnf": map[string]any{"x5t#S256": mine.x5t}})
	const want = `Bearer error="invalid_token"`

	// Envoy: source.certificate, and XFCC trusted from 10.0.0.9 only.
	envoy := startSidecar(t, p, "binding:\n  mtls:\n    trusted_proxies: [10.0.0.9/32]\n")
	check := func(t *testing.T, source, peerCert, xfcc string) (int, string) {
		t.Helper()
		req := envoyRequest("GET", "api.example.com", "/orders", bearer(tok))
		req.Attributes.Source.Address.Address.(*corev3.Address_SocketAddress).SocketAddress.Address = source
		req.Attributes.Source.Certificate = peerCert
		if xfcc != "" {
			req.Attributes.Request.Http.Headers["x-forwarded-client-cert"] = xfcc
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := envoy.authz.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		st, www, _ := checkAnswer(r)
		if st != 200 && codes.Code(r.GetStatus().GetCode()) != codes.Unauthenticated {
			t.Errorf("gRPC code %v for a 401", r.GetStatus().GetCode())
		}
		return st, www
	}
	xfcc := func(c testCert) string {
		return `By=spiffe://cluster.local/ns/default/sa/api;Hash=` + strings.Repeat("0", 64) + `;Cert="` + c.escaped() + `";Subject="CN=x,O=y"`
	}
	for _, tc := range []struct {
		name, source, peer, xfcc string
		status                   int
	}{
		{"own certificate (source.certificate)", "10.0.0.7", mine.escaped(), "", 200},
		{"certificate of another client", "10.0.0.7", theirs.escaped(), "", 401},
		{"no certificate", "10.0.0.7", "", "", 401},
		{"XFCC from a trusted proxy", "10.0.0.9", "", xfcc(mine), 200},
		{"XFCC of another client from a trusted proxy", "10.0.0.9", "", xfcc(theirs), 401},
		{"forged XFCC from an untrusted address", "10.0.0.7", "", xfcc(mine), 401},
	} {
		t.Run("envoy grpc/"+tc.name, func(t *testing.T) {
			st, www := check(t, tc.source, tc.peer, tc.xfcc)
			if st != tc.status || (st == 401 && !strings.HasPrefix(www, want)) {
				t.Errorf("%d %q, want %d (%s)", st, www, tc.status, want)
			}
		})
	}
	// A forged XFCC on /auth: the sidecar's caller (127.0.0.1) is not trusted.
	t.Run("forward-auth/forged XFCC from an untrusted address", func(t *testing.T) {
		resp := forwardAuth(t, envoy, "GET", "api.example.com", "/orders", map[string]string{
			"Authorization": "Bearer " + tok, "X-Forwarded-Client-Cert": xfcc(mine)})
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), want) {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	// nginx: $ssl_client_escaped_cert in X-SSL-Client-Cert, from loopback.
	nginx := startSidecar(t, p, "binding:\n  mtls:\n    client_cert_header: x-ssl-client-cert\n    trusted_proxies: [127.0.0.1, \"::1\"]\n")
	for _, tc := range []struct {
		name, cert string
		status     int
	}{
		{"own certificate", mine.escaped(), 200},
		{"certificate of another client", theirs.escaped(), 401},
		{"no certificate header", "", 401},
		{"garbage", "not-a-certificate", 401},
	} {
		t.Run("forward-auth/"+tc.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + tok}
			if tc.cert != "" {
				hdr["X-SSL-Client-Cert"] = tc.cert
			}
			resp := forwardAuth(t, nginx, "GET", "api.example.com", "/orders", hdr)
			if resp.StatusCode != tc.status || (tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), want)) {
				t.Errorf("%d %q, want %d", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status)
			}
		})
	}
	// A certificate-bound token is not DPoP-bound.
	if resp := forwardAuth(t, nginx, "GET", "api.example.com", "/orders", map[string]string{"Authorization": "DPoP " + tok,
		"X-SSL-Client-Cert": mine.escaped()}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("certificate-bound token with the DPoP scheme: %d", resp.StatusCode)
	}
}
