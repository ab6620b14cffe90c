package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// backchannelRP records the logout tokens POSTed to it; the first fail
// answers are 503 (to exercise retries).
type backchannelRP struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
	fail   int
}

func newBackchannelRP(t *testing.T, fail int) *backchannelRP {
	rp := &backchannelRP{fail: fail}
	rp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if rp.fail > 0 {
			rp.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		rp.tokens = append(rp.tokens, r.PostForm.Get("logout_token"))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rp.Close)
	return rp
}

func (rp *backchannelRP) received() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]string(nil), rp.tokens...)
}

// loggedIn runs a whole code flow for subject in b and returns the tokens.
func loggedIn(t *testing.T, is *testbin.Issuer, b *browser, rp *relyingParty, subject string) *oauth2.Token {
	t.Helper()
	at, _, _ := b.visit(rp.conf.AuthCodeURL("s", oidc.Nonce("n")))
	if at != nil && at.Path == "/login" {
		_, to := acceptLogin(t, is, at, map[string]any{"subject": subject, "remember": true, "remember_for": 3600})
		at, _, _ = b.visit(to)
	}
	_, to := acceptConsent(t, is, at, grantAll(true))
	at, _, body := b.visit(to)
	q := callbackParams(t, at, body)
	tok, err := rp.conf.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// TestLogout: RP-initiated logout through the logout challenge, with
// front-channel (iframes page) and back-channel (signed logout_token with
// retry) notification; afterwards prompt=none answers login_required.
func TestLogout(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	ctx := context.Background()
	bc := newBackchannelRP(t, 1)
	front := "http://127.0.0.1:9/frontchannel"
	after := "http://127.0.0.1:9/logged-out"
	c1 := newFlowClient(t, is, map[string]any{"post_logout_redirect_uris": []string{after},
		"frontchannel_logout_uri": front, "frontchannel_logout_session_required": true})
	c2 := newFlowClient(t, is, map[string]any{"backchannel_logout_uri": bc.URL + "/bc", "backchannel_logout_session_required": true})
	rp1, rp2 := newRP(t, is, c1, oidc.ScopeOpenID), newRP(t, is, c2, oidc.ScopeOpenID)
	b := newBrowser(t, is)
	tok1 := loggedIn(t, is, b, rp1, "erin")
	loggedIn(t, is, b, rp2, "erin")
	hint := tok1.Extra("id_token").(string)
	idt, _ := rp1.verifier.Verify(ctx, hint)
	var idc struct {
		SID string `json:"sid"`
	}
	_ = idt.Claims(&idc)

	// Discovery advertises what is implemented.
	var disc map[string]any
	_, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration")
	_ = json.Unmarshal(raw, &disc)
	mustf(t, disc["end_session_endpoint"] == is.PublicURL+"/oauth2/sessions/logout" && disc["frontchannel_logout_supported"] == true &&
		disc["backchannel_logout_supported"] == true && disc["authorization_endpoint"] == is.PublicURL+"/oauth2/auth" &&
		disc["userinfo_endpoint"] == is.PublicURL+"/userinfo", "discovery: %v", disc)

	// An unregistered post_logout_redirect_uri is refused on the error page.
	at, _, _ := b.visit(is.PublicURL + "/oauth2/sessions/logout?" + url.Values{"id_token_hint": {hint},
		"post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	mustf(t, at != nil && at.Path == "/oauth2/fallbacks/error", "bad post_logout_redirect_uri: %v", at)

	at, _, _ = b.visit(is.PublicURL + "/oauth2/sessions/logout?" + url.Values{"id_token_hint": {hint},
		"post_logout_redirect_uri": {after}, "state": {"bye"}}.Encode())
	mustf(t, at != nil && at.Path == "/logout", "logout app: %v", at)
	ch := at.Query().Get("logout_challenge")
	var lr map[string]any
	mustf(t, adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/logout?logout_challenge="+ch, nil, &lr) == 200, "get logout: %v", lr)
	hasKeys(t, "logout request", lr, "challenge", "client", "request_url", "rp_initiated", "sid", "subject")
	mustf(t, lr["subject"] == "erin" && lr["sid"] == idc.SID && lr["rp_initiated"] == true &&
		lr["client"].(map[string]any)["client_id"] == c1["client_id"], "logout request: %v", lr)
	var done map[string]any
	adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+ch, nil, &done)
	at, code, page := b.visit(done["redirect_to"].(string))
	// c1 has a front-channel URI: the iframes page, then the redirect.
	mustf(t, at == nil && code == 200, "front-channel page: %v %d", at, code)
	wantFrame := front + "?" + url.Values{"iss": {is.PublicURL}, "sid": {idc.SID}}.Encode()
	mustf(t, strings.Contains(page, `<iframe src="`+strings.ReplaceAll(wantFrame, "&", "&amp;")+`"`), "iframe missing:\n%s", page)
	mustf(t, strings.Contains(page, after+"?state=bye"), "post-logout redirect missing:\n%s", page)

	// Back-channel: one logout token, after a retried 503.
	var logoutToken string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := bc.received(); len(got) > 0 {
			logoutToken = got[0]
			break
		}
	}
	mustf(t, logoutToken != "", "no back-channel logout token received")
	lt, err := oidc.NewVerifier(is.PublicURL, oidc.NewRemoteKeySet(ctx, is.PublicURL+"/.well-known/jwks.json"),
		&oidc.Config{ClientID: c2["client_id"].(string), SkipExpiryCheck: false}).Verify(ctx, logoutToken)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var ltc map[string]any
	_ = lt.Claims(&ltc)
	_, hasNonce := ltc["nonce"]
	mustf(t, ltc["sid"] == idc.SID && lt.Subject == "erin" && ltc["jti"] != nil && !hasNonce &&
		ltc["events"].(map[string]any)["http://schemas.openid.net/event/backchannel-logout"] != nil, "logout token claims: %v", ltc)

	// The session is gone: prompt=none now answers login_required, and
	// the used challenge is 410.
	at, _, body := b.visit(rp1.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "after logout: %v", q)
	mustf(t, adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/logout?logout_challenge="+ch, nil, &lr) == http.StatusGone, "used logout challenge: %v", lr)

	// Without a session, logout goes straight to the post-logout page.
	at, _, _ = b.visit(is.PublicURL + "/oauth2/sessions/logout")
	mustf(t, at != nil && at.Path == "/oauth2/fallbacks/logout/callback", "logout without a session: %v", at)

	// Rejecting a logout keeps the session.
	b2 := newBrowser(t, is)
	loggedIn(t, is, b2, rp1, "frank")
	at, _, _ = b2.visit(is.PublicURL + "/oauth2/sessions/logout")
	mustf(t, at != nil && at.Path == "/logout", "logout app: %v", at)
	mustf(t, adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/logout/reject?logout_challenge="+at.Query().Get("logout_challenge"), map[string]any{}, nil) == http.StatusNoContent, "reject logout")
	at, _, _ = b2.visit(rp1.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")))
	req, _ := acceptLogin(t, is, at, map[string]any{"subject": "frank"})
	mustf(t, req["skip"] == true, "session lost after a rejected logout: %v", req)
}

// TestSessionAdmin: consent sessions are listed and revoked (with their
// tokens); login sessions are revoked by subject, with back-channel
// logout; the SSRF guard keeps logout tokens from private addresses.
func TestSessionAdmin(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"CLIENTS_HTTP_DISALLOW_PRIVATE_IP_RANGES": "true"}))
	bc := newBackchannelRP(t, 0)
	c := newFlowClient(t, is, map[string]any{"backchannel_logout_uri": bc.URL + "/bc"})
	rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	b := newBrowser(t, is)
	tok := loggedIn(t, is, b, rp, "gina")

	var list []map[string]any
	mustf(t, adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/sessions/consent?subject=gina", nil, &list) == 200 && len(list) == 1, "consent sessions: %v", list)
	s := list[0]
	mustf(t, s["remember"] == true && s["consent_request"].(map[string]any)["client"].(map[string]any)["client_id"] == c["client_id"] &&
		s["session"].(map[string]any)["id_token"].(map[string]any)["email"] == "alice@example.com", "consent session: %v", s)
	mustf(t, adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?subject=gina", nil, nil) == 400, "delete without client or all")
	mustf(t, adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?subject=gina&client="+c["client_id"].(string), nil, nil) == 204, "delete consent")
	mustf(t, introspectToken(t, is, tok.AccessToken)["active"] == false, "a token outlived its revoked consent")
	if _, err := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh after consent revocation: %v", err)
	}
	mustf(t, adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/sessions/consent?subject=gina", nil, &list) == 200 && len(list) == 0, "consent sessions after delete: %v", list)

	// Revoking the login sessions of a subject logs the browser out.
	loggedIn(t, is, b, rp, "gina")
	mustf(t, adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/login", nil, nil) == 400, "delete login sessions without subject")
	mustf(t, adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/login?subject=gina", nil, nil) == 204, "delete login sessions")
	at, _, body := b.visit(rp.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "after session revocation: %v", q)
	// The back-channel URI is on loopback and the SSRF guard is on: no
	// logout token was sent, and the issuer logged why.
	time.Sleep(200 * time.Millisecond)
	mustf(t, len(bc.received()) == 0, "a logout token went to a private address despite the SSRF guard")
	mustf(t, strings.Contains(is.Output.String(), "back-channel logout failed"), "no log line for the refused back-channel logout")
}

// TestLogoutByHint: an RP-initiated logout ends the session its
// id_token_hint names even from a browser without the issuer's cookie (as
// Hydra); and an id_token_hint for another user than the one who logs in
// answers login_required (OIDC Core §3.1.2.1).
func TestLogoutByHint(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID)
	b := newBrowser(t, is)
	hint := loggedIn(t, is, b, rp, "henry").Extra("id_token").(string)

	// Another user logs in with henry's hint: refused.
	other := newBrowser(t, is)
	at, _, _ := other.visit(rp.conf.AuthCodeURL("s", oauth2.SetAuthURLParam("id_token_hint", hint)))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": "iris"})
	at, _, body := other.visit(to)
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "hint for another user: %v", q)

	// Logout from a cookie-less browser with the hint.
	nocookie := newBrowser(t, is)
	at, _, _ = nocookie.visit(is.PublicURL + "/oauth2/sessions/logout?id_token_hint=" + url.QueryEscape(hint))
	mustf(t, at != nil && at.Path == "/logout", "logout app: %v", at)
	var lr map[string]any
	adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/logout?logout_challenge="+at.Query().Get("logout_challenge"), nil, &lr)
	mustf(t, lr["subject"] == "henry" && lr["rp_initiated"] == true, "logout request: %v", lr)
	var done map[string]any
	adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+at.Query().Get("logout_challenge"), nil, &done)
	at, _, _ = nocookie.visit(done["redirect_to"].(string))
	mustf(t, at != nil && at.Path == "/oauth2/fallbacks/logout/callback", "after logout: %v", at)
	at, _, body = b.visit(rp.conf.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "the hinted session survived: %v", q)
}
