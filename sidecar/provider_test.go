package sidecar_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// provider is the OpenID provider the integration tests run the real
// sidecar binary against. fakeProvider implements it with the fake issuer
// of extauthztest (an httptest server in the test process); a provider
// backed by the real gatehouse issuer binary (testbin.StartIssuer,
// client_credentials tokens, the admin keys API for rotation, RFC 7009
// revocation) can implement the same interface and reuse every test.
type provider interface {
	// Issuer is the exact iss of the tokens; discovery lives under it.
	Issuer() string
	// IntrospectionURL is the private RFC 7662 endpoint ("" to rely on
	// discovery's introspection_endpoint).
	IntrospectionURL() string
	// IntrospectionCredentials are sent as HTTP Basic to it ("" for none).
	IntrospectionCredentials() (id, secret string)
	// JWT mints a valid JWT access token with the given scopes and the
	// audience "api", and returns the identity it carries.
	JWT(t *testing.T, scopes ...string) (string, identity)
	// Opaque mints a valid opaque access token.
	Opaque(t *testing.T, scopes ...string) (string, identity)
	// Revoke revokes an opaque token at the issuer.
	Revoke(t *testing.T, token string)
	// RotateKey publishes a new signing key and signs new JWTs with it;
	// the previous key stays published.
	RotateKey(t *testing.T)
	// Stop makes the issuer unreachable.
	Stop(t *testing.T)
}

// identity is what the identity headers should carry for a token.
type identity struct {
	Subject, ClientID, Scopes string
}

// fakeProvider is the in-process fake issuer.
type fakeProvider struct {
	is  *extauthztest.Issuer
	mu  sync.Mutex
	key *extauthztest.Key
	n   int
}

const (
	fakeIntrospectionUser     = "sidecar"
	fakeIntrospectionPassword = "introspection-secret-0123456789"
)

// newFakeProvider starts a fake issuer signing with a fresh ES256 key and
// requiring client credentials at its introspection endpoint.
func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	is := extauthztest.New()
	t.Cleanup(is.Close)
	is.IntrospectionUser, is.IntrospectionPassword = fakeIntrospectionUser, fakeIntrospectionPassword
	return &fakeProvider{is: is, key: is.AddKey(jwa.ES256())}
}

func (p *fakeProvider) Issuer() string           { return p.is.URL }
func (p *fakeProvider) IntrospectionURL() string { return p.is.IntrospectionURL() }
func (p *fakeProvider) IntrospectionCredentials() (string, string) {
	return fakeIntrospectionUser, fakeIntrospectionPassword
}

func (p *fakeProvider) next() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	return "client-" + string(rune('a'+p.n%26)), "user-" + strings.Repeat("x", p.n%5+1)
}

func scopeOrDefault(scopes []string) string {
	if len(scopes) == 0 {
		return "read write"
	}
	return strings.Join(scopes, " ")
}

func (p *fakeProvider) JWT(t *testing.T, scopes ...string) (string, identity) {
	client, sub := p.next()
	sc := scopeOrDefault(scopes)
	p.mu.Lock()
	key := p.key
	p.mu.Unlock()
	tok := p.is.Token(key, map[string]any{"sub": sub, "client_id": client, "scope": sc, "scp": strings.Fields(sc)})
	return tok, identity{Subject: sub, ClientID: client, Scopes: sc}
}

func (p *fakeProvider) Opaque(t *testing.T, scopes ...string) (string, identity) {
	client, sub := p.next()
	sc := scopeOrDefault(scopes)
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	// Shaped like Hydra's opaque tokens: ory_at_<random>.<signature>.
	tok := "ory_at_" + base64.RawURLEncoding.EncodeToString(b[:16]) + "." + base64.RawURLEncoding.EncodeToString(b[16:])
	c := p.is.Claims()
	delete(c, "scp")
	c["sub"], c["client_id"], c["scope"] = sub, client, sc
	c["token_type"], c["token_use"] = "Bearer", "access_token"
	p.is.AddOpaque(tok, c)
	return tok, identity{Subject: sub, ClientID: client, Scopes: sc}
}

func (p *fakeProvider) Revoke(t *testing.T, tok string) { p.is.Revoke(tok) }

func (p *fakeProvider) RotateKey(t *testing.T) {
	k := p.is.AddKey(jwa.RS256())
	p.mu.Lock()
	p.key = k
	p.mu.Unlock()
}

func (p *fakeProvider) Stop(t *testing.T) { p.is.Close() }
