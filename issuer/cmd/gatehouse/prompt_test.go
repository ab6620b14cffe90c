package main_test

import (
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestPromptRegistration: prompt=registration creates the login challenge
// as usual and sends the browser to urls.registration (URLS_REGISTRATION)
// with login_challenge, never reusing a remembered session; the flow then
// continues as a login. Without URLS_REGISTRATION it goes to the login
// app, as in Hydra. prompt=none with registration is invalid_request.
func TestPromptRegistration(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"URLS_REGISTRATION": appBase + "/register"}))
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, "openid")
	b := newBrowser(t, is)

	loggedIn(t, is, b, rp, "alice") // a remembered session first

	at, _, _ := b.visit(rp.conf.AuthCodeURL("st-2", oauth2.SetAuthURLParam("prompt", "registration")))
	mustf(t, at != nil && at.Path == "/register" && at.Query().Get("login_challenge") != "", "prompt=registration went to %v", at)
	at.Path = "/login" // the registration app plays the login app's part
	req, to := acceptLogin(t, is, at, map[string]any{"subject": "new-user"})
	mustf(t, req["skip"] == false, "prompt=registration reused the remembered session: %v", req)
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(false))
	at, _, body := b.visit(to)
	q := callbackParams(t, at, body)
	mustf(t, q.Get("code") != "" && q.Get("state") == "st-2", "registration flow: %v", q)

	at, _, body = b.visit(rp.conf.AuthCodeURL("st-3", oauth2.SetAuthURLParam("prompt", "none registration")))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "invalid_request" && q.Get("state") == "st-3", "prompt=none registration: %v", q)

	// Without urls.registration: the login app.
	is2 := testbin.StartIssuer(t, flowEnv(nil))
	rp2 := newRP(t, is2, newFlowClient(t, is2, nil), "openid")
	at, _, _ = newBrowser(t, is2).visit(rp2.conf.AuthCodeURL("st-4", oauth2.SetAuthURLParam("prompt", "registration")))
	mustf(t, at != nil && at.Path == "/login" && at.Query().Get("login_challenge") != "", "prompt=registration without URLS_REGISTRATION went to %v", at)
}

// TestPromptNoneErrors: prompt=none answers login_required without a
// session (OIDC Core §3.1.2.6), consent_required without a remembered
// consent, and interaction_required when the login or consent app, asked
// to confirm without a page (skip), rejects without naming an error; an
// app's own error code still wins.
func TestPromptNoneErrors(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, "openid")
	b := newBrowser(t, is)
	none := oauth2.SetAuthURLParam("prompt", "none")

	at, _, body := b.visit(rp.conf.AuthCodeURL("st-1", none))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required" && q.Get("state") == "st-1", "no session: %v", q)

	// signIn runs a whole flow: a remembered login, and a consent
	// remembered when rememberConsent.
	signIn := func(state string, rememberConsent bool) {
		at, _, _ := b.visit(rp.conf.AuthCodeURL(state))
		_, to := acceptLogin(t, is, at, map[string]any{"subject": "alice", "remember": true, "remember_for": 3600})
		at, _, _ = b.visit(to)
		_, to = acceptConsent(t, is, at, grantAll(rememberConsent))
		at, _, body := b.visit(to)
		callbackParams(t, at, body)
	}
	signIn("st-2", false)

	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-3", none))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": "alice"})
	at, _, body = b.visit(to)
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "consent_required" && q.Get("state") == "st-3", "no remembered consent: %v", q)

	reject := func(kind, challenge string, body map[string]any) string {
		var out map[string]any
		code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/"+kind+"/reject?"+kind+"_challenge="+challenge, body, &out)
		mustf(t, code == 200, "reject %s: %d %v", kind, code, out)
		return out["redirect_to"].(string)
	}
	// The login app rejects the skipped login without an error code.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-4", none))
	mustf(t, at != nil && at.Path == "/login", "expected the login app, got %v", at)
	at, _, body = b.visit(reject("login", at.Query().Get("login_challenge"), map[string]any{}))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "interaction_required" && q.Get("state") == "st-4", "login app rejected prompt=none: %v", q)

	// With a remembered consent, the consent app rejects the skipped
	// consent without an error code.
	signIn("st-5", true)
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-6", none))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "alice"})
	at, _, _ = b.visit(to)
	mustf(t, at != nil && at.Path == "/consent", "expected the consent app, got %v", at)
	at, _, body = b.visit(reject("consent", at.Query().Get("consent_challenge"), map[string]any{}))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "interaction_required" && q.Get("state") == "st-6", "consent app rejected prompt=none: %v", q)

	// The app's own code is kept; without prompt=none the default stays
	// access_denied.
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-7", none))
	at, _, body = b.visit(reject("login", at.Query().Get("login_challenge"), map[string]any{"error": "login_required"}))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required", "app's error under prompt=none: %v", q)
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-8"))
	at, _, body = b.visit(reject("login", at.Query().Get("login_challenge"), map[string]any{}))
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "access_denied", "rejection without prompt=none: %v", q)
}
