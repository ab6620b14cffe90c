package gatewaytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// DPoPClient is an RFC 9449 client written with jwx's JWT and JWS API
// (not Gatehouse's code, nor testbin's hand-assembled proofs): a P-256
// key, proofs built as JWTs and signed with the public key in the
// protected header.
type DPoPClient struct {
	priv jwk.Key
	pub  jwk.Key
	// JKT is the key's RFC 7638 thumbprint, the cnf.jkt of its tokens.
	JKT string
}

// NewDPoPClient generates the client's key.
func NewDPoPClient(t *testing.T) *DPoPClient {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &DPoPClient{priv: priv, pub: pub, JKT: base64.RawURLEncoding.EncodeToString(sum)}
}

// HTU is the htu of a request to rawURL: the URL without query and
// fragment (RFC 9449 §4.2).
func HTU(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return u.String()
}

// Proof is a DPoP proof (RFC 9449 §4.2) for htm and htu, with ath when
// token is set, a fresh jti and iat now.
func (c *DPoPClient) Proof(t *testing.T, htm, htu, token string) string {
	t.Helper()
	return c.ProofWithNonce(t, htm, htu, token, "")
}

// ProofWithNonce is Proof with the nonce claim when nonce is set (RFC
// 9449 §4.2, §9).
func (c *DPoPClient) ProofWithNonce(t *testing.T, htm, htu, token, nonce string) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	b := jwt.NewBuilder().
		JwtID(base64.RawURLEncoding.EncodeToString(jti)).
		IssuedAt(time.Now()).
		Claim("htm", htm).
		Claim("htu", htu)
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		b = b.Claim("ath", base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	if nonce != "" {
		b = b.Claim("nonce", nonce)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "dpop+jwt"); err != nil {
		t.Fatal(err)
	}
	if err := hdr.Set(jws.JWKKey, c.pub); err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), c.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// Token gets a DPoP-bound access token for client with the
// client_credentials grant, a proof at the issuer's token endpoint
// (RFC 9449 §5), and fails unless the issuer says token_type DPoP.
func (c *DPoPClient) Token(t *testing.T, is *testbin.Issuer, client testbin.Client, scope string) string {
	t.Helper()
	proof := c.Proof(t, http.MethodPost, is.PublicURL+"/oauth2/token", "")
	return is.DPoPTokenWithProof(t, client, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, proof)
}

// CheckDPoP calls the gateway at gw (http://host:port) with a DPoP-bound
// token from the real issuer, as a DPoP client would: allowed with a
// fresh proof for the URL it calls (query excluded), twice (the second
// check finds the token cached and still checks the proof); refused
// with the RFC 9449 §7.1 challenge for a replayed proof, a proof for
// another URL, method or host, a forged X-Forwarded-Host or -Proto that
// would make a proof for another server fit, and the bound token sent as
// Bearer. JWT and opaque tokens both.
func CheckDPoP(t *testing.T, s *Stack, gw string) {
	t.Helper()
	c := NewDPoPClient(t)
	base := "http://" + gw
	for _, strategy := range []string{"jwt", "opaque"} {
		t.Run(strategy, func(t *testing.T) {
			client := s.Issuer.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"},
				"scope": "read", "access_token_strategy": strategy})
			tok := c.Token(t, s.Issuer, client, "read")
			call := func(method, target, proof string, extra map[string]string) Answer {
				hdr := map[string]string{"Authorization": "DPoP " + tok}
				if proof != "" {
					hdr["DPoP"] = proof
				}
				for k, v := range extra {
					hdr[k] = v
				}
				return Call(t, method, target, hdr)
			}
			target := base + "/api/orders?page=2"
			for i := range 2 {
				a := call("GET", target, c.Proof(t, "GET", HTU(t, target), tok), nil)
				if a.Status != 200 || a.Seen == nil || a.Seen.Headers["x-client-id"] != client.ID {
					t.Fatalf("call %d with a fresh proof: %d %q", i+1, a.Status, a.Header.Get("WWW-Authenticate"))
				}
			}
			if a := call("DELETE", base+"/api/orders/7", c.Proof(t, "DELETE", base+"/api/orders/7", tok), nil); a.Status != 200 {
				t.Fatalf("DELETE with its proof: %d %q", a.Status, a.Header.Get("WWW-Authenticate"))
			}
			used := c.Proof(t, "GET", base+"/api/orders", tok)
			if a := call("GET", base+"/api/orders", used, nil); a.Status != 200 {
				t.Fatalf("first use of a proof: %d %q", a.Status, a.Header.Get("WWW-Authenticate"))
			}
			const proofErr, tokenErr = `DPoP error="invalid_dpop_proof"`, `DPoP error="invalid_token"`
			for _, tc := range []struct {
				name, method, target, proof string
				extra                       map[string]string
				challenge                   string
			}{
				{"replayed proof", "GET", base + "/api/orders", used, nil,
					proofErr + `, error_description="The DPoP proof was already used."`},
				{"proof for another URL", "GET", base + "/api/orders", c.Proof(t, "GET", base+"/api/admin", tok), nil, proofErr},
				{"proof for another method", "DELETE", base + "/api/orders", c.Proof(t, "GET", base+"/api/orders", tok), nil, proofErr},
				{"proof for another server", "GET", base + "/api/orders", c.Proof(t, "GET", "http://other.example/api/orders", tok), nil, proofErr},
				{"forged X-Forwarded-Host to fit a proof for another server", "GET", base + "/api/orders",
					c.Proof(t, "GET", "http://other.example/api/orders", tok), map[string]string{"X-Forwarded-Host": "other.example"}, proofErr},
				{"forged X-Forwarded-Proto to fit a proof for https", "GET", base + "/api/orders",
					c.Proof(t, "GET", "https://"+gw+"/api/orders", tok), map[string]string{"X-Forwarded-Proto": "https"}, proofErr},
				{"forged X-Forwarded-Uri to fit a proof for another path", "GET", base + "/api/orders",
					c.Proof(t, "GET", base+"/api/admin", tok), map[string]string{"X-Forwarded-Uri": "/api/admin"}, proofErr},
				{"no proof", "GET", base + "/api/orders", "", nil, proofErr},
			} {
				t.Run(tc.name, func(t *testing.T) {
					a := call(tc.method, tc.target, tc.proof, tc.extra)
					if www := a.Header.Get("WWW-Authenticate"); a.Status != 401 || !strings.HasPrefix(www, tc.challenge) {
						t.Fatalf("%d %q, want 401 %s", a.Status, www, tc.challenge)
					}
				})
			}
			t.Run("another Host, to fit a proof for another server", func(t *testing.T) {
				// The gateway serves its own names only: a proof made
				// for another server cannot be brought here by naming
				// that server in Host.
				a := call("GET", base+"/api/orders", c.Proof(t, "GET", "http://other.example/api/orders", tok), map[string]string{"Host": "other.example"})
				if a.Status != http.StatusMisdirectedRequest || a.Seen != nil {
					t.Fatalf("%d, want 421 (Misdirected Request)", a.Status)
				}
			})
			t.Run("two DPoP headers", func(t *testing.T) {
				// RFC 9449 §4.3 check 1: not more than one DPoP header; the
				// gateway must pass both on for the sidecar to see it.
				req, _ := http.NewRequest("GET", base+"/api/orders", nil)
				req.Header.Set("Authorization", "DPoP "+tok)
				req.Header.Add("DPoP", c.Proof(t, "GET", base+"/api/orders", tok))
				req.Header.Add("DPoP", c.Proof(t, "GET", base+"/api/orders", tok))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := proofErr + `, error_description="The request has more than one DPoP header."`
				if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.HasPrefix(www, want) {
					t.Fatalf("%d %q, want 401 %s", resp.StatusCode, www, want)
				}
			})
			t.Run("bound token as Bearer", func(t *testing.T) {
				a := Call(t, "GET", base+"/api/orders", map[string]string{"Authorization": "Bearer " + tok, "DPoP": c.Proof(t, "GET", base+"/api/orders", tok)})
				if www := a.Header.Get("WWW-Authenticate"); a.Status != 401 || !strings.HasPrefix(www, tokenErr) {
					t.Fatalf("%d %q, want 401 %s", a.Status, www, tokenErr)
				}
			})
			t.Run("proof with another key", func(t *testing.T) {
				a := call("GET", base+"/api/orders", NewDPoPClient(t).Proof(t, "GET", base+"/api/orders", tok), nil)
				if www := a.Header.Get("WWW-Authenticate"); a.Status != 401 || !strings.HasPrefix(www, tokenErr) {
					t.Fatalf("%d %q, want 401 %s", a.Status, www, tokenErr)
				}
			})
		})
	}
}

// NonceConfig is the sidecar configuration CheckDPoPNonce needs: proofs
// must carry a sidecar nonce (RFC 9449 §9).
const NonceConfig = `binding:
  dpop:
    use_nonce: true
    nonce_secret: gatewaytest-nonce-secret-0123456789abcdef
`

// CheckDPoPNonce calls the gateway at gw, whose sidecar runs with
// NonceConfig, as a DPoP client does when a resource server asks for
// nonces: the first proof has none and gets 401 use_dpop_nonce with a
// DPoP-Nonce header, which the gateway must pass on to the client; the
// retry with that nonce in a fresh proof passes.
func CheckDPoPNonce(t *testing.T, s *Stack, gw string) {
	t.Helper()
	c := NewDPoPClient(t)
	client := s.Issuer.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read"})
	tok := c.Token(t, s.Issuer, client, "read")
	target := "http://" + gw + "/api/orders"
	a := Call(t, "GET", target, map[string]string{"Authorization": "DPoP " + tok, "DPoP": c.Proof(t, "GET", target, tok)})
	nonce := a.Header.Get("DPoP-Nonce")
	if www := a.Header.Get("WWW-Authenticate"); a.Status != 401 || !strings.HasPrefix(www, `DPoP error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("a proof without a nonce: %d %q, DPoP-Nonce %q; want 401 use_dpop_nonce with a nonce", a.Status, www, nonce)
	}
	a = Call(t, "GET", target, map[string]string{"Authorization": "DPoP " + tok, "DPoP": c.ProofWithNonce(t, "GET", target, tok, nonce)})
	if a.Status != 200 || a.Seen == nil || a.Seen.Headers["x-client-id"] != client.ID {
		t.Fatalf("the retry with the nonce: %d %q", a.Status, a.Header.Get("WWW-Authenticate"))
	}
}
