package extauthz

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// revEnv is an authorizer subscribed to a scripted revocation stream.
type revEnv struct {
	*env
	rs *extauthztest.RevocationStream
}

func newRevEnv(t *testing.T, mutate func(*Config)) *revEnv {
	t.Helper()
	rs := extauthztest.NewRevocationStream()
	t.Cleanup(rs.Close)
	return newRevEnvOn(t, rs, mutate)
}

// newRevEnvOn subscribes a new authorizer to an existing stream.
func newRevEnvOn(t *testing.T, rs *extauthztest.RevocationStream, mutate func(*Config)) *revEnv {
	t.Helper()
	e := newEnv(t, func(c *Config) {
		c.Revocations.EventsURL = rs.URL
		if mutate != nil {
			mutate(c)
		}
	})
	rs.Now = e.clock.Now
	re := &revEnv{env: e, rs: rs}
	re.waitFor(t, "connected", func() bool { return e.a.RevocationStatus().State == RevocationsConnected })
	return re
}

// waitFor polls a condition (no fixed sleeps).
func (e *revEnv) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (status %+v)", what, e.a.RevocationStatus())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish sends an event and waits until the authorizer applied it.
func (e *revEnv) publish(t *testing.T, ev map[string]any) int64 {
	t.Helper()
	if _, ok := ev["until"]; !ok {
		ev["until"] = e.clock.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339Nano)
	}
	pos := e.rs.Publish(ev)
	e.waitFor(t, fmt.Sprintf("position %d", pos), func() bool { return e.a.RevocationStatus().Position >= pos })
	return pos
}

func (e *revEnv) allowed(t *testing.T, tok string) bool {
	t.Helper()
	d := e.a.Decide(context.Background(), bearer(tok))
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	if d.Denial != nil && d.Denial.Reason != ReasonRevoked {
		t.Fatalf("denied for another reason: %s", d.Denial.Reason)
	}
	return d.Allowed()
}

// Each event kind denies the tokens it names, cached or not, and no
// other.
func TestRevocationEventKinds(t *testing.T) {
	type tokSpec = map[string]any
	iat := testEpoch.Add(-time.Minute)
	cases := []struct {
		name     string
		event    func(e *revEnv) map[string]any
		affected tokSpec // claim overrides of the revoked token
		others   []tokSpec
		otherKey bool // also check a token of another key stays allowed
	}{
		{"token by jti", func(*revEnv) map[string]any {
			return map[string]any{"kind": "token", "jti": []string{"j-1", "j-2"}, "client_id": "c1"}
		}, tokSpec{"jti": "j-2", "client_id": "c1"}, []tokSpec{{"jti": "j-3", "client_id": "c1"}, {"jti": "j-1", "client_id": "c2"}}, false},
		{"token for a whole client", func(*revEnv) map[string]any {
			return map[string]any{"kind": "token", "client_id": "c1", "issued_before": testEpoch.Format(time.RFC3339Nano)}
		}, tokSpec{"client_id": "c1", "iat": iat.Unix()}, []tokSpec{{"client_id": "c2", "iat": iat.Unix()}, {"client_id": "c1", "iat": testEpoch.Add(time.Second).Unix()}}, false},
		{"consent", func(*revEnv) map[string]any {
			return map[string]any{"kind": "consent", "sub": "alice", "client_id": "c1", "issued_before": testEpoch.Format(time.RFC3339Nano)}
		}, tokSpec{"sub": "alice", "client_id": "c1", "iat": iat.Unix()}, []tokSpec{{"sub": "bob", "client_id": "c1", "iat": iat.Unix()}, {"sub": "alice", "client_id": "c2", "iat": iat.Unix()}}, false},
		{"consent of every client", func(*revEnv) map[string]any {
			return map[string]any{"kind": "consent", "sub": "alice", "issued_before": testEpoch.Format(time.RFC3339Nano)}
		}, tokSpec{"sub": "alice", "client_id": "c9", "iat": iat.Unix()}, []tokSpec{{"sub": "bob", "iat": iat.Unix()}}, false},
		{"session (logout)", func(*revEnv) map[string]any {
			return map[string]any{"kind": "session", "sid": "s-1", "sub": "alice", "issued_before": testEpoch.Format(time.RFC3339Nano)}
		}, tokSpec{"sid": "s-1", "sub": "alice", "iat": iat.Unix()}, []tokSpec{{"sid": "s-2", "sub": "alice", "iat": iat.Unix()}, {"sub": "alice", "iat": iat.Unix()}}, false},
		{"client deleted", func(*revEnv) map[string]any {
			return map[string]any{"kind": "client", "client_id": "c1", "reason": "deleted", "issued_before": testEpoch.Format(time.RFC3339Nano)}
		}, tokSpec{"client_id": "c1", "iat": iat.Unix()}, []tokSpec{{"client_id": "c2", "iat": iat.Unix()}}, false},
		{"key removed", func(e *revEnv) map[string]any {
			return map[string]any{"kind": "key", "kid": e.key.KID}
		}, tokSpec{}, nil, true},
		{"unknown kind, same rule", func(*revEnv) map[string]any {
			return map[string]any{"kind": "future", "sub": "alice", "extra": 1}
		}, tokSpec{"sub": "alice"}, []tokSpec{{"sub": "bob"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRevEnv(t, nil)
			affected := e.is.Token(e.key, tc.affected)
			var others []string
			for _, o := range tc.others {
				others = append(others, e.is.Token(e.key, o))
			}
			if tc.otherKey {
				others = append(others, e.is.Token(e.is.AddKey(e.key.Alg), nil))
			}
			// Cached before the event: three decisions put it in the cache.
			for range 3 {
				if !e.allowed(t, affected) {
					t.Fatal("denied before the event")
				}
				e.a.cache.wait()
			}
			e.publish(t, tc.event(e))
			if e.allowed(t, affected) {
				t.Fatal("the revoked token (cached) is still allowed")
			}
			// Fresh: the decision cache lost it; it is verified again.
			e.a.cache.clear()
			if e.allowed(t, affected) {
				t.Fatal("the revoked token (fresh) is still allowed")
			}
			for i, o := range others {
				if !e.allowed(t, o) {
					t.Fatalf("unaffected token %d denied", i)
				}
			}
			if n := counterValue(t, e.reg, "gatehouse_sidecar_decisions_total", map[string]string{"reason": ReasonRevoked}); n != 2 {
				t.Fatalf("revoked decisions = %v, want 2", n)
			}
		})
	}
}

// An opaque token is named by the jti introspection answers: cached
// introspection answers are dropped without waiting for cache_ttl.
func TestRevocationOpaqueToken(t *testing.T) {
	e := newRevEnv(t, nil)
	c := e.is.Claims()
	delete(c, "scp")
	c["jti"] = "ot.abc"
	c["token_use"] = "access_token"
	e.is.AddOpaque("opaque-1", c)
	c2 := e.is.Claims()
	c2["jti"] = "ot.def"
	e.is.AddOpaque("opaque-2", c2)
	for _, tok := range []string{"opaque-1", "opaque-2"} {
		if !e.allowed(t, tok) {
			t.Fatal("denied before the event")
		}
	}
	e.a.cache.wait()
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"ot.abc"}})
	calls := e.is.IntrospectionCalls.Load()
	if e.allowed(t, "opaque-1") {
		t.Fatal("revoked opaque token allowed from the cache")
	}
	if !e.allowed(t, "opaque-2") {
		t.Fatal("unaffected opaque token denied")
	}
	if n := e.is.IntrospectionCalls.Load(); n != calls {
		t.Fatalf("introspection calls %d → %d: the unaffected token should stay cached", calls, n)
	}
}

// The denial is an ordinary revoked token's: 401 invalid_token with the
// Bearer challenge.
func TestRevocationDenialLooksRevoked(t *testing.T) {
	e := newRevEnv(t, func(c *Config) { c.Realm = "api" })
	srv := newHTTP(t, e.env)
	tok := e.is.Token(e.key, map[string]any{"jti": "j-9"})
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/auth", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-Uri", "/orders")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := get(); r.StatusCode != 200 {
		t.Fatalf("before: %d", r.StatusCode)
	}
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"j-9"}})
	r := get()
	want := `Bearer realm="api", error="invalid_token", error_description="The access token is not active."`
	if r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("after: %d %q, want 401 %q", r.StatusCode, r.Header.Get("WWW-Authenticate"), want)
	}
}

// A dropped connection is resumed from the last position: the events
// published while it was away arrive, none twice, none lost.
func TestRevocationReconnectResumes(t *testing.T) {
	e := newRevEnv(t, nil)
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"a"}})
	e.rs.SetDown(true)
	e.waitFor(t, "degraded", func() bool { return e.a.RevocationStatus().State == RevocationsDegraded })
	if v := gaugeValue(t, e.reg, "gatehouse_sidecar_revocation_stream_connected"); v != 0 {
		t.Fatalf("connected gauge = %v while down", v)
	}
	e.rs.Publish(map[string]any{"kind": "token", "jti": []string{"b"}, "until": e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
	e.rs.SetDown(false)
	e.waitFor(t, "caught up", func() bool { return e.a.RevocationStatus().Position == 2 })
	if e.allowed(t, e.is.Token(e.key, map[string]any{"jti": "b"})) {
		t.Fatal("event published while disconnected was not applied")
	}
	ids := e.rs.LastEventIDs()
	if ids[0] != "0" || ids[len(ids)-1] != "1" {
		t.Fatalf("Last-Event-ID of the requests = %q, want \"0\" (the whole backlog) first and \"1\" last", ids)
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "reset"}); n != 0 {
		t.Fatalf("resets = %v after a resumable reconnect", n)
	}
}

// A sidecar that starts (or restarts) reads the retained backlog: tokens
// revoked before it started are denied. When the backlog's beginning was
// flushed, the caches are dropped and the reason says "start".
func TestRevocationStartReadsBacklog(t *testing.T) {
	rs := extauthztest.NewRevocationStream()
	t.Cleanup(rs.Close)
	until := testEpoch.Add(time.Hour).Format(time.RFC3339)
	rs.Publish(map[string]any{"kind": "token", "jti": []string{"flushed"}, "until": until})
	rs.Publish(map[string]any{"kind": "session", "sid": "s-1", "until": until})
	rs.FlushThrough(1)
	e := newRevEnvOn(t, rs, nil)
	e.waitFor(t, "backlog", func() bool { return e.a.RevocationStatus().Position == 2 })
	if e.allowed(t, e.is.Token(e.key, map[string]any{"sid": "s-1"})) {
		t.Fatal("a session revoked before the start is allowed")
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "start"}); n != 1 {
		t.Fatalf("start resets = %v, want 1", n)
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "reset"}); n != 0 {
		t.Fatalf("resets = %v, want 0", n)
	}
}

// A sidecar away past the retention gets reset: it drops every cached
// decision (an opaque token is introspected again) and says so.
func TestRevocationReset(t *testing.T) {
	e := newRevEnv(t, nil)
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"a"}})
	e.is.AddOpaque("opaque-1", nil)
	if !e.allowed(t, "opaque-1") {
		t.Fatal("denied")
	}
	e.a.cache.wait()
	e.rs.SetDown(true)
	e.waitFor(t, "degraded", func() bool { return e.a.RevocationStatus().State == RevocationsDegraded })
	e.rs.Publish(map[string]any{"kind": "token", "jti": []string{"b"}})
	p3 := e.rs.Publish(map[string]any{"kind": "token", "jti": []string{"c"}, "until": e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
	e.rs.FlushThrough(2) // "b" is gone before the sidecar saw it
	e.rs.SetDown(false)
	e.waitFor(t, "caught up", func() bool { return e.a.RevocationStatus().Position == p3 })
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "reset"}); n != 1 {
		t.Fatalf("resets = %v, want 1", n)
	}
	calls := e.is.IntrospectionCalls.Load()
	if !e.allowed(t, "opaque-1") || e.is.IntrospectionCalls.Load() != calls+1 {
		t.Fatal("the cached introspection answer survived the reset")
	}
	if e.allowed(t, e.is.Token(e.key, map[string]any{"jti": "c"})) {
		t.Fatal("the retained event after the reset was not applied")
	}
}

// Entries are forgotten once their tokens have expired (until plus the
// tolerated skew), and the set never holds more than max_entries: the
// entries expiring first make room and the caches are dropped.
func TestRevocationDenySetExpiryAndBound(t *testing.T) {
	e := newRevEnv(t, func(c *Config) { c.Revocations.MaxEntries = 3 })
	// A token whose exp is far: only the deny-set keeps it out.
	far := func(jti string) string {
		return e.is.Token(e.key, map[string]any{"jti": jti, "exp": e.clock.Now().Add(24 * time.Hour).Unix()})
	}
	at := func(d time.Duration) string { return e.clock.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"x"}, "until": at(10 * time.Minute)})
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"y", "z"}, "until": at(time.Hour)})
	if e.allowed(t, far("x")) || e.allowed(t, far("y")) {
		t.Fatal("revoked tokens allowed")
	}
	if n := e.a.RevocationStatus().DenySet; n != 3 {
		t.Fatalf("deny-set size = %d, want 3", n)
	}
	// Full: the next event evicts "x", which expires first.
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"w"}, "until": at(time.Hour)})
	if n := e.a.RevocationStatus().DenySet; n != 3 {
		t.Fatalf("deny-set size = %d, want 3 (the bound)", n)
	}
	if !e.allowed(t, far("x")) || e.allowed(t, far("w")) || e.allowed(t, far("z")) {
		t.Fatal("eviction did not drop the entry expiring first")
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_deny_set_evictions_total", nil); n != 1 {
		t.Fatalf("evictions = %v, want 1", n)
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "overflow"}); n != 1 {
		t.Fatalf("overflow resets = %v, want 1", n)
	}
	// Still full: the next eviction within 10 s keeps the caches.
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"v"}, "until": at(2 * time.Hour)})
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "overflow"}); n != 1 {
		t.Fatalf("overflow resets = %v after a second eviction within 10 s, want 1", n)
	}
	// Expiry: kept through until + clock_skew (30s), then forgotten.
	e.clock.Advance(2*time.Hour + 29*time.Second)
	e.a.revoked.expire(e.clock.Now())
	if e.allowed(t, far("v")) {
		t.Fatal("forgotten before until + skew")
	}
	e.clock.Advance(2 * time.Second)
	e.a.revoked.expire(e.clock.Now())
	if !e.allowed(t, far("v")) || e.a.RevocationStatus().DenySet != 0 {
		t.Fatalf("not forgotten after until + skew (size %d)", e.a.RevocationStatus().DenySet)
	}
}

// An event that cannot be decoded cannot be applied: the caches are
// dropped (opaque tokens are introspected again) and the stream goes on.
func TestRevocationMalformedEvent(t *testing.T) {
	e := newRevEnv(t, nil)
	e.is.AddOpaque("opaque-1", nil)
	if !e.allowed(t, "opaque-1") {
		t.Fatal("denied")
	}
	e.a.cache.wait()
	p := e.rs.PublishRaw(`{"position":"not a number"}`)
	e.waitFor(t, "the malformed frame", func() bool { return e.a.RevocationStatus().Position >= p })
	if n := counterValue(t, e.reg, "gatehouse_sidecar_revocation_cache_resets_total", map[string]string{"reason": "malformed"}); n != 1 {
		t.Fatalf("malformed resets = %v, want 1", n)
	}
	calls := e.is.IntrospectionCalls.Load()
	if !e.allowed(t, "opaque-1") || e.is.IntrospectionCalls.Load() != calls+1 {
		t.Fatal("the cached introspection answer survived the malformed event")
	}
	e.publish(t, map[string]any{"kind": "token", "jti": []string{"after"}})
	if e.allowed(t, e.is.Token(e.key, map[string]any{"jti": "after"})) {
		t.Fatal("the stream stopped after the malformed event")
	}
}

// Events only apply to the first issuer's tokens.
func TestRevocationOtherIssuerUnaffected(t *testing.T) {
	d := newDenySet("https://a.example", 10)
	d.add(RevocationEvent{Position: 1, Sub: "alice"}, testEpoch.Add(time.Hour), testEpoch)
	if d.match(&Identity{Issuer: "https://b.example", Subject: "alice"}) {
		t.Fatal("another issuer's token matched")
	}
	if !d.match(&Identity{Issuer: "https://a.example", Subject: "alice"}) {
		t.Fatal("the issuer's token did not match")
	}
}

// The matching rule, member by member.
func TestDenyEntryMatches(t *testing.T) {
	ib := testEpoch
	tok := &Identity{Issuer: "i", Subject: "alice", ClientID: "c1",
		rev: revocationKeys{jti: "j1", sid: "s1", kid: "k1", iat: ib.Add(-time.Second), hasIAT: true}}
	noIAT := &Identity{Issuer: "i", Subject: "alice", ClientID: "c1", rev: revocationKeys{jti: "j1"}}
	cases := []struct {
		name string
		ev   RevocationEvent
		tok  *Identity
		want bool
	}{
		{"jti in list", RevocationEvent{JTI: []string{"x", "j1"}}, tok, true},
		{"jti not in list", RevocationEvent{JTI: []string{"x"}}, tok, false},
		{"jti and other client", RevocationEvent{JTI: []string{"j1"}, ClientID: "c2"}, tok, false},
		{"sub", RevocationEvent{Sub: "alice"}, tok, true},
		{"sub and client", RevocationEvent{Sub: "alice", ClientID: "c1"}, tok, true},
		{"sub other client", RevocationEvent{Sub: "alice", ClientID: "c2"}, tok, false},
		{"sid", RevocationEvent{SID: "s1"}, tok, true},
		{"other sid", RevocationEvent{SID: "s2"}, tok, false},
		{"kid", RevocationEvent{KID: "k1"}, tok, true},
		{"other kid", RevocationEvent{KID: "k2"}, tok, false},
		{"issued before", RevocationEvent{ClientID: "c1", IssuedBefore: ib}, tok, true},
		{"issued at the instant", RevocationEvent{ClientID: "c1", IssuedBefore: ib.Add(-time.Second)}, tok, false},
		{"issued after", RevocationEvent{ClientID: "c1", IssuedBefore: ib.Add(-time.Minute)}, tok, false},
		{"no iat: fail closed", RevocationEvent{ClientID: "c1", IssuedBefore: ib.Add(-time.Minute)}, noIAT, true},
		{"issued_before alone", RevocationEvent{IssuedBefore: ib}, tok, true},
		{"no selector", RevocationEvent{}, tok, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDenySet("i", 10)
			tc.ev.Position = 1
			d.add(tc.ev, ib.Add(time.Hour), ib)
			if got := d.match(tc.tok); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

// The identity keeps jti, sid, iat and kid even when no rule or header
// reads them (claimsRead trims the others).
func TestIdentityKeepsRevocationKeys(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Headers.Identity = map[string]string{} })
	tok := e.is.Token(e.key, map[string]any{"jti": "j-5", "sid": "s-5"})
	id, deny, err := e.a.Authenticate(context.Background(), tok)
	if err != nil || deny != nil {
		t.Fatal(err, deny)
	}
	if id.rev.jti != "j-5" || id.rev.sid != "s-5" || id.rev.kid != e.key.KID || !id.rev.hasIAT ||
		!id.rev.iat.Equal(testEpoch) {
		t.Fatalf("revocation keys = %+v", id.rev)
	}
}

func TestParseRevocationEvent(t *testing.T) {
	for _, bad := range []string{``, `[]`, `{}`, `{"position":0}`, `{"position":-1}`, `{"position":"1"}`, `{"position":1,"jti":"x"}`, `{"position":1,"until":"yesterday"}`} {
		if _, err := parseRevocationEvent([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	ev, err := parseRevocationEvent([]byte(`{"position":42,"kind":"token","time":"2026-12-07T13:30:00.123Z","until":"2026-12-07T14:30:00Z","jti":["a",""],"client_id":"orders","new":{"x":1}}`))
	if err != nil || ev.Position != 42 || len(ev.JTI) != 1 || ev.ClientID != "orders" || ev.Until.IsZero() {
		t.Fatalf("%+v %v", ev, err)
	}
}

func TestSSEReader(t *testing.T) {
	in := "\xEF\xBB\xBF: comment\r\nid: 1\r\nevent: hello\r\ndata: {\"head\":1}\r\n\r\n" +
		"data:a\rdata: b\r\r" + // CR line ends, data joined by \n, default event
		"id: 7\n\n" + // no data: not dispatched, id kept
		"event: revocation\ndata\nretry: 50\nunknown: x\n\n" +
		"id: 8\u0000\nevent: x\ndata: y\n\n" + // an id with NUL is ignored
		"data: incomplete"
	r := newSSEReader(strings.NewReader(in), 1024)
	want := []sseFrame{
		{Event: "hello", Data: []byte(`{"head":1}`), ID: "1", Retry: -1},
		{Event: "message", Data: []byte("a\nb"), ID: "1", Retry: -1},
		{Event: "revocation", Data: []byte(""), ID: "7", Retry: 50},
		{Event: "x", Data: []byte("y"), ID: "7", Retry: -1},
	}
	for i, w := range want {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Event != w.Event || string(f.Data) != string(w.Data) || f.ID != w.ID || f.Retry != w.Retry {
			t.Fatalf("frame %d = %+v (data %q), want %+v", i, f, f.Data, w)
		}
	}
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("incomplete last frame: %v", err)
	}
	if _, err := newSSEReader(strings.NewReader("data: "+strings.Repeat("x", 2000)+"\n\n"), 1024).Next(); err != errSSELineTooLong {
		t.Fatalf("long line: %v", err)
	}
	if _, err := newSSEReader(strings.NewReader(strings.Repeat("data: xxxxxxxx\n", 200)+"\n"), 1024).Next(); err != errSSELineTooLong {
		t.Fatalf("long frame: %v", err)
	}
}

// FuzzSSEReader: any byte stream parses without panicking, within the
// bound, and the stream's frames are all found.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"id: 1\nevent: hello\ndata: {}\n\n",
		"\xEF\xBB\xBFdata: a\r\ndata: b\r\n\r\n",
		": keepalive\n\nid: 3\nevent: revocation\ndata: {\"position\":3,\"kind\":\"token\",\"jti\":[\"a\"]}\n\n",
		"data\rid\x00\rretry: 12\r\r",
		"event: reset\ndata: {\"head\":5,\"oldest\":3}\nid: 2\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newSSEReader(strings.NewReader(string(b)), 256)
		for range len(b) + 1 {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if len(fr.Data) > 256 || fr.Event == "" {
				t.Fatalf("frame %+v", fr)
			}
			if fr.Event == "revocation" {
				_, _ = parseRevocationEvent(fr.Data)
			}
		}
		t.Fatal("more frames than bytes")
	})
}

// FuzzParseRevocationEvent: event data never panics and an accepted
// event has a position.
func FuzzParseRevocationEvent(f *testing.F) {
	f.Add([]byte(`{"position":1,"kind":"token","jti":["a"],"until":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"position":2,"kind":"session","sid":"s","issued_before":"2030-01-01T00:00:00.5Z"}`))
	f.Add([]byte(`{"position":3,"kind":"key","kid":"k","until":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseRevocationEvent(b)
		if err == nil && ev.Position <= 0 {
			t.Fatalf("accepted %+v", ev)
		}
		if err == nil {
			d := newDenySet("i", 4)
			d.add(ev, testEpoch.Add(time.Hour), testEpoch)
			if d.size() > 4 {
				t.Fatalf("size %d over the bound", d.size())
			}
		}
	})
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The stream's errors are logged without the URL's userinfo or query.
func TestRevocationStreamLogsNoSecrets(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	is := extauthztest.New()
	t.Cleanup(is.Close)
	addRSAKey(is, 0)
	cfg := Config{Issuers: []IssuerConfig{{Issuer: is.URL}}}
	cfg.Revocations.EventsURL = "http://user:hunter2@127.0.0.1:1/admin/revocations/events?key=s3cret"
	a, err := New(cfg, Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessageSnippet("revocation stream down").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no warning about the stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Stop()
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, "hunter2") || strings.Contains(line, "s3cret") {
			t.Fatalf("secret logged: %s", line)
		}
	}
	if st := a.RevocationStatus(); st.State != RevocationsDegraded {
		t.Fatalf("state %s, want degraded", st.State)
	}
}

// Where the stream is read: the configured URL, else the origin of the
// introspection endpoint (configured or discovered) plus the events path;
// with no introspection endpoint there is no stream (off, not degraded).
func TestRevocationsURLDefaults(t *testing.T) {
	e := newEnv(t, nil) // introspection_endpoint from discovery
	if got, want := e.a.revocationsURL(), e.is.URL+"/admin/revocations/events"; got != want {
		t.Errorf("from discovery: %q, want %q", got, want)
	}
	e = newEnv(t, func(c *Config) {
		c.Issuers[0].IntrospectionURL = "http://127.0.0.1:1/admin/oauth2/introspect?x=1"
	})
	if got, want := e.a.revocationsURL(), "http://127.0.0.1:1/admin/revocations/events"; got != want {
		t.Errorf("from introspection_url: %q, want %q", got, want)
	}
	e = newEnv(t, func(c *Config) { c.Revocations.EventsURL = "http://127.0.0.1:2/stream" })
	if got := e.a.revocationsURL(); got != "http://127.0.0.1:2/stream" {
		t.Errorf("configured: %q", got)
	}
	e = newEnvWith(t, nil, func(is *extauthztest.Issuer) { is.NoIntrospectionInDiscovery = true })
	if got, st := e.a.revocationsURL(), e.a.RevocationStatus().State; got != "" || st != RevocationsOff {
		t.Errorf("no introspection endpoint: %q %s, want no URL and off", got, st)
	}
	e = newEnv(t, func(c *Config) { c.Revocations.EventsURL = RevocationsEventsOff })
	if st := e.a.RevocationStatus().State; st != RevocationsOff || e.a.revStream != nil {
		t.Errorf("off: %s", st)
	}
}
