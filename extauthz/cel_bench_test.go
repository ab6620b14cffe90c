package extauthz

import (
	"context"
	"testing"
	"time"
)

// benchCondition is the condition of the CEL route in BenchmarkDecideCEL
// and scenario (e) of bench/extauthz: a claim against a request header,
// a scope and the method.
const benchCondition = `claims.ext.tenant == request.headers["x-tenant"] && "read" in token.scopes && request.method in ["GET", "HEAD"]`

// BenchmarkDecideCEL: a cached token on a plain route and on a route with
// one CEL condition (the difference is the condition's cost per check),
// both alternating in one loop (paired), and the condition's evaluation
// alone.
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
	// paired: plain and CEL checks alternate in one loop, each timed, so
	// that the machine's drifts fall on both alike; reports the CEL
	// route's extra time per check.
	b.Run("paired", func(b *testing.B) {
		rs := [2]*Request{req("/api/orders"), req("/cel/orders")}
		var spent [2]time.Duration
		n := 0
		for b.Loop() {
			for k, r := range rs {
				t0 := time.Now()
				if d := e.a.Decide(ctx, r); !d.Allowed() {
					b.Fatal(d.Denial)
				}
				spent[k] += time.Since(t0)
			}
			n++
		}
		b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "plain-ns/check")
		b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "cel-ns/check")
		b.ReportMetric(float64((spent[1]-spent[0]).Nanoseconds())/float64(n), "added-ns/check")
	})
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
