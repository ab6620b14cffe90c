package main_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestCORS: the public listener answers CORS per SERVE_PUBLIC_CORS_* and
// the clients' allowed_cors_origins; the admin listener only per its own
// settings.
func TestCORS(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{
		"SERVE_PUBLIC_CORS_ENABLED":         "true",
		"SERVE_PUBLIC_CORS_ALLOWED_ORIGINS": "https://global.example",
	}))
	newFlowClient(t, is, map[string]any{"allowed_cors_origins": []string{"https://spa.example"}})
	do := func(method, u, origin string) *http.Response {
		req, _ := http.NewRequest(method, u, strings.NewReader("grant_type=x"))
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		method, url, origin, want string
	}{
		{http.MethodOptions, is.PublicURL + "/oauth2/token", "https://spa.example", "https://spa.example"},
		{http.MethodOptions, is.PublicURL + "/oauth2/token", "https://global.example", "https://global.example"},
		{http.MethodOptions, is.PublicURL + "/oauth2/token", "https://evil.example", ""},
		{http.MethodPost, is.PublicURL + "/oauth2/token", "https://spa.example", "https://spa.example"},
		{http.MethodPost, is.PublicURL + "/oauth2/token", "https://evil.example", ""},
		{http.MethodOptions, is.PublicURL + "/userinfo", "https://spa.example", "https://spa.example"},
		{http.MethodOptions, is.AdminURL + "/admin/clients", "https://spa.example", ""},
	} {
		resp := do(tc.method, tc.url, tc.origin)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
			t.Errorf("%s %s from %s: Access-Control-Allow-Origin %q, want %q (%d)", tc.method, tc.url, tc.origin, got, tc.want, resp.StatusCode)
		}
	}
}

// TestCookieAttributes: the issuer's cookies carry the configured names
// (with a per-client suffix for CSRF), SameSite, Secure and HttpOnly, and
// never a readable value.
func TestCookieAttributes(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{
		"SERVE_COOKIES_NAMES_LOGIN_CSRF": "myidp_login_csrf",
		"SERVE_COOKIES_SAME_SITE_MODE":   "None",
	}))
	c := newFlowClient(t, is, nil)
	b := newBrowser(t, is)
	resp, err := b.hc.Get(is.PublicURL + "/oauth2/auth?client_id=" + c["client_id"].(string) + "&response_type=code&scope=openid&state=abcdefgh")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", resp.Header["Set-Cookie"])
	}
	ck := cookies[0]
	mustf(t, strings.HasPrefix(ck.Name, "myidp_login_csrf_") && ck.HttpOnly && ck.Secure && ck.SameSite == http.SameSiteNoneMode &&
		ck.Path == "/" && len(ck.Value) > 40, "login CSRF cookie: %+v", ck)
}
