package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

const webCB = "https://web.example.com/cb"

// withWebClients adds an authorization-code client "web" (confidential,
// refresh tokens) and "spa" (public).
func withWebClients(t *testing.T, e *env) {
	t.Helper()
	for _, c := range []*client.Client{
		{ID: "web", Secret: "web-secret", GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantImplicit},
			ResponseTypes: []string{"code", "code id_token token"}, Scope: "openid offline_access profile", RedirectURIs: []string{webCB}},
		{ID: "spa", TokenEndpointAuthMethod: client.AuthNone, GrantTypes: []string{client.GrantAuthorizationCode},
			Scope: "openid", RedirectURIs: []string{webCB}},
	} {
		if _, err := e.clients.Create(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) authorize(clientID string, rt []string, mod func(*Authorization)) url.Values {
	e.t.Helper()
	c, err := e.clients.Get(context.Background(), clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clk.Now()
	a := &Authorization{Client: c, ResponseTypes: rt, RedirectURI: webCB, RedirectURISent: true, Nonce: "n-1",
		RequestID: "req-" + clientID + now.String(),
		Grant: GrantSession{Subject: "alice", SessionID: "sid-1", AuthTime: now.Add(-time.Minute), RequestedAt: now,
			ACR: "1", AMR: []string{"pwd"}, GrantedScope: []string{"openid", "offline_access", "profile"}, GrantedAudience: []string{},
			IDTokenClaims: map[string]any{"email": "a@example.com", "sub": "evil"}, AccessTokenClaims: map[string]any{"tenant": "t1"}}}
	if mod != nil {
		mod(a)
	}
	out, err := e.h.Authorize(context.Background(), a)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (e *env) idClaims(tok string) map[string]any {
	e.t.Helper()
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(e.signer.publicSet(e.t), jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		e.t.Fatalf("ID token: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	return m
}

func TestAuthorizationCodeGrant(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	verifier := strings.Repeat("v", 43)
	exchange := func(code string, basic string, extra url.Values) *response {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}
		for k, v := range extra {
			f[k] = v
		}
		return e.token(f, basic)
	}

	// The happy path: access, refresh and ID token with the right claims.
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	if !strings.HasPrefix(code, "ory_ac_") {
		t.Fatalf("code %q", code)
	}
	r := exchange(code, "web:web-secret", nil)
	if r.status != 200 || !strings.HasPrefix(r.str("access_token"), "ory_at_") || !strings.HasPrefix(r.str("refresh_token"), "ory_rt_") {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	c := e.idClaims(r.str("id_token"))
	if c["sub"] != "alice" || c["nonce"] != "n-1" || c["email"] != "a@example.com" || c["sid"] != "sid-1" || c["azp"] != "web" ||
		c["at_hash"] != halfHash("RS256", r.str("access_token")) || c["iss"] != e.opts.IssuerURL ||
		int64(c["auth_time"].(float64)) != e.clk.Now().Add(-time.Minute).Unix() {
		t.Fatalf("ID token claims: %v", c)
	}
	in := e.introspect(r.str("access_token"), "").json
	if in["sub"] != "alice" || in["ext"].(map[string]any)["tenant"] != "t1" {
		t.Fatalf("introspection: %v", in)
	}

	for _, tc := range []struct {
		name  string
		mod   func(*Authorization)
		basic string
		extra url.Values
		wait  time.Duration
		want  string
	}{
		{"wrong client", nil, "svc:svc-secret", nil, 0, "unauthorized_client"},
		{"wrong redirect_uri", nil, "web:web-secret", url.Values{"redirect_uri": {"https://web.example.com/other"}}, 0, "invalid_grant"},
		{"missing redirect_uri", nil, "web:web-secret", url.Values{"redirect_uri": nil}, 0, "invalid_grant"},
		{"expired", nil, "web:web-secret", nil, 11 * time.Minute, "invalid_grant"},
		{"PKCE verifier missing", func(a *Authorization) { a.CodeChallenge, a.CodeChallengeMethod = s256(verifier), "S256" }, "web:web-secret", nil, 0, "invalid_grant"},
		{"PKCE verifier wrong", func(a *Authorization) { a.CodeChallenge, a.CodeChallengeMethod = s256(verifier), "S256" }, "web:web-secret",
			url.Values{"code_verifier": {strings.Repeat("w", 43)}}, 0, "invalid_grant"},
		{"PKCE verifier too short", func(a *Authorization) { a.CodeChallenge, a.CodeChallengeMethod = "short", "plain" }, "web:web-secret",
			url.Values{"code_verifier": {"short"}}, 0, "invalid_grant"},
		{"verifier without challenge", nil, "web:web-secret", url.Values{"code_verifier": {verifier}}, 0, "invalid_grant"},
		{"PKCE S256 ok", func(a *Authorization) { a.CodeChallenge, a.CodeChallengeMethod = s256(verifier), "S256" }, "web:web-secret",
			url.Values{"code_verifier": {verifier}}, 0, ""},
		{"PKCE plain ok", func(a *Authorization) { a.CodeChallenge, a.CodeChallengeMethod = verifier, "plain" }, "web:web-secret",
			url.Values{"code_verifier": {verifier}}, 0, ""},
		{"redirect_uri omitted in both", func(a *Authorization) { a.RedirectURISent = false }, "web:web-secret", url.Values{"redirect_uri": nil}, 0, ""},
		{"forged code", nil, "web:web-secret", url.Values{"code": {"ory_ac_" + strings.Repeat("A", 43) + "." + strings.Repeat("B", 43)}}, 0, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := e.authorize("web", []string{"code"}, tc.mod).Get("code")
			e.clk.Advance(tc.wait)
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}
			for k, v := range tc.extra {
				if v == nil {
					delete(f, k)
				} else {
					f[k] = v
				}
			}
			r := e.token(f, tc.basic)
			if tc.want == "" {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			if r.str("error") != tc.want {
				t.Fatalf("want %s, got %d %s", tc.want, r.status, r.body)
			}
		})
	}

	// A replayed code fails and revokes what the first use issued.
	code = e.authorize("web", []string{"code"}, nil).Get("code")
	first := exchange(code, "web:web-secret", nil)
	if first.status != 200 {
		t.Fatal(string(first.body))
	}
	wantError(t, exchange(code, "web:web-secret", nil), http.StatusBadRequest, "invalid_grant")
	if e.active(first.str("access_token")) {
		t.Fatal("access token survived a code replay")
	}
	wantError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}}, "web:web-secret"),
		http.StatusBadRequest, "invalid_grant")
}

func TestHybridAuthorizeResponse(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	out := e.authorize("web", []string{"code", "id_token", "token"}, nil)
	c := e.idClaims(out.Get("id_token"))
	if c["c_hash"] != halfHash("RS256", out.Get("code")) || c["at_hash"] != halfHash("RS256", out.Get("access_token")) || c["nonce"] != "n-1" {
		t.Fatalf("hybrid ID token: %v", c)
	}
	if out.Get("token_type") != "bearer" || out.Get("expires_in") != "3600" || out.Get("scope") != "openid offline_access profile" {
		t.Fatalf("hybrid response: %v", out)
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	for _, grace := range []time.Duration{0, 30 * time.Second} {
		e := newEnv(t, func(o *Options) { o.RefreshTokenRotationGracePeriod = grace })
		withWebClients(t, e)
		code := e.authorize("web", []string{"code"}, nil).Get("code")
		r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
		rt := r.str("refresh_token")
		refresh := func(token, scope string) *response {
			f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
			if scope != "" {
				f.Set("scope", scope)
			}
			return e.token(f, "web:web-secret")
		}
		wantError(t, refresh(rt, "openid admin"), http.StatusBadRequest, "invalid_scope")
		wantError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "svc:svc-secret"), http.StatusBadRequest, "unauthorized_client")
		// Narrowing is allowed; the next refresh may widen back to the grant.
		r2 := refresh(rt, "openid")
		if r2.status != 200 || r2.str("scope") != "openid" || r2.str("id_token") == "" {
			t.Fatalf("narrowed refresh: %d %s", r2.status, r2.body)
		}
		c := e.idClaims(r2.str("id_token"))
		if _, ok := c["nonce"]; ok || c["sub"] != "alice" || c["auth_time"] == nil {
			t.Fatalf("refreshed ID token: %v", c)
		}
		r3 := refresh(r2.str("refresh_token"), "")
		if r3.status != 200 || r3.str("scope") != "openid offline_access profile" {
			t.Fatalf("widened refresh: %d %s", r3.status, r3.body)
		}
		if grace > 0 {
			// Within the grace period the used token works again.
			e.clk.Advance(10 * time.Second)
			if again := refresh(rt, ""); again.status != 200 {
				t.Fatalf("reuse within the grace period: %d %s", again.status, again.body)
			}
			e.clk.Advance(grace)
		}
		wantError(t, refresh(rt, ""), http.StatusBadRequest, "invalid_grant")
		if e.active(r3.str("access_token")) {
			t.Fatalf("grace %s: the chain survived a reuse", grace)
		}
		wantError(t, refresh(r3.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
	}
}

// Refresh tokens introspect as Hydra's do: active with token_use
// refresh_token and no access token type, until used or revoked; the
// scope parameter applies to them too.
func TestIntrospectRefreshToken(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	rt := r.str("refresh_token")
	in := e.introspect(rt, "")
	if in.json["active"] != true || in.json["token_use"] != "refresh_token" || in.json["client_id"] != "web" ||
		in.json["sub"] != "alice" || in.json["scope"] != "openid offline_access profile" || in.json["exp"] == nil {
		t.Fatalf("refresh token introspection: %s", in.body)
	}
	if _, ok := in.json["token_type"]; ok {
		t.Fatalf("token_type on a refresh token: %s", in.body)
	}
	if at := e.introspect(r.str("access_token"), ""); at.json["token_use"] != "access_token" || at.json["token_type"] != "Bearer" {
		t.Fatalf("access token introspection: %s", at.body)
	}
	if e.introspect(rt, "admin").json["active"] != false {
		t.Fatal("a missing required scope left the refresh token active")
	}
	r2 := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "web:web-secret")
	if r2.status != 200 {
		t.Fatalf("refresh: %d %s", r2.status, r2.body)
	}
	if e.introspect(rt, "").json["active"] != false {
		t.Fatal("a used refresh token is still active")
	}
	if e.introspect(r2.str("refresh_token"), "").json["active"] != true {
		t.Fatal("the rotated refresh token is not active")
	}
}

func TestRevokeRefreshTokenRevokesChain(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	if rv := e.post(e.pub.URL+"/oauth2/revoke", url.Values{"token": {r.str("refresh_token")}}, "web:web-secret"); rv.status != 200 {
		t.Fatalf("revoke: %d", rv.status)
	}
	if e.active(r.str("access_token")) {
		t.Fatal("access token survived the revocation of its refresh token")
	}
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	at := r.str("access_token")
	get := func(method, auth, body string) *response {
		req, _ := http.NewRequest(method, e.pub.URL+"/userinfo", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return e.do(req)
	}
	ok := get(http.MethodGet, "Bearer "+at, "")
	if ok.status != 200 || ok.json["sub"] != "alice" || ok.json["email"] != "a@example.com" {
		t.Fatalf("userinfo: %d %s", ok.status, ok.body)
	}
	if p := get(http.MethodPost, "", "access_token="+url.QueryEscape(at)); p.status != 200 || p.json["sub"] != "alice" {
		t.Fatalf("userinfo POST body: %d %s", p.status, p.body)
	}
	for _, tc := range []struct{ auth, body string }{{"Bearer bogus", ""}, {"Bearer ory_at_x.y", ""}, {"Basic abc", ""}} {
		r := get(http.MethodGet, tc.auth, tc.body)
		if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("%q: %d %v", tc.auth, r.status, r.header)
		}
	}
	// RFC 9449 §7.2 (Figure 17): both schemes' challenges, no error.
	if r := get(http.MethodGet, "", ""); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer, DPoP algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"` {
		t.Fatalf("no token: %d %v", r.status, r.header)
	}
	// A client_credentials token has no openid grant.
	cc := e.ccToken("svc:svc-secret", nil)
	if r := get(http.MethodGet, "Bearer "+cc, ""); r.status != 403 {
		t.Fatalf("client_credentials token at userinfo: %d %s", r.status, r.body)
	}
	// Signed userinfo for a client that asks for it.
	if _, err := e.clients.Patch(context.Background(), "web", []byte(`[{"op":"add","path":"/userinfo_signed_response_alg","value":"RS256"}]`)); err != nil {
		t.Fatal(err)
	}
	signed := get(http.MethodGet, "Bearer "+at, "")
	if signed.status != 200 || signed.header.Get("Content-Type") != "application/jwt" {
		t.Fatalf("signed userinfo: %d %v", signed.status, signed.header)
	}
	c := e.idClaims(string(signed.body))
	if c["sub"] != "alice" || c["iss"] != e.opts.IssuerURL {
		t.Fatalf("signed userinfo claims: %v", c)
	}
}

func TestHalfHashAndPKCE(t *testing.T) {
	// OpenID Connect Core §A.3 / RFC 7636 Appendix B vectors.
	if got := halfHash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("at_hash: %s", got)
	}
	if err := verifyPKCE("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ challenge, method, verifier, want string }{
		{"", "", "", ""},
		{"", "", strings.Repeat("a", 43), "invalid_grant"},
		{strings.Repeat("a", 43), "plain", strings.Repeat("a", 43), ""},
		{strings.Repeat("a", 43), "plain", strings.Repeat("a", 44), "invalid_grant"},
		{strings.Repeat("a", 43), "S256", strings.Repeat("a", 43), "invalid_grant"},
		{strings.Repeat("a", 43), "S256", strings.Repeat("a", 129), "invalid_grant"},
		{strings.Repeat("a", 43), "S256", strings.Repeat("a", 42) + "!", "invalid_grant"},
		{strings.Repeat("a", 43), "S512", strings.Repeat("a", 43), "invalid_grant"},
	} {
		err := verifyPKCE(tc.challenge, tc.method, tc.verifier)
		got := ""
		if err != nil {
			got = apierr.From(err).Code
		}
		if got != tc.want {
			t.Errorf("verifyPKCE(%q, %q, %q) = %q, want %q", tc.challenge, tc.method, tc.verifier, got, tc.want)
		}
	}
}

// TestAuthorizationCodeJWTAccessToken: a client on the jwt strategy gets an
// RFC 9068 access token for the user, with the consent's claims under ext.
func TestAuthorizationCodeJWTAccessToken(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	if _, err := e.clients.Patch(context.Background(), "web", []byte(`[{"op":"add","path":"/access_token_strategy","value":"jwt"}]`)); err != nil {
		t.Fatal(err)
	}
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	if len(e.presigns().m) != 1 {
		t.Fatal("the JWT access token and ID token were not minted ahead") // presign.go
	}
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(e.presigns().m) != 0 {
		t.Fatal("the presigned exchange was not used")
	}
	at := e.idClaims(r.str("access_token"))
	if at["sub"] != "alice" || at["client_id"] != "web" || at["ext"].(map[string]any)["tenant"] != "t1" || at["scope"] != "openid offline_access profile" {
		t.Fatalf("JWT access token claims: %v", at)
	}
	id := e.idClaims(r.str("id_token"))
	if id["at_hash"] != halfHash("RS256", r.str("access_token")) {
		t.Fatalf("at_hash of a JWT access token: %v", id)
	}
	if !e.active(r.str("access_token")) {
		t.Fatal("JWT access token inactive")
	}
}

// TestPresignedCodeExchange: the code exchange's tokens are minted when
// the code is issued and used by its exchange only while they are what the
// exchange would mint; otherwise the exchange signs as before.
func TestPresignedCodeExchange(t *testing.T) {
	e := newEnv(t)
	withWebClients(t, e)
	pending := func() int {
		pc := e.presigns()
		pc.mu.Lock()
		defer pc.mu.Unlock()
		return len(pc.m)
	}
	exchange := func(code string) (*response, map[string]any) {
		t.Helper()
		r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
		if r.status != 200 {
			t.Fatalf("exchange: %d %s", r.status, r.body)
		}
		return r, e.idClaims(r.str("id_token"))
	}
	iat := func(c map[string]any) int64 { return int64(c["iat"].(float64)) }

	// Fresh: the presigned tokens are used (and taken), and are right.
	issued := e.clk.Now().Unix()
	code := e.authorize("web", []string{"code"}, nil).Get("code")
	if pending() != 1 {
		t.Fatalf("pending presigned results: %d, want 1", pending())
	}
	e.waitPresigned() // minted at the code's time, before the clock moves
	e.clk.Advance(2 * time.Second)
	r, c := exchange(code)
	if pending() != 0 || iat(c) != issued || c["at_hash"] != halfHash("RS256", r.str("access_token")) || c["nonce"] != "n-1" {
		t.Fatalf("presigned exchange: pending %d, claims %v", pending(), c)
	}
	if in := e.introspect(r.str("access_token"), "").json; in["active"] != true || in["sub"] != "alice" {
		t.Fatalf("presigned access token not recorded: %v", in)
	}
	// The code is still single-use.
	wantError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret"),
		http.StatusBadRequest, "invalid_grant")
	if e.active(r.str("access_token")) {
		t.Fatal("presigned access token survived a code replay")
	}

	// Too old: signed at the exchange.
	code = e.authorize("web", []string{"code"}, nil).Get("code")
	e.clk.Advance(presignMaxAge + time.Second)
	if _, c = exchange(code); iat(c) != e.clk.Now().Unix() {
		t.Fatalf("stale presigned ID token used: iat %d, now %d", iat(c), e.clk.Now().Unix())
	}

	// The client's ID token lifespan changed in between: signed at the
	// exchange with the new one.
	code = e.authorize("web", []string{"code"}, nil).Get("code")
	if _, err := e.clients.Patch(context.Background(), "web",
		[]byte(`[{"op":"add","path":"/authorization_code_grant_id_token_lifespan","value":"5m"}]`)); err != nil {
		t.Fatal(err)
	}
	if _, c = exchange(code); int64(c["exp"].(float64))-iat(c) != 300 {
		t.Fatalf("presigned ID token of the old client settings used: %v", c)
	}

	// A failed exchange issues nothing; the code can still be redeemed
	// (then signed at the exchange).
	code = e.authorize("web", []string{"code"}, nil).Get("code")
	wantError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://web.example.com/other"}}, "web:web-secret"),
		http.StatusBadRequest, "invalid_grant")
	if pending() != 0 {
		t.Fatalf("pending after a failed exchange: %d", pending())
	}
	exchange(code)

	// The grant is revoked after the code was minted: the exchange, which
	// starts from the process's copy of the code, still refuses it.
	code = e.authorize("web", []string{"code"}, func(a *Authorization) { a.RequestID = "req-revoked" }).Get("code")
	if err := e.h.RevokeRequest(context.Background(), "web", "req-revoked"); err != nil {
		t.Fatal(err)
	}
	r = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webCB}}, "web:web-secret")
	if r.str("error") != "invalid_grant" || !strings.Contains(r.str("error_description"), "revoked") {
		t.Fatalf("revoked code: %d %s", r.status, r.body)
	}
}

func TestPresignCacheBound(t *testing.T) {
	var pc presignCache
	now := time.Unix(1_700_000_000, 0)
	for i := range presignMaxPending {
		if pc.reserve(strings.Repeat("s", 1)+time.Duration(i).String(), now, presignShape{}) == nil {
			t.Fatalf("reserve %d refused below the bound", i)
		}
	}
	if pc.reserve("one-more", now, presignShape{}) != nil {
		t.Fatal("reserve beyond the bound")
	}
	// Once the pending ones are stale they make room.
	if pc.reserve("later", now.Add(presignMaxAge+time.Second), presignShape{}) == nil || len(pc.m) != 1 {
		t.Fatalf("stale results not dropped: %d pending", len(pc.m))
	}
	if pc.take("later") == nil || pc.take("later") != nil {
		t.Fatal("take must return a result once")
	}
}
