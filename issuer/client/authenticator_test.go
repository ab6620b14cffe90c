package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/internal/flight/flighttest"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
)

const (
	testIssuer   = "https://auth.example.com"
	testTokenURL = "https://auth.example.com/oauth2/token"
)

type authEnv struct {
	m     *Manager
	a     *Authenticator
	clk   *clock
	key   jwk.Key // private key of the private_key_jwt client "pkjwt"
	other jwk.Key // a key no client registered
	jwks  json.RawMessage
	srv   *httptest.Server // serves jwks for the client "pkjwt-uri"
	fetch atomic.Int64
}

func privateJWK(t testing.TB, kid string) (jwk.Key, json.RawMessage) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := jwk.Import(priv)
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, _ := k.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, _ := json.Marshal(set)
	return k, b
}

func newAuthEnv(t testing.TB, opts ...func(*AuthenticatorOptions)) *authEnv {
	t.Helper()
	ctx := context.Background()
	e := &authEnv{clk: newClock()}
	e.m = newTestManager(t, newMemClients(), e.clk, -1)
	e.key, e.jwks = privateJWK(t, "k1")
	e.other, _ = privateJWK(t, "k1")
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.fetch.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(e.jwks)
	}))
	t.Cleanup(e.srv.Close)

	for _, c := range []*Client{
		{ID: "basic", Secret: "basic-secret"},
		{ID: "post", Secret: "post-secret", TokenEndpointAuthMethod: AuthClientSecretPost},
		{ID: "public", TokenEndpointAuthMethod: AuthNone},
		{ID: "client:1/ä", Secret: "p@ss:w+rd%/&=é"},
		{ID: "pkjwt", TokenEndpointAuthMethod: AuthPrivateKeyJWT, JWKS: e.jwks},
		{ID: "pkjwt-uri", TokenEndpointAuthMethod: AuthPrivateKeyJWT, JWKSURI: "https://placeholder.invalid/jwks"},
		{ID: "pkjwt-rs", TokenEndpointAuthMethod: AuthPrivateKeyJWT, JWKS: e.jwks, TokenEndpointAuthSigningAlg: "RS256"},
	} {
		if _, err := e.m.Create(ctx, c); err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
	}
	// jwks_uri validation wants https; point the stored client at the test server afterwards.
	if _, err := e.m.modify(ctx, "pkjwt-uri", func(c *Client) error { c.JWKSURI = e.srv.URL + "/jwks"; return nil }); err != nil {
		t.Fatal(err)
	}
	hc, _ := safehttp.New(safehttp.Options{})
	o := AuthenticatorOptions{Manager: e.m, Nonces: newMemNonces(e.clk.Now), HTTP: hc, Now: e.clk.Now,
		TokenEndpoint: testTokenURL, Issuer: testIssuer}
	for _, f := range opts {
		f(&o)
	}
	a, err := NewAuthenticator(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	e.a = a
	return e
}

func basicHeader(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func (e *authEnv) auth(authz string, form url.Values) (*Client, error) {
	r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return e.a.Authenticate(context.Background(), r, form)
}

// assertion signs claims (a map, so tests can leave claims out) with key.
func (e *authEnv) assertion(t testing.TB, key jwk.Key, alg jwa.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	b, err := jws.Sign(payload, jws.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *authEnv) claims(id string) map[string]any {
	now := e.clk.Now()
	return map[string]any{"iss": id, "sub": id, "aud": testTokenURL, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": base64.RawURLEncoding.EncodeToString([]byte(now.String() + id + randString()))}
}

func randString() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func assertionForm(a string) url.Values {
	return url.Values{"client_assertion_type": {JWTBearerAssertionType}, "client_assertion": {a}}
}

// unsignedJWT builds a JWT with an arbitrary header and HMAC or empty signature.
func unsignedJWT(header, claims map[string]any, hmacKey []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if hmacKey == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func wantErr(t *testing.T, err error, code string, status int, wwwAuth bool) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.Code != code || ae.StatusCode() != status {
		t.Fatalf("want %s/%d, got %s/%d (%s)", code, status, ae.Code, ae.StatusCode(), ae.Description)
	}
	got := ae.Header.Get("WWW-Authenticate")
	if wwwAuth && got != `Basic realm="gatehouse"` {
		t.Fatalf("want WWW-Authenticate Basic, got %q", got)
	}
	if !wwwAuth && got != "" {
		t.Fatalf("unexpected WWW-Authenticate %q", got)
	}
}

func TestAuthenticateSecrets(t *testing.T) {
	e := newAuthEnv(t)
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name    string
		authz   string
		form    url.Values
		id      string // expected client on success
		code    string
		status  int
		wwwAuth bool
	}{
		{"basic", basicHeader("basic", "basic-secret"), form("grant_type", "client_credentials"), "basic", "", 0, false},
		{"basic with matching client_id in body", basicHeader("basic", "basic-secret"), form("client_id", "basic"), "basic", "", 0, false},
		{"basic urlencoded special characters", basicHeader("client:1/ä", "p@ss:w+rd%/&=é"), form(), "client:1/ä", "", 0, false},
		{"basic scheme is case-insensitive", "basic " + strings.TrimPrefix(basicHeader("basic", "basic-secret"), "Basic "), form(), "basic", "", 0, false},
		{"basic special characters not encoded", "Basic " + base64.StdEncoding.EncodeToString([]byte("client:1/ä:p@ss:w+rd%/&=é")), form(), "", "invalid_client", 401, true},
		{"basic wrong secret", basicHeader("basic", "nope"), form(), "", "invalid_client", 401, true},
		{"basic empty secret", basicHeader("basic", ""), form(), "", "invalid_client", 401, true},
		{"basic unknown client", basicHeader("ghost", "x"), form(), "", "invalid_client", 401, true},
		{"basic not base64", "Basic !!!", form(), "", "invalid_client", 401, true},
		{"basic without colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("basic")), form(), "", "invalid_client", 401, true},
		{"basic for a client_secret_post client", basicHeader("post", "post-secret"), form(), "", "invalid_client", 401, true},
		{"basic for a public client", basicHeader("public", "x"), form(), "", "invalid_client", 401, true},
		{"basic body client_id mismatch", basicHeader("basic", "basic-secret"), form("client_id", "post"), "", "invalid_request", 400, false},
		{"post", "", form("client_id", "post", "client_secret", "post-secret"), "post", "", 0, false},
		{"post wrong secret", "", form("client_id", "post", "client_secret", "nope"), "", "invalid_client", 401, false},
		{"post for a basic client", "", form("client_id", "basic", "client_secret", "basic-secret"), "", "invalid_client", 401, false},
		{"post without client_id", "", form("client_secret", "post-secret"), "", "invalid_request", 400, false},
		{"post unknown client", "", form("client_id", "ghost", "client_secret", "x"), "", "invalid_client", 401, false},
		{"basic and post at once", basicHeader("basic", "basic-secret"), form("client_id", "basic", "client_secret", "basic-secret"), "", "invalid_request", 400, false},
		{"basic and assertion at once", basicHeader("basic", "basic-secret"), form("client_assertion_type", JWTBearerAssertionType, "client_assertion", "x.y.z"), "", "invalid_request", 400, false},
		{"post and assertion at once", "", form("client_id", "post", "client_secret", "post-secret", "client_assertion_type", JWTBearerAssertionType, "client_assertion", "x.y.z"), "", "invalid_request", 400, false},
		{"duplicate client_id", "", form("client_id", "public", "client_id", "public"), "", "invalid_request", 400, false},
		{"none", "", form("client_id", "public"), "public", "", 0, false},
		{"none for a confidential client", "", form("client_id", "basic"), "", "invalid_client", 401, false},
		{"none unknown client", "", form("client_id", "ghost"), "", "invalid_client", 401, false},
		{"no credentials", "", form("grant_type", "client_credentials"), "", "invalid_client", 401, false},
		{"bearer header is not client auth", "Bearer abc", form("client_id", "public"), "public", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.auth(tt.authz, tt.form)
			if tt.code == "" {
				if err != nil || c.ID != tt.id {
					t.Fatalf("want %s, got %v %v", tt.id, c, err)
				}
				if c.SecretHash == "" && !c.IsPublic() {
					t.Fatal("authenticated client lacks its stored fields")
				}
				return
			}
			wantErr(t, err, tt.code, tt.status, tt.wwwAuth)
		})
	}
}

func TestAuthenticateRotatedSecret(t *testing.T) {
	e := newAuthEnv(t)
	ctx := context.Background()
	rot, err := e.m.RotateSecret(ctx, "basic")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"basic-secret", rot.Secret} {
		if _, err := e.auth(basicHeader("basic", s), url.Values{}); err != nil {
			t.Fatalf("secret during rotation: %v", err)
		}
	}
	if _, err := e.m.FinalizeSecretRotation(ctx, "basic"); err != nil {
		t.Fatal(err)
	}
	e.a.secretCache.Wait()
	if _, err := e.auth(basicHeader("basic", "basic-secret"), url.Values{}); err == nil {
		t.Fatal("old secret still accepted after the rotation was finalised (cache not invalidated?)")
	}
	if _, err := e.auth(basicHeader("basic", rot.Secret), url.Values{}); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestSecretVerificationCache(t *testing.T) {
	e := newAuthEnv(t)
	var calls atomic.Int64
	orig := verifyHash
	verifyHash = func(h, s string) error { calls.Add(1); return orig(h, s) }
	t.Cleanup(func() { verifyHash = orig })
	good := basicHeader("basic", "basic-secret")
	authOK := func() {
		t.Helper()
		if _, err := e.auth(good, url.Values{}); err != nil {
			t.Fatal(err)
		}
		e.a.secretCache.Wait()
	}

	authOK()
	if calls.Load() != 1 {
		t.Fatalf("first verification: %d hash calls", calls.Load())
	}
	authOK()
	if calls.Load() != 1 {
		t.Fatalf("cached verification computed the hash again (%d calls)", calls.Load())
	}
	// A wrong secret always costs a full verification; failures are never cached.
	for i := 0; i < 3; i++ {
		_, _ = e.auth(basicHeader("basic", "wrong"), url.Values{})
		e.a.secretCache.Wait()
	}
	if calls.Load() != 4 {
		t.Fatalf("wrong secrets: %d hash calls, want 4", calls.Load())
	}
	// Any change of the client makes the entry unreachable.
	c, _ := e.m.Get(context.Background(), "basic")
	c.Name = "changed"
	if _, err := e.m.Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	authOK()
	if calls.Load() != 5 {
		t.Fatalf("after a client change: %d hash calls, want 5", calls.Load())
	}
	// A new secret: the old one fails at once although it was cached.
	c.Secret = "brand-new-secret"
	if _, err := e.m.Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth(good, url.Values{}); err == nil {
		t.Fatal("old cached secret accepted after the secret changed")
	}
	// Entries expire after the TTL.
	good = basicHeader("basic", "brand-new-secret")
	authOK()
	n := calls.Load()
	e.clk.Advance(DefaultSecretCacheTTL + time.Second)
	authOK()
	if calls.Load() != n+1 {
		t.Fatal("cache entry outlived its TTL")
	}
}

func TestSecretCacheDisabled(t *testing.T) {
	e := newAuthEnv(t, func(o *AuthenticatorOptions) { o.SecretCacheTTL = -1 })
	var calls atomic.Int64
	orig := verifyHash
	verifyHash = func(h, s string) error { calls.Add(1); return orig(h, s) }
	t.Cleanup(func() { verifyHash = orig })
	for i := 0; i < 2; i++ {
		if _, err := e.auth(basicHeader("basic", "basic-secret"), url.Values{}); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("disabled cache: %d hash calls", calls.Load())
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	e := newAuthEnv(t)
	es := jwa.ES256()
	replayed := e.assertion(t, e.key, es, e.claims("pkjwt"))
	if c, err := e.auth("", assertionForm(replayed)); err != nil || c.ID != "pkjwt" {
		t.Fatalf("first use: %v", err)
	}
	with := func(id string, mod func(m map[string]any)) string {
		m := e.claims(id)
		mod(m)
		return e.assertion(t, e.key, es, m)
	}
	now := e.clk.Now()
	tests := []struct {
		name string
		form url.Values
		code string
	}{
		{"jwks", assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt"))), ""},
		{"aud is the issuer", assertionForm(with("pkjwt", func(m map[string]any) { m["aud"] = testIssuer })), ""},
		{"aud array", assertionForm(with("pkjwt", func(m map[string]any) { m["aud"] = []string{"x", testTokenURL} })), ""},
		{"matching client_id in body", func() url.Values {
			f := assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt")))
			f.Set("client_id", "pkjwt")
			return f
		}(), ""},
		{"jwks_uri", assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt-uri"))), ""},
		{"replayed jti", assertionForm(replayed), "invalid_client"},
		{"wrong aud", assertionForm(with("pkjwt", func(m map[string]any) { m["aud"] = "https://other.example/token" })), "invalid_client"},
		{"no aud", assertionForm(with("pkjwt", func(m map[string]any) { delete(m, "aud") })), "invalid_client"},
		{"expired", assertionForm(with("pkjwt", func(m map[string]any) {
			m["exp"] = now.Add(-time.Hour).Unix()
			m["iat"] = now.Add(-2 * time.Hour).Unix()
		})), "invalid_client"},
		{"no exp", assertionForm(with("pkjwt", func(m map[string]any) { delete(m, "exp") })), "invalid_client"},
		{"lifetime too long", assertionForm(with("pkjwt", func(m map[string]any) { m["exp"] = now.Add(48 * time.Hour).Unix() })), "invalid_client"},
		{"not yet valid", assertionForm(with("pkjwt", func(m map[string]any) { m["nbf"] = now.Add(10 * time.Minute).Unix() })), "invalid_client"},
		{"issued in the future", assertionForm(with("pkjwt", func(m map[string]any) { m["iat"] = now.Add(10 * time.Minute).Unix() })), "invalid_client"},
		{"no jti", assertionForm(with("pkjwt", func(m map[string]any) { delete(m, "jti") })), "invalid_client"},
		{"iss differs from sub", assertionForm(with("pkjwt", func(m map[string]any) { m["iss"] = "someone" })), "invalid_client"},
		{"unknown client", assertionForm(e.assertion(t, e.key, es, e.claims("ghost"))), "invalid_client"},
		{"client with another method", assertionForm(e.assertion(t, e.key, es, e.claims("basic"))), "invalid_client"},
		{"client requires RS256", assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt-rs"))), "invalid_client"},
		{"client_id mismatch", func() url.Values {
			f := assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt")))
			f.Set("client_id", "pkjwt-uri")
			return f
		}(), "invalid_client"},
		{"signed by another key", assertionForm(e.assertion(t, e.other, es, e.claims("pkjwt"))), "invalid_client"},
		{"alg none", assertionForm(unsignedJWT(map[string]any{"alg": "none"}, e.claims("pkjwt"), nil)), "invalid_client"},
		{"alg HS256 with the public key", func() url.Values {
			return assertionForm(unsignedJWT(map[string]any{"alg": "HS256", "kid": "k1"}, e.claims("pkjwt"), e.jwks))
		}(), "invalid_client"},
		{"alg mismatching the key", assertionForm(unsignedJWT(map[string]any{"alg": "RS256", "kid": "k1"}, e.claims("pkjwt"), []byte("x"))), "invalid_client"},
		{"tampered payload", func() url.Values {
			a := e.assertion(t, e.key, es, e.claims("pkjwt"))
			parts := strings.Split(a, ".")
			c := e.claims("pkjwt")
			c["sub"], c["iss"] = "pkjwt", "pkjwt"
			c["extra"] = "x"
			b, _ := json.Marshal(c)
			parts[1] = base64.RawURLEncoding.EncodeToString(b)
			return assertionForm(strings.Join(parts, "."))
		}(), "invalid_client"},
		{"not a JWT", assertionForm("garbage"), "invalid_client"},
		{"JSON serialization", assertionForm(`{"payload":"e30","signatures":[]}`), "invalid_client"},
		{"wrong assertion type", url.Values{"client_assertion_type": {"urn:other"}, "client_assertion": {replayed}}, "invalid_client"},
		{"assertion without type", url.Values{"client_assertion": {replayed}}, "invalid_request"},
		{"type without assertion", url.Values{"client_assertion_type": {JWTBearerAssertionType}}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.auth("", tt.form)
			if tt.code == "" {
				if err != nil || c == nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			t.Log(err)
			status := 401
			if tt.code == "invalid_request" {
				status = 400
			}
			wantErr(t, err, tt.code, status, false)
		})
	}
}

func TestPrivateKeyJWTRemoteKeys(t *testing.T) {
	e := newAuthEnv(t)
	es := jwa.ES256()
	for i := 0; i < 3; i++ {
		if _, err := e.auth("", assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt-uri")))); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fetch.Load(); n != 1 {
		t.Fatalf("jwks_uri fetched %d times, want 1 (cached)", n)
	}
	// The client rotates its key: an unknown signature triggers one refetch
	// (rate limited), after which the new key verifies.
	newKey, newSet := privateJWK(t, "k2")
	e.jwks = newSet
	e.clk.Advance(jwksMinRefresh)
	if _, err := e.auth("", assertionForm(e.assertion(t, newKey, es, e.claims("pkjwt-uri")))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := e.fetch.Load(); n != 2 {
		t.Fatalf("jwks_uri fetched %d times, want 2", n)
	}

	// With the SSRF guard on, a loopback jwks_uri is refused.
	guarded, _ := safehttp.New(safehttp.Options{DisallowPrivateIPRanges: true})
	g := newAuthEnv(t, func(o *AuthenticatorOptions) { o.HTTP = guarded })
	_, err := g.auth("", assertionForm(g.assertion(t, g.key, es, g.claims("pkjwt-uri"))))
	wantErr(t, err, "invalid_client", 401, false)
	if g.fetch.Load() != 0 {
		t.Fatal("guarded client reached the loopback server")
	}
}

func TestNewAuthenticatorRequirements(t *testing.T) {
	m := newTestManager(t, newMemClients(), newClock(), -1)
	for _, o := range []AuthenticatorOptions{
		{Nonces: newMemNonces(time.Now), TokenEndpoint: "x"},
		{Manager: m, TokenEndpoint: "x"},
		{Manager: m, Nonces: newMemNonces(time.Now)},
	} {
		if _, err := NewAuthenticator(o); err == nil {
			t.Errorf("%+v: want error", o)
		}
	}
}

// BenchmarkSecretAuthentication compares client_secret_basic with the
// verification cache (a map lookup and an HMAC) and without it (a full
// PBKDF2-HMAC-SHA256 with the default 25,000 iterations).
func BenchmarkSecretAuthentication(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", DefaultSecretCacheTTL}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			clk := newClock()
			h, _ := NewHasher(HasherOptions{}) // production defaults
			m, _ := NewManager(ManagerOptions{Store: newMemClients(), Hasher: h, Now: clk.Now})
			defer m.Close()
			if _, err := m.Create(context.Background(), &Client{ID: "bench", Secret: "bench-secret-value"}); err != nil {
				b.Fatal(err)
			}
			a, _ := NewAuthenticator(AuthenticatorOptions{Manager: m, Nonces: newMemNonces(clk.Now), Now: clk.Now,
				TokenEndpoint: testTokenURL, SecretCacheTTL: bc.ttl})
			defer a.Close()
			r := httptest.NewRequest("POST", "/oauth2/token", nil)
			r.Header.Set("Authorization", basicHeader("bench", "bench-secret-value"))
			form := url.Values{"grant_type": {"client_credentials"}}
			ctx := context.Background()
			if _, err := a.Authenticate(ctx, r, form); err != nil {
				b.Fatal(err)
			}
			if a.secretCache != nil {
				a.secretCache.Wait()
			}
			m.cache.Wait()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Authenticate(ctx, r, form); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRefusalsVerifyADummyHash: a secret sent for an unknown client, for a
// client registered for another method or for a client without a secret
// is verified against a dummy hash made with the Manager's hasher, so the
// refusal costs what a wrong secret costs (one verification).
func TestRefusalsVerifyADummyHash(t *testing.T) {
	e := newAuthEnv(t)
	if want := "$pbkdf2-sha256$i=1000,"; !strings.HasPrefix(e.a.dummyHash, want) {
		t.Fatalf("dummy hash %q is not made with the Manager's hasher (%s...)", e.a.dummyHash, want)
	}
	var hashes []string
	orig := verifyHash
	verifyHash = func(h, s string) error { hashes = append(hashes, h); return orig(h, s) }
	t.Cleanup(func() { verifyHash = orig })
	for _, tt := range []struct {
		name  string
		authz string
		form  url.Values
		dummy bool
	}{
		{"basic unknown client", basicHeader("ghost", "x"), url.Values{}, true},
		{"post unknown client", "", url.Values{"client_id": {"ghost"}, "client_secret": {"x"}}, true},
		{"basic for a client_secret_post client", basicHeader("post", "post-secret"), url.Values{}, true},
		{"basic for a public client", basicHeader("public", "x"), url.Values{}, true},
		{"basic for a private_key_jwt client", basicHeader("pkjwt", "x"), url.Values{}, true},
		{"basic empty secret", basicHeader("basic", ""), url.Values{}, true},
		{"basic wrong secret", basicHeader("basic", "nope"), url.Values{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hashes = nil
			_, err := e.auth(tt.authz, tt.form)
			wantErr(t, err, "invalid_client", 401, tt.authz != "")
			if len(hashes) != 1 {
				t.Fatalf("%d hash verifications, want 1", len(hashes))
			}
			if (hashes[0] == e.a.dummyHash) != tt.dummy {
				t.Fatalf("verified hash %q, dummy %v", hashes[0], tt.dummy)
			}
		})
	}
}

// TestClientAuthFailuresShareOneDescription: whatever failed (unknown
// client, secret, method, any part of an assertion), the client reads the
// same invalid_client description; the reason is the error's cause.
func TestClientAuthFailuresShareOneDescription(t *testing.T) {
	e := newAuthEnv(t)
	es := jwa.ES256()
	expired := e.claims("pkjwt")
	expired["exp"] = e.clk.Now().Add(-time.Hour).Unix()
	for _, tt := range []struct {
		name, authz string
		form        url.Values
		cause       string
	}{
		{"unknown client", basicHeader("ghost", "x"), url.Values{}, "unknown client"},
		{"wrong secret", basicHeader("basic", "nope"), url.Values{}, "wrong client secret"},
		{"wrong method", basicHeader("post", "post-secret"), url.Values{}, "token_endpoint_auth_method"},
		{"malformed basic", "Basic !!!", url.Values{}, "base64"},
		{"no credentials", "", url.Values{}, "no client credentials"},
		{"assertion for an unknown client", "", assertionForm(e.assertion(t, e.key, es, e.claims("ghost"))), "unknown client"},
		{"assertion signed by another key", "", assertionForm(e.assertion(t, e.other, es, e.claims("pkjwt"))), "signature"},
		{"expired assertion", "", assertionForm(e.assertion(t, e.key, es, expired)), "expired"},
		{"assertion for a client requiring RS256", "", assertionForm(e.assertion(t, e.key, es, e.claims("pkjwt-rs"))), "RS256"},
		{"HMAC assertion", "", assertionForm(unsignedJWT(map[string]any{"alg": "HS256"}, e.claims("pkjwt"), []byte("k"))), "asymmetric"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.auth(tt.authz, tt.form)
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Code != "invalid_client" {
				t.Fatalf("got %v", err)
			}
			if ae.Description != ClientAuthFailed {
				t.Fatalf("description %q", ae.Description)
			}
			if ae.Cause == nil || !strings.Contains(ae.Cause.Error(), tt.cause) {
				t.Fatalf("cause %v, want it to mention %q", ae.Cause, tt.cause)
			}
		})
	}
}

// TestCancelledCallerDoesNotFailTheSharedJWKSFetch: two assertions of a
// jwks_uri client arrive while its keys are being fetched; the request
// whose fetch it is gives up; the other still gets the key set.
func TestCancelledCallerDoesNotFailTheSharedJWKSFetch(t *testing.T) {
	e := newAuthEnv(t)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(e.jwks)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	uri := srv.URL + "/jwks"

	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := e.a.remoteJWKS(ctx1, uri, false)
		first <- err
	}()
	<-started
	ctx2, joined := flighttest.Waiter()
	type result struct {
		n   int
		err error
	}
	second := make(chan result, 1)
	go func() {
		set, _, err := e.a.remoteJWKS(ctx2, uri, false)
		if err != nil {
			second <- result{err: err}
			return
		}
		second <- result{n: set.Len()}
	}()
	select {
	case <-joined:
	case <-time.After(time.Second): // the second caller waits inside the shared fetch
	}
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(release)
	if r := <-second; r.err != nil || r.n != 1 {
		t.Fatalf("the second caller failed with the first caller's cancellation: %v", r.err)
	}
}
