package extauthz

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
)

// TestInternalTokenUntil is the rule of how long an internal token is
// handed out: until margin before it expires, the margin at most half
// its lifetime, never past the caller's token.
func TestInternalTokenUntil(t *testing.T) {
	t0 := testEpoch
	for _, tc := range []struct {
		name      string
		expiresIn time.Duration
		caller    time.Time
		margin    time.Duration
		want      time.Duration // after t0; -1: not cached
	}{
		{"an hour, default margin", time.Hour, time.Time{}, time.Minute, 59 * time.Minute},
		{"five minutes", 5 * time.Minute, time.Time{}, time.Minute, 4 * time.Minute},
		{"short-lived: half its lifetime", time.Minute, time.Time{}, time.Minute, 30 * time.Second},
		{"shorter than the margin", 10 * time.Second, time.Time{}, time.Minute, 5 * time.Second},
		{"no margin", time.Hour, time.Time{}, 0, time.Hour},
		{"bounded by the caller's token", time.Hour, t0.Add(10 * time.Minute), time.Minute, 10 * time.Minute},
		{"caller's token expires after it", time.Hour, t0.Add(2 * time.Hour), time.Minute, 59 * time.Minute},
		{"caller's token already expired", time.Hour, t0.Add(-time.Second), time.Minute, -1},
		{"no expires_in", 0, time.Time{}, time.Minute, -1},
		{"one second", time.Second, time.Time{}, time.Minute, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			until, ok := internalTokenUntil(t0, tc.expiresIn, tc.caller, tc.margin)
			if tc.want < 0 {
				if ok {
					t.Fatalf("cached until %v, want not cached", until.Sub(t0))
				}
				return
			}
			if !ok || !until.Equal(t0.Add(tc.want)) {
				t.Fatalf("until %v (%v), want %v", until.Sub(t0), ok, tc.want)
			}
		})
	}
}

// tokenEndpoint is a fake token endpoint for token exchange: it records
// the requests and answers with answer (default: a fresh token valid for
// expiresIn).
type tokenEndpoint struct {
	*httptest.Server
	calls     atomic.Int32
	mu        sync.Mutex
	forms     []url.Values
	expiresIn int
	answer    func(w http.ResponseWriter) bool // true: answered
	hold      chan struct{}                    // when set, exchanges wait for it
}

func newTokenEndpoint(t testing.TB) *tokenEndpoint {
	te := &tokenEndpoint{expiresIn: 300}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := te.calls.Add(1)
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		te.mu.Lock()
		te.forms = append(te.forms, r.PostForm)
		answer, hold := te.answer, te.hold
		te.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if id != "gateway" || secret != "gateway-secret" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		if answer != nil && answer(w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		kind := "internal"
		if r.PostForm.Get("grant_type") == "client_credentials" {
			kind = "actor"
		}
		fmt.Fprintf(w, `{"access_token":"%s-%d","token_type":"bearer","expires_in":%d,"issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}`,
			kind, n, te.expiresIn)
	}))
	t.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) form(i int) url.Values {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.forms[i]
}

func internalEnv(t testing.TB, te *tokenEndpoint, mutate func(*Config)) *env {
	return newEnv(t, func(c *Config) {
		c.Rules = []Rule{{Name: "orders", Match: Match{PathPrefix: "/orders"}, InternalToken: &InternalTokenRule{Audience: "orders-api"}},
			{Name: "narrow", Match: Match{PathPrefix: "/narrow"}, InternalToken: &InternalTokenRule{Audience: "orders-api", Scopes: []string{"read"}}}}
		c.InternalTokens = InternalTokensConfig{TokenEndpoint: te.URL, ClientID: "gateway", ClientSecret: "gateway-secret"}
		if mutate != nil {
			mutate(c)
		}
	})
}

func at(path, tok string) *Request {
	return &Request{Host: "api.example.com", Method: "GET", Path: path, Authorization: "Bearer " + tok}
}

// TestInternalTokenExchange: the exchange request (RFC 8693 §2.1), the
// cache per (token, audience and scope) until shortly before expiry, and
// the header the upstream gets.
func TestInternalTokenExchange(t *testing.T) {
	te := newTokenEndpoint(t)
	e := internalEnv(t, te, nil)
	ctx := context.Background()
	tok := e.is.Token(e.key, nil)

	d := e.a.Decide(ctx, at("/orders/1", tok))
	if !d.Allowed() || d.UpstreamAuthorization() != "Bearer internal-1" {
		t.Fatalf("first request: %+v %q", d, d.UpstreamAuthorization())
	}
	f := te.form(0)
	for k, want := range map[string]string{"grant_type": grantTokenExchange, "subject_token": tok, "subject_token_type": tokenTypeAccessToken,
		"audience": "orders-api", "requested_token_type": tokenTypeJWT, "scope": "", "actor_token": ""} {
		if f.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, f.Get(k), want)
		}
	}
	// Cached: the same token for the same route, no second call.
	if d := e.a.Decide(ctx, at("/orders/2", tok)); d.UpstreamAuthorization() != "Bearer internal-1" || te.calls.Load() != 1 {
		t.Fatalf("second request: %q after %d calls", d.UpstreamAuthorization(), te.calls.Load())
	}
	// Another scope is another internal token; a route without one sends none.
	if d := e.a.Decide(ctx, at("/narrow", tok)); d.UpstreamAuthorization() != "Bearer internal-2" || te.form(1).Get("scope") != "read" {
		t.Fatalf("narrowed: %q %v", d.UpstreamAuthorization(), te.form(1))
	}
	if d := e.a.Decide(ctx, at("/other", tok)); !d.Allowed() || d.UpstreamAuthorization() != "" {
		t.Fatalf("plain route: %+v", d)
	}
	// Handed out until a minute before it expires (300 s), then renewed.
	e.clock.Advance(238 * time.Second)
	e.a.Decide(ctx, at("/orders", tok))
	if te.calls.Load() != 2 {
		t.Fatalf("calls = %d before the margin, want 2", te.calls.Load())
	}
	e.clock.Advance(2 * time.Second)
	if d := e.a.Decide(ctx, at("/orders", tok)); d.UpstreamAuthorization() != "Bearer internal-3" {
		t.Fatalf("within the margin: %q", d.UpstreamAuthorization())
	}
	if n := counterValue(t, e.reg, "gatehouse_sidecar_internal_tokens_total", map[string]string{"result": "hit"}); n != 2 {
		t.Errorf("hits = %v, want 2", n)
	}
}

// TestInternalTokenActor: with actor, the sidecar's own client_credentials
// token goes along as actor_token (so the internal token's act names the
// gateway), fetched once and reused.
func TestInternalTokenActor(t *testing.T) {
	te := newTokenEndpoint(t)
	e := internalEnv(t, te, func(c *Config) { c.InternalTokens.Actor = true })
	for i := range 2 {
		tok := e.is.Token(e.key, map[string]any{"sub": fmt.Sprint("user-", i)})
		if d := e.a.Decide(context.Background(), at("/orders", tok)); !d.Allowed() {
			t.Fatalf("denied: %+v", d)
		}
	}
	if te.calls.Load() != 3 || te.form(0).Get("grant_type") != "client_credentials" {
		t.Fatalf("calls = %d, first %v; want the actor token then two exchanges", te.calls.Load(), te.form(0))
	}
	for _, i := range []int{1, 2} {
		if f := te.form(i); f.Get("actor_token") != "actor-1" || f.Get("actor_token_type") != tokenTypeAccessToken {
			t.Errorf("exchange %d: actor %q %q", i, f.Get("actor_token"), f.Get("actor_token_type"))
		}
	}
}

// TestInternalTokenMissesCoalesce: concurrent requests with one token
// share one exchange.
func TestInternalTokenMissesCoalesce(t *testing.T) {
	te := newTokenEndpoint(t)
	te.hold = make(chan struct{})
	e := internalEnv(t, te, nil)
	tok := e.is.Token(e.key, nil)
	const n = 16
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = e.a.Decide(context.Background(), at("/orders", tok)).UpstreamAuthorization()
		}()
	}
	// Every request has been decided up to the exchange before the
	// issuer answers the first.
	for counterValue(t, e.reg, "gatehouse_sidecar_decisions_total", nil)+
		counterValue(t, e.reg, "gatehouse_sidecar_cache_requests_total", nil) < n || te.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(te.hold)
	wg.Wait()
	for i, v := range got {
		if v != "Bearer internal-1" {
			t.Errorf("request %d: %q", i, v)
		}
	}
	if c := te.calls.Load(); c != 1 {
		t.Errorf("token endpoint calls = %d, want 1", c)
	}
}

// TestInternalTokenFailures: the issuer refusing the caller's token is a
// denial (remembered briefly); the issuer refusing the sidecar, answering
// nonsense or not answering is no decision (fail closed, 503); cached
// internal tokens outlive the issuer.
func TestInternalTokenFailures(t *testing.T) {
	te := newTokenEndpoint(t)
	e := internalEnv(t, te, nil)
	ctx := context.Background()
	answer := func(status int, body string) {
		te.mu.Lock()
		te.answer = func(w http.ResponseWriter) bool {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
			return true
		}
		te.mu.Unlock()
	}
	for _, tc := range []struct {
		name, path   string
		status       int
		body         string
		deny, reason string // "": no decision
		httpStatus   int
	}{
		{"caller's token refused", "/orders", 400, `{"error":"invalid_request","error_description":"The subject_token is inactive"}`,
			`Bearer error="invalid_token", error_description="The access token cannot be exchanged for the upstream's token."`, reasonExchangeRefused, 401},
		{"scope refused", "/narrow", 400, `{"error":"invalid_scope"}`, `Bearer error="insufficient_scope"`, reasonExchangeScope, 403},
		{"sidecar's client refused", "/orders", 401, `{"error":"invalid_client"}`, "", "", 0},
		{"audience not allowed to the sidecar", "/orders", 400, `{"error":"invalid_target"}`, "", "", 0},
		{"server error", "/orders", 500, `{"error":"server_error"}`, "", "", 0},
		{"not JSON", "/orders", 200, `<html>`, "", "", 0},
		{"DPoP token", "/orders", 200, `{"access_token":"abc","token_type":"DPoP","expires_in":60}`, "", "", 0},
		{"token with a line break", "/orders", 200, `{"access_token":"a\nb","token_type":"Bearer","expires_in":60}`, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer(tc.status, tc.body)
			tok := e.is.Token(e.key, nil)
			before := te.calls.Load()
			for range 2 {
				d := e.a.Decide(ctx, at(tc.path, tok))
				switch {
				case tc.deny == "":
					if d.Err == nil {
						t.Fatalf("want no decision, got %+v", d)
					}
				case d.Denial == nil || !strings.HasPrefix(d.Denial.WWWAuthenticate, tc.deny) || d.Denial.Reason != tc.reason || d.Denial.Status != tc.httpStatus:
					t.Fatalf("want %d %s, got %+v", tc.httpStatus, tc.deny, d)
				}
			}
			// A refusal is remembered for cache.negative_ttl; a failure is
			// retried.
			want := int32(1)
			if tc.deny == "" {
				want = 2
			}
			if n := te.calls.Load() - before; n != want {
				t.Errorf("calls = %d, want %d", n, want)
			}
		})
	}

	t.Run("issuer down", func(t *testing.T) {
		te.mu.Lock()
		te.answer = nil
		te.mu.Unlock()
		cached := e.is.Token(e.key, nil)
		if d := e.a.Decide(ctx, at("/orders", cached)); !d.Allowed() {
			t.Fatalf("warm-up: %+v", d)
		}
		te.Close()
		if d := e.a.Decide(ctx, at("/orders", cached)); !d.Allowed() || d.UpstreamAuthorization() == "" {
			t.Errorf("cached internal token with the issuer down: %+v", d)
		}
		if d := e.a.Decide(ctx, at("/orders", e.is.Token(e.key, nil))); d.Err == nil {
			t.Errorf("new token with the issuer down: %+v, want no decision", d)
		}
	})
}

func TestInternalTokenConfig(t *testing.T) {
	iss := []IssuerConfig{{Issuer: "https://a.example.com"}}
	rule := func(it *InternalTokenRule) []Rule { return []Rule{{Name: "r", InternalToken: it}} }
	creds := InternalTokensConfig{ClientID: "gw", ClientSecret: "secret"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "": valid
	}{
		{"valid", Config{Issuers: iss, Rules: rule(&InternalTokenRule{Audience: "orders"}), InternalTokens: creds}, ""},
		{"credentials unused", Config{Issuers: iss, InternalTokens: creds}, ""},
		{"no credentials", Config{Issuers: iss, Rules: rule(&InternalTokenRule{Audience: "orders"})}, "internal_tokens.client_id: client_id and client_secret are required"},
		{"no audience", Config{Issuers: iss, Rules: rule(&InternalTokenRule{}), InternalTokens: creds}, "rules[0].internal_token.audience"},
		{"bad scope", Config{Issuers: iss, Rules: rule(&InternalTokenRule{Audience: "o", Scopes: []string{"a b"}}), InternalTokens: creds}, "rules[0].internal_token.scopes[0]"},
		{"anonymous", Config{Issuers: iss, Rules: []Rule{{AllowAnonymous: true, InternalToken: &InternalTokenRule{Audience: "o"}}}, InternalTokens: creds},
			"cannot be combined with allow_anonymous"},
		{"unknown issuer", Config{Issuers: iss, InternalTokens: InternalTokensConfig{Issuer: "https://b.example.com"}}, "internal_tokens.issuer"},
		{"bad endpoint", Config{Issuers: iss, InternalTokens: InternalTokensConfig{TokenEndpoint: "token"}}, "internal_tokens.token_endpoint"},
		{"jwks_url without endpoint", Config{Issuers: []IssuerConfig{{Issuer: "https://a.example.com", JWKSURL: "https://a.example.com/jwks"}},
			Rules: rule(&InternalTokenRule{Audience: "o"}), InternalTokens: creds}, "internal_tokens.token_endpoint: required"},
		{"secret alone", Config{Issuers: iss, InternalTokens: InternalTokensConfig{ClientSecret: "s"}}, "internal_tokens.client_secret"},
		{"negative margin", Config{Issuers: iss, InternalTokens: InternalTokensConfig{ExpiryMargin: -time.Second}}, "internal_tokens.expiry_margin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Defaults().Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzParseTokenResponse: whatever the token endpoint answers, the
// sidecar gets a header-safe bearer token or an error, never a panic.
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"eyJ.eyJ.sig","token_type":"Bearer","expires_in":300}`,
		`{"access_token":"a","token_type":"bearer"}`,
		`{"access_token":"eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjE4OTM0NTYwMDB9.c2ln","token_type":"bearer"}`,
		`{"access_token":"a","token_type":"DPoP","expires_in":1}`,
		`{"access_token":"a b","token_type":"Bearer","expires_in":"x"}`,
		`{"expires_in":-1}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr, _, err := parseTokenResponse(raw, testEpoch)
		if err == nil && (!headerValueOK(tr.token) || !isB64Token(tr.token)) {
			t.Fatalf("accepted %q", tr.token)
		}
	})
}

// TestInternalTokenRendered: Envoy's OK answer overwrites authorization
// with the internal token beside the identity headers (with and without
// dynamic metadata, cached and not), and /auth answers it as the
// Authorization header of its 200.
func TestInternalTokenRendered(t *testing.T) {
	for _, md := range []bool{false, true} {
		t.Run(fmt.Sprint("dynamic metadata ", md), func(t *testing.T) {
			te := newTokenEndpoint(t)
			e := internalEnv(t, te, func(c *Config) { c.Headers.DynamicMetadata = md })
			client := startCheck(t, e.a)
			tok := e.is.Token(e.key, nil)
			for range 2 {
				r, err := client.Check(context.Background(), envoyCheck("GET", "api.example.com", "/orders/1",
					map[string]string{"authorization": "Bearer " + tok, "x-user-id": "root"}))
				if err != nil {
					t.Fatal(err)
				}
				set, _ := okHeaders(t, r)
				a := set["authorization"]
				//lint:ignore SA1019 the deprecated append must be false for older Envoy versions
				if a.GetHeader().GetValue() != "Bearer internal-1" || a.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || a.GetAppend().GetValue() {
					t.Fatalf("authorization: %v", a)
				}
				if set["x-user-id"].GetHeader().GetValue() != "client-1" {
					t.Fatalf("identity: %v", set)
				}
				if md != (r.GetDynamicMetadata() != nil) {
					t.Fatalf("dynamic metadata: %v", r.GetDynamicMetadata())
				}
			}
			// A plain route leaves the caller's authorization alone.
			r, err := client.Check(context.Background(), envoyCheck("GET", "api.example.com", "/other", map[string]string{"authorization": "Bearer " + tok}))
			if err != nil {
				t.Fatal(err)
			}
			if set, remove := okHeaders(t, r); set["authorization"] != nil || slices.Contains(remove, "authorization") {
				t.Fatalf("plain route touches authorization: %v %v", set, remove)
			}

			w := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/auth", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Forwarded-Uri", "/orders/2")
			(&ForwardAuth{A: e.a}).ServeHTTP(w, req)
			if w.Code != 200 || w.Header().Get("Authorization") != "Bearer internal-1" || te.calls.Load() != 1 {
				t.Fatalf("/auth: %d %q after %d exchanges", w.Code, w.Header().Get("Authorization"), te.calls.Load())
			}
		})
	}
}

// TestInternalTokenSubjectTypes: the exchanging issuer's tokens go as
// access tokens (RFC 8693 §3), another configured issuer's JWTs as JWTs,
// which the exchanging issuer must trust.
func TestInternalTokenSubjectTypes(t *testing.T) {
	te := newTokenEndpoint(t)
	other := extauthztest.New()
	t.Cleanup(other.Close)
	otherKey := addRSAKey(other, 1)
	e := internalEnv(t, te, func(c *Config) { c.Issuers = append(c.Issuers, IssuerConfig{Issuer: other.URL}) })
	other.Now = e.clock.Now
	e.is.AddOpaque("opaque-token-0123456789", nil)
	for i, tc := range []struct{ name, tok, want string }{
		{"own JWT", e.is.Token(e.key, nil), tokenTypeAccessToken},
		{"own opaque token", "opaque-token-0123456789", tokenTypeAccessToken},
		{"other issuer's JWT", other.Token(otherKey, nil), tokenTypeJWT},
	} {
		if d := e.a.Decide(context.Background(), at("/orders", tc.tok)); !d.Allowed() {
			t.Fatalf("%s: %+v", tc.name, d)
		}
		if got := te.form(i).Get("subject_token_type"); got != tc.want {
			t.Errorf("%s: subject_token_type %q, want %q", tc.name, got, tc.want)
		}
	}
}
