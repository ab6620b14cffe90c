package oauth2

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

func TestScopeStrategies(t *testing.T) {
	for _, tc := range []struct {
		allowed   string
		requested string
		wildcard  bool
		exact     bool
	}{
		{"read", "read", true, true},
		{"read", "write", false, false},
		{"read", "", false, false},
		{"read write", "write", true, true},
		{"foo.*", "foo.bar", true, false},
		{"foo.*", "foo.bar.baz", true, false},
		{"foo.*", "foo", false, false},
		{"foo.*", "foo.", false, false},
		{"foo.*", "foo.bar.", false, false},
		{"foo.*", "foobar", false, false},
		{"foo.*", "bar.foo", false, false},
		{"foo.*", "foo.*", true, true},
		{"foo.*.baz", "foo.bar.baz", true, false},
		{"foo.*.baz", "foo.bar.qux", false, false},
		{"foo.*.baz", "foo..baz", false, false},
		{"foo.*.baz", "foo.bar.baz.qux", false, false},
		{"*", "anything", true, false},
		{"*", "any.thing", true, false},
		{"foo.bar", "foo.bar.baz", false, false},
		{"foo.bar", "foo", false, false},
		{"foo*", "foobar", false, false},
		{"", "read", false, false},
		{"openid offline_access", "offline_access", true, true},
	} {
		allowed := strings.Fields(tc.allowed)
		if got := WildcardScopeStrategy(allowed, tc.requested); got != tc.wildcard {
			t.Errorf("wildcard %q permits %q: %v, want %v", tc.allowed, tc.requested, got, tc.wildcard)
		}
		if got := ExactScopeStrategy(allowed, tc.requested); got != tc.exact {
			t.Errorf("exact %q permits %q: %v, want %v", tc.allowed, tc.requested, got, tc.exact)
		}
	}
	if ScopeStrategyFor("exact")([]string{"a.*"}, "a.b") || !ScopeStrategyFor("wildcard")([]string{"a.*"}, "a.b") || !ScopeStrategyFor("")([]string{"a.*"}, "a.b") {
		t.Fatal("ScopeStrategyFor")
	}
}

func TestCheckScopesAndAudience(t *testing.T) {
	for _, tc := range []struct {
		allowed, requested string
		ok                 bool
	}{
		{"read write orders.*", "", true},
		{"read write orders.*", "read orders.list", true},
		{"read write orders.*", "read admin", false},
		{"", "read", false},
	} {
		err := checkScopes(WildcardScopeStrategy, strings.Fields(tc.allowed), strings.Fields(tc.requested), "client")
		if (err == nil) != tc.ok {
			t.Errorf("%q / %q: %v", tc.allowed, tc.requested, err)
		}
		if e, isAPI := err.(*apierr.Error); err != nil && (!isAPI || e.Code != "invalid_scope") {
			t.Errorf("error %v", err)
		}
	}

}

func TestParseTokenRequest(t *testing.T) {
	for _, tc := range []struct {
		body     string
		code     string // expected error code, "" for success
		scope    []string
		audience []string
	}{
		{"grant_type=client_credentials", "", nil, nil},
		{"grant_type=client_credentials&scope=a+b++a", "", []string{"a", "b"}, nil},
		{"grant_type=client_credentials&scope=", "", nil, nil},
		{"grant_type=client_credentials&audience=x+y&audience=z&audience=x", "", nil, []string{"x", "y", "z"}},
		{"", "invalid_request", nil, nil},
		{"grant_type=", "invalid_request", nil, nil},
		{"grant_type=a&grant_type=b", "invalid_request", nil, nil},
		{"grant_type=a&scope=x&scope=y", "invalid_request", nil, nil},
		{"grant_type=a&code=1&code=2", "invalid_request", nil, nil},
		{"grant_type=a&assertion=1&assertion=2", "invalid_request", nil, nil},
		{"grant_type=a&scope=%22", "invalid_scope", nil, nil},
		{"grant_type=a&scope=%C3%A9", "invalid_scope", nil, nil},
		{"grant_type=a&scope=a%09b", "invalid_scope", nil, nil},
		{"grant_type=a&scope=" + strings.Repeat("s", 300), "invalid_scope", nil, nil},
		{"grant_type=a&audience=" + strings.Repeat("s", 3000), "invalid_request", nil, nil},
		{"grant_type=a&assertion=" + strings.Repeat("s", 70000), "invalid_request", nil, nil},
	} {
		form, err := url.ParseQuery(tc.body)
		if err != nil {
			t.Fatal(err)
		}
		req, err := parseTokenRequest(form)
		if tc.code != "" {
			e, ok := err.(*apierr.Error)
			if !ok || e.Code != tc.code {
				t.Errorf("%.60q: %v, want %s", tc.body, err, tc.code)
			}
			continue
		}
		if err != nil || !slices.Equal(req.Scope, tc.scope) || !slices.Equal(req.Audience, tc.audience) {
			t.Errorf("%q: %+v %v", tc.body, req, err)
		}
	}
	many := "grant_type=a&scope=" + strings.Repeat("s ", 0)
	for i := range maxScopes + 1 {
		many += "s" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "+"
	}
	if _, err := parseTokenRequest(mustQuery(t, many)); err == nil {
		t.Fatal("too many scopes accepted")
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpaqueRoundTrip(t *testing.T) {
	k := newKeyring("first-system-secret-0123456789")
	tok, sig, err := newOpaque(k, opaqueAccessToken, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "ory_at_") || len(tok) != len("ory_at_")+43+1+43 {
		t.Fatalf("token %q", tok)
	}
	if got, ok := opaqueSignature(k, opaqueAccessToken, tok); !ok || got != sig {
		t.Fatalf("%q %v", got, ok)
	}
	// The MAC is bound to its purpose: the same key as another kind fails.
	rt := opaqueKind{prefix: "ory_rt_", purpose: "oauth2/refresh_token"}
	if _, ok := opaqueSignature(k, rt, "ory_rt_"+strings.TrimPrefix(tok, "ory_at_")); ok {
		t.Fatal("an access token MAC verifies as a refresh token")
	}
	if _, ok := opaqueSignature(newKeyring("another-system-secret-0123456"), opaqueAccessToken, tok); ok {
		t.Fatal("verified under a foreign secret")
	}
	a, _, _ := newOpaque(k, opaqueAccessToken, time.Now())
	if a == tok {
		t.Fatal("tokens repeat")
	}
}
