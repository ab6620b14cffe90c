package oauth2

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

func TestExchangeTargets(t *testing.T) {
	c := &client.Client{Audience: []string{"https://a", "https://b"}}
	for _, tc := range []struct {
		name          string
		audience, res []string
		want          []string
		err           bool
	}{
		{"none", nil, nil, nil, false},
		{"audience", []string{"https://a"}, nil, []string{"https://a"}, false},
		{"resource", nil, []string{"https://b"}, []string{"https://b"}, false},
		{"both, deduplicated", []string{"https://a"}, []string{"https://a", "https://b"}, []string{"https://a", "https://b"}, false},
		{"unregistered audience", []string{"https://c"}, nil, nil, true},
		{"unregistered resource", []string{"https://a"}, []string{"https://c"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := allowedTargets(c, tc.audience, tc.res)
			var ae *apierr.Error
			if tc.err {
				if !errors.As(err, &ae) || ae.Code != "invalid_target" || ae.StatusCode() != 400 {
					t.Fatalf("want invalid_target, got %v", err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestMayAct(t *testing.T) {
	local := &exchangedToken{Subject: "svc"}
	foreign := &exchangedToken{Subject: "svc", Issuer: "https://idp"}
	for _, tc := range []struct {
		name  string
		may   map[string]any
		actor *exchangedToken
		want  bool
	}{
		{"sub matches", map[string]any{"sub": "svc"}, local, true},
		{"sub differs", map[string]any{"sub": "other"}, local, false},
		{"no sub", map[string]any{"iss": "https://issuer"}, local, false},
		{"sub and local iss", map[string]any{"sub": "svc", "iss": "https://issuer"}, local, true},
		{"sub and another iss", map[string]any{"sub": "svc", "iss": "https://idp"}, local, false},
		{"foreign actor, its iss", map[string]any{"sub": "svc", "iss": "https://idp"}, foreign, true},
		{"sub not a string", map[string]any{"sub": 1}, local, false},
	} {
		if got := mayAct(tc.may, tc.actor, "https://issuer"); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestParseExchangeParams(t *testing.T) {
	ok := url.Values{"subject_token": {"t"}, "subject_token_type": {TokenTypeAccessToken}}
	with := func(kv ...string) url.Values {
		f := url.Values{}
		for k, v := range ok {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f
	}
	for _, tc := range []struct {
		name string
		form url.Values
		code string
	}{
		{"minimal", ok, ""},
		{"no subject_token", url.Values{"subject_token_type": {TokenTypeAccessToken}}, "invalid_request"},
		{"no subject_token_type", url.Values{"subject_token": {"t"}}, "invalid_request"},
		{"actor without type", with("actor_token", "a"), "invalid_request"},
		{"actor type without actor", with("actor_token_type", TokenTypeAccessToken), "invalid_request"},
		{"repeated subject_token", with("subject_token", "u"), "invalid_request"},
		{"resource", with("resource", "https://api/x"), ""},
		{"relative resource", with("resource", "/x"), "invalid_target"},
		{"resource with fragment", with("resource", "https://api/x#f"), "invalid_target"},
		{"resource with empty fragment", with("resource", "https://api/x#"), "invalid_target"},
	} {
		_, err := parseExchangeParams(tc.form)
		var ae *apierr.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &ae) || ae.Code != tc.code):
			t.Errorf("%s: want %s, got %v", tc.name, tc.code, err)
		}
	}
}

func TestActDepth(t *testing.T) {
	if n := actDepth(map[string]any{"sub": "a", "act": map[string]any{"sub": "b", "act": map[string]any{"sub": "c"}}}); n != 3 {
		t.Fatalf("depth %d", n)
	}
	if n := actDepth(nil); n != 0 {
		t.Fatalf("depth %d", n)
	}
}

// FuzzParseExchangeParams: any body gives parameters or a 400 API error,
// never a panic; accepted resources are absolute URIs without fragment.
func FuzzParseExchangeParams(f *testing.F) {
	for _, s := range []string{
		"subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
		"subject_token=t&subject_token_type=x&actor_token=a&actor_token_type=y&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fa",
		"subject_token=t&subject_token_type=x&resource=%2Frel", "subject_token=t&subject_token_type=x&resource=a%3Ab%23f",
		"", "%zz", "subject_token=&subject_token_type=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		p, err := parseExchangeParams(form)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.StatusCode() != 400 {
				t.Fatalf("not a 400 API error: %v", err)
			}
			return
		}
		if p.subjectToken == "" || p.subjectType == "" || (p.actorToken == "") != (p.actorType == "") {
			t.Fatalf("accepted %+v", p)
		}
		for _, r := range p.resource {
			u, err := url.Parse(r)
			if err != nil || !u.IsAbs() || strings.Contains(r, "#") {
				t.Fatalf("resource %q accepted", r)
			}
		}
	})
}
