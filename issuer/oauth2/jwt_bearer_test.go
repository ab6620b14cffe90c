package oauth2

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

const (
	idpIssuer = "https://idp.example.com"
	anyIssuer = "https://any.example.com"
)

// idpKey is a key of an external issuer.
type idpKey struct {
	priv jwk.Key
	pub  json.RawMessage
	alg  jwa.SignatureAlgorithm
}

func newECKey(t *testing.T, kid string) *idpKey {
	t.Helper()
	p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return importKey(t, p, kid, jwa.ES256())
}

func importKey(t *testing.T, raw any, kid string, alg jwa.SignatureAlgorithm) *idpKey {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return &idpKey{priv: k, pub: mustJSON(t, pub), alg: alg}
}

func (k *idpKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	hdr := jws.NewHeaders()
	kid, _ := k.priv.KeyID()
	_ = hdr.Set(jws.KeyIDKey, kid)
	out, err := jws.Sign(mustJSON(t, claims), jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// trustIssuer registers a trust relationship through the admin API.
func (e *env) trustIssuer(issuer, subject string, anySubject bool, scope []string, key *idpKey, expires time.Time) *response {
	e.t.Helper()
	body := map[string]any{"issuer": issuer, "scope": scope, "jwk": key.pub, "expires_at": expires.Format(time.RFC3339)}
	if subject != "" {
		body["subject"] = subject
	}
	if anySubject {
		body["allow_any_subject"] = true
	}
	return e.adminJSON(http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", body)
}

func (e *env) claims(extra map[string]any) map[string]any {
	now := e.clk.Now()
	c := map[string]any{
		"iss": idpIssuer, "sub": "alice", "aud": e.tokenURL(),
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (e *env) bearer(assertion, scope string) *response {
	e.t.Helper()
	f := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.token(f, "svc:svc-secret")
}

func TestJWTBearerGrant(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.JWTBearer.MaxLifetime = time.Hour })
	key := newECKey(t, "idp-1")
	anyKey := newECKey(t, "any-1")
	exp := e.clk.Now().Add(24 * time.Hour)
	if r := e.trustIssuer(idpIssuer, "alice", false, []string{"read", "orders.*"}, key, exp); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := e.trustIssuer(anyIssuer, "", true, []string{"read"}, anyKey, exp); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}

	// Success: the subject is the assertion's sub, the client the caller.
	a := key.sign(t, e.claims(nil))
	r := e.bearer(a, "read orders.list")
	if r.status != http.StatusOK || r.str("scope") != "read orders.list" || r.str("token_type") != "bearer" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	in := e.introspect(r.str("access_token"), "")
	if in.str("sub") != "alice" || in.str("client_id") != "svc" || in.str("scope") != "read orders.list" {
		t.Fatalf("introspection %s", in.body)
	}
	// RFC 7523 §3 item 7: the same assertion again is a replay.
	wantError(t, e.bearer(a, "read"), http.StatusBadRequest, "invalid_grant")

	// Any subject of a trusted issuer; aud may be the issuer identifier.
	r = e.bearer(anyKey.sign(t, e.claims(map[string]any{"iss": anyIssuer, "sub": "bob", "aud": []string{"x", e.pub.URL}})), "read")
	if r.status != http.StatusOK {
		t.Fatalf("any subject: %d %s", r.status, r.body)
	}
	if in := e.introspect(r.str("access_token"), ""); in.str("sub") != "bob" {
		t.Fatalf("%s", in.body)
	}

	// A public client authenticates by client_id alone.
	f := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {"public"},
		"assertion": {key.sign(t, e.claims(nil))}, "scope": {"read"}}
	if r := e.token(f, ""); r.status != http.StatusOK {
		t.Fatalf("public client: %d %s", r.status, r.body)
	}

	hs, _ := jwk.Import([]byte("a-shared-secret-of-32-bytes-long"))
	hsSigned, _ := jws.Sign(mustJSON(t, e.claims(nil)), jws.WithKey(jwa.HS256(), hs))
	now := e.clk.Now()
	unsignedHeader := b64.EncodeToString([]byte(`{"alg":"none"}`))
	none := unsignedHeader + "." + b64.EncodeToString(mustJSON(t, e.claims(nil))) + "."
	stranger := newECKey(t, "idp-1") // same kid, different key
	otherKid := newECKey(t, "idp-2")
	for _, tc := range []struct {
		name      string
		assertion string
		scope     string
		code      string
	}{
		{"missing assertion", "", "", "invalid_request"},
		{"not a JWT", "not-a-jwt", "", "invalid_grant"},
		{"alg none", none, "", "invalid_grant"},
		{"HMAC", string(hsSigned), "", "invalid_grant"},
		{"wrong key, same kid", stranger.sign(t, e.claims(nil)), "", "invalid_grant"},
		{"unknown kid", otherKid.sign(t, e.claims(nil)), "", "invalid_grant"},
		{"untrusted issuer", key.sign(t, e.claims(map[string]any{"iss": "https://evil.example.com"})), "", "invalid_grant"},
		{"untrusted subject", key.sign(t, e.claims(map[string]any{"sub": "mallory"})), "", "invalid_grant"},
		{"missing iss", key.sign(t, e.claims(map[string]any{"iss": nil})), "", "invalid_grant"},
		{"missing sub", key.sign(t, e.claims(map[string]any{"sub": nil})), "", "invalid_grant"},
		{"wrong aud", key.sign(t, e.claims(map[string]any{"aud": "https://other-as.example.com/token"})), "", "invalid_grant"},
		{"missing aud", key.sign(t, e.claims(map[string]any{"aud": nil})), "", "invalid_grant"},
		{"missing exp", key.sign(t, e.claims(map[string]any{"exp": nil})), "", "invalid_grant"},
		{"expired", key.sign(t, e.claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "", "invalid_grant"},
		{"exp beyond max_ttl", key.sign(t, e.claims(map[string]any{"exp": now.Add(2 * time.Hour).Unix()})), "", "invalid_grant"},
		{"exp not a number", key.sign(t, e.claims(map[string]any{"exp": "soon"})), "", "invalid_grant"},
		{"nbf in the future", key.sign(t, e.claims(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), "", "invalid_grant"},
		{"missing iat", key.sign(t, e.claims(map[string]any{"iat": nil})), "", "invalid_grant"},
		{"iat in the future", key.sign(t, e.claims(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})), "", "invalid_grant"},
		{"missing jti", key.sign(t, e.claims(map[string]any{"jti": nil})), "", "invalid_grant"},
		{"jti too long", key.sign(t, e.claims(map[string]any{"jti": strings.Repeat("j", 600)})), "", "invalid_grant"},
		{"scope the client may not have", key.sign(t, e.claims(nil)), "admin", "invalid_scope"},
		{"scope the issuer may not grant", key.sign(t, e.claims(nil)), "write", "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.bearer(tc.assertion, tc.scope)
			t.Log(r.str("error_description"))
			wantError(t, r, http.StatusBadRequest, tc.code)
		})
	}

	// A refused request does not burn the jti: corrected, it succeeds.
	claims := e.claims(nil)
	wantError(t, e.bearer(key.sign(t, claims), "write"), http.StatusBadRequest, "invalid_scope")
	if r := e.bearer(key.sign(t, claims), "read"); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}

	// The client must be allowed the grant; the trust expires.
	f = url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {key.sign(t, e.claims(nil))}}
	wantError(t, e.token(f, "nocc:nocc-secret"), http.StatusBadRequest, "unauthorized_client")
	e.clk.Advance(25 * time.Hour)
	wantError(t, e.bearer(key.sign(t, e.claims(nil)), ""), http.StatusBadRequest, "invalid_grant")
}

// oauth2.grant.jwt.jti_optional and iat_optional.
func TestJWTBearerOptionalClaims(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.JWTBearer.JTIOptional = true
		o.JWTBearer.IATOptional = true
	})
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	key := importKey(t, edPriv, "ed-1", jwa.EdDSA())
	if r := e.trustIssuer(idpIssuer, "alice", false, []string{"read"}, key, e.clk.Now().Add(time.Hour)); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	a := key.sign(t, e.claims(map[string]any{"jti": nil, "iat": nil}))
	for range 2 { // without a jti there is no replay protection
		if r := e.bearer(a, "read"); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	// A jti that is sent is still checked.
	b := key.sign(t, e.claims(nil))
	if r := e.bearer(b, ""); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantError(t, e.bearer(b, ""), http.StatusBadRequest, "invalid_grant")
}

// Hydra's trust API: create, get, list (filter, pages), delete.
func TestTrustAPI(t *testing.T) {
	e := newEnv(t)
	key := newECKey(t, "k1")
	exp := e.clk.Now().Add(time.Hour)
	r := e.trustIssuer(idpIssuer, "alice", false, []string{"read", "write", "read"}, key, exp)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	id := r.str("id")
	want := map[string]any{
		"allow_any_subject": false, "created_at": e.clk.Now().Format(time.RFC3339), "expires_at": exp.Format(time.RFC3339),
		"id": id, "issuer": idpIssuer, "public_key": map[string]any{"kid": "k1", "set": idpIssuer},
		"scope": []any{"read", "write"}, "subject": "alice",
	}
	if id == "" || !jsonEqual(r.json, want) {
		t.Fatalf("created\n got %s\nwant %s", r.body, mustJSON(t, want))
	}
	if r := e.adminJSON(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers/"+id, nil); r.status != 200 || !jsonEqual(r.json, want) {
		t.Fatalf("get %d %s", r.status, r.body)
	}
	wantError(t, e.trustIssuer(idpIssuer, "alice", false, []string{"read"}, key, exp), http.StatusConflict, "conflict")
	if r := e.trustIssuer(idpIssuer, "", true, []string{}, key, exp); r.status != http.StatusCreated {
		t.Fatalf("any subject, no scope: %d %s", r.status, r.body)
	}
	if r := e.trustIssuer(anyIssuer, "bob", false, []string{"read"}, newECKey(t, "k9"), exp); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}

	list := func(q string) ([]map[string]any, *response) {
		r := e.adminJSON(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers"+q, nil)
		var out []map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("list%s: %d %s", q, r.status, r.body)
		}
		return out, r
	}
	if all, _ := list(""); len(all) != 3 {
		t.Fatalf("%d", len(all))
	}
	if some, _ := list("?issuer=" + url.QueryEscape(anyIssuer)); len(some) != 1 || some[0]["subject"] != "bob" {
		t.Fatalf("%v", some)
	}
	// Pages of 2 through the Link header.
	seen := map[string]bool{}
	q := "?page_size=2"
	for pages := 0; q != ""; pages++ {
		items, r := list(q)
		for _, it := range items {
			seen[it["id"].(string)] = true
		}
		q = ""
		for l := range strings.SplitSeq(r.header.Get("Link"), ",") {
			if strings.Contains(l, `rel="next"`) {
				u, _ := url.Parse(strings.Trim(strings.Split(l, ";")[0], "<> "))
				q = "?" + u.RawQuery
			}
		}
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 3 {
		t.Fatalf("pages saw %d", len(seen))
	}
	wantError(t, e.adminJSON(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers?page_size=0", nil), 400, "invalid_request")
	wantError(t, e.adminJSON(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers?page_token=%25", nil), 400, "invalid_request")

	if r := e.adminJSON(http.MethodDelete, "/admin/trust/grants/jwt-bearer/issuers/"+id, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete %d %s", r.status, r.body)
	}
	wantError(t, e.adminJSON(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers/"+id, nil), 404, "not_found")
	wantError(t, e.adminJSON(http.MethodDelete, "/admin/trust/grants/jwt-bearer/issuers/"+id, nil), 404, "not_found")
	wantError(t, e.adminJSON(http.MethodPut, "/admin/trust/grants/jwt-bearer/issuers/"+id, "{}"), 405, "method_not_allowed")
	wantError(t, e.adminJSON(http.MethodDelete, "/admin/trust/grants/jwt-bearer/issuers", nil), 405, "method_not_allowed")
}

func TestTrustAPIValidation(t *testing.T) {
	e := newEnv(t)
	key := newECKey(t, "k1")
	noKid := newECKey(t, "")
	var priv map[string]any
	_ = json.Unmarshal(mustJSON(t, key.priv), &priv)
	sym, _ := jwk.Import([]byte("a-shared-secret-of-32-bytes-long"))
	_ = sym.Set(jwk.KeyIDKey, "s1")
	exp := e.clk.Now().Add(time.Hour).Format(time.RFC3339)
	base := func(mod map[string]any) map[string]any {
		b := map[string]any{"issuer": idpIssuer, "subject": "alice", "scope": []string{"read"}, "jwk": key.pub, "expires_at": exp}
		for k, v := range mod {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"missing issuer", base(map[string]any{"issuer": nil})},
		{"neither subject nor any", base(map[string]any{"subject": nil})},
		{"both subject and any", base(map[string]any{"allow_any_subject": true})},
		{"missing expires_at", base(map[string]any{"expires_at": nil})},
		{"expires_at in the past", base(map[string]any{"expires_at": e.clk.Now().Add(-time.Minute).Format(time.RFC3339)})},
		{"missing scope", base(map[string]any{"scope": nil})},
		{"bad scope", base(map[string]any{"scope": []string{"a b"}})},
		{"missing jwk", base(map[string]any{"jwk": nil})},
		{"jwk without kid", base(map[string]any{"jwk": noKid.pub})},
		{"private jwk", base(map[string]any{"jwk": priv})},
		{"symmetric jwk", base(map[string]any{"jwk": sym})},
		{"jwk not an object", base(map[string]any{"jwk": "key"})},
		{"not JSON", `{"issuer":`},
		{"wrong type", `{"issuer":5}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.adminJSON(http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", tc.body)
			t.Log(r.str("error_description"))
			wantError(t, r, http.StatusBadRequest, "invalid_request")
			if strings.Contains(string(r.body), `"d"`) {
				t.Fatal("private key material echoed")
			}
		})
	}
	if len(e.store.Dump().Trust) != 0 {
		t.Fatal("an invalid trust was stored")
	}
}
