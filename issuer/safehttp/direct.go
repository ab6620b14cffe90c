package safehttp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// directTransport is an HTTP/1.1 RoundTripper that runs the whole exchange
// on the caller's goroutine: it writes the request (http.Request.Write),
// reads the answer (http.ReadResponse) and its body, bounded, then parks
// the connection for the next call. net/http's Transport hands every
// request to a write goroutine and the answer back from a read goroutine
// of the connection; each hand-off wakes a thread, and on a process whose
// threads all slept while a slow peer answered that costs more than the
// call's own work. Used for calls on a request's critical path (the token
// hook, Options.Direct); the dialer, and with it the SSRF check, is the
// standard transport's.
type directTransport struct {
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tls       *tls.Config
	timeout   time.Duration
	maxBody   int64
	maxHeader int64
	// fallback sends what direct does not: requests that go through a
	// proxy.
	fallback http.RoundTripper
	proxy    func(*http.Request) (*url.URL, error)

	mu   sync.Mutex
	idle map[string][]*directConn
}

const (
	// maxIdlePerHost bounds the parked connections of one host.
	maxIdlePerHost = 8
	// directIdleTimeout is how long a parked connection is kept, as
	// net/http.Transport's IdleConnTimeout of the other clients.
	directIdleTimeout = 90 * time.Second
)

type directConn struct {
	net.Conn
	// lim bounds what one exchange may read (head and body), under br.
	lim *io.LimitedReader
	br  *bufio.Reader
	bw  *bufio.Writer
	// parked is when it was last put back.
	parked time.Time
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.proxy != nil {
		if p, err := t.proxy(req); err != nil || p != nil {
			return t.fallback.RoundTrip(req)
		}
	}
	key, addr, err := directTarget(req.URL)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	c, err := t.conn(req.Context(), key, addr, req.URL.Hostname())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// No second attempt: a POST may have reached the peer before the
	// connection failed (the token hook's calls are not retried).
	resp, keep, err := t.exchange(c, req)
	if err != nil {
		c.Close()
		closeBody(req)
		return nil, err
	}
	if keep {
		t.park(key, c)
	} else {
		c.Close()
	}
	return resp, nil
}

// exchange sends req on c and reads the whole answer; keep says whether c
// may carry another request.
func (t *directTransport) exchange(c *directConn, req *http.Request) (*http.Response, bool, error) {
	ctx := req.Context()
	deadline := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, false, err
	}
	// Cancellation without a deadline: unblock the reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(c.bw); err != nil {
		return nil, false, ctxErr(ctx, err)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, false, ctxErr(ctx, err)
	}
	c.lim.N = t.maxHeader + t.maxBody + 1
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, false, ctxErr(ctx, err)
	}
	return t.readBody(ctx, c, resp)
}

// readBody reads resp's body from c (at most maxBody+1 bytes, so that the
// caller's limit still sees an answer that is too long) and replaces it
// with the bytes read.
func (t *directTransport) readBody(ctx context.Context, c *directConn, resp *http.Response) (*http.Response, bool, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.maxBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, false, ctxErr(ctx, err)
	}
	keep := !resp.Close && int64(len(data)) <= t.maxBody
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err := c.SetDeadline(time.Time{}); err != nil {
		keep = false
	}
	return resp, keep, nil
}

// conn returns a parked connection to key that is still open, or dials
// addr.
func (t *directTransport) conn(ctx context.Context, key, addr, host string) (*directConn, error) {
	for {
		t.mu.Lock()
		cs := t.idle[key]
		if len(cs) == 0 {
			t.mu.Unlock()
			break
		}
		c := cs[len(cs)-1]
		t.idle[key] = cs[:len(cs)-1]
		t.mu.Unlock()
		if time.Since(c.parked) < directIdleTimeout && alive(c.Conn) {
			return c, nil
		}
		c.Close()
	}
	raw, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if len(key) > 5 && key[:6] == "https:" {
		cfg := t.tls.Clone()
		cfg.ServerName = host
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		raw = tc
	}
	lim := &io.LimitedReader{R: raw}
	return &directConn{Conn: raw, lim: lim, br: bufio.NewReader(lim), bw: bufio.NewWriter(raw)}, nil
}

func (t *directTransport) park(key string, c *directConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle[key]) >= maxIdlePerHost {
		c.Close()
		return
	}
	if t.idle == nil {
		t.idle = map[string][]*directConn{}
	}
	c.parked = time.Now()
	t.idle[key] = append(t.idle[key], c)
}

// CloseIdleConnections closes the parked connections.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, cs := range t.idle {
		for _, c := range cs {
			c.Close()
		}
		delete(t.idle, k)
	}
}

// directTarget is the pool key (scheme://host:port) and the address to
// dial for u.
func directTarget(u *url.URL) (key, addr string, err error) {
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", "", fmt.Errorf("safehttp: unsupported scheme %q", u.Scheme)
	}
	addr = net.JoinHostPort(u.Hostname(), port)
	return u.Scheme + "://" + addr, addr, nil
}

// ctxErr prefers the context's error to the deadline error it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
