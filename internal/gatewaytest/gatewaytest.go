// Package gatewaytest runs a forward-auth gateway kit (examples/nginx,
// examples/caddy) for real: the issuer, gatehouse-sidecar and
// examples/upstream on free loopback ports, and the checks every such
// gateway must pass, made as a client would make them through the
// gateway's own port.
package gatewaytest

import (
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

// Binary finds a gateway's executable among names (looked up in PATH, or
// absolute). When none is installed the test is skipped, unless the
// environment variable require is "1" (scripts/e2e.sh sets it after
// installing the package), where it fails.
func Binary(t *testing.T, require, pkg string, names ...string) string {
	t.Helper()
	for _, p := range names {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	if os.Getenv(require) == "1" {
		t.Fatalf("%s is not installed (apt-get install %s)", names[0], pkg)
	}
	t.Skipf("%s is not installed; scripts/e2e.sh installs it (apt-get install %s), and %s=1 makes its absence a failure", names[0], pkg, require)
	return ""
}

// Rewrite returns file with each key of ports replaced by its value; a
// key the file does not mention fails the test (the kit changed).
func Rewrite(t *testing.T, file string, ports map[string]string) string {
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

// Stack is the issuer, the sidecar and the app a gateway sits in front of.
type Stack struct {
	Issuer  *testbin.Issuer
	Sidecar *testbin.Process
	// SidecarHTTP and Upstream are host:port.
	SidecarHTTP, Upstream string
	// Dir is a temporary directory for the gateway's files.
	Dir string
}

// StartStack starts the issuer, examples/upstream and gatehouse-sidecar
// with sidecarYAML (its default listeners 127.0.0.1:4456 and :9191
// rewritten to free ports) followed by the YAML documents' extra keys.
func StartStack(t *testing.T, sidecarYAML string, extra ...string) *Stack {
	t.Helper()
	return StartStackWithIssuer(t, testbin.StartIssuer(t, nil), sidecarYAML, extra...)
}

// StartStackWithIssuer is StartStack with an issuer the caller started.
func StartStackWithIssuer(t *testing.T, is *testbin.Issuer, sidecarYAML string, extra ...string) *Stack {
	t.Helper()
	return StartStackWith(t, sidecarYAML, Options{Issuer: is, Extra: extra})
}

// Options are a stack's settings beyond sidecarYAML's.
type Options struct {
	// Issuer is the issuer (nil: a new default one).
	Issuer *testbin.Issuer
	// Edits are replacements in sidecarYAML besides its listeners (a key
	// the file does not mention fails the test).
	Edits map[string]string
	// Extra are YAML keys appended to sidecarYAML.
	Extra []string
	// Env is the sidecar's environment.
	Env map[string]string
}

// AppHeaders are the request headers examples/upstream reports (Seen):
// the identity headers and Authorization (for internal tokens).
const AppHeaders = "x-user-id,x-client-id,x-user-scopes,authorization"

// StartStackWith is StartStack with o.
func StartStackWith(t *testing.T, sidecarYAML string, o Options) *Stack {
	t.Helper()
	if o.Issuer == nil {
		o.Issuer = testbin.StartIssuer(t, nil)
	}
	s := &Stack{Issuer: o.Issuer, Dir: t.TempDir()}
	s.Upstream = fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	up := testbin.Start(t, testbin.Build(t, "./examples/upstream"), nil, "--listen", s.Upstream, "--headers", AppHeaders)
	up.WaitHTTP(t, "http://"+s.Upstream+"/health", 30*time.Second)

	s.SidecarHTTP = fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	grpc := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	cfg := filepath.Join(s.Dir, "sidecar.yaml")
	edits := map[string]string{"127.0.0.1:4456": s.SidecarHTTP, "127.0.0.1:9191": grpc}
	for k, v := range o.Edits {
		edits[k] = v
	}
	conf := Rewrite(t, sidecarYAML, edits) + "\n" + strings.Join(o.Extra, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Sidecar = testbin.Start(t, testbin.Build(t, "./sidecar/cmd/gatehouse-sidecar"), o.Env, "--config", cfg,
		"--issuer", s.Issuer.PublicURL, "--introspection-url", s.Issuer.AdminURL+"/admin/oauth2/introspect")
	s.Sidecar.WaitHTTP(t, "http://"+s.SidecarHTTP+"/health/ready", 30*time.Second)
	return s
}

// Seen is what examples/upstream reports about a request that reached it.
type Seen struct {
	Path          string            `json:"path"`
	Headers       map[string]string `json:"headers"`
	Authenticated bool              `json:"authenticated"`
}

// Answer is the gateway's answer to one request; Seen is set when the
// request reached the app (a JSON answer from examples/upstream).
type Answer struct {
	Status int
	Header http.Header
	Seen   *Seen
}

// Call sends method url with hdr (Host sets the request's host) and
// reads the answer.
func Call(t *testing.T, method, url string, hdr map[string]string) Answer {
	t.Helper()
	return CallWithBody(t, method, url, hdr, "")
}

// CallWithBody is Call with a request body (none when empty).
func CallWithBody(t *testing.T, method, url string, hdr map[string]string, body string) Answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var s Seen
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s %s: the app's answer is not JSON: %s", method, url, b)
		}
		a.Seen = &s
	}
	return a
}

// CheckForwardAuth checks the guarantees of a forward-auth kit through
// the gateway at gw (http://host:port) whose sidecar has the examples'
// identity headers (x-user-id ← sub, x-client-id ← client_id,
// x-user-scopes ← scope) and a public /public/ path: the challenge of a
// 401 reaches the client, the identity the app sees is always the
// sidecar's (a client's forged headers are replaced, or removed when the
// sidecar has no value or the path is public), and a client cannot pick
// the rule by sending its own description of the request.
func CheckForwardAuth(t *testing.T, s *Stack, gw string) {
	t.Helper()
	client, token := s.Issuer.ClientCredentialsToken(t, "read")
	// A token with no scope: the sidecar's x-user-scopes is empty, and the
	// gateway must still remove the client's.
	noScope, noScopeToken := s.Issuer.ClientCredentialsToken(t, "")
	bearer := "Bearer " + token
	forged := map[string]string{"X-User-Id": "admin", "X-Client-Id": "admin", "X-User-Scopes": "admin"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range []map[string]string{forged, extra} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	type want struct{ user, client, scopes string }
	tests := []struct {
		name      string
		method    string // GET when empty
		path      string
		body      string
		hdr       map[string]string
		status    int
		challenge string // prefix of WWW-Authenticate
		id        want
	}{
		{name: "no token", path: "/api/things", status: 401, challenge: "Bearer"},
		{name: "forged X-Forwarded-Uri cannot pick the public rule", path: "/api/things",
			hdr:    map[string]string{"X-Forwarded-Uri": "/public/x", "X-Original-URI": "/public/x", "X-Forwarded-Method": "OPTIONS"},
			status: 401, challenge: "Bearer"},
		{name: "forged identity, no token", path: "/api/things", hdr: forged, status: 401, challenge: "Bearer"},
		{name: "invalid token", path: "/api/things", hdr: map[string]string{"Authorization": "Bearer not-a-real-token"},
			status: 401, challenge: `Bearer error="invalid_token"`},
		{name: "valid token", path: "/api/things?page=2", hdr: map[string]string{"Authorization": bearer},
			status: 200, id: want{client.ID, client.ID, "read"}},
		{name: "forged identity with a valid token is replaced", path: "/api/things", hdr: with(map[string]string{"Authorization": bearer}),
			status: 200, id: want{client.ID, client.ID, "read"}},
		{name: "forged identity the sidecar leaves empty is removed", path: "/api/things",
			hdr: with(map[string]string{"Authorization": "Bearer " + noScopeToken}), status: 200, id: want{noScope.ID, noScope.ID, ""}},
		{name: "public path drops forged identity", path: "/public/page", hdr: forged, status: 200},
		{name: "public path drops forged identity with a token", path: "/public/page", hdr: with(map[string]string{"Authorization": bearer}), status: 200},
		{name: "a POST with a body larger than the gateway's buffers reaches the app", path: "/api/things", method: "POST",
			body: strings.Repeat("x", 100_000), hdr: map[string]string{"Authorization": bearer}, status: 200, id: want{client.ID, client.ID, "read"}},
		{name: "dot segments out of the public path are checked", path: "/public/../api/things", status: 401, challenge: "Bearer"},
		{name: "encoded dot segments out of the public path are checked", path: "/public/%2e%2e/api/things", status: 401, challenge: "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			a := CallWithBody(t, method, "http://"+gw+tt.path, tt.hdr, tt.body)
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d (WWW-Authenticate %q)", a.Status, tt.status, a.Header.Get("WWW-Authenticate"))
			}
			if www := a.Header.Get("WWW-Authenticate"); !strings.HasPrefix(www, tt.challenge) || (tt.challenge == "") != (www == "") {
				t.Fatalf("WWW-Authenticate = %q, want %q", www, tt.challenge)
			}
			if a.Status != 200 {
				return
			}
			if a.Seen == nil {
				t.Fatal("the request did not reach the app")
			}
			got := want{a.Seen.Headers["x-user-id"], a.Seen.Headers["x-client-id"], a.Seen.Headers["x-user-scopes"]}
			if got != tt.id {
				t.Fatalf("the app saw identity %+v, want %+v", got, tt.id)
			}
		})
	}
}

// CheckFailsClosed stops the sidecar and expects a 5xx for a request with
// a valid token.
func CheckFailsClosed(t *testing.T, s *Stack, gw string) {
	t.Helper()
	_, token := s.Issuer.ClientCredentialsToken(t, "read")
	s.Sidecar.Stop(10 * time.Second)
	if a := Call(t, "GET", "http://"+gw+"/api/things", map[string]string{"Authorization": "Bearer " + token}); a.Status < 500 || a.Seen != nil {
		t.Fatalf("sidecar down answered %d, want a 5xx", a.Status)
	}
}
