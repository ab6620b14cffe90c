package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// hookServer is a token hook on loopback whose answer the test sets; it
// records what each call carried.
type hookServer struct {
	*httptest.Server
	mu      sync.Mutex
	answer  func(w http.ResponseWriter, body map[string]any)
	calls   []hookCall
	release chan struct{}
}

type hookCall struct {
	body   map[string]any
	header http.Header
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		h.mu.Lock()
		h.calls = append(h.calls, hookCall{body: body, header: r.Header.Clone()})
		answer := h.answer
		h.mu.Unlock()
		answer(w, body)
	}))
	t.Cleanup(func() { close(h.release); h.Close() })
	h.set(status(http.StatusNoContent))
	return h
}

func (h *hookServer) set(answer func(http.ResponseWriter, map[string]any)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answer, h.calls = answer, nil
}

// last returns the last call and how many there were since set.
func (h *hookServer) last(t *testing.T) (hookCall, int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) == 0 {
		t.Fatal("the hook was not called")
	}
	return h.calls[len(h.calls)-1], len(h.calls)
}

func (h *hookServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

func status(code int) func(http.ResponseWriter, map[string]any) {
	return func(w http.ResponseWriter, _ map[string]any) { w.WriteHeader(code) }
}

// claims answers 200 with these extra claims.
func claims(at, id map[string]any) func(http.ResponseWriter, map[string]any) {
	return func(w http.ResponseWriter, _ map[string]any) {
		_ = json.NewEncoder(w).Encode(map[string]any{"session": map[string]any{"access_token": at, "id_token": id}})
	}
}

// jwtPayload decodes the claims of a compact JWT (its signature is the
// other tests' business).
func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func path(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// hookEnv is an issuer calling hook with an api key in a header, JWT
// access tokens, and every name a hook might try listed as top-level.
func hookEnv(dsn string, hook *hookServer) map[string]string {
	return flowEnv(map[string]string{
		"DSN": dsn, "OAUTH2_TOKEN_HOOK_URL": hook.URL + "/hook", "OAUTH2_TOKEN_HOOK_AUTH_TYPE": "api_key",
		"OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN": "header", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME": "X-Hook-Key",
		"OAUTH2_TOKEN_HOOK_AUTH_CONFIG_VALUE": "hook-api-key",
		"OAUTH2_ALLOWED_TOP_LEVEL_CLAIMS":     "role,sub,iss,aud,exp,iat,jti,client_id,scope,cnf",
	})
}

// TestTokenHook: oauth2.token_hook before the responses of
// client_credentials, authorization_code and refresh_token, on SQLite,
// PostgreSQL and MariaDB: 200 sets the claims of the JWT access token,
// introspection's ext and the ID token (the presigned exchange included),
// reserved claims stay the issuer's, 204 changes nothing, 403 is
// access_denied and 500 server_error with nothing issued or used up.
func TestTokenHook(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			hook := newHookServer(t)
			is := testbin.StartIssuer(t, hookEnv(db.dsn(t), hook))
			testTokenHookClientCredentials(t, is, hook)
			testTokenHookUserGrants(t, is, hook)
		})
	}
}

func testTokenHookClientCredentials(t *testing.T, is *testbin.Issuer, hook *hookServer) {
	ctx := context.Background()
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read write",
		"token_endpoint_auth_method": "client_secret_post", "access_token_strategy": "jwt"})
	cc := &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: is.PublicURL + "/oauth2/token",
		Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInParams}

	// 200: the claims land in the JWT, under ext and at the top level
	// where allowed; the reserved ones are the issuer's.
	hook.set(claims(map[string]any{"role": "admin", "team": "blue", "sub": "mallory", "iss": "https://evil.example", "aud": []string{"evil"},
		"exp": 4102444800, "iat": 1, "jti": "forged", "client_id": "other", "scope": "admin", "cnf": map[string]any{"jkt": "x"}}, nil))
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials through the hook: %v", err)
	}
	jc := jwtPayload(t, tok.AccessToken)
	mustf(t, jc["role"] == "admin" && path(jc, "ext", "team") == "blue", "hook claims in the JWT: %v", jc)
	mustf(t, jc["sub"] == c.ID && jc["iss"] == is.PublicURL && jc["client_id"] == c.ID && jc["scope"] == "read" &&
		jc["jti"] != "forged" && jc["cnf"] == nil && jc["exp"] != float64(4102444800) && toStrings(jc["aud"])[0] != "evil",
		"a hook overrode a reserved claim: %v", jc)
	for _, k := range []string{"sub", "iss", "aud", "exp", "iat", "jti", "client_id", "scope", "cnf"} {
		mustf(t, path(jc, "ext", k) == nil, "reserved claim %s under ext: %v", k, jc["ext"])
	}
	call, n := hook.last(t)
	mustf(t, n == 1 && call.header.Get("X-Hook-Key") == "hook-api-key", "hook call: %d %v", n, call.header)
	req := call.body["request"].(map[string]any)
	mustf(t, req["client_id"] == c.ID && toStrings(req["grant_types"])[0] == "client_credentials" &&
		toStrings(req["granted_scopes"])[0] == "read" && toStrings(req["requested_scopes"])[0] == "read", "hook request: %v", req)
	payload := req["payload"].(map[string]any)
	mustf(t, toStrings(payload["grant_type"])[0] == "client_credentials" && payload["client_secret"] == nil, "payload: %v", payload)
	mustf(t, path(call.body, "session", "client_id") == c.ID && path(call.body, "session", "id_token", "subject") == c.ID,
		"hook session: %v", call.body["session"])

	// 204: no claims added.
	hook.set(status(http.StatusNoContent))
	tok, err = cc.Token(ctx)
	mustf(t, err == nil && jwtPayload(t, tok.AccessToken)["ext"] == nil && jwtPayload(t, tok.AccessToken)["role"] == nil, "204: %v", err)

	// 403: access_denied; 500: server_error.
	hook.set(status(http.StatusForbidden))
	_, err = cc.Token(ctx)
	mustf(t, isOAuthError(err, "access_denied") && httpStatus(err) == http.StatusForbidden, "403: %v", err)
	hook.set(status(http.StatusInternalServerError))
	_, err = cc.Token(ctx)
	mustf(t, isOAuthError(err, "server_error"), "500: %v", err)
}

func httpStatus(err error) int {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response.StatusCode
	}
	return 0
}

func testTokenHookUserGrants(t *testing.T, is *testbin.Issuer, hook *hookServer) {
	ctx := context.Background()
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	b := newBrowser(t, is)

	// The code exchange: the hook sees consent's claims and replaces them.
	hook.set(claims(map[string]any{"tenant": "acme", "hooked": "code"}, map[string]any{"email": "alice@example.com", "tier": "gold", "sub": "mallory"}))
	q, verifier := codeFlow(t, is, b, rp, "alice")
	tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange through the hook: %v", err)
	}
	call, n := hook.last(t)
	mustf(t, n == 1 && path(call.body, "session", "extra", "tenant") == "acme" &&
		path(call.body, "session", "id_token", "id_token_claims", "ext", "email") == "alice@example.com" &&
		path(call.body, "session", "id_token", "id_token_claims", "sub") == "alice" &&
		path(call.body, "session", "id_token", "id_token_claims", "nonce") == q.Get("nonce") &&
		path(call.body, "session", "consent_challenge") != "", "hook session at the exchange: %v", call.body["session"])
	mustf(t, toStrings(path(call.body, "request", "grant_types"))[0] == "authorization_code" &&
		path(call.body, "request", "payload", "code") == nil && path(call.body, "request", "payload", "code_verifier") == nil,
		"hook request at the exchange: %v", call.body["request"])
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idc map[string]any
	_ = idt.Claims(&idc)
	mustf(t, idc["tier"] == "gold" && idc["sub"] == "alice" && idc["email"] == "alice@example.com", "ID token claims: %v", idc)
	in := introspectToken(t, is, tok.AccessToken)
	mustf(t, path(in, "ext", "hooked") == "code" && path(in, "ext", "tenant") == "acme", "introspection ext: %v", in)

	// A refresh: the hook sees what it set before, and a refusal or a
	// failure uses nothing up.
	hook.set(status(http.StatusForbidden))
	_, err = rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	mustf(t, isOAuthError(err, "access_denied"), "refresh, 403: %v", err)
	hook.set(status(http.StatusBadGateway))
	_, err = rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	mustf(t, isOAuthError(err, "server_error"), "refresh, 502: %v", err)
	mustf(t, introspectToken(t, is, tok.AccessToken)["active"] == true, "a refused refresh revoked the chain")

	hook.set(claims(map[string]any{"hooked": "refresh"}, map[string]any{"tier": "platinum"}))
	tok2, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh through the hook (the refused refreshes used the token up?): %v", err)
	}
	call, _ = hook.last(t)
	mustf(t, toStrings(path(call.body, "request", "grant_types"))[0] == "refresh_token" &&
		path(call.body, "session", "extra", "hooked") == "code" &&
		path(call.body, "session", "id_token", "id_token_claims", "ext", "tier") == "gold", "hook at the refresh: %v", call.body)
	in = introspectToken(t, is, tok2.AccessToken)
	mustf(t, path(in, "ext", "hooked") == "refresh" && path(in, "ext", "tenant") == nil, "refreshed introspection: %v", in)
	idt, err = rp.verifier.Verify(ctx, tok2.Extra("id_token").(string))
	mustf(t, err == nil, "refreshed ID token: %v", err)
	_ = idt.Claims(&idc)
	mustf(t, idc["tier"] == "platinum", "refreshed ID token claims: %v", idc)

	// 204 leaves the claims the chain has.
	hook.set(status(http.StatusNoContent))
	tok3, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	mustf(t, err == nil && path(introspectToken(t, is, tok3.AccessToken), "ext", "hooked") == "refresh", "refresh, 204: %v", err)
}

// TestTokenHookFailures: each way a hook can fail to answer fails the
// token request with server_error and issues nothing; the api key can go
// in a cookie; the SSRF guard applies, and its allow-list lets a loopback
// hook through; the latency is a metric.
func TestTokenHookFailures(t *testing.T) {
	hook := newHookServer(t)
	is := testbin.StartIssuer(t, map[string]string{"OAUTH2_TOKEN_HOOK": hook.URL, "OAUTH2_TOKEN_HOOK_TIMEOUT": "300ms",
		"OAUTH2_TOKEN_HOOK_AUTH_TYPE": "api_key", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_IN": "cookie",
		"OAUTH2_TOKEN_HOOK_AUTH_CONFIG_NAME": "hook_key", "OAUTH2_TOKEN_HOOK_AUTH_CONFIG_VALUE": "cookie-key"})
	ctx := context.Background()
	c := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read"})
	cc := &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: is.PublicURL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}

	hook.set(claims(map[string]any{"k": "v"}, nil))
	tok, err := cc.Token(ctx)
	mustf(t, err == nil && path(introspectToken(t, is, tok.AccessToken), "ext", "k") == "v", "200: %v", err)
	call, _ := hook.last(t)
	ck, _ := (&http.Request{Header: call.header}).Cookie("hook_key")
	mustf(t, ck != nil && ck.Value == "cookie-key", "api key cookie: %v", call.header)

	huge := `{"session":{"access_token":{"x":"` + strings.Repeat("a", 5<<20) + `"}}}`
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, map[string]any)
	}{
		{"timeout", func(http.ResponseWriter, map[string]any) { <-hook.release }},
		{"over 5 MiB", func(w http.ResponseWriter, _ map[string]any) { _, _ = io.WriteString(w, huge) }},
		{"not JSON", func(w http.ResponseWriter, _ map[string]any) { _, _ = io.WriteString(w, "<html>ok</html>") }},
		{"redirect", func(w http.ResponseWriter, _ map[string]any) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}},
		{"401", status(http.StatusUnauthorized)},
		{"201", status(http.StatusCreated)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook.set(tc.answer)
			_, err := cc.Token(ctx)
			mustf(t, isOAuthError(err, "server_error") && httpStatus(err) == http.StatusInternalServerError, "%s: %v", tc.name, err)
		})
	}

	// The metric counts the calls by outcome.
	resp, err := http.Get(is.AdminURL + "/admin/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gatehouse_token_hook_duration_seconds_count{hook="token_hook",outcome="200"}`,
		`gatehouse_token_hook_duration_seconds_count{hook="token_hook",outcome="error"}`,
		`gatehouse_token_hook_duration_seconds_count{hook="token_hook",outcome="401"}`} {
		mustf(t, strings.Contains(string(metrics), want), "metrics lack %s", want)
	}

	// Unreachable: a hook that is not listening.
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	is2 := testbin.StartIssuer(t, map[string]string{"OAUTH2_TOKEN_HOOK": goneURL})
	c2 := is2.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}})
	_, err = (&clientcredentials.Config{ClientID: c2.ID, ClientSecret: c2.Secret, TokenURL: is2.PublicURL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
	mustf(t, isOAuthError(err, "server_error"), "unreachable hook: %v", err)

	// The SSRF guard refuses a loopback hook unless allow-listed.
	for _, allow := range []string{"", "127.0.0.0/8"} {
		hook.set(status(http.StatusNoContent))
		is3 := testbin.StartIssuer(t, map[string]string{"OAUTH2_TOKEN_HOOK": hook.URL,
			"CLIENTS_HTTP_DISALLOW_PRIVATE_IP_RANGES": "true", "CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST": allow})
		c3 := is3.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}})
		_, err = (&clientcredentials.Config{ClientID: c3.ID, ClientSecret: c3.Secret, TokenURL: is3.PublicURL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}).Token(ctx)
		if allow == "" {
			mustf(t, isOAuthError(err, "server_error") && hook.count() == 0, "a guarded loopback hook was called: %v", err)
		} else {
			mustf(t, err == nil && hook.count() == 1, "an allow-listed loopback hook: %v", err)
		}
	}
}

// TestRefreshTokenHook: the legacy oauth2.refresh_token_hook is called for
// refresh only, before the token hook, with Hydra's older body, on SQLite,
// PostgreSQL and MariaDB.
func TestRefreshTokenHook(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			legacy, hook := newHookServer(t), newHookServer(t)
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t),
				"OAUTH2_REFRESH_TOKEN_HOOK": legacy.URL, "OAUTH2_TOKEN_HOOK": hook.URL}))
			ctx := context.Background()
			c := newFlowClient(t, is, nil)
			rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
			q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "bob")
			tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			mustf(t, legacy.count() == 0 && hook.count() == 1, "code exchange: legacy %d, token hook %d calls", legacy.count(), hook.count())

			legacy.set(claims(map[string]any{"legacy": true}, map[string]any{"legacy_id": true}))
			hook.set(func(w http.ResponseWriter, body map[string]any) {
				// The token hook sees what the legacy hook set and keeps it.
				claims(path(body, "session", "extra").(map[string]any), map[string]any{"token_hook": true})(w, body)
			})
			tok2, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			call, n := legacy.last(t)
			mustf(t, n == 1 && call.body["subject"] == "bob" && call.body["client_id"] == c["client_id"] &&
				toStrings(call.body["granted_scopes"])[0] == "openid" && call.body["granted_audience"] != nil &&
				path(call.body, "requester", "client_id") == c["client_id"] && path(call.body, "session", "extra", "tenant") == "acme",
				"legacy body: %v", call.body)
			mustf(t, call.body["request"] == nil, "the legacy hook got the new body: %v", call.body)
			mustf(t, path(introspectToken(t, is, tok2.AccessToken), "ext", "legacy") == true, "legacy claims lost")

			legacy.set(status(http.StatusForbidden))
			_, err = rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
			mustf(t, isOAuthError(err, "access_denied"), "legacy 403: %v", err)
		})
	}
}
