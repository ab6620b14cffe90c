package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDeviceServer answers a device authorization and then, poll by
// poll, the token errors in answers, then tokens; it records when each
// poll came.
type fakeDeviceServer struct {
	mu      sync.Mutex
	answers []string
	polls   []time.Time
}

func (f *fakeDeviceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/oauth2/device/auth":
		_, _ = io.WriteString(w, `{"device_code":"dc","user_code":"BCDFGHJK","verification_uri":"https://idp.example/verify",`+
			`"verification_uri_complete":"https://idp.example/verify?user_code=BCDFGHJK","expires_in":60,"interval":1}`)
	case "/oauth2/token":
		if r.PostForm.Get("device_code") != "dc" || r.PostForm.Get("client_id") != "tv" ||
			r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		f.polls = append(f.polls, time.Now())
		if len(f.answers) > 0 {
			code := f.answers[0]
			f.answers = f.answers[1:]
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"at-1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-1","id_token":"idt-1","scope":"offline openid"}`)
	default:
		http.NotFound(w, r)
	}
}

// TestPerformDeviceCode: the CLI prints the URI and the code, polls at
// the interval, waits 5 s more after slow_down (RFC 8628 §3.5), prints
// the tokens in the table; an access_denied ends the run with it.
func TestPerformDeviceCode(t *testing.T) {
	fd := &fakeDeviceServer{answers: []string{"authorization_pending", "slow_down"}}
	srv := httptest.NewServer(fd)
	defer srv.Close()
	stdout, stderr, done := runCLI(t, "perform", "device-code", "--client-id", "tv", "--endpoint", srv.URL)
	if err := wait(t, done); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"https://idp.example/verify", "BCDFGHJK", "verify?user_code=BCDFGHJK", "slow down"} {
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, want := range []string{"ACCESS TOKEN", "at-1", "REFRESH TOKEN", "rt-1", "ID TOKEN", "idt-1"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, stdout)
		}
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if len(fd.polls) != 3 {
		t.Fatalf("%d polls, want 3", len(fd.polls))
	}
	// A sleep is never shorter than asked: the gaps are at least the
	// interval, and 1 + 5 s after the slow_down.
	for i, min := range []time.Duration{time.Second, 6 * time.Second} {
		if gap := fd.polls[i+1].Sub(fd.polls[i]); gap < min {
			t.Fatalf("poll %d came %s after the previous one, want at least %s", i+2, gap, min)
		}
	}

	denied := &fakeDeviceServer{answers: []string{"access_denied"}}
	srv2 := httptest.NewServer(denied)
	defer srv2.Close()
	_, stderr, done = runCLI(t, "perform", "device-code", "--client-id", "tv", "--endpoint", srv2.URL)
	if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("access_denied: %v\n%s", err, stderr)
	}
}
