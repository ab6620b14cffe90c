package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// unavailableAnswer checks a 503 with a Retry-After of a few seconds and a
// JSON temporarily_unavailable body.
func unavailableAnswer(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &body)
	secs, aerr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || aerr != nil || secs < 1 || secs > 30 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || body.Error != "temporarily_unavailable" || body.ErrorDescription == "" {
		t.Fatalf("%s while the database is down: %d Retry-After=%q %s %s, want 503 with Retry-After and temporarily_unavailable",
			what, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), raw)
	}
}

// TestDatabaseUnavailable: while PostgreSQL cannot be reached, the token,
// revocation, introspection, userinfo and admin endpoints answer 503 with
// Retry-After and temporarily_unavailable (RFC 6749 §4.1.2.1, RFC 7009
// §2.2.1) instead of a 500, the authorization endpoint shows it too, and
// everything works again once the database is back.
func TestDatabaseUnavailable(t *testing.T) {
	dsn := migratedPostgres(t)
	u, _ := url.Parse(dsn)
	proxy := testbin.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": u.String()}))

	c := newFlowClient(t, is, nil)
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "alice")
	tok, err := rp.conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	proxy.Cut()

	form := func(endpoint string, v url.Values, basic bool) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		return http.DefaultClient.Do(req)
	}
	bearer := func(u, token string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	resp, err := form(is.PublicURL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	unavailableAnswer(t, "token (refresh_token grant)", resp, err)
	resp, err = form(is.PublicURL+"/oauth2/revoke", url.Values{"token": {tok.RefreshToken}}, true)
	unavailableAnswer(t, "revocation", resp, err)
	resp, err = form(is.AdminURL+"/admin/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, false)
	unavailableAnswer(t, "introspection", resp, err)
	resp, err = bearer(is.PublicURL+"/userinfo", tok.AccessToken)
	unavailableAnswer(t, "userinfo", resp, err)
	resp, err = http.Get(is.AdminURL + "/admin/clients")
	unavailableAnswer(t, "admin list clients", resp, err)
	resp, err = http.Get(is.AdminURL + "/admin/oauth2/auth/requests/login?login_challenge=abc")
	unavailableAnswer(t, "admin login request", resp, err)
	resp, err = http.Get(is.AdminURL + "/health/ready")
	unavailableAnswer(t, "readiness", resp, err)

	// The authorization endpoint: for a client it cannot look up, the
	// error page (the browser cannot be sent back to an unverified
	// redirect_uri) answers 503 too; for a client still in the issuer's
	// short client cache, the client gets temporarily_unavailable at its
	// redirect URI (RFC 6749 §4.1.2.1).
	page, err := http.Get(is.PublicURL + "/oauth2/auth?response_type=code&client_id=never-seen&state=s1")
	if err != nil {
		t.Fatal(err)
	}
	pageBody, _ := io.ReadAll(page.Body)
	page.Body.Close()
	mustf(t, page.StatusCode == http.StatusServiceUnavailable && page.Header.Get("Retry-After") != "" &&
		strings.Contains(string(pageBody), "temporarily_unavailable"), "authorization error page: %d %q %s", page.StatusCode, page.Header.Get("Retry-After"), pageBody)
	at, status, body := newBrowser(t, is).visit(rp.conf.AuthCodeURL("s2"))
	switch {
	case at != nil && at.Path == "/callback":
		mustf(t, at.Query().Get("error") == "temporarily_unavailable" && at.Query().Get("state") == "s2", "authorization redirect: %v", at)
	case at != nil && at.Path == "/oauth2/fallbacks/error":
		mustf(t, at.Query().Get("error") == "temporarily_unavailable", "authorization error page: %v", at)
	default:
		t.Fatalf("authorization request while the database is down: %v %d %s", at, status, body)
	}

	// Back up: the same pool reconnects and the same calls succeed.
	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := get(t, is.AdminURL+"/health/ready")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness after the database came back: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustf(t, introspectToken(t, is, tok.AccessToken)["active"] == true, "introspection after the database came back")
	code, _, _ := get(t, is.AdminURL+"/admin/clients")
	mustf(t, code == http.StatusOK, "admin list clients after the database came back: %d", code)
}
