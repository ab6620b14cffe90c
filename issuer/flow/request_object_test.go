package flow

import (
	"context"
	"encoding/base64"
	"net/url"
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
