package cors

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

// newClients returns a client registry over an in-memory store holding cs.
func newClients(t *testing.T, cs ...*client.Client) *client.Manager {
	t.Helper()
	m, err := client.NewManager(client.ManagerOptions{Store: memory.New(memory.Options{}).Clients(), CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	for _, c := range cs {
		if _, err := m.Create(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestCORS(t *testing.T) {
	clients := newClients(t,
		&client.Client{ID: "spa", AllowedCORSOrigins: []string{"https://spa.example"}},
		&client.Client{ID: "other", AllowedCORSOrigins: []string{"https://other.example"}},
	)
	cfg := config.Default().Serve.Public.CORS
	cfg.Enabled = true
	cfg.AllowedOrigins = []string{"https://global.example"}
	cfg.MaxAge = 60
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := (&Handler{Config: cfg, Clients: clients}).Wrap(next)
	for _, tc := range []struct {
		name, method, origin, basic, reqMethod, reqHeaders string
		status                                             int
		allowOrigin                                        string
	}{
		{"no origin", "POST", "", "", "", "", 299, ""},
		{"global origin", "POST", "https://global.example", "", "", "", 299, "https://global.example"},
		{"client origin, no credentials", "POST", "https://spa.example", "", "", "", 299, "https://spa.example"},
		{"client origin, its client", "POST", "https://spa.example", "spa", "", "", 299, "https://spa.example"},
		{"another client's origin", "POST", "https://other.example", "spa", "", "", 299, ""},
		{"unknown origin", "POST", "https://evil.example", "", "", "", 299, ""},
		{"preflight allowed", "OPTIONS", "https://spa.example", "", "POST", "Content-Type, authorization", 204, "https://spa.example"},
		{"preflight unknown origin", "OPTIONS", "https://evil.example", "", "POST", "", 204, ""},
		{"preflight bad method", "OPTIONS", "https://spa.example", "", "TRACE", "", 204, "https://spa.example"},
		{"plain OPTIONS passes through", "OPTIONS", "https://spa.example", "", "", "", 299, "https://spa.example"},
	} {
		r := httptest.NewRequest(tc.method, "/oauth2/token", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.basic != "" {
			r.SetBasicAuth(tc.basic, "secret")
		}
		if tc.reqMethod != "" {
			r.Header.Set("Access-Control-Request-Method", tc.reqMethod)
		}
		if tc.reqHeaders != "" {
			r.Header.Set("Access-Control-Request-Headers", tc.reqHeaders)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.allowOrigin {
			t.Errorf("%s: %d %q, want %d %q", tc.name, w.Code, w.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.allowOrigin)
		}
		if tc.name == "preflight allowed" && (w.Header().Get("Access-Control-Allow-Methods") == "" || w.Header().Get("Access-Control-Max-Age") != "60") {
			t.Errorf("preflight headers: %v", w.Header())
		}
		if tc.name == "preflight bad method" && w.Header().Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("a disallowed method was allowed: %v", w.Header())
		}
	}
	// Disabled: nothing happens.
	cfg.Enabled = false
	h = (&Handler{Config: cfg, Clients: clients}).Wrap(next)
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Origin", "https://global.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS answered while disabled")
	}
}
