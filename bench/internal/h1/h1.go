// Package h1 is the load generators' HTTP/1.1 client transport: an
// http.RoundTripper that writes the request and reads the response on the
// caller's goroutine over a pooled keep-alive connection.
//
// net/http's Transport hands every request to a per-connection write
// goroutine and every response back from a read goroutine. Two scheduler
// hand-offs per request cost a generator little when the server answers
// in microseconds, but when it answers in milliseconds (a signature per
// request, a flow step) every hand-off wakes a sleeping thread, and the
// generator then spends more CPU per request than the request itself:
// CPU the server under test would have on a machine where the two share
// the cores. Like wrk, this transport sends one request at a time per
// connection, and needs no goroutine of its own.
//
// Only what the generators use: plain http to one or a few hosts, request
// bodies with a known length, responses with Content-Length or chunked
// bodies. A response is read only as far as it is consumed; its
// connection returns to the pool when the body reaches EOF or is closed
// (a body closed early is drained first, as net/http does for small ones).
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Transport is a pool of keep-alive connections per host. The zero value
// is usable: no per-request timeout beyond the request's context, at most
// 64 idle connections per host.
type Transport struct {
	// Timeout bounds each round trip (dial, write, read of the response
	// head) when the request's context has no earlier deadline. Reading
	// the body is bounded by the same deadline. Zero: none.
	Timeout time.Duration
	// MaxIdlePerHost bounds the idle connections kept per host (0: 64).
	MaxIdlePerHost int

	mu     sync.Mutex
	idle   map[string][]*conn
	closed bool
}

var _ http.RoundTripper = (*Transport)(nil)

type conn struct {
	host string
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		closeBody(req)
		return nil, errors.New("h1: only http:// URLs")
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host += ":80"
	}
	deadline, ok := req.Context().Deadline()
	if t.Timeout > 0 {
		if d := time.Now().Add(t.Timeout); !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	c := t.get(host)
	reused := c != nil
	for {
		if c == nil {
			var err error
			if c, err = dial(req.Context(), host, deadline); err != nil {
				closeBody(req)
				return nil, err
			}
		}
		resp, err := t.exchange(c, req, deadline, ok)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		// A pooled connection the server closed while idle: try once
		// more on a new one, if the request can be sent again.
		if !reused || req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		c, reused = nil, false
	}
}

func dial(ctx context.Context, host string, deadline time.Time) (*conn, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return &conn{host: host, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, nil
}

func (t *Transport) exchange(c *conn, req *http.Request, deadline time.Time, hasDeadline bool) (*http.Response, error) {
	if hasDeadline {
		_ = c.nc.SetDeadline(deadline)
	} else {
		_ = c.nc.SetDeadline(time.Time{})
	}
	// Body is nil'ed by req.Write only on the copy it writes; GetBody
	// (set by http.NewRequest for in-memory bodies) makes a retry possible.
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, err
	}
	keep := !resp.Close && resp.ProtoAtLeast(1, 1)
	resp.Body = &body{rc: resp.Body, t: t, c: c, keep: keep}
	return resp, nil
}

// body returns its connection to the pool once the response is read.
type body struct {
	rc   io.ReadCloser
	t    *Transport
	c    *conn
	keep bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *body) Close() error {
	if b.done {
		return nil
	}
	// Drain what is left (the generators read whole bodies anyway), so
	// that the connection can carry the next request.
	_, err := io.Copy(io.Discard, io.LimitReader(b.rc, 1<<20))
	b.finish(err == nil && b.rc.Close() == nil)
	return nil
}

func (b *body) finish(reusable bool) {
	b.done = true
	if reusable && b.keep {
		b.t.put(b.c)
	} else {
		b.c.nc.Close()
	}
}

func (t *Transport) get(host string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.idle[host]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	t.idle[host] = cs[:len(cs)-1]
	return c
}

func (t *Transport) put(c *conn) {
	t.mu.Lock()
	max := t.MaxIdlePerHost
	if max <= 0 {
		max = 64
	}
	if t.closed || len(t.idle[c.host]) >= max {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	t.idle[c.host] = append(t.idle[c.host], c)
	t.mu.Unlock()
}

// CloseIdleConnections closes the pooled connections; connections in use
// are closed when their response is done.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
}

// Close closes the idle connections and keeps none from now on.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
