package oauth2

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// RFC 7662: active:false, and nothing else, for every kind of unusable
// token; the optional scope parameter requires all its scopes.
func TestIntrospectionInactive(t *testing.T) {
	e := newEnv(t)
	tok := e.ccToken("svc:svc-secret", url.Values{"scope": {"read orders.list"}})
	key, mac, _ := strings.Cut(strings.TrimPrefix(tok, "ory_at_"), ".")
	other := e.ccToken("svc:svc-secret", nil)
	_, otherMAC, _ := strings.Cut(other, ".")

	for _, tc := range []struct {
		name, token, scope string
		active             bool
	}{
		{"valid", tok, "", true},
		{"required scope held", tok, "read", true},
		{"all required scopes held", tok, "orders.list read", true},
		{"required scope missing", tok, "read write", false},
		{"wildcard is not granted by a concrete scope", tok, "orders.*", false},
		{"garbage", "abc", "", false},
		{"empty key", "ory_at_." + mac, "", false},
		{"MAC of another token", "ory_at_" + key + "." + otherMAC, "", false},
		{"truncated MAC", tok[:len(tok)-2], "", false},
		{"extra part", tok + ".x", "", false},
		{"padded base64", "ory_at_" + key + "=." + mac, "", false},
		{"other prefix", "ory_rt_" + key + "." + mac, "", false},
		{"well-formed but unknown", "ory_at_" + b64.EncodeToString(make([]byte, 32)) + "." + mac, "", false},
		{"JWT-shaped unknown", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "", false},
		{"very long", "ory_at_" + strings.Repeat("A", 10000), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.introspect(tc.token, tc.scope)
			if r.json["active"] != tc.active {
				t.Fatalf("active %v, want %v: %s", r.json["active"], tc.active, r.body)
			}
			if !tc.active && strings.TrimSpace(string(r.body)) != `{"active":false}` {
				t.Fatalf("an inactive answer must say nothing else: %s", r.body)
			}
		})
	}

	// Expired: one second before exp it is active, at exp it is not.
	e.clk.Advance(time.Hour - time.Second)
	if !e.active(tok) {
		t.Fatal("inactive before exp")
	}
	e.clk.Advance(time.Second)
	if e.active(tok) {
		t.Fatal("active at exp")
	}
}

// Tokens die with their client.
func TestIntrospectionDeletedClient(t *testing.T) {
	e := newEnv(t)
	tok := e.ccToken("post:post-secret", nil)
	if !e.active(tok) {
		t.Fatal("inactive")
	}
	if err := e.clients.Delete(context.Background(), "post"); err != nil {
		t.Fatal(err)
	}
	if e.active(tok) {
		t.Fatal("a token of a deleted client is active")
	}
}

func TestIntrospectionRequestErrors(t *testing.T) {
	e := newEnv(t)
	u := e.adm.URL + "/admin/oauth2/introspect"
	wantError(t, e.post(u, url.Values{}, ""), http.StatusBadRequest, "invalid_request")
	wantError(t, e.post(u, url.Values{"token": {"a", "b"}}, ""), http.StatusBadRequest, "invalid_request")
	req, _ := http.NewRequest(http.MethodGet, u+"?token=x", nil)
	r := e.do(req)
	wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}

	// A storage failure is a 500, never a guessed answer.
	tok := e.ccToken("svc:svc-secret", nil)
	e.tokens.failGet(errors.New("database is down"))
	r = e.post(u, url.Values{"token": {tok}}, "")
	wantError(t, r, http.StatusInternalServerError, "server_error")
	if strings.Contains(string(r.body), "database") {
		t.Fatalf("internal cause leaked: %s", r.body)
	}
}

// The exact strategy needs the scope as granted.
func TestIntrospectionExactScopeStrategy(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ScopeStrategy = "exact" })
	r := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.list"}}, "svc:svc-secret")
	wantError(t, r, http.StatusBadRequest, "invalid_scope")
	tok := e.ccToken("svc:svc-secret", url.Values{"scope": {"orders.*"}})
	if e.introspect(tok, "orders.list").json["active"] != false || e.introspect(tok, "orders.*").json["active"] != true {
		t.Fatal("exact strategy at introspection")
	}
}

// RFC 7009: the owner revokes; anyone else, and any unusable token, gets
// the same 200 and changes nothing.
func TestRevocation(t *testing.T) {
	e := newEnv(t)
	u := e.pub.URL + "/oauth2/revoke"
	mine := e.ccToken("svc:svc-secret", nil)
	theirs := e.ccToken("post:post-secret", nil)

	for _, tc := range []struct {
		name  string
		form  url.Values
		basic string
	}{
		{"another client's token", url.Values{"token": {theirs}}, "svc:svc-secret"},
		{"unknown token", url.Values{"token": {"ory_at_nope.nope"}}, "svc:svc-secret"},
		{"garbage", url.Values{"token": {"%%%"}}, "svc:svc-secret"},
		{"unsupported hint", url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}, "svc:svc-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(u, tc.form, tc.basic)
			if r.status != http.StatusOK || len(r.body) != 0 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	if !e.active(theirs) || !e.active(mine) {
		t.Fatal("a token was revoked by someone else")
	}

	// The owner, with a wrong hint (it is only a hint), client_secret_post.
	r := e.post(u, url.Values{"token": {theirs}, "token_type_hint": {"refresh_token"},
		"client_id": {"post"}, "client_secret": {"post-secret"}}, "")
	if r.status != http.StatusOK || e.active(theirs) {
		t.Fatalf("owner revocation: %d %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", r.header)
	}
	// Revoking twice is fine.
	if r := e.post(u, url.Values{"token": {theirs}, "client_id": {"post"}, "client_secret": {"post-secret"}}, ""); r.status != http.StatusOK {
		t.Fatalf("%d", r.status)
	}

	// Errors.
	r = e.post(u, url.Values{"token": {mine}}, "svc:wrong")
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	wantError(t, e.post(u, url.Values{"token": {mine}}, ""), http.StatusUnauthorized, "invalid_client")
	wantError(t, e.post(u, url.Values{}, "svc:svc-secret"), http.StatusBadRequest, "invalid_request")
	wantError(t, e.post(u, url.Values{"token": {mine, mine}}, "svc:svc-secret"), http.StatusBadRequest, "invalid_request")
	req, _ := http.NewRequest(http.MethodGet, u+"?token="+url.QueryEscape(mine), nil)
	req.SetBasicAuth("svc", "svc-secret")
	wantError(t, e.do(req), http.StatusMethodNotAllowed, "method_not_allowed")
	if !e.active(mine) {
		t.Fatal("a failed revocation revoked")
	}
	e.tokens.failGet(errors.New("down"))
	wantError(t, e.post(u, url.Values{"token": {mine}}, "svc:svc-secret"), http.StatusInternalServerError, "server_error")
}

// DELETE /admin/oauth2/tokens?client_id= revokes every token of a client.
func TestDeleteClientTokens(t *testing.T) {
	e := newEnv(t)
	a, b := e.ccToken("svc:svc-secret", nil), e.ccToken("svc:svc-secret", nil)
	other := e.ccToken("post:post-secret", nil)
	r := e.adminJSON(http.MethodDelete, "/admin/oauth2/tokens?client_id=svc", nil)
	if r.status != http.StatusNoContent {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if e.active(a) || e.active(b) || !e.active(other) {
		t.Fatal("wrong tokens revoked")
	}
	if r := e.adminJSON(http.MethodDelete, "/admin/oauth2/tokens?client_id=nobody", nil); r.status != http.StatusNoContent {
		t.Fatalf("%d", r.status)
	}
	wantError(t, e.adminJSON(http.MethodDelete, "/admin/oauth2/tokens", nil), http.StatusBadRequest, "invalid_request")
	wantError(t, e.adminJSON(http.MethodDelete, "/admin/oauth2/tokens?client_id=a&client_id=b", nil), http.StatusBadRequest, "invalid_request")
	wantError(t, e.adminJSON(http.MethodGet, "/admin/oauth2/tokens?client_id=svc", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}
