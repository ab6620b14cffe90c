package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// fakeAuthServer is an authorization server that logs the user in at once:
// /oauth2/auth redirects back with a code (or with error=...), and
// /oauth2/token checks the client, redirect_uri and the PKCE verifier.
type fakeAuthServer struct {
	mu        sync.Mutex
	deny      bool
	secret    string // "" for a public client
	challenge string
	redirect  string
	authQuery url.Values
	tokenForm url.Values
	basic     bool
}

func (f *fakeAuthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/oauth2/auth":
		q := r.URL.Query()
		f.authQuery = q
		f.challenge, f.redirect = q.Get("code_challenge"), q.Get("redirect_uri")
		back := url.Values{"state": {q.Get("state")}}
		if f.deny {
			back.Set("error", "access_denied")
			back.Set("error_description", "The resource owner denied the request")
		} else {
			back.Set("code", "the-code")
		}
		http.Redirect(w, r, f.redirect+"?"+back.Encode(), http.StatusFound)
	case "/oauth2/token":
		_ = r.ParseForm()
		f.tokenForm = r.PostForm
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		f.basic = basic
		fail := func(code, desc string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case id != "cli" || secret != f.secret:
			fail("invalid_client", "bad client")
		case r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("code") != "the-code":
			fail("invalid_grant", "bad code")
		case r.PostForm.Get("redirect_uri") != f.redirect:
			fail("invalid_grant", "redirect_uri differs")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != f.challenge:
			fail("invalid_grant", "PKCE verifier does not match")
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"at-1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-1","id_token":"idt-1","scope":"offline openid"}`)
		}
	default:
		http.NotFound(w, r)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// runCLI starts the command and returns its outputs and a channel with its
// result once it has finished.
func runCLI(t *testing.T, args ...string) (stdout, stderr *syncBuf, done chan error) {
	t.Helper()
	root := newRootCmd()
	stdout, stderr = &syncBuf{}, &syncBuf{}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	done = make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go func() { done <- root.ExecuteContext(ctx) }()
	return stdout, stderr, done
}

// waitListening waits until the callback listener accepts connections.
func waitListening(t *testing.T, port int, stderr *syncBuf, done chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(stderr.String(), "Open this URL") {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("command ended early: %v\n%s", err, stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("callback listener on %d never came up:\n%s", port, stderr)
}

func wait(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("command did not finish")
		return nil
	}
}

func TestPerformAuthorizationCode(t *testing.T) {
	tests := []struct {
		name   string
		cmd    []string
		secret string
		extra  []string
		basic  bool
	}{
		{"v2 verb, client_secret_basic", []string{"perform", "authorization-code"}, "s3cr3t", nil, true},
		{"client_secret_post", []string{"perform", "authorization-code"}, "s3cr3t", []string{"--auth-post"}, false},
		{"public client", []string{"perform", "authorization-code"}, "", nil, false},
		{"v1 token user", []string{"token", "user"}, "s3cr3t", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeAuthServer{secret: tt.secret}
			is := httptest.NewServer(fa)
			defer is.Close()
			port := testbin.FreePort(t)
			args := append(append([]string{}, tt.cmd...), "--client-id", "cli", "--port", fmt.Sprint(port),
				"--scope", "offline,openid", "--audience", "https://api.example.com", "--format", "json")
			if tt.secret != "" {
				args = append(args, "--client-secret", tt.secret)
			}
			if tt.cmd[0] == "token" {
				args = append(args, "--auth-url", is.URL+"/oauth2/auth", "--token-url", is.URL+"/oauth2/token")
			} else {
				args = append(args, "--endpoint", is.URL)
			}
			args = append(args, tt.extra...)
			stdout, stderr, done := runCLI(t, args...)
			waitListening(t, port, stderr, done)

			// A browser opening the printed home URL is redirected to the
			// authorization endpoint and back to the callback.
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), "Authorization succeeded") {
				t.Fatalf("callback page %d: %s", resp.StatusCode, page)
			}
			if err := wait(t, done); err != nil {
				t.Fatalf("command failed: %v\n%s", err, stderr)
			}
			var tok map[string]any
			if err := json.Unmarshal([]byte(stdout.String()), &tok); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			if tok["access_token"] != "at-1" || tok["refresh_token"] != "rt-1" || tok["id_token"] != "idt-1" {
				t.Fatalf("tokens = %v", tok)
			}
			fa.mu.Lock()
			defer fa.mu.Unlock()
			q := fa.authQuery
			if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("scope") != "offline openid" ||
				q.Get("audience") != "https://api.example.com" || len(q.Get("state")) < 32 || q.Get("nonce") == "" ||
				q.Get("redirect_uri") != fmt.Sprintf("http://127.0.0.1:%d/callback", port) {
				t.Fatalf("authorization request = %v", q)
			}
			if v := fa.tokenForm.Get("code_verifier"); len(v) < 43 || len(v) > 128 {
				t.Fatalf("code_verifier length %d outside RFC 7636 §4.1", len(v))
			}
			if fa.basic != tt.basic {
				t.Fatalf("basic auth = %v, want %v", fa.basic, tt.basic)
			}
			if tt.secret == "" && fa.tokenForm.Get("client_id") != "cli" {
				t.Fatalf("public client sent no client_id: %v", fa.tokenForm)
			}
		})
	}
}

func TestPerformAuthorizationCodeTable(t *testing.T) {
	fa := &fakeAuthServer{secret: "s"}
	is := httptest.NewServer(fa)
	defer is.Close()
	port := testbin.FreePort(t)
	stdout, stderr, done := runCLI(t, "perform", "authorization-code", "--client-id", "cli", "--client-secret", "s", "--port", fmt.Sprint(port), "--endpoint", is.URL)
	waitListening(t, port, stderr, done)
	// The printed URL is the one to open.
	var authURL string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, is.URL+"/oauth2/auth?") {
			authURL = line
		}
	}
	if authURL == "" {
		t.Fatalf("no authorization URL printed:\n%s", stderr)
	}
	resp, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{"ACCESS TOKEN", "at-1", "REFRESH TOKEN", "rt-1", "ID TOKEN", "idt-1", "offline openid"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestPerformAuthorizationCodeRefusals: an error from the issuer ends the
// run with it; a callback with a foreign state is ignored.
func TestPerformAuthorizationCodeRefusals(t *testing.T) {
	t.Run("access denied", func(t *testing.T) {
		fa := &fakeAuthServer{deny: true}
		is := httptest.NewServer(fa)
		defer is.Close()
		port := testbin.FreePort(t)
		_, stderr, done := runCLI(t, "perform", "authorization-code", "--client-id", "cli", "--port", fmt.Sprint(port), "--endpoint", is.URL)
		waitListening(t, port, stderr, done)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		err = wait(t, done)
		if err == nil || !strings.Contains(err.Error(), "access_denied") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		fa := &fakeAuthServer{}
		is := httptest.NewServer(fa)
		defer is.Close()
		port := testbin.FreePort(t)
		_, stderr, done := runCLI(t, "perform", "authorization-code", "--client-id", "cli", "--port", fmt.Sprint(port), "--endpoint", is.URL, "--timeout", "5s")
		waitListening(t, port, stderr, done)
		for _, q := range []string{"code=evil&state=wrong", "code=evil", "error=access_denied&state=x"} {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/callback?%s", port, q))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("forged callback %q answered %d", q, resp.StatusCode)
			}
		}
		// The run goes on and the genuine login still completes.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := wait(t, done); err != nil {
			t.Fatalf("genuine login after forged callbacks: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		port := testbin.FreePort(t)
		_, _, done := runCLI(t, "perform", "authorization-code", "--client-id", "cli", "--port", fmt.Sprint(port), "--timeout", "200ms")
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "no authorization came back") {
			t.Fatalf("err = %v", err)
		}
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"perform", "authorization-code"}, "--client-id is required"},
		{[]string{"perform", "authorization-code", "--client-id", "c", "--port", "0"}, "not a port"},
		{[]string{"perform", "authorization-code", "--client-id", "c", "--redirect", "ftp://x/cb"}, "--redirect"},
		{[]string{"token", "user", "--client-id", "c", "--auth-url", "not a url"}, "--auth-url"},
		{[]string{"perform", "authorization-code", "--client-id", "c", "--endpoint", "nope"}, "--endpoint"},
	} {
		_, _, done := runCLI(t, tt.args...)
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestPKCES256(t *testing.T) {
	// RFC 7636 Appendix B.
	if got := pkceS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("pkceS256 = %s", got)
	}
}
