package flow

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

func TestMatchRedirectURI(t *testing.T) {
	reg := []string{"https://app.example.com/cb", "http://127.0.0.1/native", "http://[::1]:8080/cb?x=1", "http://localhost:3000/cb", "com.example.app:/oauth"}
	for _, tc := range []struct {
		requested  string
		registered []string
		want       string
		ok         bool
	}{
		{"https://app.example.com/cb", reg, "https://app.example.com/cb", true},
		{"https://app.example.com/cb/", reg, "", false},
		{"https://app.example.com/cb?x=1", reg, "", false},
		{"https://APP.example.com/cb", reg, "", false},
		{"https://app.example.com:443/cb", reg, "", false},
		// RFC 8252 §7.3: any port on a loopback IP literal.
		{"http://127.0.0.1:51004/native", reg, "http://127.0.0.1:51004/native", true},
		{"http://127.0.0.1/native", reg, "http://127.0.0.1/native", true},
		{"http://127.0.0.1:51004/other", reg, "", false},
		{"http://127.0.0.1:51004/native?x=1", reg, "", false},
		{"http://127.0.0.1:0/native", reg, "", false},
		{"http://127.0.0.1:99999/native", reg, "", false},
		{"http://[::1]:1234/cb?x=1", reg, "http://[::1]:1234/cb?x=1", true},
		{"http://[::1]:1234/cb", reg, "", false},
		{"https://127.0.0.1:51004/native", reg, "", false},
		{"http://user@127.0.0.1:51004/native", reg, "", false},
		{"http://127.0.0.1:51004/native#frag", reg, "", false},
		// Not for localhost (§8.3), nor across loopback addresses.
		{"http://localhost:3001/cb", reg, "", false},
		{"http://localhost:3000/cb", reg, "http://localhost:3000/cb", true},
		{"http://127.0.0.2:80/native", reg, "", false},
		{"com.example.app:/oauth", reg, "com.example.app:/oauth", true},
		// Omitted: only with exactly one registered URI.
		{"", []string{"https://a.example/cb"}, "https://a.example/cb", true},
		{"", reg, "", false},
		{"", nil, "", false},
	} {
		got, ok := MatchRedirectURI(tc.requested, tc.registered)
		if got != tc.want || ok != tc.ok {
			t.Errorf("MatchRedirectURI(%q) = %q, %v; want %q, %v", tc.requested, got, ok, tc.want, tc.ok)
		}
	}
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return apierr.From(err).Code
}

func TestParseAuthorizeRequest(t *testing.T) {
	base := "client_id=c&response_type=code&scope=openid+offline"
	for _, tc := range []struct {
		query string
		page  bool   // a pageError (never redirected)
		code  string // the redirected error code, "" for none
		check func(*AuthorizeRequest) bool
	}{
		{query: base, check: func(r *AuthorizeRequest) bool {
			return r.ClientID == "c" && slices.Equal(r.ResponseTypes, []string{"code"}) && slices.Equal(r.Scope, []string{"openid", "offline"}) &&
				r.MaxAge == -1 && r.EffectiveResponseMode() == "query"
		}},
		{query: "response_type=code", page: true},
		{query: base + "&client_id=d", page: true},
		{query: base + "&redirect_uri=a&redirect_uri=b", page: true},
		{query: base + "&state=a&state=b", code: "invalid_request"},
		{query: "client_id=c", code: "invalid_request"},
		{query: "client_id=c&response_type=code+bogus", code: "unsupported_response_type"},
		{query: "client_id=c&response_type=token+id_token&nonce=n", check: func(r *AuthorizeRequest) bool {
			return slices.Equal(r.ResponseTypes, []string{"id_token", "token"}) && r.EffectiveResponseMode() == "fragment"
		}},
		{query: "client_id=c&response_type=code+id_token&response_mode=query", check: func(r *AuthorizeRequest) bool {
			return r.EffectiveResponseMode() == "fragment"
		}},
		{query: base + "&response_mode=form_post", check: func(r *AuthorizeRequest) bool { return r.EffectiveResponseMode() == "form_post" }},
		{query: base + "&prompt=none+login", code: "invalid_request"},
		{query: base + "&prompt=bogus", code: "invalid_request"},
		{query: base + "&prompt=login+consent", check: func(r *AuthorizeRequest) bool { return r.HasPrompt("login") && r.HasPrompt("consent") }},
		{query: base + "&prompt=registration", check: func(r *AuthorizeRequest) bool { return r.HasPrompt("registration") }},
		{query: base + "&prompt=none+registration", code: "invalid_request"},
		{query: base + "&claims=%7B", code: "invalid_request"},
		{query: base + "&claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%7D%7D", check: func(r *AuthorizeRequest) bool {
			_, ok := r.Claims.IDToken["email"]
			return ok
		}},
		{query: base + "&max_age=-1", code: "invalid_request"},
		{query: base + "&max_age=abc", code: "invalid_request"},
		{query: base + "&max_age=0", check: func(r *AuthorizeRequest) bool { return r.MaxAge == 0 }},
		{query: base + "&scope=a%22b", code: "invalid_request"}, // repeated scope
		{query: "client_id=c&response_type=code&scope=a%22b", code: "invalid_scope"},
		{query: base + "&audience=a+b&audience=b+c", check: func(r *AuthorizeRequest) bool { return slices.Equal(r.Audience, []string{"a", "b", "c"}) }},
		{query: base + "&unknown=1&ui_locales=fr+en&acr_values=x&login_hint=bob", check: func(r *AuthorizeRequest) bool {
			return slices.Equal(r.UILocales, []string{"fr", "en"}) && r.LoginHint == "bob" && slices.Equal(r.ACRValues, []string{"x"})
		}},
		{query: base + "&state=" + strings.Repeat("a", maxParamLength+1), code: "invalid_request"},
	} {
		form, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseAuthorizeRequest(form)
		var pe pageError
		if tc.page {
			if err == nil || !errorsAs(err, &pe) {
				t.Errorf("%s: want a page error, got %v", tc.query, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if got := code(r.Err()); got != tc.code {
			t.Errorf("%s: error %q, want %q", truncate(tc.query), got, tc.code)
		}
		if tc.check != nil && !tc.check(r) {
			t.Errorf("%s: unexpected %+v", tc.query, r)
		}
	}
}

func errorsAs(err error, pe *pageError) bool {
	p, ok := err.(pageError)
	*pe = p
	return ok
}

// FuzzParseAuthorizeRequest: no input makes the parser panic, and a parsed
// request is self-consistent.
func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, s := range []string{
		"client_id=c&response_type=code&scope=openid&state=xyz&redirect_uri=https%3A%2F%2Fa%2Fcb",
		"client_id=c&response_type=id_token+token&nonce=n&prompt=none&max_age=0",
		"client_id=c&response_type=code&code_challenge=abc&code_challenge_method=S256&audience=a+b",
		"client_id=&response_type=&max_age=99999999999999999999",
		"client_id=c&response_type=code+code+token&prompt=none+none",
		"client_id=c&response_type=code&resource=https%3A%2F%2Fapi&resource=urn%3Ax&audience=https%3A%2F%2Fapi",
		"client_id=c&response_type=code&resource=%2Frel&resource=https%3A%2F%2Fa%23f",
		"%zz&client_id=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		form, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		r, err := ParseAuthorizeRequest(form)
		if err != nil {
			return
		}
		if r.ClientID == "" {
			t.Fatal("accepted a request without client_id")
		}
		if r.Err() == nil {
			if len(r.ResponseTypes) == 0 {
				t.Fatal("no response type and no error")
			}
			if r.MaxAge < -1 {
				t.Fatalf("max_age %d", r.MaxAge)
			}
			if slices.Contains(r.Prompt, "none") && len(r.Prompt) > 1 {
				t.Fatal("prompt none combined")
			}
		}
		switch r.EffectiveResponseMode() {
		case "query", "fragment", "form_post":
		default:
			t.Fatalf("response mode %q", r.EffectiveResponseMode())
		}
		if (r.Has("token") || r.Has("id_token")) && r.EffectiveResponseMode() == "query" {
			t.Fatal("tokens in the query")
		}
	})
}

// FuzzMatchRedirectURI: a match is either an exact registered URI or a
// loopback IP http URI differing from a registered one only in its port.
func FuzzMatchRedirectURI(f *testing.F) {
	f.Add("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb")
	f.Add("http://[::1]:1/cb?a=b", "http://[::1]/cb?a=b")
	f.Add("https://a.example/cb", "https://a.example/cb")
	f.Add("http://localhost:1/cb", "http://localhost/cb")
	f.Add("http://127.0.0.1:80@evil.example/cb", "http://127.0.0.1/cb")
	f.Add("", "https://a.example/cb")
	f.Fuzz(func(t *testing.T, requested, registered string) {
		got, ok := MatchRedirectURI(requested, []string{registered})
		if !ok {
			if got != "" {
				t.Fatal("no match but a URI")
			}
			return
		}
		if requested == "" {
			if got != registered {
				t.Fatalf("omitted redirect_uri resolved to %q", got)
			}
			return
		}
		if got != requested {
			t.Fatalf("match returned %q for %q", got, requested)
		}
		if requested == registered {
			return
		}
		a, err1 := url.Parse(requested)
		b, err2 := url.Parse(registered)
		if err1 != nil || err2 != nil {
			t.Fatalf("non-exact match of unparsable URIs %q %q", requested, registered)
		}
		if a.Scheme != "http" || !isLoopbackIP(a.Hostname()) || a.Hostname() != b.Hostname() || a.Path != b.Path ||
			a.RawQuery != b.RawQuery || a.User != nil || a.Fragment != "" {
			t.Fatalf("%q matched %q", requested, registered)
		}
	})
}
