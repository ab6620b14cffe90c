package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/server"
)

var (
	_ server.AdminMounter  = (*Handler)(nil)
	_ server.PublicMounter = (*Handler)(nil)
)

type api struct {
	t     *testing.T
	env   *env
	m     *Manager
	admin *http.ServeMux
	pub   *http.ServeMux
}

func newAPI(t *testing.T, opts ...func(*Options)) *api {
	e := newEnv()
	m := e.manager(t, keyring(t), opts...)
	h := NewHandler(m, "")
	a := &api{t: t, env: e, m: m, admin: http.NewServeMux(), pub: http.NewServeMux()}
	h.MountAdmin(a.admin)
	h.MountPublic(a.pub)
	return a
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %s", r.body)
	}
	return m
}

func (a *api) do(mux *http.ServeMux, method, path string, body any) response {
	a.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (a *api) call(method, path string, body any) response {
	a.t.Helper()
	return a.do(a.admin, method, path, body)
}

// keysOf parses a JWKS response and fails if any key is private, unless
// allowPrivate.
func keysOf(t *testing.T, body []byte, allowPrivate bool) []jwk.Key {
	t.Helper()
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("not a JWKS: %v: %s", err, body)
	}
	var out []jwk.Key
	for i := range set.Len() {
		k, _ := set.Key(i)
		if priv, _ := jwk.IsPrivateKey(k); priv && !allowPrivate {
			t.Fatalf("response reveals a private key: %s", body)
		}
		out = append(out, k)
	}
	return out
}

func kidOf(k jwk.Key) string { kid, _ := k.KeyID(); return kid }

func TestAdminCreateAndGet(t *testing.T) {
	a := newAPI(t)

	r := a.call("POST", "/admin/keys/my-set", map[string]any{"alg": "ES256", "kid": "k1", "use": "sig"})
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	created := keysOf(t, r.body, true)
	if len(created) != 1 || kidOf(created[0]) != "k1" {
		t.Fatalf("POST answered %s", r.body)
	}
	if priv, _ := jwk.IsPrivateKey(created[0]); !priv {
		t.Fatal("POST must return the private key (once)")
	}
	if !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
		t.Fatalf("a private key must not be cached: %q", r.header.Get("Cache-Control"))
	}

	// Without a body's alg: the default; without kid: a random one.
	r = a.call("POST", "/admin/keys/my-set", map[string]any{})
	if r.status != http.StatusCreated {
		t.Fatalf("POST {}: %d %s", r.status, r.body)
	}
	second := keysOf(t, r.body, true)[0]
	if alg, _ := second.Algorithm(); alg.String() != "ES256" || kidOf(second) == "" {
		t.Fatalf("defaults not applied: %s", r.body)
	}

	r = a.call("GET", "/admin/keys/my-set", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET set: %d %s", r.status, r.body)
	}
	got := keysOf(t, r.body, false)
	if len(got) != 2 || kidOf(got[0]) != kidOf(second) || kidOf(got[1]) != "k1" {
		t.Fatalf("GET set (newest first): %s", r.body)
	}
	if bytes.Contains(r.body, []byte(`"d"`)) {
		t.Fatalf("GET set shows a private parameter: %s", r.body)
	}

	r = a.call("GET", "/admin/keys/my-set/k1", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET key: %d %s", r.status, r.body)
	}
	if one := keysOf(t, r.body, false); len(one) != 1 || kidOf(one[0]) != "k1" {
		t.Fatalf("GET key: %s", r.body)
	}

	// The generated key signs at once.
	tok, err := a.m.Sign(context.Background(), "my-set", "JWT", []byte(`{}`))
	if err != nil || header(t, tok)["kid"] != kidOf(second) {
		t.Fatalf("Sign after POST: %v", err)
	}
}

func TestAdminErrors(t *testing.T) {
	a := newAPI(t)
	if r := a.call("POST", "/admin/keys/s", map[string]any{"alg": "ES256", "kid": "taken"}); r.status != http.StatusCreated {
		t.Fatal(r.status)
	}
	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		mention      string
	}{
		{"symmetric alg", "POST", "/admin/keys/s", map[string]any{"alg": "HS256"}, 400, "invalid_request", "not supported"},
		{"alg none", "POST", "/admin/keys/s", map[string]any{"alg": "none"}, 400, "invalid_request", "not supported"},
		{"unknown alg", "POST", "/admin/keys/s", map[string]any{"alg": "XX999"}, 400, "invalid_request", "not supported"},
		{"bad use", "POST", "/admin/keys/s", map[string]any{"alg": "ES256", "use": "both"}, 400, "invalid_request", "use"},
		{"enc alg for sig", "POST", "/admin/keys/s", map[string]any{"alg": "RSA-OAEP", "use": "sig"}, 400, "invalid_request", "cannot be used"},
		{"sig alg for enc", "POST", "/admin/keys/s", map[string]any{"alg": "ES256", "use": "enc"}, 400, "invalid_request", "cannot be used"},
		{"enc without alg", "POST", "/admin/keys/s", map[string]any{"use": "enc"}, 400, "invalid_request", "alg"},
		{"alg not a string", "POST", "/admin/keys/s", `{"alg": 256}`, 400, "invalid_request", "alg"},
		{"not JSON", "POST", "/admin/keys/s", `alg=ES256`, 400, "invalid_request", "JSON"},
		{"empty body", "POST", "/admin/keys/s", "", 400, "invalid_request", "empty"},
		{"control char in kid", "POST", "/admin/keys/s", map[string]any{"kid": "a\nb"}, 400, "invalid_request", "control"},
		{"kid too long", "POST", "/admin/keys/s", map[string]any{"kid": strings.Repeat("k", 300)}, 400, "invalid_request", "255"},
		{"slash in set", "POST", "/admin/keys/a%2Fb", map[string]any{}, 400, "invalid_request", "/"},
		{"duplicate kid", "POST", "/admin/keys/s", map[string]any{"kid": "taken"}, 409, "conflict", "taken"},
		{"missing set", "GET", "/admin/keys/nope", nil, 404, "not_found", "nope"},
		{"missing key", "GET", "/admin/keys/s/nope", nil, 404, "not_found", "nope"},
		{"key of missing set", "GET", "/admin/keys/nope/taken", nil, 404, "not_found", ""},
		{"delete missing set", "DELETE", "/admin/keys/nope", nil, 404, "not_found", ""},
		{"delete missing key", "DELETE", "/admin/keys/s/nope", nil, 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.call(tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			e := r.json(t)
			if e["error"] != tt.code {
				t.Fatalf("error %v, want %s: %s", e["error"], tt.code, r.body)
			}
			if desc, _ := e["error_description"].(string); !strings.Contains(desc, tt.mention) {
				t.Fatalf("error_description %q does not mention %q", desc, tt.mention)
			}
		})
	}
}

func TestAdminPutSet(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	privEC := ecJWK(t, "ec-private", "ES256", "P-256", true)
	pubRSA := jwkJSON(t, testRSA(t, 2048), "rsa-public", "RS256", false, map[string]any{"use": "sig"})
	body := map[string]any{"keys": []json.RawMessage{privEC, pubRSA}}

	r := a.call("PUT", "/admin/keys/imported", body)
	if r.status != http.StatusOK {
		t.Fatalf("PUT set: %d %s", r.status, r.body)
	}
	got := keysOf(t, r.body, false)
	if len(got) != 2 || kidOf(got[0]) != "ec-private" || kidOf(got[1]) != "rsa-public" {
		t.Fatalf("PUT set answered %s", r.body)
	}
	for _, k := range got {
		if use, _ := k.KeyUsage(); use != "sig" {
			t.Fatalf("use %q", use)
		}
	}
	ecRow, _ := a.env.store.Get(ctx, "imported", "ec-private")
	rsaRow, _ := a.env.store.Get(ctx, "imported", "rsa-public")
	if len(ecRow.PrivateEncrypted) == 0 || rsaRow.PrivateEncrypted != nil {
		t.Fatalf("private part stored for ec=%d rsa=%d bytes", len(ecRow.PrivateEncrypted), len(rsaRow.PrivateEncrypted))
	}
	ik, _ := jwk.ParseKey(privEC)
	assertNoPrivateMaterial(t, a.env.store.all(), privateParams(t, ik))

	// The imported private key signs; the public key verifies only.
	tok, err := a.m.Sign(ctx, "imported", "", []byte(`{}`))
	if err != nil || header(t, tok)["kid"] != "ec-private" {
		t.Fatalf("Sign with imported key: %v", err)
	}
	verify(t, a.m, tok, "imported")

	// GET shows public keys only.
	r = a.call("GET", "/admin/keys/imported", nil)
	if r.status != http.StatusOK || len(keysOf(t, r.body, false)) != 2 {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}

	// PUT replaces the whole set.
	r = a.call("PUT", "/admin/keys/imported", map[string]any{"keys": []json.RawMessage{edJWK(t, "ed", true)}})
	if r.status != http.StatusOK {
		t.Fatalf("second PUT: %d %s", r.status, r.body)
	}
	if rows, _ := a.env.store.List(ctx, "imported"); len(rows) != 1 || rows[0].KID != "ed" {
		t.Fatalf("PUT did not replace the set: %v", rows)
	}
	if kid, _ := a.m.SigningKeyID(ctx, "imported"); kid != "ed" {
		t.Fatalf("signing key after PUT: %q", kid)
	}
}

func TestAdminPutSetRejects(t *testing.T) {
	a := newAPI(t)
	ecPriv := ecJWK(t, "k", "ES256", "P-256", true)
	var otherD map[string]any
	_ = json.Unmarshal(ecJWK(t, "other", "ES256", "P-256", true), &otherD)
	var mismatched map[string]any
	_ = json.Unmarshal(ecPriv, &mismatched)
	mismatched["d"] = otherD["d"]
	mm, _ := json.Marshal(mismatched)

	// jwx refuses to encode a small RSA key, so this one is written by hand.
	small := testRSA(t, 1024)
	rsaSmall, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "x", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(small.N.Bytes()), "e": "AQAB"})
	keys := func(k ...json.RawMessage) map[string]any { return map[string]any{"keys": k} }
	tests := []struct {
		name    string
		body    any
		mention string
	}{
		{"not JSON", `{"keys": [`, "JSON"},
		{"array", `[]`, "JSON type"},
		{"no keys member", `{}`, "keys"},
		{"keys null", `{"keys": null}`, "keys"},
		{"keys not an array", `{"keys": "x"}`, "keys"},
		{"empty keys", `{"keys": []}`, "at least one"},
		{"key not an object", `{"keys": [42]}`, "keys[0]"},
		{"symmetric", `{"keys": [{"kty":"oct","k":"c2VjcmV0","kid":"s","alg":"HS256"}]}`, "symmetric"},
		{"no kty", `{"keys": [{"kid":"x","alg":"ES256"}]}`, "kty"},
		{"unknown kty", `{"keys": [{"kty":"XYZ","kid":"x","alg":"ES256"}]}`, "not supported"},
		{"no kid", keys(ecJWK(t, "", "ES256", "P-256", false)), "kid"},
		{"no alg", keys(ecJWK(t, "x", "", "P-256", false)), "alg"},
		{"bad alg", keys(ecJWK(t, "x", "HS256", "P-256", false)), "not supported"},
		{"bad use", keys(jwkJSON(t, testRSA(t, 2048), "x", "RS256", false, map[string]any{"use": "both"})), "use"},
		{"alg for another key type", keys(ecJWK(t, "x", "RS256", "P-256", false)), "RSA"},
		{"curve does not match alg", keys(ecJWK(t, "x", "ES256", "P-384", false)), "P-256"},
		{"RSA 1024", keys(rsaSmall), "1024 bits"},
		{"EdDSA on an EC key", keys(ecJWK(t, "x", "EdDSA", "P-256", false)), "Ed25519"},
		{"broken key material", `{"keys": [{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"x","alg":"ES256"}]}`, "not a valid EC key"},
		{"private part of another key", keys(mm), "does not match"},
		{"duplicate kid", keys(ecJWK(t, "dup", "ES256", "P-256", false), ecJWK(t, "dup", "ES256", "P-256", false)), "more than once"},
		{"second key bad", keys(ecJWK(t, "a", "ES256", "P-256", false), json.RawMessage(`{"kty":"EC"}`)), "keys[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.call("PUT", "/admin/keys/s", tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			e := r.json(t)
			desc, _ := e["error_description"].(string)
			if e["error"] != "invalid_request" || !strings.Contains(desc, tt.mention) {
				t.Fatalf("error %s, want a description mentioning %q", r.body, tt.mention)
			}
			if bytes.Contains(r.body, []byte(otherD["d"].(string))) {
				t.Fatal("error echoes a private parameter")
			}
		})
	}
	if sets, _ := a.env.store.Sets(context.Background()); len(sets) != 0 {
		t.Fatalf("rejected PUTs stored sets %v", sets)
	}
}

func TestAdminPutAndDeleteKey(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()

	r := a.call("PUT", "/admin/keys/s/k1", ecJWK(t, "k1", "ES256", "P-256", true))
	if r.status != http.StatusOK {
		t.Fatalf("PUT key: %d %s", r.status, r.body)
	}
	// Hydra answers PUT of one key with the key itself.
	k, err := jwk.ParseKey(r.body)
	if err != nil || kidOf(k) != "k1" {
		t.Fatalf("PUT key answered %s", r.body)
	}
	if priv, _ := jwk.IsPrivateKey(k); priv {
		t.Fatal("PUT key answered with the private key")
	}

	// kid taken from the URL when the body has none.
	r = a.call("PUT", "/admin/keys/s/k2", ecJWK(t, "", "ES256", "P-256", true))
	if r.status != http.StatusOK {
		t.Fatalf("PUT key without kid: %d %s", r.status, r.body)
	}
	if kid, _ := a.m.SigningKeyID(ctx, "s"); kid != "k2" {
		t.Fatalf("signing key %q, want the newest (k2)", kid)
	}

	// Replacing k1 keeps one k1 and makes it the newest.
	r = a.call("PUT", "/admin/keys/s/k1", ecJWK(t, "k1", "ES384", "P-384", true))
	if r.status != http.StatusOK {
		t.Fatalf("PUT replacing key: %d %s", r.status, r.body)
	}
	rows, _ := a.env.store.List(ctx, "s")
	if len(rows) != 2 || rows[0].KID != "k1" || rows[0].Alg != "ES384" {
		t.Fatalf("rows after replace: %+v", rows)
	}
	if alg, _ := a.m.SigningAlg(ctx, "s"); alg != "ES384" {
		t.Fatalf("signing alg %q", alg)
	}

	// kid mismatch.
	r = a.call("PUT", "/admin/keys/s/k3", ecJWK(t, "other", "ES256", "P-256", true))
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "does not match") {
		t.Fatalf("PUT with another kid: %d %s", r.status, r.body)
	}
	// A JWKS is not a JWK.
	r = a.call("PUT", "/admin/keys/s/k3", `{"keys":[]}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("PUT of a set at a key URL: %d %s", r.status, r.body)
	}

	if r = a.call("DELETE", "/admin/keys/s/k1", nil); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE key: %d %s", r.status, r.body)
	}
	if r = a.call("GET", "/admin/keys/s/k1", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET deleted key: %d", r.status)
	}
	if r = a.call("DELETE", "/admin/keys/s/k1", nil); r.status != http.StatusNotFound {
		t.Fatalf("DELETE deleted key: %d", r.status)
	}
	if kid, _ := a.m.SigningKeyID(ctx, "s"); kid != "k2" {
		t.Fatalf("signing key after delete %q", kid)
	}
	if r = a.call("DELETE", "/admin/keys/s", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE set: %d %s", r.status, r.body)
	}
	if r = a.call("GET", "/admin/keys/s", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET deleted set: %d", r.status)
	}
}

func TestAdminProtectsSigningSets(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	if err := a.m.EnsureSets(ctx, SetIDToken, SetAccessToken); err != nil {
		t.Fatal(err)
	}
	signer, _ := a.m.SigningKeyID(ctx, SetIDToken)

	// Public keys only: the issuer could no longer sign ID tokens.
	r := a.call("PUT", "/admin/keys/"+SetIDToken, map[string]any{"keys": []json.RawMessage{ecJWK(t, "p", "ES256", "P-256", false)}})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "private key") {
		t.Fatalf("PUT public-only signing set: %d %s", r.status, r.body)
	}
	// Adding a public key is fine, deleting the last private one is not.
	if r = a.call("PUT", "/admin/keys/"+SetIDToken+"/p", ecJWK(t, "p", "ES256", "P-256", false)); r.status != http.StatusOK {
		t.Fatalf("PUT public key: %d %s", r.status, r.body)
	}
	if kid, _ := a.m.SigningKeyID(ctx, SetIDToken); kid != signer {
		t.Fatal("a public key became the signing key")
	}
	if r = a.call("DELETE", "/admin/keys/"+SetIDToken+"/"+signer, nil); r.status != http.StatusConflict {
		t.Fatalf("DELETE last private key: %d %s", r.status, r.body)
	}
	// Deleting the set is allowed: it is re-created on next use (Hydra).
	if r = a.call("DELETE", "/admin/keys/"+SetIDToken, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE signing set: %d %s", r.status, r.body)
	}
	r = a.do(a.pub, "GET", "/.well-known/jwks.json", nil)
	if ks := keysOf(t, r.body, false); r.status != http.StatusOK || len(ks) != 2 {
		t.Fatalf("JWKS after the ID token set was deleted: %d %s", r.status, r.body)
	}
}

func TestJWKSDocument(t *testing.T) {
	tests := []struct {
		name         string
		maxAge       time.Duration
		cacheControl string
	}{
		{"default", 0, "public, max-age=300"},
		{"configured", time.Minute, "public, max-age=60"},
		{"disabled", -1, "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, func(o *Options) { o.JWKSMaxAge = tt.maxAge })
			ctx := context.Background()
			if err := a.m.EnsureSets(ctx, SetIDToken, SetAccessToken); err != nil {
				t.Fatal(err)
			}
			if _, err := a.m.Generate(ctx, "not-published", GenerateParams{}); err != nil {
				t.Fatal(err)
			}
			r := a.do(a.pub, "GET", "/.well-known/jwks.json", nil)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if cc := r.header.Get("Cache-Control"); cc != tt.cacheControl {
				t.Fatalf("Cache-Control %q, want %q", cc, tt.cacheControl)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			ks := keysOf(t, r.body, false)
			idKID, _ := a.m.SigningKeyID(ctx, SetIDToken)
			atKID, _ := a.m.SigningKeyID(ctx, SetAccessToken)
			kids := map[string]bool{}
			for _, k := range ks {
				kids[kidOf(k)] = true
				if alg, ok := k.Algorithm(); !ok || alg.String() != "ES256" {
					t.Fatalf("key %s without alg", kidOf(k))
				}
			}
			if len(ks) != 2 || !kids[idKID] || !kids[atKID] {
				t.Fatalf("JWKS %s, want the keys %s and %s", r.body, idKID, atKID)
			}
			// Tokens of both sets verify against the document.
			for _, set := range []string{SetIDToken, SetAccessToken} {
				tok, _ := a.m.Sign(ctx, set, "", []byte(`{}`))
				pub, _ := jwk.Parse(r.body)
				if _, err := verifyWith(tok, pub); err != nil {
					t.Fatalf("%s token does not verify with the JWKS: %v", set, err)
				}
			}
			// The admin API never mounts on the public mux.
			if r := a.do(a.pub, "GET", "/admin/keys/"+SetIDToken, nil); r.status != http.StatusNotFound {
				t.Fatalf("admin route on the public mux: %d", r.status)
			}
		})
	}
}

func verifyWith(tok string, set jwk.Set) ([]byte, error) {
	return jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true)))
}

// The encoded JWKS is reused while the sets are unchanged, answers
// If-None-Match with 304, and changes (with its ETag) as soon as a key is
// added through the Manager.
func TestJWKSDocumentCachedUntilChange(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	if err := a.m.EnsureSets(ctx, SetIDToken, SetAccessToken); err != nil {
		t.Fatal(err)
	}
	get := func(etag string) response {
		req := httptest.NewRequest("GET", "/.well-known/jwks.json", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		a.pub.ServeHTTP(rec, req)
		return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	r1, r2 := get(""), get("")
	etag := r1.header.Get("ETag")
	if r1.status != http.StatusOK || etag == "" || r2.header.Get("ETag") != etag || !bytes.Equal(r1.body, r2.body) {
		t.Fatalf("unstable document: %d %q %q", r1.status, etag, r2.header.Get("ETag"))
	}
	if r := get(etag); r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Fatalf("If-None-Match: %d %s", r.status, r.body)
	}
	if r := get(`"other"`); r.status != http.StatusOK {
		t.Fatalf("If-None-Match other: %d", r.status)
	}
	k, err := a.m.Generate(ctx, SetAccessToken, GenerateParams{})
	if err != nil {
		t.Fatal(err)
	}
	r3 := get(etag)
	if r3.status != http.StatusOK || r3.header.Get("ETag") == etag {
		t.Fatalf("after a new key: %d, ETag %q", r3.status, r3.header.Get("ETag"))
	}
	found := false
	for _, pk := range keysOf(t, r3.body, false) {
		found = found || kidOf(pk) == kidOf(k)
	}
	if !found {
		t.Fatalf("new key %s missing from %s", kidOf(k), r3.body)
	}
}
