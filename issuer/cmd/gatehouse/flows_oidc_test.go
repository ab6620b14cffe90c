package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// callbackParams returns the parameters of a callback URL: query, or
// fragment for the implicit and hybrid flows.
func callbackParams(t testing.TB, at *url.URL, body string) url.Values {
	t.Helper()
	if at == nil || at.Path != "/callback" {
		t.Fatalf("expected the callback, got %v %.300s", at, body)
	}
	if at.Fragment != "" {
		q, err := url.ParseQuery(at.EscapedFragment())
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	return at.Query()
}

// TestPromptAndSessions covers prompt=none/login/consent, max_age,
// remembered login and consent, skip_consent and id_token_hint.
func TestPromptAndSessions(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	ctx := context.Background()
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID)
	b := newBrowser(t, is)

	// prompt=none without a session: login_required, state echoed.
	at, _, body := b.visit(rp.conf.AuthCodeURL("st-1", oauth2.SetAuthURLParam("prompt", "none")))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required" && q.Get("state") == "st-1", "prompt=none without session: %v", q)

	// A first login, remembered, with a consent that is not remembered.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-2", oidc.Nonce("n-2")))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": "bob", "remember": true, "remember_for": 3600})
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(false))
	at, _, body = b.visit(to)
	q = callbackParams(t, at, body)
	tok, err := rp.conf.Exchange(ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		AuthTime int64  `json:"auth_time"`
		SID      string `json:"sid"`
	}
	_ = idt.Claims(&first)

	// prompt=none with the remembered login but no remembered consent:
	// the login app confirms (skip), then consent_required.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-3", oauth2.SetAuthURLParam("prompt", "none")))
	req, to := acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	mustf(t, req["skip"] == true, "remembered login not skipped: %v", req)
	at, _, body = b.visit(to)
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "consent_required" && q.Get("state") == "st-3", "prompt=none without remembered consent: %v", q)

	// A remembered consent makes prompt=none succeed end to end, with the
	// original auth_time and sid.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-4", oidc.Nonce("n-4")))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	at, _, _ = b.visit(to)
	creq, to := acceptConsent(t, is, at, grantAll(true))
	mustf(t, creq["skip"] == false, "consent skipped without a remembered consent: %v", creq)
	at, _, body = b.visit(to)
	callbackParams(t, at, body)
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-5", oauth2.SetAuthURLParam("prompt", "none"), oidc.Nonce("n-5")))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	at, _, _ = b.visit(to)
	creq, to = acceptConsent(t, is, at, grantAll(true))
	mustf(t, creq["skip"] == true, "remembered consent not skipped: %v", creq)
	at, _, body = b.visit(to)
	q = callbackParams(t, at, body)
	tok, err = rp.conf.Exchange(ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, err = rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var again struct {
		AuthTime int64  `json:"auth_time"`
		SID      string `json:"sid"`
		Nonce    string `json:"nonce"`
	}
	_ = idt.Claims(&again)
	mustf(t, again.AuthTime == first.AuthTime && again.SID == first.SID && again.Nonce == "n-5", "remembered auth: %+v vs %+v", again, first)
	rawIDToken := tok.Extra("id_token").(string)

	// The login app may not switch users on a skipped login.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-6"))
	ch := at.Query().Get("login_challenge")
	var e map[string]any
	code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch, map[string]any{"subject": "mallory"}, &e)
	mustf(t, code == 400 && e["error"] == "invalid_request", "subject switch on skip: %d %v", code, e)

	// prompt=login and max_age=0 force a new authentication (skip=false),
	// and auth_time moves.
	time.Sleep(1100 * time.Millisecond)
	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		at, _, _ = b.visit(rp.conf.AuthCodeURL("st-7", opt, oidc.Nonce("n-7")))
		req, to = acceptLogin(t, is, at, map[string]any{"subject": "bob", "remember": true})
		mustf(t, req["skip"] == false, "re-authentication not forced: %v", req)
		at, _, _ = b.visit(to)
		_, to = acceptConsent(t, is, at, grantAll(true))
		at, _, body = b.visit(to)
		q = callbackParams(t, at, body)
		tok, err = rp.conf.Exchange(ctx, q.Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		idt, _ = rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
		var fresh struct {
			AuthTime int64 `json:"auth_time"`
		}
		_ = idt.Claims(&fresh)
		mustf(t, fresh.AuthTime > first.AuthTime, "auth_time did not move: %d vs %d", fresh.AuthTime, first.AuthTime)
	}

	// id_token_hint of another user with prompt=none: login_required.
	other := newBrowser(t, is)
	at, _, _ = other.visit(rp.conf.AuthCodeURL("st-8", oidc.Nonce("n")))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "carol", "remember": true})
	at, _, _ = other.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(true))
	other.visit(to)
	at, _, body = other.visit(rp.conf.AuthCodeURL("st-9", oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", rawIDToken)))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "foreign id_token_hint: %v", q)
	// bob's own hint is fine and shows up in oidc_context.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-10", oauth2.SetAuthURLParam("id_token_hint", rawIDToken), oauth2.SetAuthURLParam("login_hint", "bob@x"),
		oauth2.SetAuthURLParam("ui_locales", "fr en"), oauth2.SetAuthURLParam("acr_values", "gold")))
	req, _ = acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	oc := req["oidc_context"].(map[string]any)
	mustf(t, req["skip"] == true && oc["login_hint"] == "bob@x" && oc["id_token_hint_claims"].(map[string]any)["sub"] == "bob" &&
		strings.Join(toStrings(oc["ui_locales"]), " ") == "fr en" && toStrings(oc["acr_values"])[0] == "gold", "oidc_context: %v", req)

	// A skip_consent client gets skip=true on its first consent.
	sc := newFlowClient(t, is, map[string]any{"skip_consent": true})
	srp := newRP(t, is, sc, oidc.ScopeOpenID)
	at, _, _ = b.visit(srp.conf.AuthCodeURL("st-11"))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	at, _, _ = b.visit(to)
	creq, _ = acceptConsent(t, is, at, grantAll(false))
	mustf(t, creq["skip"] == true, "skip_consent client: %v", creq)
}

// TestAuthorizationErrors: errors about the client or redirect URI are
// shown on the error page, every other error goes back to the client.
func TestAuthorizationErrors(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	pub := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "none", "client_secret": nil})
	b := newBrowser(t, is)
	id := c["client_id"].(string)
	auth := func(q string) (*url.URL, int, string) { return b.visit(is.PublicURL + "/oauth2/auth?" + q) }

	for _, tc := range []struct {
		name, query, page, code string
	}{
		{"unknown client", "client_id=nope&response_type=code&redirect_uri=" + url.QueryEscape(callback), "invalid_client", ""},
		{"missing client", "response_type=code", "invalid_request", ""},
		{"unregistered redirect", "client_id=" + id + "&response_type=code&redirect_uri=" + url.QueryEscape("https://evil.example/cb"), "invalid_request", ""},
		{"bad scope", "client_id=" + id + "&response_type=code&scope=admin&state=s1", "", "invalid_scope"},
		{"response type not allowed", "client_id=" + id + "&response_type=token&state=s1", "", "unsupported_response_type"},
		{"bad response type", "client_id=" + id + "&response_type=bogus&state=s1", "", "unsupported_response_type"},
		{"bad prompt", "client_id=" + id + "&response_type=code&prompt=none+login&state=s1", "", "invalid_request"},
		{"plain PKCE too short", "client_id=" + id + "&response_type=code&code_challenge=abc&state=s1", "", "invalid_request"},
		{"bad PKCE method", "client_id=" + id + "&response_type=code&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=S512&state=s1", "", "invalid_request"},
		{"public client without PKCE", "client_id=" + pub["client_id"].(string) + "&response_type=code&state=s1", "", "invalid_request"},
		{"bad request object", "client_id=" + id + "&response_type=code&request=e30.e30.&state=s1", "", "invalid_request_object"},
		{"unreachable request_uri", "client_id=" + id + "&response_type=code&request_uri=" + url.QueryEscape("http://127.0.0.1:9/ro.jwt") + "&state=s1", "", "invalid_request_uri"},
	} {
		at, _, body := auth(tc.query)
		if tc.page != "" {
			mustf(t, at != nil && at.Path == "/oauth2/fallbacks/error" && at.Query().Get("error") == tc.page, "%s: %v %s", tc.name, at, body)
			continue
		}
		q := callbackParams(t, at, body)
		mustf(t, q.Get("error") == tc.code && q.Get("state") == "s1" && q.Get("error_description") != "", "%s: %v", tc.name, q)
	}

	// The fallback error page renders the error with a 4xx status.
	code, _, page := get(t, is.PublicURL+"/oauth2/fallbacks/error?error=invalid_client&error_description=nope")
	mustf(t, code == 400 && strings.Contains(string(page), "invalid_client"), "fallback page: %d %s", code, page)

	// The login app rejects: access_denied at the client.
	at, _, _ := auth("client_id=" + id + "&response_type=code&scope=openid&state=s2")
	ch := at.Query().Get("login_challenge")
	var out map[string]any
	adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/login/reject?login_challenge="+ch,
		map[string]any{"error": "access_denied", "error_description": "The user said no"}, &out)
	at, _, body := b.visit(out["redirect_to"].(string))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "access_denied" && q.Get("error_description") == "The user said no" && q.Get("state") == "s2", "reject: %v", q)

	// A challenge is used once: after use GET answers 410 and accept 409;
	// v1 and short-form paths reach the same API.
	var lr map[string]any
	mustf(t, adminJSON(t, is, http.MethodGet, "/oauth2/auth/requests/login?login_challenge="+ch, nil, &lr) == http.StatusGone && lr["redirect_to"] != nil, "used challenge (v1 path): %v", lr)
	mustf(t, adminJSON(t, is, http.MethodPut, "/oauth2/requests/login/accept?login_challenge="+ch, map[string]any{"subject": "x"}, &lr) == http.StatusConflict, "accept of a used challenge: %v", lr)
	at, _, body = b.visit(out["redirect_to"].(string))
	mustf(t, at != nil && at.Path == "/oauth2/fallbacks/error", "verifier replay: %v %s", at, body)

	// Short-form alias on a fresh challenge; unknown challenges are 404.
	at, _, _ = auth("client_id=" + id + "&response_type=code&scope=openid&state=s3")
	ch = at.Query().Get("login_challenge")
	mustf(t, adminJSON(t, is, http.MethodGet, "/oauth2/requests/login?login_challenge="+ch, nil, &lr) == 200 && lr["challenge"] == ch, "short form: %v", lr)
	mustf(t, adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge=nope", nil, &lr) == 404, "unknown challenge: %v", lr)
	mustf(t, adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch, map[string]any{}, &lr) == 400, "accept without subject: %v", lr)
}

// TestExpiredChallenge: after TTL_LOGIN_CONSENT_REQUEST a challenge gets
// a clear error, never a token.
func TestExpiredChallenge(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"TTL_LOGIN_CONSENT_REQUEST": "1s"}))
	c := newFlowClient(t, is, nil)
	b := newBrowser(t, is)
	at, _, _ := b.visit(is.PublicURL + "/oauth2/auth?client_id=" + c["client_id"].(string) + "&response_type=code&scope=openid&state=s")
	ch := at.Query().Get("login_challenge")
	time.Sleep(1100 * time.Millisecond)
	code, _ := adminGet(t, is, "/admin/oauth2/auth/requests/login?login_challenge="+ch)
	mustf(t, code == 404, "expired challenge: %d", code)
	var lr map[string]any
	mustf(t, adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch, map[string]any{"subject": "x"}, &lr) == 404 &&
		strings.Contains(lr["error_description"].(string), "expired"), "accept of an expired challenge: %v", lr)
}

func adminGet(t testing.TB, is *testbin.Issuer, path string) (int, map[string]any) {
	var out map[string]any
	code := adminJSON(t, is, http.MethodGet, path, nil, &out)
	return code, out
}

// TestImplicitHybridFormPost: implicit and hybrid response types with
// nonce, at_hash and c_hash checked by go-oidc, form_post, and pairwise
// subjects.
func TestImplicitHybridFormPost(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{
		"OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES": "public,pairwise",
		"OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT":   "some-pairwise-salt",
	}))
	ctx := context.Background()
	c := newFlowClient(t, is, map[string]any{
		"grant_types":    []string{"authorization_code", "implicit", "refresh_token"},
		"response_types": []string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"},
	})
	rp := newRP(t, is, c, oidc.ScopeOpenID)
	b := newBrowser(t, is)
	login := func(u string) url.Values {
		t.Helper()
		at, _, body := b.visit(u)
		if at != nil && at.Path == "/login" {
			_, to := acceptLogin(t, is, at, map[string]any{"subject": "dave", "remember": true})
			at, _, _ = b.visit(to)
			_, to = acceptConsent(t, is, at, grantAll(true))
			at, _, body = b.visit(to)
		}
		return callbackParams(t, at, body)
	}

	// Implicit without nonce: an error in the fragment.
	q := login(rp.conf.AuthCodeURL("s0", oauth2.SetAuthURLParam("response_type", "id_token token")))
	mustf(t, q.Get("error") == "invalid_request" && q.Get("state") == "s0", "implicit without nonce: %v", q)

	for _, rt := range []string{"id_token", "id_token token", "code id_token", "code token", "code id_token token"} {
		q := login(rp.conf.AuthCodeURL("s-"+rt, oauth2.SetAuthURLParam("response_type", rt), oidc.Nonce("nonce-"+rt)))
		mustf(t, q.Get("state") == "s-"+rt && q.Get("error") == "", "%s: %v", rt, q)
		if strings.Contains(rt, "id_token") {
			idt, err := rp.verifier.Verify(ctx, q.Get("id_token"))
			if err != nil {
				t.Fatalf("%s: %v", rt, err)
			}
			mustf(t, idt.Nonce == "nonce-"+rt, "%s: nonce %q", rt, idt.Nonce)
			var cl map[string]any
			_ = idt.Claims(&cl)
			if q.Get("access_token") != "" {
				if err := idt.VerifyAccessToken(q.Get("access_token")); err != nil {
					t.Fatalf("%s at_hash: %v", rt, err)
				}
			}
			if strings.HasPrefix(rt, "code") {
				mustf(t, cl["c_hash"] == halfSHA256(q.Get("code")), "%s c_hash %v", rt, cl["c_hash"])
			}
		}
		if strings.Contains(rt, "token") && !strings.HasSuffix(rt, "id_token") {
			mustf(t, q.Get("access_token") != "" && q.Get("token_type") == "bearer" && q.Get("expires_in") != "", "%s: %v", rt, q)
		}
		if strings.HasPrefix(rt, "code") {
			tok, err := rp.conf.Exchange(ctx, q.Get("code"))
			if err != nil {
				t.Fatalf("%s exchange: %v", rt, err)
			}
			idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
			mustf(t, err == nil && idt.Nonce == "nonce-"+rt, "%s: token endpoint ID token: %v", rt, err)
		}
	}

	// OAuth 2.0-only implicit (RFC 6749 §4.2): response_type=token without
	// openid needs no nonce and returns no ID token.
	oc := newFlowClient(t, is, map[string]any{"grant_types": []string{"implicit"}, "response_types": []string{"token"}, "scope": "profile"})
	orp := newRP(t, is, oc, "profile")
	q = login(orp.conf.AuthCodeURL("s-oauth", oauth2.SetAuthURLParam("response_type", "token")))
	mustf(t, q.Get("access_token") != "" && q.Get("id_token") == "" && q.Get("token_type") == "bearer" && q.Get("scope") == "profile" &&
		q.Get("state") == "s-oauth", "OAuth 2.0 implicit: %v", q)
	mustf(t, introspectToken(t, is, q.Get("access_token"))["active"] == true, "implicit access token inactive")

	// form_post: an auto-submitting form with the response.
	resp, err := b.hc.Get(rp.conf.AuthCodeURL("s-fp", oauth2.SetAuthURLParam("response_mode", "form_post"), oidc.Nonce("n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	_, to := acceptLogin(t, is, loc, map[string]any{"subject": "dave"})
	at, _, _ := b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(true))
	at, code, page := b.visit(to)
	mustf(t, at == nil && code == 200 && strings.Contains(page, `action="`+callback+`"`) &&
		strings.Contains(page, `name="code"`) && strings.Contains(page, `name="state" value="s-fp"`), "form_post: %d %s", code, page)

	// Pairwise: two clients with different sectors see different, stable
	// subjects, the same in the ID token and at userinfo.
	subs := map[string]string{}
	for _, host := range []string{"127.0.0.1:9", "localhost:9"} {
		cb := "http://" + host + "/callback"
		pc := newFlowClient(t, is, map[string]any{"subject_type": "pairwise", "redirect_uris": []string{cb}})
		prp := newRP(t, is, pc, oidc.ScopeOpenID)
		prp.conf.RedirectURL = cb
		at, _, _ := b.visit(prp.conf.AuthCodeURL("s", oidc.Nonce("n")))
		_, to := acceptLogin(t, is, at, map[string]any{"subject": "dave"})
		at, _, _ = b.visit(to)
		_, to = acceptConsent(t, is, at, grantAll(true))
		at, _, _ = b.visit(to)
		mustf(t, at != nil && at.Host == host, "pairwise callback: %v", at)
		tok, err := prp.conf.Exchange(ctx, at.Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := prp.verifier.Verify(ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		ui, err := prp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		mustf(t, err == nil && ui.Subject == idt.Subject && idt.Subject != "dave" && len(idt.Subject) == 64, "pairwise: %q %v", idt.Subject, err)
		mustf(t, introspectToken(t, is, tok.AccessToken)["sub"] == "dave", "access tokens keep the local subject")
		subs[host] = idt.Subject
	}
	mustf(t, subs["127.0.0.1:9"] != subs["localhost:9"], "pairwise subjects are equal across sectors")
}

// halfSHA256 is OpenID Connect Core §3.3.2.11's c_hash for RS256.
func halfSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// TestParallelTabs: two flows of one client started in two tabs of one
// browser both complete (the CSRF cookie keeps a token per running flow).
func TestParallelTabs(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID)
	b := newBrowser(t, is)
	atA, _, _ := b.visit(rp.conf.AuthCodeURL("tab-a"))
	atB, _, _ := b.visit(rp.conf.AuthCodeURL("tab-b"))
	_, toA := acceptLogin(t, is, atA, map[string]any{"subject": "jo"})
	_, toB := acceptLogin(t, is, atB, map[string]any{"subject": "jo"})
	consentA, _, _ := b.visit(toA)
	consentB, _, _ := b.visit(toB)
	_, toA = acceptConsent(t, is, consentA, grantAll(false))
	_, toB = acceptConsent(t, is, consentB, grantAll(false))
	for tab, to := range map[string]string{"tab-b": toB, "tab-a": toA} {
		at, _, body := b.visit(to)
		q := callbackParams(t, at, body)
		mustf(t, q.Get("code") != "" && q.Get("state") == tab, "%s: %v", tab, q)
	}
}

// TestAuthorizationErrorPageStatus: without URLS_ERROR, a browser sent to
// the built-in error page by bad input at /oauth2/auth ends on that page
// with the error's 4xx status, not 200; the status follows the error code
// (401 becomes 400: a page cannot send an authentication challenge).
func TestAuthorizationErrorPageStatus(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	for _, tc := range []struct {
		name, url, code string
		status          int
	}{
		{"unknown client", "/oauth2/auth?response_type=code&client_id=nope", "invalid_client", 400},
		{"missing client", "/oauth2/auth?response_type=code", "invalid_request", 400},
		{"unregistered redirect", "/oauth2/auth?response_type=code&client_id=" + c["client_id"].(string) +
			"&redirect_uri=" + url.QueryEscape("https://evil.example/cb"), "invalid_request", 400},
		{"bad logout verifier", "/oauth2/sessions/logout?logout_verifier=nope", "invalid_request", 400},
		{"page of a server error", "/oauth2/fallbacks/error?error=server_error", "server_error", 500},
		{"page of an unavailable server", "/oauth2/fallbacks/error?error=temporarily_unavailable", "temporarily_unavailable", 503},
		{"page of an access denial", "/oauth2/fallbacks/error?error=access_denied", "access_denied", 403},
		{"page of an unknown code", "/oauth2/fallbacks/error?error=made_up", "made_up", 400},
		{"page without a code", "/oauth2/fallbacks/error", "unknown_error", 400},
	} {
		resp, err := http.Get(is.PublicURL + tc.url) // follows the redirect, as a browser does
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mustf(t, resp.StatusCode == tc.status && resp.Request.URL.Path == "/oauth2/fallbacks/error" &&
			strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && strings.Contains(string(body), "<code>"+tc.code+"</code>"),
			"%s: %d at %s, want %d with the page of %s:\n%s", tc.name, resp.StatusCode, resp.Request.URL.Path, tc.status, tc.code, body)
		mustf(t, (tc.status == 503) == (resp.Header.Get("Retry-After") != ""), "%s: Retry-After %q", tc.name, resp.Header.Get("Retry-After"))
	}
}
