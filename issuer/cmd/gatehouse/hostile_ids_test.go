package main_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// hostileIDs are identifiers no client, subject or challenge can have.
// PostgreSQL refused the first two with SQLSTATE 22021, answered as 500.
var hostileIDs = map[string]string{
	"NUL":               "demo\x00client",
	"invalid UTF-8":     "demo\xff\xfeclient",
	"control character": "demo\x1bclient",
	"10 KB":             strings.Repeat("a", 10<<10),
}

// hostileRoute is one request carrying an identifier v where the route
// reads one.
type hostileRoute struct {
	name   string
	admin  bool
	method string
	path   func(v string) string // path and query, escaped
	form   func(v string) url.Values
	basic  bool // v is the client id of HTTP Basic credentials
}

func hostileRoutes() []hostileRoute {
	esc, q := url.PathEscape, url.QueryEscape
	get := func(name, path string) hostileRoute {
		return hostileRoute{name: name, admin: true, method: http.MethodGet, path: func(v string) string {
			return strings.ReplaceAll(path, "V", q(v))
		}}
	}
	with := func(r hostileRoute, method string) hostileRoute {
		r.method = method
		r.name = method + " " + r.name
		return r
	}
	inPath := func(method, path string) hostileRoute {
		return hostileRoute{name: method + " " + path, admin: true, method: method, path: func(v string) string {
			return strings.ReplaceAll(path, "{v}", esc(v))
		}}
	}
	token := func(name string, basic bool, form func(v string) url.Values) hostileRoute {
		return hostileRoute{name: name, method: http.MethodPost, path: func(string) string { return "/oauth2/token" }, form: form, basic: basic}
	}
	return []hostileRoute{
		token("token, client id in Basic", true, func(string) url.Values {
			return url.Values{"grant_type": {"client_credentials"}}
		}),
		token("token, client id in the form with a secret", false, func(v string) url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {v}, "client_secret": {"secret"}}
		}),
		token("token, public client id in the form", false, func(v string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "client_id": {v}, "code": {"x"}, "redirect_uri": {"http://127.0.0.1/cb"}}
		}),
		{name: "revoke, client id in Basic", method: http.MethodPost, path: func(string) string { return "/oauth2/revoke" },
			form: func(string) url.Values { return url.Values{"token": {"x"}} }, basic: true},
		{name: "registration", method: http.MethodGet, path: func(v string) string { return "/oauth2/register/" + esc(v) }},
		inPath(http.MethodGet, "/admin/clients/{v}"),
		inPath(http.MethodDelete, "/admin/clients/{v}"),
		inPath(http.MethodPatch, "/admin/clients/{v}"),
		inPath(http.MethodPut, "/admin/clients/{v}"),
		inPath(http.MethodPut, "/admin/clients/{v}/lifespans"),
		inPath(http.MethodPost, "/admin/clients/{v}/secrets/rotate"),
		inPath(http.MethodGet, "/admin/keys/{v}"),
		inPath(http.MethodGet, "/admin/keys/hydra.openid.id-token/{v}"),
		inPath(http.MethodDelete, "/admin/keys/{v}/{v}"),
		inPath(http.MethodGet, "/admin/trust/grants/jwt-bearer/issuers/{v}"),
		inPath(http.MethodDelete, "/admin/trust/grants/jwt-bearer/issuers/{v}"),
		get("client list by name", "/admin/clients?client_name=V"),
		get("client list by owner", "/admin/clients?owner=V"),
		{name: "client list page_token", admin: true, method: http.MethodGet, path: func(v string) string {
			return "/admin/clients?page_token=" + base64.RawURLEncoding.EncodeToString([]byte(v))
		}},
		{name: "trust list page_token", admin: true, method: http.MethodGet, path: func(v string) string {
			return "/admin/trust/grants/jwt-bearer/issuers?page_token=" + base64.RawURLEncoding.EncodeToString([]byte(v))
		}},
		get("trust list by issuer", "/admin/trust/grants/jwt-bearer/issuers?issuer=V"),
		get("login request", "/admin/oauth2/auth/requests/login?login_challenge=V"),
		get("consent request", "/admin/oauth2/auth/requests/consent?consent_challenge=V"),
		get("logout request", "/admin/oauth2/auth/requests/logout?logout_challenge=V"),
		with(get("login accept", "/admin/oauth2/auth/requests/login/accept?login_challenge=V"), http.MethodPut),
		with(get("consent reject", "/admin/oauth2/auth/requests/consent/reject?consent_challenge=V"), http.MethodPut),
		with(get("logout accept", "/admin/oauth2/auth/requests/logout/accept?logout_challenge=V"), http.MethodPut),
		get("consent sessions", "/admin/oauth2/auth/sessions/consent?subject=V"),
		with(get("consent sessions of a client", "/admin/oauth2/auth/sessions/consent?subject=s&client=V"), http.MethodDelete),
		with(get("login sessions by subject", "/admin/oauth2/auth/sessions/login?subject=V"), http.MethodDelete),
		with(get("login sessions by sid", "/admin/oauth2/auth/sessions/login?sid=V"), http.MethodDelete),
		with(get("tokens of a client", "/admin/oauth2/tokens?client_id=V"), http.MethodDelete),
	}
}

// TestHostileIdentifiers: an identifier with a NUL byte, invalid UTF-8, a
// control character or 10 KB, wherever a public or admin route reads one,
// is answered with a 4xx and a JSON error body on every backend, never a
// 5xx.
func TestHostileIdentifiers(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, map[string]string{"DSN": db.dsn(t)})
			for _, rt := range hostileRoutes() {
				for name, v := range hostileIDs {
					status, body := sendHostile(t, is, rt, v)
					var e struct {
						Error string `json:"error"`
					}
					if status < 400 || status >= 500 || json.Unmarshal(body, &e) != nil || e.Error == "" {
						t.Errorf("%s, %s: %d %.200s", rt.name, name, status, body)
					}
				}
			}
		})
	}
}

func sendHostile(t *testing.T, is *testbin.Issuer, rt hostileRoute, v string) (int, []byte) {
	t.Helper()
	base := is.PublicURL
	if rt.admin {
		base = is.AdminURL
	}
	var body io.Reader
	if rt.form != nil {
		body = strings.NewReader(rt.form(v).Encode())
	}
	req, err := http.NewRequest(rt.method, base+rt.path(v), body)
	if err != nil {
		t.Fatal(err)
	}
	if rt.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if rt.basic {
		req.SetBasicAuth(url.QueryEscape(v), "secret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", rt.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
