package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

func TestDecisionCacheHitsAndExpiry(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.is.Token(e.key, map[string]any{"exp": e.clock.Now().Add(2 * time.Minute).Unix()})
	for i := 0; i < 4; i++ {
		if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
			t.Fatalf("request %d denied: %+v", i, d.Denial)
		}
		e.a.cache.wait()
	}
	// A JWT is cached from its second miss on (the doorkeeper).
	if hits := counterValue(t, e.reg, "gatehouse_sidecar_cache_requests_total", map[string]string{"result": "hit"}); hits != 2 {
		t.Fatalf("cache hits = %v, want 2", hits)
	}
	// The positive entry never outlives the token (exp + skew).
	e.clock.Advance(2*time.Minute + 31*time.Second)
	d := e.a.Decide(context.Background(), bearer(tok))
	if d.Denial == nil || d.Denial.Reason != ReasonExpired {
		t.Fatalf("after exp: %+v", d)
	}
}

// A JWT seen once is not cached (a one-hit wonder would only cost the
// cache memory and evict others); seen again, it is. Opaque tokens are
// cached at once: their miss is a call to the issuer.
func TestDoorkeeper(t *testing.T) {
	e := newEnv(t, nil)
	hits := func() float64 {
		return counterValue(t, e.reg, "gatehouse_sidecar_cache_requests_total", map[string]string{"result": "hit"})
	}
	once, twice := e.is.Token(e.key, nil), e.is.Token(e.key, nil)
	for _, tok := range []string{once, twice, twice, twice, once} {
		if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
			t.Fatalf("denied: %+v", d.Denial)
		}
		e.a.cache.wait()
	}
	// twice: miss, miss (cached), hit; once: miss, miss (cached).
	if h := hits(); h != 1 {
		t.Fatalf("cache hits = %v, want 1", h)
	}
	// A denial goes through the doorkeeper too.
	forged := e.is.Token(e.key, nil)
	forged = forged[:len(forged)-4] + "AAAA"
	for i := 0; i < 3; i++ {
		if d := e.a.Decide(context.Background(), bearer(forged)); d.Denial == nil || d.Denial.Reason != ReasonBadSignature {
			t.Fatalf("forged token: %+v", d)
		}
		e.a.cache.wait()
	}
	if h := hits(); h != 2 {
		t.Fatalf("cache hits = %v, want 2", h)
	}

	op := "ory_at_doorkeeperdoorkeeper.signature"
	e.is.AddOpaque(op, nil)
	for i := 0; i < 2; i++ {
		if d := e.a.Decide(context.Background(), bearer(op)); !d.Allowed() {
			t.Fatalf("opaque token denied: %+v", d.Denial)
		}
		e.a.cache.wait()
	}
	if n := e.is.IntrospectionCalls.Load(); n != 1 {
		t.Fatalf("introspection called %d times, want 1 (cached at once)", n)
	}
}

func TestDoorkeeperSlots(t *testing.T) {
	d := newDoorkeeper(1000)
	if len(d.slots) != 1024 {
		t.Fatalf("slots = %d, want 1024", len(d.slots))
	}
	a, b := hashToken("a"), hashToken("b")
	if d.admit(a) || !d.admit(a) || !d.admit(a) {
		t.Fatal("a token is admitted from its second offer on")
	}
	if d.admit(b) {
		t.Fatal("b admitted at its first offer")
	}
	// A token whose slot another one took is forgotten, not confused.
	var c tokenKey
	for i := 0; ; i++ {
		c = hashToken(fmt.Sprint("c", i))
		if le64(c[16:24])&d.mask == le64(b[16:24])&d.mask {
			break
		}
	}
	if d.admit(c) || d.admit(b) {
		t.Fatal("a slot's new token or its overwritten one admitted")
	}
}

func TestNegativeEntriesAreBrief(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.is.Token(e.key, map[string]any{"nbf": e.clock.Now().Add(40 * time.Second).Unix()})
	if d := e.a.Decide(context.Background(), bearer(tok)); d.Denial == nil || d.Denial.Reason != ReasonNotYetValid {
		t.Fatalf("before nbf: %+v", d)
	}
	e.a.cache.wait()
	e.clock.Advance(11 * time.Second) // nbf - skew has passed
	if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
		t.Fatalf("after nbf: %+v", d.Denial)
	}
}

func TestRules(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Rules = []Rule{
			{Name: "health", Match: Match{Path: "/healthz", Methods: []string{"get", "HEAD"}}, AllowAnonymous: true},
			{Name: "public", Match: Match{PathPrefix: "/public"}, AllowAnonymous: true},
			{Name: "admin-host", Match: Match{Hosts: []string{"admin.example.com"}}, Scopes: []string{"admin"}},
			{Name: "tenants", Match: Match{Hosts: []string{"*.tenants.example.com"}, PathPrefix: "/"}, Claims: map[string]StringList{"ext.tenant": {"acme", "globex"}}},
			{Name: "opaque-only", Match: Match{PathPrefix: "/legacy/"}, TokenTypes: []string{"opaque"}},
			{Name: "writes", Match: Match{PathPrefix: "/api", Methods: []string{"POST", "PUT"}}, Scopes: []string{"write"}},
			{Name: "api", Match: Match{PathPrefix: "/api"}, Scopes: []string{"read"}, Audiences: []string{"api"}},
		}
	})
	valid := e.is.Token(e.key, nil)
	readOnly := e.is.Token(e.key, map[string]any{"scope": "read", "scp": nil})
	otherTenant := e.is.Token(e.key, map[string]any{"ext": map[string]any{"tenant": "initech"}})
	tests := []struct {
		name, host, method, path, token string
		rule                            string
		allowed, identity               bool
		reason                          string
	}{
		{"anonymous exact path", "x", "GET", "/healthz", "", "health", true, false, ""},
		{"exact path is exact", "x", "GET", "/healthz/x", "", "default", false, false, ReasonMissingToken},
		{"method not listed", "x", "DELETE", "/healthz", "", "default", false, false, ReasonMissingToken},
		{"anonymous prefix", "x", "GET", "/public/a.css", "", "public", true, false, ""},
		{"prefix by segment", "x", "GET", "/publicity", "", "default", false, false, ReasonMissingToken},
		{"anonymous route with a valid token gets identity", "x", "GET", "/public", valid, "public", true, true, ""},
		{"anonymous route with a bad token stays anonymous", "x", "GET", "/public", "garbage.token.here", "public", true, false, ""},
		{"dot segments are resolved before matching", "x", "GET", "/public/../admin", "", "default", false, false, ReasonMissingToken},
		{"encoded dot segments too", "x", "GET", "/public/%2e%2e/admin", "", "default", false, false, ReasonMissingToken},
		{"query string ignored for matching", "x", "GET", "/healthz?x=/public", "", "health", true, false, ""},
		{"host rule, missing scope", "Admin.Example.com:8443", "GET", "/", valid, "admin-host", false, false, ReasonScope},
		{"wildcard host with accepted claim", "a.tenants.example.com", "GET", "/", valid, "tenants", true, true, ""},
		{"wildcard host with other claim", "b.tenants.example.com", "GET", "/", otherTenant, "tenants", false, false, ReasonClaim},
		{"wildcard does not match the apex", "tenants.example.com", "GET", "/", otherTenant, "default", true, true, ""},
		{"token type rule", "x", "GET", "/legacy/x", valid, "opaque-only", false, false, ReasonRouteTokenType},
		{"first match wins: write needs write", "x", "POST", "/api/items", readOnly, "writes", false, false, ReasonScope},
		{"read rule for GET", "x", "GET", "/api/items", readOnly, "api", true, true, ""},
		{"default rule: any valid token", "x", "GET", "/anything", valid, "default", true, true, ""},
		{"default rule: no token", "x", "GET", "/anything", "", "default", false, false, ReasonMissingToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Request{Host: tc.host, Method: tc.method, Path: tc.path}
			if tc.token != "" {
				r.Authorization = "Bearer " + tc.token
			}
			d := e.a.Decide(context.Background(), r)
			if d.Rule != tc.rule {
				t.Errorf("rule %q, want %q", d.Rule, tc.rule)
			}
			if d.Allowed() != tc.allowed {
				t.Fatalf("allowed=%v (%+v), want %v", d.Allowed(), d.Denial, tc.allowed)
			}
			if (d.Identity != nil) != tc.identity {
				t.Errorf("identity=%v, want %v", d.Identity != nil, tc.identity)
			}
			if tc.reason != "" && d.Denial.Reason != tc.reason {
				t.Errorf("reason %q, want %q", d.Denial.Reason, tc.reason)
			}
		})
	}
}

func TestInsufficientScopeChallenge(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Realm = "api"
		c.Rules = []Rule{{Match: Match{PathPrefix: "/"}, Scopes: []string{"admin", "audit"}}}
	})
	d := e.a.Decide(context.Background(), bearer(e.is.Token(e.key, nil)))
	want := `Bearer realm="api", error="insufficient_scope", error_description="The access token lacks a required scope.", scope="admin audit"`
	if d.Denial == nil || d.Denial.Status != 403 || d.Denial.WWWAuthenticate != want {
		t.Fatalf("got %+v\nwant %s", d.Denial, want)
	}
	var body map[string]string
	if err := json.Unmarshal(d.Denial.Body, &body); err != nil || body["error"] != "insufficient_scope" {
		t.Fatalf("body %s", d.Denial.Body)
	}
}

func TestIdentityHeaders(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Headers.Identity = map[string]string{
			"x-user-id": "sub", "x-client-id": "client_id", "x-user-scopes": "scope",
			"x-email": "ext.email", "x-roles": "https://example.com/roles", "x-level": "ext.level",
			"x-missing": "ext.nothing", "x-evil": "ext.evil", "x-verified": "ext.verified",
		}
		c.Headers.ClaimsHeader = "x-claims"
	})
	claims := e.is.Claims()
	claims["https://example.com/roles"] = []string{"admin", "dev"}
	claims["ext"] = map[string]any{"email": "alice@example.com", "level": 3, "evil": "a\r\nx-user-id: root", "verified": true}
	tok := e.is.Sign(e.key, claims, nil)
	d := e.a.Decide(context.Background(), bearer(tok))
	if !d.Allowed() {
		t.Fatal(d.Denial)
	}
	got := map[string]string{}
	for _, h := range d.Identity.Headers() {
		got[h.Name] = h.Value
	}
	want := map[string]string{
		"x-user-id": "client-1", "x-client-id": "client-1", "x-user-scopes": "read write", "x-email": "alice@example.com",
		"x-roles": "admin,dev", "x-level": "3", "x-verified": "true",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(got["x-claims"])
	if err != nil || !json.Valid(raw) || !strings.Contains(string(raw), `"sub":"client-1"`) {
		t.Errorf("x-claims = %q (%s)", got["x-claims"], raw)
	}
	if u := strings.Join(d.Identity.UnsetHeaders(), ","); u != "x-evil,x-missing" {
		t.Errorf("unset = %q, want the missing claim and the value with a line break", u)
	}
}

func TestOpaqueTokens(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Introspection.CacheTTL = time.Minute
		c.Rules = []Rule{{Match: Match{PathPrefix: "/jwt"}, TokenTypes: []string{"jwt"}}}
	})
	tok := "ory_at_abcdefghijklmnop.qrstuvwxyz0123456789"
	e.is.AddOpaque(tok, nil)
	for i := 0; i < 3; i++ {
		d := e.a.Decide(context.Background(), bearer(tok))
		if !d.Allowed() || d.Identity.TokenType != TokenTypeOpaque || d.Identity.Subject != "client-1" ||
			strings.Join(d.Identity.Scopes, " ") != "read write" {
			t.Fatalf("opaque token: %+v %+v", d.Denial, d.Identity)
		}
		e.a.cache.wait()
	}
	if n := e.is.IntrospectionCalls.Load(); n != 1 {
		t.Fatalf("introspection called %d times, want 1 (cached)", n)
	}
	if d := e.a.Decide(context.Background(), &Request{Path: "/jwt", Authorization: "Bearer " + tok}); d.Denial == nil || d.Denial.Reason != ReasonRouteTokenType {
		t.Fatalf("opaque on a jwt-only route: %+v", d)
	}

	// Revoked at the issuer: still cached until the TTL passes, then denied.
	e.is.Revoke(tok)
	if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
		t.Fatalf("revoked token denied before the cache TTL: %+v", d.Denial)
	}
	e.clock.Advance(61 * time.Second)
	d := e.a.Decide(context.Background(), bearer(tok))
	if d.Denial == nil || d.Denial.Status != 401 || d.Denial.Reason != ReasonInactive {
		t.Fatalf("revoked token after the TTL: %+v", d)
	}

	// Refresh tokens are not bearer credentials.
	rt := "ory_rt_refreshrefreshrefresh.signature"
	c := e.is.Claims()
	c["token_use"] = "refresh_token"
	e.is.AddOpaque(rt, c)
	if d := e.a.Decide(context.Background(), bearer(rt)); d.Denial == nil || d.Denial.Reason != ReasonType {
		t.Fatalf("refresh token: %+v", d)
	}

	// The introspection cache never outlives exp (+ skew), even when the
	// cache TTL is longer.
	short := "ory_at_shortlived.sig"
	c = e.is.Claims()
	c["exp"] = e.clock.Now().Add(2 * time.Second).Unix()
	e.is.AddOpaque(short, c)
	if d := e.a.Decide(context.Background(), bearer(short)); !d.Allowed() {
		t.Fatal(d.Denial)
	}
	e.a.cache.wait()
	e.clock.Advance(33 * time.Second) // exp + skew
	if d := e.a.Decide(context.Background(), bearer(short)); d.Allowed() {
		t.Fatal("expired opaque token served from the cache")
	}

	// Issuer down: no decision (Envoy's failure mode applies).
	e.is.SetDown(true)
	d = e.a.Decide(context.Background(), bearer("ory_at_neverseen.sig"))
	if d.Err == nil || !errors.Is(d.Err, ErrUnavailable) {
		t.Fatalf("introspection down: %+v", d)
	}
}

func TestIntrospectionClientCredentials(t *testing.T) {
	e := newEnv(t, nil)
	e.is.IntrospectionUser, e.is.IntrospectionPassword = "sidecar", "s3cret"
	// Without credentials the issuer answers 401: no decision.
	if d := e.a.Decide(context.Background(), bearer("ory_at_x.y")); d.Err == nil {
		t.Fatalf("want an error without credentials: %+v", d)
	}
	e.is.IntrospectionPassword = "s3cret"
	cfg := Config{Issuers: []IssuerConfig{{Issuer: e.is.URL, IntrospectionURL: e.is.IntrospectionURL(),
		IntrospectionClientID: "sidecar", IntrospectionClientSecret: "s3cret"}}}
	a, err := New(cfg, Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	e.is.AddOpaque("ory_at_x.y", nil)
	if d := a.Decide(context.Background(), bearer("ory_at_x.y")); !d.Allowed() {
		t.Fatalf("with credentials: %+v %v", d.Denial, d.Err)
	}
}

// TestKeyRotation: a token signed by a key the issuer has just published
// is accepted on its first request, concurrent ones share one re-fetch.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.JWKS.UnknownKIDInterval = time.Hour })
	old := e.is.Token(e.key, nil)
	if d := e.a.Decide(context.Background(), bearer(old)); !d.Allowed() {
		t.Fatal(d.Denial)
	}
	fetches := e.is.JWKSFetches.Load()
	newKey := addRSAKey(e.is, 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok := e.is.Token(newKey, map[string]any{"jti": fmt.Sprint("rotation-", i)})
			if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%+v %v", d.Denial, d.Err))
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests with the new key failed: %s", len(failures), failures[0])
	}
	if n := e.is.JWKSFetches.Load() - fetches; n != 1 {
		t.Fatalf("%d JWKS fetches for the new kid, want 1 (single-flight)", n)
	}
	if d := e.a.Decide(context.Background(), bearer(e.is.Token(e.key, nil))); !d.Allowed() {
		t.Fatalf("old key after rotation: %+v", d.Denial)
	}
}

// A request that looked its kid up in a key set which a re-fetch has
// since replaced looks again at once: it does not wait out the
// unknown-kid interval for a fetch the replacement made unnecessary
// (the race that hung TestKeyRotation now and then).
func TestKeyLookupAfterConcurrentRefetch(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.JWKS.UnknownKIDInterval = time.Hour })
	ks := e.a.issuers[0].keys
	stale := ks.gen.Load()
	newKey := addRSAKey(e.is, 1)
	// Another request's re-fetch: it loads the new key and starts the hour.
	if err := ks.forceRefresh(context.Background(), stale, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ks.forceRefresh(ctx, stale, false); !errors.Is(err, errSetChanged) {
		t.Fatalf("re-fetch for a replaced set: %v after %s, want errSetChanged at once", err, time.Since(start))
	}
	if d := e.a.Decide(ctx, bearer(e.is.Token(newKey, nil))); !d.Allowed() {
		t.Fatalf("new key: %+v %v", d.Denial, d.Err)
	}
	// A kid missing from the newest set still waits for the next allowed
	// fetch (here: until the caller gives up).
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := ks.forceRefresh(short, ks.gen.Load(), false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("re-fetch inside the interval: %v, want to wait", err)
	}
}

// TestUnknownKIDFloodIsRateLimited: random kids cost the issuer at most one
// fetch per unknown_kid_interval, and are refused.
func TestUnknownKIDFloodIsRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.JWKS.UnknownKIDInterval = 300 * time.Millisecond })
	claims := e.is.Claims()
	before := e.is.JWKSFetches.Load()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			tok := e.is.Sign(e.key, claims, map[string]any{"kid": fmt.Sprint("random-", i)})
			if d := e.a.Decide(ctx, bearer(tok)); d.Allowed() {
				t.Errorf("random kid %d allowed", i)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	allowed := int64(elapsed/(300*time.Millisecond)) + 2
	if n := e.is.JWKSFetches.Load() - before; n > allowed {
		t.Fatalf("%d JWKS fetches in %s for 200 random kids, want at most %d", n, elapsed, allowed)
	}
}

// TestIssuerDownKeepsValidatingJWTs: with keys cached, JWTs (even ones
// never seen) keep validating while the issuer is unreachable; unknown
// kids are refused, not "unavailable".
func TestIssuerDownKeepsValidatingJWTs(t *testing.T) {
	e := newEnv(t, nil)
	e.is.SetDown(true)
	for i := 0; i < 3; i++ {
		tok := e.is.Token(e.key, map[string]any{"jti": fmt.Sprint("down-", i)})
		if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
			t.Fatalf("token %d while the issuer is down: %+v %v", i, d.Denial, d.Err)
		}
	}
	d := e.a.Decide(context.Background(), bearer(e.is.Sign(e.key, e.is.Claims(), map[string]any{"kid": "unknown"})))
	if d.Err != nil || d.Denial == nil || d.Denial.Reason != ReasonUnknownKey {
		t.Fatalf("unknown kid while down: %+v %v", d.Denial, d.Err)
	}
}

func TestNoKeysIsUnavailableUntilIssuerAnswers(t *testing.T) {
	is := extauthztest.New()
	defer is.Close()
	k := addRSAKey(is, 0)
	is.SetDown(true)
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: is.URL}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if a.IsReady() {
		t.Fatal("ready without keys")
	}
	d := a.Decide(context.Background(), bearer(is.Token(k, nil)))
	if !errors.Is(d.Err, ErrUnavailable) {
		t.Fatalf("no keys: %+v", d)
	}
	is.SetDown(false)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after the issuer came back")
	}
	if d := a.Decide(context.Background(), bearer(is.Token(k, nil))); !d.Allowed() {
		t.Fatalf("after recovery: %+v", d.Denial)
	}
}

func TestDiscoveryIssuerMismatchRefusesToStart(t *testing.T) {
	is := extauthztest.New()
	defer is.Close()
	addRSAKey(is, 0)
	is.IssuerInDiscovery = is.URL + "/"
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: is.URL}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Start()
	if err == nil || !errors.Is(err, ErrIssuerMismatch) || !strings.Contains(err.Error(), "issuers[0].issuer") {
		t.Fatalf("Start = %v, want an issuer mismatch naming the key", err)
	}
}

// TestRemovedKeyStopsWorking: after a scheduled refresh drops a key,
// cached decisions for its tokens are gone.
func TestRemovedKeyStopsWorking(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.JWKS.MinRefreshInterval = 50 * time.Millisecond },
		func(is *extauthztest.Issuer) { is.CacheControl = "max-age=0" })
	second := addRSAKey(e.is, 1)
	tok := e.is.Token(second, nil)
	if d := e.a.Decide(context.Background(), bearer(tok)); !d.Allowed() {
		t.Fatal(d.Denial)
	}
	e.is.RemoveKey(second.KID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := e.a.Decide(context.Background(), bearer(tok))
		if !d.Allowed() {
			if d.Denial == nil || d.Denial.Reason != ReasonUnknownKey {
				t.Fatalf("removed key: %+v %v", d.Denial, d.Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("token of a removed key still accepted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMultipleIssuers(t *testing.T) {
	e := newEnv(t, nil)
	other := extauthztest.New()
	defer other.Close()
	other.Now = e.clock.Now
	ok := other.AddKey(jwa.ES256())
	cfg := Config{
		Issuers: []IssuerConfig{{Issuer: e.is.URL}, {Issuer: other.URL}},
		Rules:   []Rule{{Match: Match{PathPrefix: "/partners"}, Issuers: []string{other.URL}}},
	}
	a, err := New(cfg, Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	<-a.Ready()
	mine, theirs := e.is.Token(e.key, nil), other.Token(ok, nil)
	for _, tc := range []struct {
		path, tok string
		allowed   bool
	}{{"/", mine, true}, {"/", theirs, true}, {"/partners", theirs, true}, {"/partners", mine, false}} {
		if d := a.Decide(context.Background(), &Request{Path: tc.path, Authorization: "Bearer " + tc.tok}); d.Allowed() != tc.allowed {
			t.Errorf("%s: allowed=%v, want %v (%+v)", tc.path, d.Allowed(), tc.allowed, d.Denial)
		}
	}
	// A token claiming the other issuer but signed with this issuer's key.
	forged := e.is.Token(e.key, map[string]any{"iss": other.URL})
	if d := a.Decide(context.Background(), bearer(forged)); d.Allowed() {
		t.Fatal("token signed by issuer A claiming issuer B accepted")
	}
}

func TestAuthenticateRejectsMalformedInput(t *testing.T) {
	e := newEnv(t, nil)
	for _, tok := range []string{"", "a b", strings.Repeat("x", 9000), "tok\x00"} {
		id, deny, err := e.a.Authenticate(context.Background(), tok)
		if id != nil || deny == nil || err != nil {
			t.Errorf("%q: %v %v %v", tok, id, deny, err)
		}
	}
}
