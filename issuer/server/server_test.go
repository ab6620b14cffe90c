package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

// pingStore is an in-memory store whose Ping answers err and whose pool
// has one open connection.
type pingStore struct {
	storage.Storage
	err error
}

func (p pingStore) Ping(context.Context) error { return p.err }
func (p pingStore) Stats() *storage.PoolStats  { return &storage.PoolStats{OpenConnections: 1} }

// noPublic, noAdmin and noMetadata complete a Mounter that serves one listener only
// and advertises nothing.
type (
	noPublic   struct{}
	noAdmin    struct{}
	noMetadata struct{}
)

func (noPublic) MountPublic(*http.ServeMux) {}
func (noAdmin) MountAdmin(*http.ServeMux)   {}
func (noMetadata) Discovery(context.Context) (discovery.Metadata, error) {
	return discovery.Metadata{}, nil
}

type adminOnly struct {
	noPublic
	noMetadata
}

func (adminOnly) MountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/clients", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, []string{"admin-secret-list"})
	})
	mux.HandleFunc("POST /admin/oauth2/introspect", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, 200, map[string]bool{"active": false})
	})
}

type publicOnly struct {
	noAdmin
	noMetadata
}

func (publicOnly) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauth2/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
}

func newTestServer(t *testing.T, pingErr error) *Server {
	t.Helper()
	c := config.Default()
	s, err := New(context.Background(), Deps{Config: &c, Store: pingStore{Storage: memory.New(memory.Options{}), err: pingErr}, Version: "v-test",
		Handlers: []Mounter{adminOnly{}, publicOnly{}}, Discovery: discovery.Options{Issuer: "https://issuer.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(h http.Handler, method, path string) (*httptest.ResponseRecorder, map[string]any) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec, body
}

func TestRoutesAreSeparated(t *testing.T) {
	s := newTestServer(t, nil)
	cases := []struct {
		name        string
		h           http.Handler
		method      string
		path        string
		status      int
		wantErrCode string
	}{
		{"admin route on admin", s.Admin(), "GET", "/admin/clients", 200, ""},
		{"unprefixed alias on admin", s.Admin(), "GET", "/clients", 200, ""},
		{"introspect alias", s.Admin(), "POST", "/oauth2/introspect", 200, ""},
		{"admin route never on public", s.Public(), "GET", "/admin/clients", 404, "not_found"},
		{"alias never on public", s.Public(), "GET", "/clients", 404, "not_found"},
		{"introspection never on public", s.Public(), "POST", "/admin/oauth2/introspect", 404, "not_found"},
		{"metrics never on public", s.Public(), "GET", "/admin/metrics/prometheus", 404, "not_found"},
		{"public route never on admin", s.Admin(), "GET", "/oauth2/panic", 404, "not_found"},
		{"wrong method is JSON 405", s.Admin(), "DELETE", "/admin/clients", 405, "method_not_allowed"},
		{"panic is JSON 500", s.Public(), "GET", "/oauth2/panic", 500, "server_error"},
		{"health on public", s.Public(), "GET", "/health/ready", 200, ""},
		{"health on admin", s.Admin(), "GET", "/health/alive", 200, ""},
		{"prefixed health on admin", s.Admin(), "GET", "/admin/health/ready", 200, ""},
		{"version", s.Admin(), "GET", "/admin/version", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, body := do(tc.h, tc.method, tc.path)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Errorf("content-type %q", rec.Header().Get("Content-Type"))
			}
			if tc.wantErrCode != "" && body["error"] != tc.wantErrCode {
				t.Errorf("error = %v, want %s", body["error"], tc.wantErrCode)
			}
		})
	}
}

func TestReadyFailsWithoutDatabase(t *testing.T) {
	s := newTestServer(t, errors.New("connection refused"))
	rec, body := do(s.Admin(), "GET", "/health/ready")
	if rec.Code != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("got %d %v", rec.Code, body)
	}
	if strings.Contains(rec.Body.String(), "connection refused") {
		t.Error("internal cause leaked to the client")
	}
	rec, _ = do(s.Admin(), "GET", "/health/alive")
	if rec.Code != 200 {
		t.Fatal("alive must not depend on the database")
	}
}

func TestMetricsExposeRequests(t *testing.T) {
	s := newTestServer(t, nil)
	do(s.Admin(), "GET", "/admin/clients")
	rec, _ := do(s.Admin(), "GET", "/admin/metrics/prometheus")
	for _, want := range []string{`gatehouse_http_requests_total{code="200",method="GET",route="GET /admin/clients",server="admin"} 1`,
		"gatehouse_http_request_duration_seconds_bucket", "gatehouse_db_open_connections 1"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// tokenEndpoint is a handler that serves a token endpoint and advertises it.
type tokenEndpoint struct {
	noAdmin
	url string
}

func (tokenEndpoint) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {})
}

func (e tokenEndpoint) Discovery(context.Context) (discovery.Metadata, error) {
	return discovery.Metadata{TokenEndpoint: e.url, GrantTypesSupported: []string{"client_credentials"}}, nil
}

// advertiser mounts nothing and advertises m.
type advertiser struct {
	noPublic
	noAdmin
	m discovery.Metadata
}

func (a advertiser) Discovery(context.Context) (discovery.Metadata, error) { return a.m, nil }

// The discovery document is made of what the mounted handlers contribute,
// served on the public listener only; contributions that contradict each
// other stop the server from being built.
func TestDiscoveryFromHandlers(t *testing.T) {
	c := config.Default()
	build := func(hs ...Mounter) (*Server, error) {
		return New(context.Background(), Deps{Config: &c, Store: pingStore{}, Handlers: hs,
			Discovery: discovery.Options{Issuer: "https://issuer.example"}})
	}
	s, err := build(adminOnly{}, tokenEndpoint{url: "https://issuer.example/oauth2/token"})
	if err != nil {
		t.Fatal(err)
	}
	rec, doc := do(s.Public(), "GET", discovery.OpenIDConfigurationPath)
	if rec.Code != 200 || doc["issuer"] != "https://issuer.example" || doc["token_endpoint"] != "https://issuer.example/oauth2/token" ||
		fmt.Sprint(doc["grant_types_supported"]) != "[client_credentials]" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec, _ := do(s.Admin(), "GET", discovery.OpenIDConfigurationPath); rec.Code != 404 {
		t.Fatalf("discovery on the admin listener: %d", rec.Code)
	}
	s, err = build(adminOnly{})
	if err != nil {
		t.Fatal(err)
	}
	if _, doc := do(s.Public(), "GET", discovery.OpenIDConfigurationPath); doc["token_endpoint"] != nil || doc["grant_types_supported"] != nil {
		t.Fatalf("a handler that is not mounted is advertised: %v", doc)
	}
	if _, err := build(tokenEndpoint{url: "https://issuer.example/oauth2/token"}, advertiser{m: discovery.Metadata{TokenEndpoint: "https://other.example/token"}}); err == nil {
		t.Fatal("two token endpoints were advertised")
	}
}
