package oauth2

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// A machine client gets an opaque token with golang.org/x/oauth2, both
// ways of authenticating, and the admin API introspects it.
func TestClientCredentialsOpaqueWithXOAuth2(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		id, secret   string
		style        xoauth2.AuthStyle
		scopes       []string
		params       url.Values
		wantScope    string
		wantAudience []any
	}{
		{"basic", "svc", "svc-secret", xoauth2.AuthStyleInHeader, []string{"read", "orders.list"},
			url.Values{"audience": {apiAud}}, "read orders.list", []any{apiAud}},
		// No audience requested: the default one, the issuer (RFC 9068 §2.2).
		{"post", "post", "post-secret", xoauth2.AuthStyleInParams, []string{"read"}, nil, "read", []any{e.pub.URL}},
		{"no scope", "svc", "svc-secret", xoauth2.AuthStyleInHeader, nil, nil, "", []any{e.pub.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: tc.id, ClientSecret: tc.secret, TokenURL: e.tokenURL(),
				Scopes: tc.scopes, EndpointParams: tc.params, AuthStyle: tc.style}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.AccessToken, "ory_at_") || tok.TokenType != "bearer" || tok.RefreshToken != "" {
				t.Fatalf("token %+v", tok)
			}
			if got := tok.Extra("scope"); got != tc.wantScope {
				t.Fatalf("scope %v, want %q", got, tc.wantScope)
			}
			if got := tok.Extra("expires_in"); got != float64(3600) {
				t.Fatalf("expires_in %v", got)
			}
			in := e.introspect(tok.AccessToken, "")
			now := e.clk.Now()
			want := map[string]any{
				"active": true, "scope": tc.wantScope, "client_id": tc.id, "sub": tc.id,
				"exp": float64(now.Add(time.Hour).Unix()), "iat": float64(now.Unix()), "nbf": float64(now.Unix()),
				"iss": e.pub.URL, "token_type": "Bearer", "token_use": "access_token",
			}
			if tc.wantScope == "" {
				delete(want, "scope")
			}
			want["aud"] = tc.wantAudience
			// An opaque token's jti: "ot." and 16 bytes of base64url.
			jti, _ := in.json["jti"].(string)
			if !strings.HasPrefix(jti, "ot.") || len(jti) != 3+22 {
				t.Fatalf("introspection jti %q", jti)
			}
			want["jti"] = jti
			if !jsonEqual(in.json, want) {
				t.Fatalf("introspection\n got %s\nwant %s", in.body, mustJSON(t, want))
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// RFC 6749 §5.1: exactly access_token, token_type, expires_in and scope,
// as JSON, never cached.
func TestTokenResponseShape(t *testing.T) {
	e := newEnv(t)
	r := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}, "svc:svc-secret")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var keys []string
	for k := range r.json {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "access_token,expires_in,scope,token_type" {
		t.Fatalf("keys %v", keys)
	}
	if r.str("token_type") != "bearer" || r.str("scope") != "read write" || r.json["expires_in"] != float64(3600) {
		t.Fatalf("%s", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", r.header)
	}
}

// Per-client lifespans override ttl.access_token.
func TestClientCredentialsLifespan(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AccessTokenLifespan = 10 * time.Minute })
	r := e.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret")
	if r.json["expires_in"] != float64(600) {
		t.Fatalf("%s", r.body)
	}
	d := client.Duration(90 * time.Second)
	if _, err := e.clients.SetLifespans(context.Background(), "svc", client.Lifespans{ClientCredentialsGrantAccessTokenLifespan: &d}); err != nil {
		t.Fatal(err)
	}
	r = e.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret")
	if r.json["expires_in"] != float64(90) {
		t.Fatalf("%s", r.body)
	}
	in := e.introspect(r.str("access_token"), "")
	if in.json["exp"] != float64(e.clk.Now().Add(90*time.Second).Unix()) {
		t.Fatalf("%s", in.body)
	}
}

// A database dump holds no usable token: only the key's time prefix and
// the MAC are stored, and neither they nor anything else in the row
// introspects as a token.
func TestOpaqueTokenStoredAsSignatureOnly(t *testing.T) {
	e := newEnv(t)
	tok := e.ccToken("svc:svc-secret", url.Values{"scope": {"read"}})
	key, _, ok := strings.Cut(strings.TrimPrefix(tok, "ory_at_"), ".")
	if !ok {
		t.Fatal(tok)
	}
	rows := e.store.Dump().Tokens
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	dump := string(mustJSON(t, rows))
	if strings.Contains(dump, tok) || strings.Contains(dump, key[8:]) {
		t.Fatalf("the dump contains the token: %s", dump)
	}
	row := rows[0]
	if len(row.Signature) < 8 || row.Signature[:8] != key[:8] || !strings.HasSuffix(tok, "."+row.Signature[8:]) || !row.Active || row.ClientID != "svc" || row.Subject != "svc" || row.RequestID == "" {
		t.Fatalf("row %+v", row)
	}
	for _, guess := range []string{row.Signature, "ory_at_" + row.Signature, "ory_at_" + row.Signature + "." + row.Signature} {
		if e.active(guess) {
			t.Fatalf("%q from the dump is usable", guess)
		}
	}
	var s session
	if err := json.Unmarshal(row.Data, &s); err != nil || s.TokenUse != "access_token" || s.Format != "opaque" || !slices.Equal(s.Scope, []string{"read"}) {
		t.Fatalf("session %s", row.Data)
	}
}

// Rotating the system secret keeps tokens MACed under the old one valid.
func TestOpaqueTokenSurvivesSecretRotation(t *testing.T) {
	e := newEnv(t)
	tok := e.ccToken("svc:svc-secret", nil)
	e.mac.secrets = append([][]byte{[]byte("second-system-secret-abcdefghij")}, e.mac.secrets...)
	if !e.active(tok) {
		t.Fatal("token issued under the previous secret is inactive after rotation")
	}
	tok2 := e.ccToken("svc:svc-secret", nil)
	e.mac.secrets = e.mac.secrets[:1] // the old secret retired
	if e.active(tok) || !e.active(tok2) {
		t.Fatal("retiring a secret must retire its tokens only")
	}
}

// parseJWT verifies a JWT access token against the signer's public key
// and returns its typ header and claims.
func parseJWT(t *testing.T, e *env, tok string) (string, map[string]any) {
	t.Helper()
	if _, err := jwt.ParseString(tok, jwt.WithKeySet(e.signer.publicSet(t)), jwt.WithValidate(false)); err != nil {
		t.Fatalf("JWT does not verify with the access token key: %v", err)
	}
	msg, err := jws.ParseString(tok)
	if err != nil {
		t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	typ, _ := hdr.Type()
	if alg, _ := hdr.Algorithm(); alg != jwa.RS256() {
		t.Fatalf("alg %v", alg)
	}
	if kid, _ := hdr.KeyID(); kid != "at-key-1" {
		t.Fatalf("kid %q", kid)
	}
	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		t.Fatal(err)
	}
	return typ, claims
}

// JWT strategy (RFC 9068): globally or per client, verified with jwx
// against the test key; scope claims as configured; recorded so that it
// is introspected and revoked.
func TestClientCredentialsJWT(t *testing.T) {
	for _, tc := range []struct {
		name        string
		scopeClaim  string
		clientInAud bool
		id, secret  string
		global      bool
	}{
		{"global both", "both", false, "svc", "svc-secret", true},
		{"global string", "string", false, "svc", "svc-secret", true},
		{"global list with client in aud", "list", true, "svc", "svc-secret", true},
		{"per client", "both", false, "jwtc", "jwtc-secret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.JWTScopeClaim = tc.scopeClaim
				o.ClientIDInAudience = tc.clientInAud
				if tc.global {
					o.AccessTokenStrategy = "jwt"
				}
			})
			cc := clientcredentials.Config{ClientID: tc.id, ClientSecret: tc.secret, TokenURL: e.tokenURL(),
				Scopes: []string{"read", "write"}, EndpointParams: url.Values{"audience": {apiAud}}}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			typ, claims := parseJWT(t, e, tok.AccessToken)
			if typ != "at+jwt" {
				t.Fatalf("typ %q", typ)
			}
			now := e.clk.Now().Unix()
			wantAud := []any{apiAud}
			if tc.clientInAud {
				wantAud = append(wantAud, tc.id)
			}
			if claims["iss"] != e.pub.URL || claims["sub"] != tc.id || claims["client_id"] != tc.id ||
				claims["iat"] != float64(now) || claims["nbf"] != float64(now) || claims["exp"] != float64(now+3600) ||
				!jsonEqual(claims["aud"], wantAud) || claims["jti"] == "" || claims["jti"] == nil {
				t.Fatalf("claims %v", claims)
			}
			_, hasScope := claims["scope"]
			_, hasScp := claims["scp"]
			switch tc.scopeClaim {
			case "both":
				if claims["scope"] != "read write" || !jsonEqual(claims["scp"], []string{"read", "write"}) {
					t.Fatalf("claims %v", claims)
				}
			case "string":
				if claims["scope"] != "read write" || hasScp {
					t.Fatalf("claims %v", claims)
				}
			case "list":
				if hasScope || !jsonEqual(claims["scp"], []string{"read", "write"}) {
					t.Fatalf("claims %v", claims)
				}
			}
			if _, ok := claims["ext"]; ok {
				t.Fatalf("empty ext must be left out: %v", claims)
			}
			if e.signer.sets[0] != AccessTokenKeySet {
				t.Fatalf("signed with set %v", e.signer.sets)
			}

			in := e.introspect(tok.AccessToken, "write")
			if in.json["active"] != true || in.str("sub") != tc.id || in.str("scope") != "read write" ||
				!jsonEqual(in.json["aud"], wantAud) || in.json["exp"] != float64(now+3600) {
				t.Fatalf("introspection %s", in.body)
			}
			// A token with a changed payload and the same signature is unknown.
			parts := strings.Split(tok.AccessToken, ".")
			forged := parts[0] + "." + b64.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2]
			if e.active(forged) {
				t.Fatal("forged JWT is active")
			}
			// The same, keeping the jti the row is found by.
			forged = parts[0] + "." + b64.EncodeToString([]byte(`{"sub":"admin","jti":"`+claims["jti"].(string)+`"}`)) + "." + parts[2]
			if e.active(forged) {
				t.Fatal("forged JWT with the real jti is active")
			}
			if rows := e.store.Dump().Tokens; len(rows) == 0 || !strings.HasPrefix(rows[len(rows)-1].Signature, claims["jti"].(string)+".") {
				t.Fatalf("the stored key does not start with the jti: %+v", rows)
			}
			r := e.post(e.pub.URL+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, tc.id+":"+tc.secret)
			if r.status != http.StatusOK || e.active(tok.AccessToken) {
				t.Fatalf("revoke %d %s", r.status, r.body)
			}
		})
	}
}

// Session extras: under ext, and at the top level when allowed (never
// overriding a reserved claim), mirrored under ext when configured.
func TestJWTExtAndTopLevelClaims(t *testing.T) {
	for _, mirror := range []bool{false, true} {
		e := newEnv(t, func(o *Options) {
			o.AccessTokenStrategy = "jwt"
			o.AllowedTopLevelClaims = []string{"tenant", "sub"}
			o.MirrorTopLevelClaims = mirror
		})
		c, _ := e.clients.Get(context.Background(), "svc")
		res, err := e.h.issueAccessToken(context.Background(), &accessGrant{
			GrantType: "test", Client: c, Subject: "alice", Lifespan: time.Minute,
			Ext: map[string]any{"tenant": "acme", "sub": "mallory", "plan": "gold"},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, claims := parseJWT(t, e, res.AccessToken)
		ext, _ := claims["ext"].(map[string]any)
		if claims["tenant"] != "acme" || claims["sub"] != "alice" || ext["plan"] != "gold" || ext["sub"] != "mallory" {
			t.Fatalf("mirror=%v claims %v", mirror, claims)
		}
		if _, ok := ext["tenant"]; ok != mirror {
			t.Fatalf("mirror=%v ext %v", mirror, ext)
		}
		in := e.introspect(res.AccessToken, "")
		if !jsonEqual(in.json["ext"], map[string]any{"plan": "gold", "sub": "mallory", "tenant": "acme"}) {
			t.Fatalf("introspection ext %s", in.body)
		}
	}
}

// A signing failure is a server_error and leaves nothing behind.
func TestJWTSigningFailure(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AccessTokenStrategy = "jwt" })
	e.signer.fail = context.DeadlineExceeded
	r := e.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret")
	wantError(t, r, http.StatusInternalServerError, "server_error")
	if strings.Contains(string(r.body), "deadline") || len(e.store.Dump().Tokens) != 0 {
		t.Fatalf("%s", r.body)
	}
}

// Every error of the token endpoint, in RFC 6749 §5.2's format.
func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		basic  string
		status int
		code   string
	}{
		{"missing grant_type", url.Values{"scope": {"read"}}, "svc:svc-secret", 400, "invalid_request"},
		{"unsupported grant_type", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, "svc:svc-secret", 400, "unsupported_grant_type"},
		{"unsupported before authentication", url.Values{"grant_type": {"password"}}, "svc:wrong", 400, "unsupported_grant_type"},
		{"grant_type twice", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, "svc:svc-secret", 400, "invalid_request"},
		{"scope twice", cc("scope", "read", "scope", "write"), "svc:svc-secret", 400, "invalid_request"},
		{"scope not allowed", cc("scope", "read admin"), "svc:svc-secret", 400, "invalid_scope"},
		{"wildcard not matching the bare prefix", cc("scope", "orders"), "svc:svc-secret", 400, "invalid_scope"},
		{"scope with a forbidden character", cc("scope", `read\`), "svc:svc-secret", 400, "invalid_scope"},
		{"scope with a quote", cc("scope", `"read"`), "svc:svc-secret", 400, "invalid_scope"},
		{"audience not allowed", cc("audience", "https://evil.example.com"), "svc:svc-secret", 400, "invalid_target"},
		{"audience partly allowed", cc("audience", apiAud+" https://evil.example.com"), "svc:svc-secret", 400, "invalid_target"},
		{"audience prefix is not a match", cc("audience", apiAud+"/admin"), "svc:svc-secret", 400, "invalid_target"},
		{"resource not allowed", cc("resource", "https://evil.example.com"), "svc:svc-secret", 400, "invalid_target"},
		{"resource relative", cc("resource", "/api"), "svc:svc-secret", 400, "invalid_target"},
		{"resource with fragment", cc("resource", apiAud+"#x"), "svc:svc-secret", 400, "invalid_target"},
		{"wrong secret post", cc("client_id", "post", "client_secret", "nope"), "", 401, "invalid_client"},
		{"unknown client post", cc("client_id", "ghost", "client_secret", "nope"), "", 401, "invalid_client"},
		{"no credentials", cc(), "", 401, "invalid_client"},
		{"public client_id only", cc("client_id", "svc"), "", 401, "invalid_client"},
		{"basic client using post", cc("client_id", "svc", "client_secret", "svc-secret"), "", 401, "invalid_client"},
		{"two methods", cc("client_secret", "svc-secret"), "svc:svc-secret", 400, "invalid_request"},
		{"grant not allowed", cc(), "nocc:nocc-secret", 400, "unauthorized_client"},
		{"public client may not use client_credentials", cc("client_id", "public"), "", 400, "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.token(tc.form, tc.basic)
			wantError(t, r, tc.status, tc.code)
			if r.str("error_description") == "" {
				t.Fatalf("no description: %s", r.body)
			}
			if strings.Contains(string(r.body), "svc-secret") {
				t.Fatal("the secret is echoed")
			}
		})
	}
	if len(e.store.Dump().Tokens) != 0 {
		t.Fatal("a failed request issued a token")
	}
}

// RFC 6749 §5.2: a failed HTTP Basic authentication is a 401 with
// WWW-Authenticate; without Basic there is no challenge.
func TestTokenInvalidClientChallenge(t *testing.T) {
	e := newEnv(t)
	for _, basic := range []string{"svc:wrong", "ghost:svc-secret", "post:post-secret"} {
		r := e.token(url.Values{"grant_type": {"client_credentials"}}, basic)
		wantError(t, r, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s: WWW-Authenticate %q", basic, r.header.Get("WWW-Authenticate"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.tokenURL(), strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic !!!not-base64")
	r := e.do(req)
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("no challenge for a malformed Basic header")
	}
	r = e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"post"}, "client_secret": {"nope"}}, "")
	if r.header.Get("WWW-Authenticate") != "" {
		t.Fatal("challenge without Basic")
	}
}

// Wrong methods, content types and parameters outside the body.
func TestTokenEndpointRequestShape(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(m, e.tokenURL()+"?grant_type=client_credentials", nil)
		req.SetBasicAuth("svc", "svc-secret")
		r := e.do(req)
		wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("%s: Allow %q", m, r.header.Get("Allow"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.tokenURL(), strings.NewReader(`{"grant_type":"client_credentials"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("svc", "svc-secret")
	wantError(t, e.do(req), http.StatusBadRequest, "invalid_request")

	// Parameters in the query are not read (RFC 6749 §3.2: the body).
	req, _ = http.NewRequest(http.MethodPost, e.tokenURL()+"?grant_type=client_credentials", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "svc-secret")
	wantError(t, e.do(req), http.StatusBadRequest, "invalid_request")

	req, _ = http.NewRequest(http.MethodPost, e.tokenURL(), strings.NewReader("grant_type=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantError(t, e.do(req), http.StatusBadRequest, "invalid_request")

	big := "grant_type=client_credentials&scope=" + strings.Repeat("a", 2<<20)
	req, _ = http.NewRequest(http.MethodPost, e.tokenURL(), strings.NewReader(big))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := e.do(req)
	if r.status != http.StatusRequestEntityTooLarge && r.status != http.StatusBadRequest {
		t.Fatalf("oversized body: %d %s", r.status, r.body)
	}
}

// GrantTypes lists what the token endpoint implements, for discovery.
func TestGrantTypes(t *testing.T) {
	e := newEnv(t)
	if got := e.h.GrantTypes(); !slices.Equal(got, []string{"authorization_code", "client_credentials", "refresh_token", client.GrantDeviceCode, client.GrantJWTBearer, client.GrantTokenExchange}) {
		t.Fatalf("%v", got)
	}
}

// New refuses a Handler it could not run: missing dependencies, no
// issuer, a lifespan that is not positive.
func TestNewRefuses(t *testing.T) {
	e := newEnv(t)
	deps := Deps{Clients: e.clients, Auth: e.auth, Tokens: e.tokens, Trust: e.store.Trust(),
		Nonces: e.store.Nonces(), Signer: e.signer, MAC: e.mac}
	for _, tc := range []struct {
		name string
		deps Deps
		opts func(*Options)
		want string
	}{
		{"no dependencies", Deps{}, func(*Options) {}, "[Auth Clients MAC Nonces Signer Tokens Trust]"},
		{"no issuer", deps, func(o *Options) { o.IssuerURL = "" }, "IssuerURL"},
		{"no access token lifespan", deps, func(o *Options) { o.AccessTokenLifespan = 0 }, "AccessTokenLifespan"},
		{"negative assertion lifetime", deps, func(o *Options) { o.JWTBearer.MaxLifetime = -time.Second }, "JWTBearer.MaxLifetime"},
	} {
		o := e.opts
		tc.opts(&o)
		if _, err := New(tc.deps, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := New(deps, e.opts); err != nil {
		t.Fatal(err)
	}
}
