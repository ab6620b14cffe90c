// Package safehttp is the issuer's outbound HTTP client for URLs that
// clients supply (jwks_uri, sector_identifier_uri, request_uri, back-channel
// logout). Such URLs are attacker-controlled, so when DisallowPrivateIPRanges
// is set the client refuses to connect to loopback, private, link-local,
// CGNAT, unspecified, multicast and other special-purpose addresses (a
// server-side request forgery guard).
//
// The check runs on the resolved IP address at dial time (net.Dialer's
// Control hook, after DNS resolution and right before connect), for the
// first request and for every redirect, so neither DNS rebinding nor a
// redirect to an internal host can get around it. Environment proxies are
// ignored while the guard is on: a proxy would make the dialled address the
// proxy's, hiding the real target. Responses are bounded in time and size.
package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by New for zero Options fields.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20 // 1 MiB
	DefaultMaxRedirects     = 3
)

// ErrBlockedAddress is returned (wrapped) when a connection to a blocked
// address was refused.
var ErrBlockedAddress = errors.New("safehttp: destination address is not allowed")

// ErrResponseTooLarge is returned when a body exceeds MaxResponseBytes.
var ErrResponseTooLarge = errors.New("safehttp: response body too large")

// Options configure a Client. config.Clients.HTTP maps onto the first two
// fields.
type Options struct {
	// DisallowPrivateIPRanges turns the SSRF guard on
	// (clients.http.disallow_private_ip_ranges).
	DisallowPrivateIPRanges bool
	// AllowedPrefixes are CIDR prefixes exempt from the guard
	// (clients.http.private_ip_prefix_allow_list).
	AllowedPrefixes []string
	// Timeout bounds a whole request, redirects and body included.
	Timeout time.Duration
	// MaxResponseBytes bounds a body read through Get/GetBody.
	MaxResponseBytes int64
	// MaxRedirects bounds the number of redirects followed (0: default,
	// negative: none followed).
	MaxRedirects int
	// Direct sends HTTP/1.1 requests on the caller's goroutine and reads
	// each answer whole, bounded by MaxResponseBytes, before Do returns
	// (direct.go): for calls on a request's critical path. Requests that
	// go through a proxy use the standard transport.
	Direct bool
	// UserAgent is sent with every request.
	UserAgent string
	// TracerProvider, when set, makes every request a client span and
	// sends the W3C trace context with it (tracing.go); nil traces
	// nothing.
	TracerProvider trace.TracerProvider
}

// Client is an SSRF-guarded HTTP client. It is safe for concurrent use.
type Client struct {
	opts    Options
	allowed []netip.Prefix
	http    *http.Client
}

// New returns a Client. It fails on an invalid allow-list prefix.
func New(o Options) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.UserAgent == "" {
		o.UserAgent = "gatehouse"
	}
	c := &Client{opts: o}
	for _, s := range o.AllowedPrefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("safehttp: allow list entry %q is not a CIDR prefix: %w", s, err)
		}
		c.allowed = append(c.allowed, p.Masked())
	}

	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           50,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if o.DisallowPrivateIPRanges {
		dialer.Control = c.control
		tr.Proxy = nil
	}
	var rt http.RoundTripper = tr
	if o.Direct {
		rt = &directTransport{
			dial: dialer.DialContext, tls: &tls.Config{MinVersion: tls.VersionTLS12},
			timeout: o.Timeout, maxBody: o.MaxResponseBytes, maxHeader: int64(tr.MaxResponseHeaderBytes),
			fallback: tr, proxy: tr.Proxy,
		}
	}
	if o.TracerProvider != nil {
		rt = &tracingTransport{next: rt, tracer: o.TracerProvider.Tracer(TracingScope)}
	}
	timeout := o.Timeout
	if o.Direct {
		timeout = 0 // Do bounds the call with its context
	}
	c.http = &http.Client{
		Transport: rt,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if o.MaxRedirects < 0 || len(via) > o.MaxRedirects {
				return fmt.Errorf("safehttp: stopped after %d redirects", len(via)-1)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("safehttp: redirect to unsupported scheme %q", req.URL.Scheme)
			}
			// A redirect to a literal blocked address fails here with a
			// clear error; names are checked after resolution by control.
			if err := c.checkHost(req.URL.Hostname()); err != nil {
				return err
			}
			return nil
		},
	}
	return c, nil
}

// HTTPClient returns the underlying guarded *http.Client (for libraries
// that take one). Its responses are not size-limited: wrap bodies with
// io.LimitReader or use Get/GetBody.
func (c *Client) HTTPClient() *http.Client { return c.http }

// MaxResponseBytes returns the configured body limit.
func (c *Client) MaxResponseBytes() int64 { return c.opts.MaxResponseBytes }

// Do sends req through the guard. The scheme must be http or https. The
// response body is limited to MaxResponseBytes (reading past it returns
// ErrResponseTooLarge).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return nil, fmt.Errorf("safehttp: unsupported URL scheme")
	}
	if err := c.checkHost(req.URL.Hostname()); err != nil {
		return nil, err
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	if c.opts.Direct {
		// The whole call, redirects included, is bounded here rather than
		// by http.Client.Timeout, which would start a goroutine per request
		// for a transport it does not know. The body is read before Do
		// returns.
		ctx, cancel := context.WithTimeout(req.Context(), c.opts.Timeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: c.opts.MaxResponseBytes}
	return resp, nil
}

// Get fetches rawURL and returns the response with a size-limited body.
func (c *Client) Get(ctx context.Context, rawURL string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("safehttp: invalid URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	return c.Do(req)
}

// GetBody fetches rawURL and returns the body of a 2xx response, at most
// MaxResponseBytes long. Other statuses are errors.
func (c *Client) GetBody(ctx context.Context, rawURL string, accept string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("safehttp: invalid URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("safehttp: %s answered HTTP %d", redactURL(u), resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// redactURL drops user info and query from a URL for error messages.
func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	v.Fragment = ""
	return v.String()
}

// control is the net.Dialer Control hook: address is the resolved
// "ip:port" about to be connected to.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBlockedAddress, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrBlockedAddress, host)
	}
	if !c.Allowed(ip) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, ip)
	}
	return nil
}

// checkHost rejects literal blocked IPs before any connection is made.
func (c *Client) checkHost(host string) error {
	if !c.opts.DisallowPrivateIPRanges {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && !c.Allowed(ip) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, ip)
	}
	return nil
}

// Allowed reports whether the guard lets a connection to ip through: always
// when the guard is off, otherwise when ip is a public unicast address or
// inside an allow-listed prefix.
func (c *Client) Allowed(ip netip.Addr) bool {
	if !c.opts.DisallowPrivateIPRanges {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range c.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return !IsBlocked(ip)
}

// blockedPrefixes are special-purpose ranges (RFC 6890 and the IANA
// registries) that a client-supplied URL must never reach.
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", unspecified (RFC 1122)
		"10.0.0.0/8",      // private (RFC 1918)
		"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata endpoints
		"172.16.0.0/12",   // private (RFC 1918)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
		"192.168.0.0/16",  // private (RFC 1918)
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"64:ff9b::/96",    // NAT64: may embed any IPv4 address
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: may embed any IPv4 address
		"fc00::/7",        // unique local (private)
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// IsBlocked reports whether ip lies in a range the guard refuses
// (ignoring any allow list).
func IsBlocked(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return true
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// limitedBody returns ErrResponseTooLarge once more than left bytes were read.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrResponseTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, ErrResponseTooLarge
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
