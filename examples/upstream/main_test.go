package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	s := httptest.NewServer(&Echo{Name: "upstream", Headers: DefaultHeaders})
	defer s.Close()
	tests := []struct {
		name     string
		accept   string
		hdr      map[string]string
		wantHTML bool
		wantAuth bool
	}{
		{"curl gets JSON", "*/*", map[string]string{"X-User-Id": "alice", "X-User-Scopes": "openid email"}, false, true},
		{"API client", "application/json", map[string]string{"X-Client-Id": "svc"}, false, true},
		{"browser gets a page", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", map[string]string{"X-User-Id": "alice"}, true, true},
		{"anonymous", "", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/some/path?q=1", nil)
			req.Header.Set("Accept", tt.accept)
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if tt.wantHTML {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), `<strong id="user">alice</strong>`) {
					t.Fatalf("page: %s\n%s", resp.Header.Get("Content-Type"), b)
				}
				return
			}
			var id Identity
			if err := json.Unmarshal(b, &id); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b)
			}
			if id.Authenticated != tt.wantAuth || id.Path != "/some/path?q=1" {
				t.Fatalf("identity = %+v", id)
			}
			for k, v := range tt.hdr {
				if id.Headers[strings.ToLower(k)] != v {
					t.Fatalf("header %s = %q, want %q", k, id.Headers[strings.ToLower(k)], v)
				}
			}
			if _, ok := id.Headers["x-user-id"]; !ok {
				t.Fatal("configured headers are always listed (empty when absent)")
			}
		})
	}
}

func TestEchoEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-User-Id", "<script>x</script>")
	(&Echo{Name: "u", Headers: DefaultHeaders}).ServeHTTP(rec, req)
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Fatalf("header value not escaped:\n%s", rec.Body)
	}
}
