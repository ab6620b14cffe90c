package extauthz

import (
	"context"
	"testing"
)

// benchCondition is the condition of the CEL route in BenchmarkDecideCEL
// and scenario (e) of bench/extauthz: a claim against a request header,
// a scope and the method.
const benchCondition = `claims.ext.tenant == request.headers["x-tenant"] && "read" in token.scopes && request.method in ["GET", "HEAD"]`

// BenchmarkDecideCEL: a cached token on a plain route and on a route with
// one CEL condition (the difference is the condition's cost per check),
// and the condition's evaluation alone.
func BenchmarkDecideCEL(b *testing.B) {
	e := newEnv(b, func(c *Config) {
		c.Rules = []Rule{{Name: "cel", Match: Match{PathPrefix: "/cel"}, Conditions: []Condition{{Name: "tenant", Expression: benchCondition}}}}
	})
	ctx := context.Background()
	tok := e.is.Token(e.key, nil)
	req := func(path string) *Request {
		r := bearer(tok)
		r.Path = path
		r.headers = envoyHeaders{":authority": "api.example.com", "authorization": "Bearer " + tok, "x-tenant": "acme", "user-agent": "bench"}
		return r
	}
	for _, path := range []string{"/api/orders", "/cel/orders"} {
		b.Run(map[string]string{"/api/orders": "plain", "/cel/orders": "cel"}[path], func(b *testing.B) {
			r := req(path)
			b.ReportAllocs()
			for b.Loop() {
				if d := e.a.Decide(ctx, r); !d.Allowed() {
					b.Fatal(d.Denial)
				}
			}
		})
	}
	b.Run("eval", func(b *testing.B) {
		r := req("/cel/orders")
		d := e.a.Decide(ctx, r)
		ru := e.a.match("api.example.com", "GET", "/cel/orders")
		b.ReportAllocs()
		for b.Loop() {
			if deny := e.a.checkConditions(ru, r, d.Identity); deny != nil {
				b.Fatal(deny)
			}
		}
	})
}
