package extauthz

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func newHTTP(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&ForwardAuth{A: e.a}).Mount(mux)
	(&IntrospectionEndpoint{A: e.a}).Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestForwardAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.Identity = map[string]string{"x-user-id": "sub", "x-user-scopes": "scope", "x-email": "ext.missing"}
		c.Rules = []Rule{
			{Match: Match{PathPrefix: "/public"}, AllowAnonymous: true},
			{Match: Match{PathPrefix: "/admin", Methods: []string{"DELETE"}}, Scopes: []string{"admin"}},
		}
	})
	srv := newHTTP(t, e)
	valid := e.is.Token(e.key, nil)
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		want    map[string]string
		chal    string
	}{
		{"traefik style", map[string]string{"Authorization": "Bearer " + valid, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/orders", "X-Forwarded-Host": "api"},
			200, map[string]string{"X-User-Id": "client-1", "X-User-Scopes": "read write", "X-Email": ""}, ""},
		{"nginx style", map[string]string{"Authorization": "Bearer " + valid, "X-Original-URI": "/admin/x", "X-Original-Method": "DELETE"},
			403, nil, `Bearer error="insufficient_scope"`},
		{"ingress-nginx X-Original-URL", map[string]string{"X-Original-URL": "https://api/public/page"},
			200, map[string]string{"X-User-Id": "", "X-User-Scopes": "", "X-Email": ""}, ""},
		{"no token", map[string]string{"X-Forwarded-Uri": "/orders"}, 401, nil, `Bearer`},
		{"token in the forwarded query is ignored", map[string]string{"X-Forwarded-Uri": "/orders?access_token=" + valid}, 401, nil, `Bearer`},
		{"bad token", map[string]string{"Authorization": "Bearer x.y.z"}, 401, nil, `Bearer error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/auth", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			// A spoofed identity header on the auth request itself changes
			// nothing.
			req.Header.Set("X-User-Id", "root")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			for k, v := range tc.want {
				if got, ok := resp.Header[k]; !ok || got[0] != v {
					t.Errorf("%s = %v, want %q (present)", k, got, v)
				}
			}
			if tc.chal != "" {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.chal) || (tc.chal == "Bearer" && got != "Bearer") {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.chal)
				}
				if !json.Valid(body) {
					t.Errorf("body %q is not JSON", body)
				}
			}
		})
	}
	e.is.SetDown(true)
	req, _ := http.NewRequest("GET", srv.URL+"/auth", nil)
	req.Header.Set("Authorization", "Bearer ory_at_x.y")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("issuer down: %d, want 503", resp.StatusCode)
	}
}

func TestIntrospectionEndpoint(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.IntrospectionEndpoint.Clients = []EndpointClient{{ClientID: "apisix", ClientSecret: "apisix-secret-0123456789"}}
	})
	srv := newHTTP(t, e)
	jwtTok := e.is.Token(e.key, nil)
	opaque := "ory_at_opaqueopaque.sig"
	e.is.AddOpaque(opaque, nil)
	post := func(form url.Values, user, pass string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest("POST", srv.URL+"/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	if st, m, h := post(url.Values{"token": {jwtTok}}, "", ""); st != 401 || m["error"] != "invalid_client" || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no client auth: %d %v", st, m)
	}
	if st, _, _ := post(url.Values{"token": {jwtTok}}, "apisix", "wrong"); st != 401 {
		t.Fatalf("wrong secret: %d", st)
	}
	st, m, _ := post(url.Values{"token": {jwtTok}}, "apisix", "apisix-secret-0123456789")
	if st != 200 || m["active"] != true || m["sub"] != "client-1" || m["scope"] != "read write" || m["token_type"] != "Bearer" {
		t.Fatalf("JWT: %d %v", st, m)
	}
	st, m, _ = post(url.Values{"token": {opaque}, "client_id": {"apisix"}, "client_secret": {"apisix-secret-0123456789"}}, "", "")
	if st != 200 || m["active"] != true || m["client_id"] != "client-1" {
		t.Fatalf("opaque with client_secret_post: %d %v", st, m)
	}
	for _, bad := range []string{"ory_at_unknown.sig", e.is.Token(e.key, map[string]any{"exp": e.clock.Now().Unix() - 3600}), "a b"} {
		st, m, _ = post(url.Values{"token": {bad}}, "apisix", "apisix-secret-0123456789")
		if st != 200 || len(m) != 1 || m["active"] != false {
			t.Fatalf("invalid token %q: %d %v", bad[:min(len(bad), 12)], st, m)
		}
	}
	if st, m, _ := post(url.Values{}, "apisix", "apisix-secret-0123456789"); st != 400 || m["error"] != "invalid_request" {
		t.Fatalf("no token: %d %v", st, m)
	}
	resp, err := http.Get(srv.URL + "/introspect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /introspect: %d", resp.StatusCode)
	}
}
