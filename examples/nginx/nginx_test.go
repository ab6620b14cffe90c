// Package nginx_test runs examples/nginx/nginx.conf in a real nginx in
// front of examples/upstream, with gatehouse-sidecar and the issuer: the
// gateway path as a user would set it up. It is skipped when nginx is not
// installed, unless REQUIRE_NGINX=1 (scripts/e2e.sh installs it).
package nginx_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

func nginxBinary(t *testing.T) string {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	if os.Getenv("REQUIRE_NGINX") == "1" {
		t.Fatal("nginx is not installed (apt-get install nginx)")
	}
	t.Skip("nginx is not installed; scripts/e2e.sh installs it")
	return ""
}

// rewrite swaps the example's default ports for the test's.
func rewrite(t *testing.T, file string, ports map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for from, to := range ports {
		if !strings.Contains(s, from) {
			t.Fatalf("%s no longer mentions %s", file, from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

func TestNginxForwardAuth(t *testing.T) {
	nginx := nginxBinary(t)
	is := testbin.StartIssuer(t, nil)
	client, token := is.ClientCredentialsToken(t, "read")
	clientID := client.ID
	// The sidecar's own client, for the internal tokens of /orders.
	gwClient := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scope": "read", "audience": []string{"orders-api"}})

	up := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	upstream := testbin.Start(t, testbin.Build(t, "./examples/upstream"), nil, "--listen", up,
		"--headers", "x-user-id,x-client-id,x-user-scopes,authorization")
	upstream.WaitHTTP(t, "http://"+up+"/health", 30*time.Second)

	dir := t.TempDir()
	sideHTTP, sideGRPC := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	sideCfg := filepath.Join(dir, "sidecar.yaml")
	// The example's internal-token route and section, uncommented.
	if err := os.WriteFile(sideCfg, []byte(rewrite(t, "sidecar.yaml", map[string]string{"127.0.0.1:4456": sideHTTP, "127.0.0.1:9191": sideGRPC,
		"  # - name: orders\n  #   match: {path_prefix: /orders}\n  #   internal_token: {audience: orders-api}\n": "  - name: orders\n    match: {path_prefix: /orders}\n    internal_token: {audience: orders-api}\n",
		"# internal_tokens:\n#   actor: true": "internal_tokens:\n  actor: true",
	})), 0o600); err != nil {
		t.Fatal(err)
	}
	sidecar := testbin.Start(t, testbin.Build(t, "./sidecar/cmd/gatehouse-sidecar"), map[string]string{
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID": gwClient.ID, "GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": gwClient.Secret}, "--config", sideCfg,
		"--issuer", is.PublicURL, "--introspection-url", is.AdminURL+"/admin/oauth2/introspect")
	sidecar.WaitHTTP(t, "http://"+sideHTTP+"/health/ready", 30*time.Second)

	gw := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	conf := rewrite(t, "nginx.conf", map[string]string{"127.0.0.1:8080": gw, "127.0.0.1:4456": sideHTTP, "127.0.0.1:8081": up})
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := testbin.Start(t, nginx, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	proc.WaitHTTP(t, "http://"+gw+"/nginx-health", 30*time.Second)

	type seen struct {
		Headers       map[string]string `json:"headers"`
		Authenticated bool              `json:"authenticated"`
	}
	call := func(path string, hdr map[string]string) (int, http.Header, seen) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+gw+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var s seen
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatalf("%s: upstream answer is not JSON: %s", path, b)
			}
		}
		return resp.StatusCode, resp.Header, s
	}
	bearer := "Bearer " + token
	tests := []struct {
		name      string
		path      string
		hdr       map[string]string
		status    int
		challenge string // substring of WWW-Authenticate
		user      string
	}{
		{"no token", "/api/things", nil, 401, "Bearer", ""},
		{"forged X-Forwarded-Uri cannot pick the public rule", "/api/things", map[string]string{"X-Forwarded-Uri": "/public/x", "X-Original-URI": "/public/x", "X-Forwarded-Method": "GET"}, 401, "Bearer", ""},
		{"forged identity, no token", "/api/things", map[string]string{"X-User-Id": "admin", "X-Client-Id": "admin"}, 401, "Bearer", ""},
		{"invalid token", "/api/things", map[string]string{"Authorization": "Bearer not-a-real-token"}, 401, `error="invalid_token"`, ""},
		{"valid token", "/api/things", map[string]string{"Authorization": bearer}, 200, "", clientID},
		{"forged identity with a valid token", "/api/things", map[string]string{"Authorization": bearer, "X-User-Id": "admin"}, 200, "", clientID},
		{"public path drops forged identity", "/public/page", map[string]string{"X-User-Id": "admin"}, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, s := call(tt.path, tt.hdr)
			if code != tt.status {
				t.Fatalf("status %d, want %d", code, tt.status)
			}
			if tt.challenge != "" && !strings.Contains(h.Get("WWW-Authenticate"), tt.challenge) {
				t.Fatalf("WWW-Authenticate = %q, want %q in it", h.Get("WWW-Authenticate"), tt.challenge)
			}
			if code == 200 {
				if s.Headers["x-user-id"] != tt.user {
					t.Fatalf("upstream saw x-user-id %q, want %q", s.Headers["x-user-id"], tt.user)
				}
				if tt.user != "" && (s.Headers["x-client-id"] != clientID || s.Headers["x-user-scopes"] != "read") {
					t.Fatalf("upstream headers %v", s.Headers)
				}
			}
		})
	}
	// The internal-token route: the app gets the sidecar's internal token
	// (aud orders-api, the caller's sub, act the sidecar's client) in
	// Authorization; the other routes keep the client's.
	if code, _, s := call("/api/things", map[string]string{"Authorization": bearer}); code != 200 || s.Headers["authorization"] != bearer {
		t.Fatalf("plain route: %d, the app's Authorization is the client's: %v", code, s.Headers["authorization"] == bearer)
	}
	code, _, s := call("/orders/1", map[string]string{"Authorization": bearer})
	internal, _ := strings.CutPrefix(s.Headers["authorization"], "Bearer ")
	if code != 200 || internal == "" || internal == token || s.Headers["x-user-id"] != clientID {
		t.Fatalf("internal-token route: %d, x-user-id %q, an internal token: %v", code, s.Headers["x-user-id"], internal != "" && internal != token)
	}
	parts := strings.Split(internal, ".")
	var claims struct {
		Aud []string       `json:"aud"`
		Sub string         `json:"sub"`
		Act map[string]any `json:"act"`
	}
	if len(parts) != 3 {
		t.Fatal("the internal token is not a JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil || len(claims.Aud) != 1 || claims.Aud[0] != "orders-api" ||
		claims.Sub != clientID || claims.Act["sub"] != gwClient.ID {
		t.Fatalf("internal token claims %s", payload)
	}

	// The sidecar down: fail closed.
	sidecar.Stop(10 * time.Second)
	if code, _, _ := call("/api/things", map[string]string{"Authorization": bearer}); code < 500 {
		t.Fatalf("sidecar down answered %d, want a 5xx", code)
	}
}
