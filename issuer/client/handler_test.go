package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type apiResult struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %s", r.body)
	}
	return m
}

func call(t *testing.T, h http.Handler, method, path, body string, hdr ...string) apiResult {
	t.Helper()
	var rd *bytes.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := apiResult{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	// No response ever carries a secret hash.
	if bytes.Contains(res.body, []byte("$pbkdf2")) || bytes.Contains(res.body, []byte("$2a$")) || bytes.Contains(res.body, []byte("sha256:")) {
		t.Fatalf("%s %s: response contains a hash: %s", method, path, res.body)
	}
	return res
}

func newTestHandler(t *testing.T, dcr bool) (*Handler, http.Handler) {
	m := newTestManager(t, newMemClients(), newClock(), -1)
	h, err := New(Deps{Manager: m}, Options{Registration: RegistrationOptions{
		Enabled: dcr, DefaultScope: []string{"openid", "email"}, PublicURL: "https://auth.example.com/",
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.MountAdmin(mux)
	h.MountPublic(mux)
	return h, mux
}

func TestAdminAPI(t *testing.T) {
	_, mux := newTestHandler(t, false)
	create := call(t, mux, "POST", "/admin/clients", `{"client_id":"c1","client_name":"One","redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","refresh_token"]}`)
	if create.status != 201 {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	cm := create.json(t)
	secret, _ := cm["client_secret"].(string)
	if cm["client_id"] != "c1" || len(secret) < 26 || cm["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("create response: %s", create.body)
	}
	_ = call(t, mux, "POST", "/admin/clients", `{"client_id":"pub","token_endpoint_auth_method":"none"}`)

	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string // expected "error" for failures
		check                    func(t *testing.T, r apiResult)
	}{
		{"create invalid json", "POST", "/admin/clients", `{"client_id":`, 400, "invalid_request", nil},
		{"create wrong type", "POST", "/admin/clients", `{"redirect_uris":"x"}`, 400, "invalid_request", nil},
		{"create empty body", "POST", "/admin/clients", ``, 400, "invalid_request", nil},
		{"create bad redirect", "POST", "/admin/clients", `{"redirect_uris":["http://evil.example/cb"]}`, 400, "invalid_redirect_uri", nil},
		{"create bad metadata", "POST", "/admin/clients", `{"grant_types":["password"]}`, 400, "invalid_client_metadata", nil},
		{"create duplicate", "POST", "/admin/clients", `{"client_id":"c1"}`, 409, "conflict", nil},
		{"get", "GET", "/admin/clients/c1", "", 200, "", func(t *testing.T, r apiResult) {
			m := r.json(t)
			if _, ok := m["client_secret"]; ok || m["client_name"] != "One" {
				t.Fatalf("get: %s", r.body)
			}
		}},
		{"get unknown", "GET", "/admin/clients/nope", "", 404, "not_found", nil},
		{"put mismatched id", "PUT", "/admin/clients/c1", `{"client_id":"c2"}`, 400, "invalid_request", nil},
		{"put unknown", "PUT", "/admin/clients/nope", `{"client_name":"x"}`, 404, "not_found", nil},
		{"put invalid", "PUT", "/admin/clients/c1", `{"response_types":["magic"]}`, 400, "invalid_client_metadata", nil},
		{"put replaces", "PUT", "/admin/clients/c1", `{"client_name":"Uno","redirect_uris":["https://a.example/cb"]}`, 200, "", func(t *testing.T, r apiResult) {
			m := r.json(t)
			if _, ok := m["client_secret"]; ok || m["client_name"] != "Uno" {
				t.Fatalf("put: %s", r.body)
			}
			if g := m["grant_types"].([]any); len(g) != 1 {
				t.Fatalf("put did not replace grant_types: %v", g)
			}
		}},
		{"patch", "PATCH", "/admin/clients/c1", `[{"op":"replace","path":"/client_name","value":"Patched"}]`, 200, "", func(t *testing.T, r apiResult) {
			if r.json(t)["client_name"] != "Patched" {
				t.Fatalf("patch: %s", r.body)
			}
		}},
		{"patch client_id", "PATCH", "/admin/clients/c1", `[{"op":"replace","path":"/client_id","value":"x"}]`, 400, "invalid_request", nil},
		{"patch malformed", "PATCH", "/admin/clients/c1", `{"op":"replace"}`, 400, "invalid_request", nil},
		{"patch invalid result", "PATCH", "/admin/clients/c1", `[{"op":"add","path":"/redirect_uris/-","value":"not a uri"}]`, 400, "invalid_redirect_uri", nil},
		{"patch unknown", "PATCH", "/admin/clients/nope", `[]`, 404, "not_found", nil},
		{"lifespans", "PUT", "/admin/clients/c1/lifespans", `{"authorization_code_grant_access_token_lifespan":"30m0s"}`, 200, "", func(t *testing.T, r apiResult) {
			if r.json(t)["authorization_code_grant_access_token_lifespan"] != "30m0s" {
				t.Fatalf("lifespans: %s", r.body)
			}
		}},
		{"lifespans invalid", "PUT", "/admin/clients/c1/lifespans", `{"implicit_grant_id_token_lifespan":"soon"}`, 400, "invalid_request", nil},
		{"lifespans negative", "PUT", "/admin/clients/c1/lifespans", `{"implicit_grant_id_token_lifespan":"-1h"}`, 400, "invalid_client_metadata", nil},
		{"lifespans unknown", "PUT", "/admin/clients/nope/lifespans", `{}`, 404, "not_found", nil},
		{"rotate", "POST", "/admin/clients/c1/secrets/rotate", "", 200, "", func(t *testing.T, r apiResult) {
			if s, _ := r.json(t)["client_secret"].(string); len(s) < 26 || s == secret {
				t.Fatalf("rotate: %s", r.body)
			}
		}},
		{"rotate public", "POST", "/admin/clients/pub/secrets/rotate", "", 400, "invalid_request", nil},
		{"rotate unknown", "POST", "/admin/clients/nope/secrets/rotate", "", 404, "not_found", nil},
		{"finalize rotation", "DELETE", "/admin/clients/c1/secrets/rotate", "", 204, "", nil},
		{"finalize unknown", "DELETE", "/admin/clients/nope/secrets/rotate", "", 404, "not_found", nil},
		{"list bad page_size", "GET", "/admin/clients?page_size=abc", "", 400, "invalid_request", nil},
		{"list zero page_size", "GET", "/admin/clients?page_size=0", "", 400, "invalid_request", nil},
		{"list bad page_token", "GET", "/admin/clients?page_token=***", "", 400, "invalid_request", nil},
		{"delete", "DELETE", "/admin/clients/pub", "", 204, "", nil},
		{"delete again", "DELETE", "/admin/clients/pub", "", 404, "not_found", nil},
		{"get deleted", "GET", "/admin/clients/pub", "", 404, "not_found", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, mux, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				m := r.json(t)
				if m["error"] != tt.code || m["error_description"] == "" {
					t.Fatalf("error %v, want %s: %s", m["error"], tt.code, r.body)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestAdminListPagination(t *testing.T) {
	_, mux := newTestHandler(t, false)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		owner := "team-1"
		if id == "d" {
			owner = "team-2"
		}
		if r := call(t, mux, "POST", "/admin/clients", `{"client_id":"`+id+`","owner":"`+owner+`","token_endpoint_auth_method":"none"}`); r.status != 201 {
			t.Fatal(string(r.body))
		}
	}
	var ids []string
	path := "/admin/clients?page_size=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		r := call(t, mux, "GET", path, "")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var list []map[string]any
		_ = json.Unmarshal(r.body, &list)
		for _, c := range list {
			ids = append(ids, c["client_id"].(string))
		}
		path = ""
		for _, l := range strings.Split(r.header.Get("Link"), ",") {
			if strings.HasSuffix(l, `rel="next"`) {
				path = l[strings.Index(l, "<")+1 : strings.Index(l, ">")]
				if !strings.Contains(path, "page_size=2") || !strings.Contains(path, "page_token=") {
					t.Fatalf("next link %q", l)
				}
			}
		}
	}
	if strings.Join(ids, ",") != "a,b,c,d,e" {
		t.Fatalf("paged ids %v", ids)
	}
	r := call(t, mux, "GET", "/admin/clients?owner=team-2", "")
	var list []map[string]any
	_ = json.Unmarshal(r.body, &list)
	if len(list) != 1 || list[0]["client_id"] != "d" {
		t.Fatalf("owner filter: %s", r.body)
	}
	// An empty list is [] (not null), and page_size above the maximum is clamped.
	r = call(t, mux, "GET", "/admin/clients?client_name=nobody&page_size=100000", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" || !strings.Contains(r.header.Get("Link"), "page_size=500") {
		t.Fatalf("empty list: %d %s %s", r.status, r.body, r.header.Get("Link"))
	}
}

func TestDynamicRegistration(t *testing.T) {
	_, mux := newTestHandler(t, true)
	r := call(t, mux, "POST", "/oauth2/register", `{"client_name":"dyn","redirect_uris":["https://app.example/cb"]}`)
	if r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	m := r.json(t)
	id, _ := m["client_id"].(string)
	token, _ := m["registration_access_token"].(string)
	if id == "" || token == "" || len(m["client_secret"].(string)) < 26 ||
		m["registration_client_uri"] != "https://auth.example.com/oauth2/register/"+id || m["scope"] != "openid email" {
		t.Fatalf("register response: %s", r.body)
	}
	uri := "/oauth2/register/" + id
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	for _, tt := range []struct {
		name, body, code string
	}{
		{"client_id", `{"client_id":"mine"}`, "invalid_client_metadata"},
		{"client_secret", `{"client_secret":"chosen-secret"}`, "invalid_client_metadata"},
		{"metadata", `{"metadata":{"a":1}}`, "invalid_client_metadata"},
		{"skip_consent", `{"skip_consent":true}`, "invalid_client_metadata"},
		{"skip_logout_consent", `{"skip_logout_consent":true}`, "invalid_client_metadata"},
		{"access_token_strategy", `{"access_token_strategy":"jwt"}`, "invalid_client_metadata"},
		{"token_exchange_impersonation", `{"token_exchange_impersonation":true}`, "invalid_client_metadata"},
		{"lifespans", `{"implicit_grant_id_token_lifespan":"1h"}`, "invalid_client_metadata"},
		{"bad redirect", `{"redirect_uris":["http://evil.example/"]}`, "invalid_redirect_uri"},
		{"bad json", `{`, "invalid_request"},
	} {
		t.Run("register refuses "+tt.name, func(t *testing.T) {
			r := call(t, mux, "POST", "/oauth2/register", tt.body)
			if r.status != 400 || r.json(t)["error"] != tt.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}

	for _, tt := range []struct {
		name   string
		path   string
		hdr    []string
		status int
	}{
		{"no token", uri, nil, 401},
		{"basic instead of bearer", uri, []string{"Authorization", "Basic eDp5"}, 401},
		{"wrong token", uri, bearer("wrong"), 401},
		{"unknown client", "/oauth2/register/nope", bearer(token), 401},
	} {
		t.Run("GET "+tt.name, func(t *testing.T) {
			r := call(t, mux, "GET", tt.path, "", tt.hdr...)
			if r.status != tt.status || r.json(t)["error"] != "invalid_token" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d %s %v", r.status, r.body, r.header)
			}
		})
	}
	// A client created through the admin API has no registration token.
	_ = call(t, mux, "POST", "/admin/clients", `{"client_id":"admin-made"}`)
	if r := call(t, mux, "GET", "/oauth2/register/admin-made", "", bearer(token)...); r.status != 401 {
		t.Fatalf("admin-made client readable through DCR: %d", r.status)
	}

	r = call(t, mux, "GET", uri, "", bearer(token)...)
	if r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if _, ok := got["client_secret"]; ok || got["registration_client_uri"] == nil {
		t.Fatalf("get response: %s", r.body)
	}

	// PUT may echo admin-only fields unchanged but not change them.
	if r := call(t, mux, "PUT", uri, `{"client_id":"`+id+`","skip_consent":true}`, bearer(token)...); r.status != 400 {
		t.Fatalf("put skip_consent: %d %s", r.status, r.body)
	}
	if r := call(t, mux, "PUT", uri, `{"client_id":"other"}`, bearer(token)...); r.status != 400 {
		t.Fatalf("put other id: %d %s", r.status, r.body)
	}
	if r := call(t, mux, "PUT", uri, `{"client_secret":"not-the-secret"}`, bearer(token)...); r.status != 400 {
		t.Fatalf("put wrong secret: %d %s", r.status, r.body)
	}
	got["client_name"] = "renamed"
	echo, _ := json.Marshal(got)
	r = call(t, mux, "PUT", uri, string(echo), bearer(token)...)
	if r.status != 200 {
		t.Fatalf("put echo: %d %s", r.status, r.body)
	}
	pm := r.json(t)
	newToken, _ := pm["registration_access_token"].(string)
	if pm["client_name"] != "renamed" || newToken == "" || newToken == token {
		t.Fatalf("put response: %s", r.body)
	}
	// The registration access token was rotated.
	if r := call(t, mux, "GET", uri, "", bearer(token)...); r.status != 401 {
		t.Fatalf("old token still works: %d", r.status)
	}
	if r := call(t, mux, "DELETE", uri, "", bearer(newToken)...); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := call(t, mux, "GET", uri, "", bearer(newToken)...); r.status != 401 {
		t.Fatalf("deleted client: %d", r.status)
	}
	if r := call(t, mux, "GET", "/admin/clients/"+id, ""); r.status != 404 {
		t.Fatalf("deleted client via admin: %d", r.status)
	}
}

func TestDynamicRegistrationDisabled(t *testing.T) {
	_, mux := newTestHandler(t, false)
	if r := call(t, mux, "POST", "/oauth2/register", `{}`); r.status != 404 {
		t.Fatalf("registration mounted while disabled: %d", r.status)
	}
}

// registration_endpoint is advertised exactly when registration is
// mounted, under the public URL.
func TestRegistrationDiscovery(t *testing.T) {
	for _, dcr := range []bool{false, true} {
		h, mux := newTestHandler(t, dcr)
		m, err := h.Discovery(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mounted := call(t, mux, "POST", "/oauth2/register", `{"redirect_uris":["https://a.example/cb"]}`).status != http.StatusNotFound
		if want := map[bool]string{true: "https://auth.example.com/oauth2/register"}[dcr]; m.RegistrationEndpoint != want || mounted != dcr {
			t.Errorf("registration %v: advertised %q, mounted %v", dcr, m.RegistrationEndpoint, mounted)
		}
	}
	if _, err := New(Deps{}, Options{}); err == nil {
		t.Error("a Handler without a Manager was built")
	}
	if _, err := New(Deps{Manager: newTestManager(t, newMemClients(), newClock(), -1)}, Options{Registration: RegistrationOptions{Enabled: true}}); err == nil {
		t.Error("registration without a public URL was built")
	}
}
