// Package extauthztest is a fake OpenID provider for tests and the load
// generator: an httptest server with discovery, a JWKS built from keys it
// generates, and RFC 7662 introspection of opaque tokens it is told about,
// plus helpers that mint JWT access tokens shaped like Hydra's (RFC 9068).
package extauthztest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Key is a signing key of the fake issuer.
type Key struct {
	KID     string
	Alg     jwa.SignatureAlgorithm
	Private any // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey
	Public  jwk.Key
}

// Issuer is a fake OpenID provider on a loopback httptest server.
type Issuer struct {
	Server *httptest.Server
	URL    string
	// Now is the clock minted tokens are dated with (default time.Now).
	Now func() time.Time
	// CacheControl is sent with the JWKS (default "max-age=300").
	CacheControl string
	// IntrospectionUser/Password, when set, are required as HTTP Basic
	// credentials at the introspection endpoint.
	IntrospectionUser, IntrospectionPassword string
	// IssuerInDiscovery overrides the discovery document's issuer.
	IssuerInDiscovery string
	// NoIntrospectionInDiscovery omits introspection_endpoint.
	NoIntrospectionInDiscovery bool

	down               atomic.Bool
	DiscoveryFetches   atomic.Int64
	JWKSFetches        atomic.Int64
	IntrospectionCalls atomic.Int64

	mu       sync.Mutex
	keys     []*Key
	opaque   map[string]map[string]any
	jwksBody []byte
}

// New starts a fake issuer with no keys.
func New() *Issuer {
	is := &Issuer{Now: time.Now, CacheControl: "max-age=300", opaque: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", is.jwks)
	mux.HandleFunc("POST /admin/oauth2/introspect", is.introspect)
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	is.URL = is.Server.URL
	return is
}

// Close stops the server.
func (is *Issuer) Close() { is.Server.Close() }

// SetDown makes every endpoint answer 503 (true) or work again (false).
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// IntrospectionURL is the fake admin introspection endpoint.
func (is *Issuer) IntrospectionURL() string { return is.URL + "/admin/oauth2/introspect" }

// AddKey generates a key for alg (RS256/RS384/RS512/PS256 use RSA 2048,
// ES256 P-256, ES384 P-384, EdDSA Ed25519), publishes it and returns it.
func (is *Issuer) AddKey(alg jwa.SignatureAlgorithm) *Key {
	var priv any
	var err error
	switch alg {
	case jwa.ES256():
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384():
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.EdDSA():
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		panic(err)
	}
	return is.AddPrivateKey(alg, priv, true)
}

// AddPrivateKey publishes priv's public key; withAlg sets the JWK "alg".
func (is *Issuer) AddPrivateKey(alg jwa.SignatureAlgorithm, priv any, withAlg bool) *Key {
	pk, err := jwk.PublicKeyOf(priv)
	if err != nil {
		panic(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	k := &Key{KID: fmt.Sprintf("key-%d-%d", len(is.keys)+1, time.Now().UnixNano()), Alg: alg, Private: priv, Public: pk}
	_ = pk.Set(jwk.KeyIDKey, k.KID)
	_ = pk.Set(jwk.KeyUsageKey, "sig")
	if withAlg {
		_ = pk.Set(jwk.AlgorithmKey, alg)
	}
	is.keys = append(is.keys, k)
	is.rebuildJWKS()
	return k
}

// RemoveKey unpublishes a key.
func (is *Issuer) RemoveKey(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	for i, k := range is.keys {
		if k.KID == kid {
			is.keys = append(is.keys[:i], is.keys[i+1:]...)
		}
	}
	is.rebuildJWKS()
}

// SetJWKS replaces the published JWKS document verbatim (nil: built from
// the keys again).
func (is *Issuer) SetJWKS(body []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if body == nil {
		is.rebuildJWKS()
		return
	}
	is.jwksBody = body
}

func (is *Issuer) rebuildJWKS() {
	set := jwk.NewSet()
	for _, k := range is.keys {
		_ = set.AddKey(k.Public)
	}
	is.jwksBody, _ = json.Marshal(set)
}

// Claims returns Hydra-shaped access-token claims for a client_credentials
// token: iss, sub, aud, exp (in 1h), iat, nbf, jti, client_id, scope, scp
// and ext.
func (is *Issuer) Claims() map[string]any {
	now := is.Now()
	return map[string]any{
		"iss": is.URL, "sub": "client-1", "aud": []string{"api"}, "client_id": "client-1",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": fmt.Sprintf("jti-%d", time.Now().UnixNano()), "scope": "read write", "scp": []string{"read", "write"},
		"ext": map[string]any{"email": "alice@example.com", "tenant": "acme"},
	}
}

// IDTokenClaims returns the claims of an OpenID Connect ID token (Core
// §2) for the user "alice" of client, shaped like Hydra v2's: aud is
// [client], at_hash, sid, auth_time, rat, acr and amr; no client_id,
// scope or scp. Hydra and Gatehouse sign ID tokens with header typ "JWT"
// (Sign with the extra header {"typ": "JWT"}).
func (is *Issuer) IDTokenClaims(client string) map[string]any {
	now := is.Now()
	return map[string]any{
		"iss": is.URL, "sub": "alice", "aud": []string{client},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": fmt.Sprintf("jti-%d", time.Now().UnixNano()),
		"auth_time": now.Add(-time.Minute).Unix(), "rat": now.Add(-time.Minute).Unix(),
		"at_hash": "mbvxSPQmEvhXBW3TkHVNZg", "sid": "4c5d4a7e-8b1e-4c39-a1a5-0f3f5e1f9d2a",
		"acr": "0", "amr": []string{"pwd"},
	}
}

// Sign signs claims with k as a JWS compact token with header typ
// "at+jwt", kid and alg, plus extra headers.
func (is *Issuer) Sign(k *Key, claims map[string]any, extraHeaders map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	_ = hdr.Set(jws.KeyIDKey, k.KID)
	for n, v := range extraHeaders {
		if v == nil {
			_ = hdr.Remove(n)
			continue
		}
		_ = hdr.Set(n, v)
	}
	tok, err := jws.Sign(payload, jws.WithKey(k.Alg, k.Private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		panic(err)
	}
	return string(tok)
}

// Token mints a valid token signed by k, with claim overrides (a nil
// value removes the claim).
func (is *Issuer) Token(k *Key, overrides map[string]any) string {
	c := is.Claims()
	for n, v := range overrides {
		if v == nil {
			delete(c, n)
			continue
		}
		c[n] = v
	}
	return is.Sign(k, c, nil)
}

// AddOpaque makes the introspection endpoint answer active for token with
// the given claims (nil: Hydra-shaped defaults).
func (is *Issuer) AddOpaque(token string, claims map[string]any) {
	if claims == nil {
		c := is.Claims()
		delete(c, "scp")
		delete(c, "nbf")
		c["token_type"] = "Bearer"
		c["token_use"] = "access_token"
		claims = c
	}
	is.mu.Lock()
	is.opaque[token] = claims
	is.mu.Unlock()
}

// Revoke makes the introspection endpoint answer inactive for token.
func (is *Issuer) Revoke(token string) {
	is.mu.Lock()
	delete(is.opaque, token)
	is.mu.Unlock()
}

func (is *Issuer) discovery(w http.ResponseWriter, r *http.Request) {
	is.DiscoveryFetches.Add(1)
	iss := is.URL
	if is.IssuerInDiscovery != "" {
		iss = is.IssuerInDiscovery
	}
	doc := map[string]any{
		"issuer": iss, "jwks_uri": is.URL + "/.well-known/jwks.json", "token_endpoint": is.URL + "/oauth2/token",
	}
	if !is.NoIntrospectionInDiscovery {
		doc["introspection_endpoint"] = is.IntrospectionURL()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

func (is *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	is.JWKSFetches.Add(1)
	is.mu.Lock()
	body := is.jwksBody
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if is.CacheControl != "" {
		w.Header().Set("Cache-Control", is.CacheControl)
	}
	_, _ = w.Write(body)
}

func (is *Issuer) introspect(w http.ResponseWriter, r *http.Request) {
	is.IntrospectionCalls.Add(1)
	if is.IntrospectionUser != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != is.IntrospectionUser || p != is.IntrospectionPassword {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	is.mu.Lock()
	claims, ok := is.opaque[r.PostForm.Get("token")]
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	out := map[string]any{"active": true}
	for k, v := range claims {
		out[k] = v
	}
	_ = json.NewEncoder(w).Encode(out)
}
