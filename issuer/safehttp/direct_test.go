package safehttp

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func directClient(t *testing.T, o Options) *Client {
	t.Helper()
	o.Direct = true
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func post(t *testing.T, c *Client, url, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, string(data), err
}

// The direct transport answers as net/http's does and keeps one
// connection for calls made one after the other.
func TestDirectKeepsTheConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("User-Agent") != "gh-test" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Echo", string(b))
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		_, _ = w.Write([]byte("answer:" + string(b)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := directClient(t, Options{UserAgent: "gh-test"})
	for i, q := range []string{"", "?chunked=1", "", "?chunked=1"} {
		resp, body, err := post(t, c, srv.URL+q, `{"n":1}`)
		if err != nil || resp.StatusCode != 200 || body != `answer:{"n":1}` || resp.Header.Get("X-Echo") != `{"n":1}` {
			t.Fatalf("call %d: %v %q %v", i, resp, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 4 calls in a row, want 1", n)
	}
}

// A parked connection the peer closed is noticed before it is used, and
// replaced by a new one: the call does not fail.
func TestDirectReplacesAClosedParkedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				b, _ := io.ReadAll(req.Body)
				// Answer as if the connection stayed open, then close it.
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"+string(b))
			}()
		}
	}()
	c := directClient(t, Options{})
	url := "http://" + ln.Addr().String() + "/"
	for i := range 3 {
		_, body, err := post(t, c, url, "hello")
		if err != nil || body != "hello" {
			t.Fatalf("call %d: %q %v", i, body, err)
		}
		time.Sleep(20 * time.Millisecond) // let the server's close arrive
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c
		}
	}()
	dial := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c, <-peers
	}
	settle := func() { time.Sleep(50 * time.Millisecond) }

	quiet, p1 := dial()
	defer quiet.Close()
	defer p1.Close()
	if !alive(quiet) {
		t.Fatal("an open, quiet connection is not alive")
	}
	closed, p2 := dial()
	defer closed.Close()
	p2.Close()
	settle()
	if alive(closed) {
		t.Fatal("a connection its peer closed is alive")
	}
	chatty, p3 := dial()
	defer chatty.Close()
	defer p3.Close()
	_, _ = p3.Write([]byte("HTTP/1.1 200 OK\r\n"))
	settle()
	if alive(chatty) {
		t.Fatal("a connection with unasked bytes is alive")
	}
	start := time.Now()
	for range 1000 {
		alive(quiet)
	}
	t.Logf("alive: %s per check", time.Since(start)/1000)
}

// Limits, timeouts, cancellation and the SSRF guard hold in direct mode.
func TestDirectLimits(t *testing.T) {
	big := strings.Repeat("x", 2048)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(big))
		case "/slow":
			time.Sleep(2 * time.Second)
		case "/headers":
			w.Header().Set("X-Big", strings.Repeat("h", 100<<10))
		}
	})

	c := directClient(t, Options{MaxResponseBytes: 1024})
	if _, _, err := post(t, c, srv.URL+"/big", ""); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("body over the limit: %v", err)
	}
	if _, _, err := post(t, c, srv.URL+"/headers", ""); err == nil {
		t.Fatal("an answer over the head and body limits was read")
	}

	c = directClient(t, Options{Timeout: 200 * time.Millisecond})
	start := time.Now()
	if _, _, err := post(t, c, srv.URL+"/slow", ""); err == nil || time.Since(start) > time.Second {
		t.Fatalf("timeout: %v after %s", err, time.Since(start))
	}

	c = directClient(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	start = time.Now()
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("cancel: %v after %s", err, time.Since(start))
	}

	c = directClient(t, Options{DisallowPrivateIPRanges: true})
	if _, _, err := post(t, c, srv.URL+"/big", ""); !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("guard: %v", err)
	}
}

// https: the handshake checks the server's certificate and name.
func TestDirectTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(okHandler))
	t.Cleanup(srv.Close)
	c := directClient(t, Options{})
	if _, _, err := post(t, c, srv.URL, ""); err == nil {
		t.Fatal("a certificate of an unknown authority was accepted")
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.directTransport().tls.RootCAs = pool
	if _, body, err := post(t, c, srv.URL, ""); err != nil || body != `{"ok":true}` {
		t.Fatalf("%q %v", body, err)
	}
}

// directTransport is c's direct transport (tests build c without tracing).
func (c *Client) directTransport() *directTransport {
	return c.http.Transport.(*directTransport)
}
