package flow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseClaimsRequest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string // the request as passed on (oidc_context.claims)
	}{
		{`{}`, true, `{}`},
		{`{"id_token":{"email":null,"acr":{"essential":true,"values":["urn:a","urn:b"]}},"userinfo":{"name":{"essential":false}}}`, true,
			`{"userinfo":{"name":{}},"id_token":{"acr":{"essential":true,"values":["urn:a","urn:b"]},"email":null}}`},
		{`{"id_token":{"sub":{"value":"alice"}},"userinfo":null,"other":42}`, true, `{"id_token":{"sub":{"value":"alice"}}}`},
		{`{"id_token":{"x":{"value":false,"future":1}}}`, true, `{"id_token":{"x":{"value":false}}}`},
		{`{`, false, ""},
		{``, false, ""},
		{`null`, false, ""},
		{`[]`, false, ""},
		{`"id_token"`, false, ""},
		{`{"id_token":"email"}`, false, ""},
		{`{"userinfo":["email"]}`, false, ""},
		{`{"id_token":{"email":true}}`, false, ""},
		{`{"id_token":{"email":{"essential":"yes"}}}`, false, ""},
		{`{"id_token":{"email":{"values":"a"}}}`, false, ""},
		{`{"id_token":{"email":{"values":null}}}`, false, ""},
		{`{"id_token":` + manyClaims(maxRequestedClaims+1) + `}`, false, ""},
		{`{"id_token":` + manyClaims(maxRequestedClaims) + `}`, true, ""},
	} {
		cr, err := ParseClaimsRequest(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%.60s: err %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if err.Code != "invalid_request" {
				t.Errorf("%.60s: code %s", tc.in, err.Code)
			}
			continue
		}
		if got, _ := json.Marshal(cr); tc.want != "" && string(got) != tc.want {
			t.Errorf("%.60s: passed on as %s, want %s", tc.in, got, tc.want)
		}
	}
}

func manyClaims(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"c%d":null`, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestClaimsPlacement(t *testing.T) {
	cr, err := ParseClaimsRequest(`{"id_token":{"email":null,"both":null},"userinfo":{"name":null,"both":null,"phone":null}}`)
	if err != nil {
		t.Fatal(err)
	}
	id, ui := cr.omissions()
	if !slices.Equal(id, []string{"name", "phone"}) || !slices.Equal(ui, []string{"email"}) {
		t.Fatalf("omissions: id_token %v, userinfo %v", id, ui)
	}
	var none *ClaimsRequest
	if id, ui := none.omissions(); id != nil || ui != nil || none.requestedSub() != "" {
		t.Fatal("no claims request places claims")
	}
	cr, _ = ParseClaimsRequest(`{"id_token":{"sub":{"value":"alice"}}}`)
	if cr.requestedSub() != "alice" {
		t.Fatalf("requested sub %q", cr.requestedSub())
	}
}

// FuzzParseClaimsRequest: any claims parameter is either a claims request
// that survives a JSON round trip or invalid_request, never a panic.
func FuzzParseClaimsRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"id_token":{"email":null}}`, `{"userinfo":{"name":{"essential":true,"values":[1,"a",null]}}}`,
		`{"id_token":{"sub":{"value":"x"}}}`, `{"id_token":"x"}`, `[`, `null`, `{"id_token":{"a":{"essential":1}}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseClaimsRequest(s)
		if err != nil {
			if err.Code != "invalid_request" || cr != nil {
				t.Fatalf("%q: %v %v", s, cr, err)
			}
			return
		}
		b, jerr := json.Marshal(cr)
		if jerr != nil {
			t.Fatalf("%q: %v", s, jerr)
		}
		if _, err := ParseClaimsRequest(string(b)); err != nil {
			t.Fatalf("%q re-encoded as %s: %v", s, b, err)
		}
		cr.omissions()
		cr.requestedSub()
	})
}
