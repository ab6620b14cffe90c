package safehttp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) }

func TestGuard(t *testing.T) {
	srv := newServer(t, okHandler)
	// The same server reached by name: resolution happens before the check.
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	tests := []struct {
		name    string
		opts    Options
		url     string
		blocked bool
	}{
		{"guard off allows loopback", Options{}, srv.URL, false},
		{"guard on blocks loopback literal", Options{DisallowPrivateIPRanges: true}, srv.URL, true},
		{"guard on blocks loopback by name", Options{DisallowPrivateIPRanges: true}, byName, true},
		{"allow list lets loopback through", Options{DisallowPrivateIPRanges: true, AllowedPrefixes: []string{"127.0.0.0/8", "::1/128"}}, srv.URL, false},
		{"allow list by name", Options{DisallowPrivateIPRanges: true, AllowedPrefixes: []string{"127.0.0.1/32", "::1/128"}}, byName, false},
		{"unrelated allow list", Options{DisallowPrivateIPRanges: true, AllowedPrefixes: []string{"10.0.0.0/8"}}, srv.URL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			body, err := c.GetBody(context.Background(), tt.url, "")
			if tt.blocked {
				if !errors.Is(err, ErrBlockedAddress) {
					t.Fatalf("want ErrBlockedAddress, got %v (body %q)", err, body)
				}
				return
			}
			if err != nil || string(body) != `{"ok":true}` {
				t.Fatalf("got %q, %v", body, err)
			}
		})
	}
}

func TestRedirectToBlockedAddress(t *testing.T) {
	internal := newServer(t, okHandler)
	// 127.0.0.1 stands in for a public server (allow-listed); it redirects
	// to the cloud metadata address, which the guard must refuse.
	redirector := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	c, err := New(Options{DisallowPrivateIPRanges: true, AllowedPrefixes: []string{"127.0.0.1/32"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetBody(context.Background(), redirector.URL, "")
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("redirect to metadata address: want ErrBlockedAddress, got %v", err)
	}
	// A redirect to an allowed address is followed.
	redirector2 := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL, http.StatusFound)
	})
	if body, err := c.GetBody(context.Background(), redirector2.URL, ""); err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("allowed redirect: %q, %v", body, err)
	}
}

func TestRedirectLimit(t *testing.T) {
	var srv *httptest.Server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/again", http.StatusFound)
	})
	c, _ := New(Options{MaxRedirects: 2})
	if _, err := c.GetBody(context.Background(), srv.URL, ""); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("want redirect limit error, got %v", err)
	}
	c, _ = New(Options{MaxRedirects: -1})
	if _, err := c.GetBody(context.Background(), srv.URL, ""); err == nil {
		t.Fatal("redirects followed although disabled")
	}
}

func TestResponseSizeLimit(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("a", 2048)))
	})
	c, _ := New(Options{MaxResponseBytes: 1024})
	if _, err := c.GetBody(context.Background(), srv.URL, ""); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("want ErrResponseTooLarge, got %v", err)
	}
	c, _ = New(Options{MaxResponseBytes: 2048})
	if b, err := c.GetBody(context.Background(), srv.URL, ""); err != nil || len(b) != 2048 {
		t.Fatalf("exact limit: %d bytes, %v", len(b), err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c, _ := New(Options{Timeout: 100 * time.Millisecond})
	if _, err := c.GetBody(context.Background(), srv.URL, ""); err == nil {
		t.Fatal("want timeout")
	}
}

func TestStatusAndScheme(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	c, _ := New(Options{})
	if _, err := c.GetBody(context.Background(), srv.URL+"/x?secret=1", ""); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("404 must be an error without the query: %v", err)
	}
	for _, u := range []string{"file:///etc/passwd", "gopher://x", "://bad"} {
		if _, err := c.GetBody(context.Background(), u, ""); err == nil {
			t.Errorf("%s: want error", u)
		}
	}
}

func TestIsBlocked(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true},
		{"10.1.2.3", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"fc00::1", true}, {"fd12:3456::1", true},
		{"169.254.169.254", true}, {"fe80::1", true},
		{"100.64.0.1", true}, {"100.127.255.254", true},
		{"0.0.0.0", true}, {"::", true},
		{"224.0.0.1", true}, {"ff02::1", true}, {"255.255.255.255", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true},
		{"64:ff9b::a00:1", true},
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"172.32.0.1", false}, {"100.128.0.1", false},
		{"2606:4700:4700::1111", false}, {"::ffff:8.8.8.8", false},
	}
	for _, tt := range tests {
		if got := IsBlocked(netip.MustParseAddr(tt.ip)); got != tt.blocked {
			t.Errorf("IsBlocked(%s) = %v, want %v", tt.ip, got, tt.blocked)
		}
	}
}

func TestNewRejectsBadPrefix(t *testing.T) {
	if _, err := New(Options{AllowedPrefixes: []string{"not-a-cidr"}}); err == nil {
		t.Fatal("want error")
	}
}
