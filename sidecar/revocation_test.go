package sidecar

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/gatehouse-dev/gatehouse/extauthz"
	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// waitUntil polls a condition (no fixed sleeps).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func forwardAuth(t *testing.T, addr, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Forwarded-Uri", "/orders")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// By default the sidecar reads the revocation events of the admin API it
// introspects at (--introspection-url's origin); a revoked token is
// denied as a revoked token; with the stream down the sidecar stays
// ready, says it is degraded and keeps deciding.
func TestSidecarRevocationStream(t *testing.T) {
	is := extauthztest.New()
	t.Cleanup(is.Close)
	key := is.AddKey(jwa.ES256())
	rs := extauthztest.NewRevocationStream() // the "admin API" origin
	t.Cleanup(rs.Close)
	r := runServer(t, is.URL, func(c *Config) {
		c.Issuers[0].IntrospectionURL = rs.Server.URL + "/admin/oauth2/introspect"
	})
	waitUntil(t, "connected", func() bool {
		_, m := getStatus(t, "http://"+r.http+"/health/ready")
		return m["revocation_stream"] == extauthz.RevocationsConnected
	})
	revoked, other := is.Token(key, map[string]any{"jti": "j-1"}), is.Token(key, map[string]any{"jti": "j-2"})
	for _, tok := range []string{revoked, other} {
		if code, _ := forwardAuth(t, r.http, tok); code != 200 {
			t.Fatalf("before the event: %d", code)
		}
	}
	pos := rs.Publish(map[string]any{"kind": "token", "jti": []string{"j-1"}, "until": time.Now().Add(time.Hour).Format(time.RFC3339)})
	waitUntil(t, "the event applied", func() bool { return r.s.Authorizer().RevocationStatus().Position >= pos })
	code, chal := forwardAuth(t, r.http, revoked)
	if code != 401 || chal != `Bearer error="invalid_token", error_description="The access token is not active."` {
		t.Fatalf("revoked token: %d %q", code, chal)
	}
	if code, _ := forwardAuth(t, r.http, other); code != 200 {
		t.Fatalf("unaffected token: %d", code)
	}
	m := metricsText(t, r.http)
	for _, want := range []string{
		"gatehouse_sidecar_revocation_stream_connected 1",
		`gatehouse_sidecar_revocation_events_total{kind="token"} 1`,
		"gatehouse_sidecar_revocation_deny_set_size 1",
		"gatehouse_sidecar_revocation_stream_position 1",
		`gatehouse_sidecar_decisions_total{reason="revoked",result="deny"} 1`,
		"gatehouse_sidecar_revocation_lag_seconds",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	rs.SetDown(true)
	waitUntil(t, "degraded", func() bool {
		code, m := getStatus(t, "http://"+r.http+"/health/ready")
		if code != 200 {
			t.Fatalf("ready = %d with the stream down, want 200", code)
		}
		return m["revocation_stream"] == extauthz.RevocationsDegraded
	})
	if !strings.Contains(metricsText(t, r.http), "gatehouse_sidecar_revocation_stream_connected 0") {
		t.Error("connected gauge not 0 while down")
	}
	if code, _ := forwardAuth(t, r.http, other); code != 200 {
		t.Fatalf("with the stream down: %d", code)
	}
	if code, _ := forwardAuth(t, r.http, revoked); code != 401 {
		t.Fatalf("a revocation already applied is kept while the stream is down: %d", code)
	}
}

// --revocation-events-url off (or revocations.events_url: off) turns the
// stream off: no connection, health says off.
func TestSidecarRevocationStreamOff(t *testing.T) {
	c, err := LoadConfig([]byte("issuers: [{issuer: https://a.example.com}]\nrevocations: {events_url: off}\n"), Overrides{})
	if err != nil || c.Revocations.EventsURL != extauthz.RevocationsEventsOff {
		t.Fatalf("YAML off: %q %v", c.Revocations.EventsURL, err)
	}
	is := extauthztest.New()
	t.Cleanup(is.Close)
	is.AddKey(jwa.ES256())
	rs := extauthztest.NewRevocationStream()
	t.Cleanup(rs.Close)
	r := runServer(t, is.URL, func(c *Config) {
		c.Issuers[0].IntrospectionURL = rs.Server.URL + "/admin/oauth2/introspect"
		c.Revocations.EventsURL = extauthz.RevocationsEventsOff
	})
	waitUntil(t, "ready", r.s.Ready)
	if _, m := getStatus(t, "http://"+r.http+"/health/ready"); m["revocation_stream"] != extauthz.RevocationsOff {
		t.Fatalf("health = %v", m)
	}
	if n := rs.Connects.Load(); n != 0 {
		t.Fatalf("%d connections with the stream off", n)
	}
	if strings.Contains(metricsText(t, r.http), "revocation_stream_connected") {
		t.Error("stream metrics registered while off")
	}
}
