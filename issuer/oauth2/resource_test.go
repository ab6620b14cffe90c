package oauth2

import (
	"slices"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// wantCode fails unless err is an *apierr.Error of code (or nil for "").
func wantCode(t *testing.T, name string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		return
	}
	if e := apierr.From(err); err == nil || e.Code != code || e.StatusCode() != 400 {
		t.Errorf("%s: got %v, want %s", name, err, code)
	}
}

// TestCheckResource is RFC 8707 §2: an absolute URI (RFC 3986 §4.3, a
// query allowed), never a fragment; anything else is invalid_target.
func TestCheckResource(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"https://api.example.com", true},
		{"https://api.example.com/v1?tenant=a", true},
		{"urn:uuid:33336dcd-a239-444a-90ae-76d381c3e6d5", true},
		{"http://127.0.0.1:8080/", true},
		{"", false},
		{"/api", false},
		{"api.example.com", false},
		{"//api.example.com", false},
		{"https:", false},
		{"https://api.example.com#frag", false},
		{"https://api.example.com/#", false},
		{"https://api example.com", false},
		{"https://api.example.com/\x00", false},
		{"%zz:x", false},
	} {
		code := "invalid_target"
		if tc.ok {
			code = ""
		}
		wantCode(t, tc.in, CheckResource(tc.in), code)
	}
}

func TestParseResources(t *testing.T) {
	got, err := ParseResources([]string{"https://a", "urn:b", "https://a"})
	if err != nil || !slices.Equal(got, []string{"https://a", "urn:b"}) {
		t.Fatalf("got %q, %v", got, err)
	}
	if got, err := ParseResources(nil); err != nil || got != nil {
		t.Fatalf("none: %q, %v", got, err)
	}
	_, err = ParseResources([]string{"https://a", "rel/path"})
	wantCode(t, "relative", err, "invalid_target")
	many := make([]string, maxAudiences+1)
	for i := range many {
		many[i] = "urn:r:" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	_, err = ParseResources(many)
	wantCode(t, "too many", err, "invalid_target")
}

// TestAllowedTargets: every target (resource or audience) must be in the
// client's audience, exactly; else invalid_target.
func TestAllowedTargets(t *testing.T) {
	c := &client.Client{Audience: []string{"https://a", "https://b"}}
	for _, tc := range []struct {
		requested, want []string
		code            string
	}{
		{nil, []string{}, ""},
		{[]string{"https://b", "https://a", "https://b"}, []string{"https://b", "https://a"}, ""},
		{[]string{"https://a/"}, nil, "invalid_target"},
		{[]string{"https://A"}, nil, "invalid_target"},
		{[]string{"https://a", "https://c"}, nil, "invalid_target"},
	} {
		got, err := AllowedTargets(c, tc.requested)
		wantCode(t, "AllowedTargets", err, tc.code)
		if err == nil && !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.requested, got, tc.want)
		}
	}
	if got := Targets([]string{"https://a"}, []string{"https://b", "https://a"}); !slices.Equal(got, []string{"https://a", "https://b"}) {
		t.Errorf("Targets: %q", got)
	}
	if got := Targets(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Targets of nothing: %#v", got)
	}
}

// TestNarrowTargets is RFC 8707 §2.2 for the code and refresh grants.
func TestNarrowTargets(t *testing.T) {
	granted := []string{"https://a", "https://b"}
	for _, tc := range []struct {
		requested, want []string
		code            string
	}{
		{nil, granted, ""},
		{[]string{"https://b"}, []string{"https://b"}, ""},
		{[]string{"https://c"}, nil, "invalid_target"},
		{[]string{"https://a", "https://c"}, nil, "invalid_target"},
	} {
		got, err := narrowTargets(granted, tc.requested)
		wantCode(t, "narrowTargets", err, tc.code)
		if err == nil && !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.requested, got, tc.want)
		}
	}
	if got, _ := narrowTargets(nil, nil); got == nil {
		t.Error("nil grant narrowed to nil")
	}
}

// TestAccessTokenAudienceDefault: granted targets, else the client's
// default, else the global one; never empty.
func TestAccessTokenAudienceDefault(t *testing.T) {
	h := &Handler{opts: Options{DefaultAccessTokenAudience: []string{"https://issuer"}}}
	plain := &client.Client{}
	own := &client.Client{DefaultAccessTokenAudience: []string{"https://api"}}
	for _, tc := range []struct {
		c       *client.Client
		granted []string
		want    []string
	}{
		{plain, nil, []string{"https://issuer"}},
		{plain, []string{"https://x"}, []string{"https://x"}},
		{own, nil, []string{"https://api"}},
		{own, []string{"https://x"}, []string{"https://x"}},
	} {
		if got := h.accessTokenAudience(tc.c, tc.granted); !slices.Equal(got, tc.want) {
			t.Errorf("%v %q: got %q, want %q", tc.c.DefaultAccessTokenAudience, tc.granted, got, tc.want)
		}
	}
}
