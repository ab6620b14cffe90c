package flow

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// FuzzRequestObject: no request object makes the parser panic, and an
// accepted one never changes the client.
func FuzzRequestObject(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	f.Add(enc(`{"alg":"none"}`) + "." + enc(`{"client_id":"c","state":"x","max_age":10,"claims":{"a":1}}`) + ".")
	f.Add(enc(`{"alg":"none"}`) + "." + enc(`{"client_id":"d"}`) + ".")
	f.Add(enc(`{"alg":"RS256"}`) + "." + enc(`{}`) + ".c2ln")
	f.Add("a.b.c")
	f.Add("....")
	h := &Handler{opts: Options{IssuerURL: "https://issuer.example", PublicURL: "https://issuer.example"},
		now: func() time.Time { return time.Unix(1700000000, 0) }}
	c := &client.Client{ID: "c"}
	f.Fuzz(func(t *testing.T, raw string) {
		form := url.Values{"client_id": {"c"}, "response_type": {"code"}, "request": {raw}}
		out, err := h.requestObject(context.Background(), c, raw, form)
		if err != nil {
			return
		}
		if out.Get("client_id") != "c" || out.Get("response_type") != "code" || out.Has("request") {
			t.Fatalf("accepted object changed the request: %v", out)
		}
	})
}

// TestRequestObjectResources: RFC 8707's resource is multi-valued; in a
// request object it is an array (or a single string), each element a value
// of the parameter, replacing the query's.
func TestRequestObjectResources(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	h := &Handler{opts: Options{IssuerURL: "https://issuer.example", PublicURL: "https://issuer.example"},
		now: func() time.Time { return time.Unix(1700000000, 0) }}
	c := &client.Client{ID: "c"}
	for payload, want := range map[string][]string{
		`{"resource":["https://a","urn:b"]}`: {"https://a", "urn:b"},
		`{"resource":"https://a"}`:           {"https://a"},
		`{"resource":["https://a",1]}`:       {"https://a", ""},
	} {
		raw := enc(`{"alg":"none"}`) + "." + enc(payload) + "."
		form := url.Values{"client_id": {"c"}, "response_type": {"code"}, "resource": {"https://query"}}
		out, err := h.requestObject(context.Background(), c, raw, form)
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		if got := out["resource"]; !slices.Equal(got, want) {
			t.Errorf("%s: resource %q, want %q", payload, got, want)
		}
		// A non-string element becomes an empty value: invalid_target.
		if r, _ := ParseAuthorizeRequest(out); (r.Err() != nil) != slices.Contains(want, "") {
			t.Errorf("%s: parse error %v", payload, r.Err())
		}
	}
}
