package h1

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server counts the connections it accepts.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestRoundTrips(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Write(b)
		case "/chunked": // larger than net/http's buffer: chunked
			io.WriteString(w, big)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/cookie":
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
			http.Redirect(w, r, "/echo", http.StatusFound)
		}
	})
	tr := &Transport{Timeout: 5 * time.Second}
	defer tr.Close()
	hc := &http.Client{Transport: tr}

	for i := range 5 {
		resp, err := hc.Post(s.URL+"/echo", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello" || resp.Header.Get("X-Method") != "POST" {
			t.Fatalf("round %d: %q %q", i, b, resp.Header.Get("X-Method"))
		}
	}
	resp, err := hc.Get(s.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != len(big) || len(resp.TransferEncoding) == 0 {
		t.Fatalf("chunked: %d bytes, %v", len(b), resp.TransferEncoding)
	}
	// A body closed unread is drained; the connection is reused.
	resp, err = hc.Get(s.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1", n)
	}
	// Connection: close is honoured.
	resp, err = hc.Get(s.URL + "/close")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, err = hc.Get(s.URL + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after Connection: close, want 2", n)
	}
	// The client's cookie jar and redirect policy still apply.
	jar := &memJar{}
	hc2 := &http.Client{Transport: tr, Jar: jar}
	resp, err = hc2.Get(s.URL + "/cookie")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/echo" || len(jar.got) == 0 {
		t.Fatalf("redirect to %s, cookies %v", resp.Request.URL.Path, jar.got)
	}
}

func TestServerClosedIdleConnectionIsRetried(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	tr := &Transport{}
	hc := &http.Client{Transport: tr}
	get := func() {
		t.Helper()
		resp, err := hc.Post(s.URL, "text/plain", strings.NewReader("again"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "again" {
			t.Fatalf("got %q", b)
		}
	}
	get()
	s.CloseClientConnections() // the server drops the idle connection
	time.Sleep(20 * time.Millisecond)
	get()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("i"))
	})
	tr := &Transport{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				want := strings.Repeat("a", g+1) + string(rune('0'+i%10))
				req, _ := http.NewRequest(http.MethodGet, s.URL+"/?i="+want, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != want {
					t.Errorf("got %q, want %q", b, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n > 8 {
		t.Fatalf("%d connections for 8 goroutines", n)
	}
}

func TestRejectsHTTPS(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:1/", nil)
	if _, err := (&Transport{}).RoundTrip(req); err == nil {
		t.Fatal("https accepted")
	}
}

type memJar struct {
	mu  sync.Mutex
	got []*http.Cookie
}

func (j *memJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.got = append(j.got, cs...)
}

func (j *memJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.got
}
