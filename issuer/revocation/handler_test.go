package revocation

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"007", 7, true},
		{"999999999999999999", 999999999999999999, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"9223372036854775807", 0, false}, // 19 digits: refused, whatever the value
		{"١", 0, false},                   // a non-ASCII digit
	} {
		got, ok := ParsePosition(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParsePosition(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0", "1", "42", "-1", "", "999999999999999999", "1000000000000000000", "1.5", "\x00", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParsePosition(s)
		if !ok {
			if n != 0 {
				t.Fatalf("%q: refused but %d", s, n)
			}
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != strings.TrimLeft(s, "0") && !(n == 0 && strings.Trim(s, "0") == "") {
			t.Fatalf("%q parsed as %d", s, n)
		}
	})
}

// env is a handler over a memory store, served by httptest, its poller
// running until the test ends.
type env struct {
	t     *testing.T
	store *memory.Store
	h     *Handler
	srv   *httptest.Server
	stop  context.CancelFunc
	n     int
}

func newEnv(t *testing.T) *env {
	st := memory.New(memory.Options{})
	h, err := New(Deps{Events: st.RevocationEvents()}, Options{Retention: time.Hour, PollInterval: 5 * time.Millisecond, Keepalive: 50 * time.Millisecond, Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.MountAdmin(mux)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &env{t: t, store: st, h: h, srv: srv, stop: cancel}
}

// revoke records one token event and returns its jti.
func (e *env) revoke() string {
	e.t.Helper()
	e.n++
	jti := fmt.Sprintf("jti-%d", e.n)
	ts := e.store.Tokens()
	now := time.Now()
	if err := ts.Create(context.Background(), storage.Token{Kind: storage.KindAccessToken, Signature: jti + ".h", RequestID: jti,
		ClientID: "c", Active: true, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	err := ts.Revoke(context.Background(), storage.KindAccessToken, jti+".h", func([]storage.Token) (*storage.RevocationEvent, error) {
		return NewEvent(KindToken, now, now.Add(time.Hour), Selectors{JTI: []string{jti}, ClientID: "c"}), nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return jti
}

type frameOut struct {
	id, event string
	data      map[string]any
	comment   bool
}

// open starts a stream with the request header set by hdr and returns
// its frames (comments included).
func (e *env) open(query string, hdr map[string]string) (<-chan frameOut, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+EventsPath+query, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	out := make(chan frameOut, 256)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var f frameOut
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if f.event != "" || f.comment {
					out <- f
				}
				f = frameOut{}
			case strings.HasPrefix(l, ":"):
				f.comment = true
			case strings.HasPrefix(l, "id: "):
				f.id = l[4:]
			case strings.HasPrefix(l, "event: "):
				f.event = l[7:]
			case strings.HasPrefix(l, "data: "):
				_ = json.Unmarshal([]byte(l[6:]), &f.data)
			}
		}
	}()
	return out, resp
}

func next(t *testing.T, c <-chan frameOut, skipComments bool) frameOut {
	t.Helper()
	for {
		select {
		case f, ok := <-c:
			if !ok {
				t.Fatal("the stream ended")
			}
			if f.comment && skipComments {
				continue
			}
			return f
		case <-time.After(5 * time.Second):
			t.Fatal("no frame")
		}
	}
}

func TestStreamFromHead(t *testing.T) {
	e := newEnv(t)
	e.revoke() // before the stream: not sent
	c, resp := e.open("", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	hello := next(t, c, true)
	if hello.event != "hello" || hello.id != "1" || hello.data["head"] != 1.0 || hello.data["oldest"] != 1.0 || hello.data["retention"] != "1h0m0s" {
		t.Fatalf("hello %+v", hello)
	}
	// More events than the poller's buffer holds, then one more.
	var want []string
	for range 6 {
		want = append(want, e.revoke())
	}
	for i, jti := range want {
		f := next(t, c, true)
		if f.event != "revocation" || f.id != strconv.Itoa(i+2) || f.data["kind"] != "token" || f.data["position"] != float64(i+2) {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if l, _ := f.data["jti"].([]any); len(l) != 1 || l[0] != jti {
			t.Fatalf("frame %d jti %v, want %s", i, f.data["jti"], jti)
		}
	}
	// Silence: a keepalive comment.
	if f := next(t, c, false); !f.comment {
		t.Fatalf("want a keepalive, got %+v", f)
	}
}

func TestStreamResume(t *testing.T) {
	e := newEnv(t)
	for range 10 {
		e.revoke()
	}
	for _, tc := range []struct {
		name  string
		query string
		hdr   map[string]string
	}{
		{"Last-Event-ID", "", map[string]string{"Last-Event-ID": "3"}},
		{"from", "?from=3", nil},
		{"Last-Event-ID wins", "?from=8", map[string]string{"Last-Event-ID": "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := e.open(tc.query, tc.hdr)
			if f := next(t, c, true); f.event != "hello" || f.id != "3" {
				t.Fatalf("hello %+v", f)
			}
			for p := 4; p <= 10; p++ {
				if f := next(t, c, true); f.event != "revocation" || f.id != strconv.Itoa(p) {
					t.Fatalf("want position %d, got %+v", p, f)
				}
			}
		})
	}
}

func TestStreamReset(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.revoke()
	}
	// The first three are flushed: a client at 1 missed 2 and 3.
	if _, err := e.store.RevocationEvents().FlushExpired(context.Background(), time.Now().Add(time.Minute), 3); err != nil {
		t.Fatal(err)
	}
	c, _ := e.open("?from=1", nil)
	if f := next(t, c, true); f.event != "hello" || f.id != "3" || f.data["oldest"] != 4.0 {
		t.Fatalf("hello %+v", f)
	}
	if f := next(t, c, true); f.event != "reset" || f.id != "3" || f.data["head"] != 5.0 || f.data["oldest"] != 4.0 {
		t.Fatalf("reset %+v", f)
	}
	for _, p := range []string{"4", "5"} {
		if f := next(t, c, true); f.event != "revocation" || f.id != p {
			t.Fatalf("want %s, got %+v", p, f)
		}
	}
	// A client at 3 missed nothing; one from the future is reset to the head.
	c, _ = e.open("?from=3", nil)
	if f := next(t, c, true); f.event != "hello" {
		t.Fatalf("hello %+v", f)
	}
	if f := next(t, c, true); f.event != "revocation" || f.id != "4" {
		t.Fatalf("from 3: %+v", f)
	}
	c, _ = e.open("?from=99", nil)
	next(t, c, true)
	if f := next(t, c, true); f.event != "reset" || f.id != "5" {
		t.Fatalf("from the future: %+v", f)
	}
}

func TestStreamBadPosition(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		query string
		hdr   map[string]string
	}{
		{"?from=-1", nil}, {"?from=abc", nil}, {"?from=", nil}, {"?from=1&from=2", nil},
		{"", map[string]string{"Last-Event-ID": "x"}}, {"?from=1", map[string]string{"Last-Event-ID": "1.5"}},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+EventsPath+tc.query, nil)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct{ Error string }
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &out) != nil || out.Error != "invalid_request" {
			t.Errorf("%s %v: %d %s", tc.query, tc.hdr, resp.StatusCode, body)
		}
	}
}

// TestStreamEndsAtShutdown: when the poller stops, every stream's
// response ends.
func TestStreamEndsAtShutdown(t *testing.T) {
	e := newEnv(t)
	c, _ := e.open("", nil)
	next(t, c, true)
	e.stop()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream is still open after the poller stopped")
		}
	}
}

// flushedBelow is an event store whose List no longer has the events
// below a position, while Bounds still says they are there: events
// flushed between a stream's connection and its read.
type flushedBelow struct {
	storage.RevocationEventStore
	below int64
}

func (f flushedBelow) List(ctx context.Context, after int64, limit int) ([]storage.RevocationEvent, error) {
	return f.RevocationEventStore.List(ctx, max(after, f.below-1), limit)
}

// TestStreamResetWhileLagging: a stream reading its backlog from the
// database that finds events gone sends reset before what follows.
func TestStreamResetWhileLagging(t *testing.T) {
	e := newEnv(t)
	for range 6 {
		e.revoke()
	}
	// A handler whose poller never runs: its streams read the database.
	h, err := New(Deps{Events: flushedBelow{e.store.RevocationEvents(), 5}}, Options{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.MountAdmin(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e.srv = srv
	c, resp := e.open("?from=2", nil)
	defer resp.Body.Close()
	if f := next(t, c, true); f.event != "hello" || f.id != "2" || f.data["oldest"] != 1.0 {
		t.Fatalf("hello %+v", f)
	}
	if f := next(t, c, true); f.event != "reset" || f.id != "2" || f.data["oldest"] != 5.0 || f.data["head"] != 6.0 {
		t.Fatalf("reset %+v", f)
	}
	for _, p := range []string{"5", "6"} {
		if f := next(t, c, true); f.event != "revocation" || f.id != p {
			t.Fatalf("want %s, got %+v", p, f)
		}
	}
	resp.Body.Close()
}
