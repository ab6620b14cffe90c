package extauthz

import (
	"context"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// BenchmarkDecideBound: a cached token checked as a bearer token and, as
// scenario (d) of bench/extauthz, as a DPoP-bound token with a fresh
// ES256 proof per check (signed outside the timer).
func BenchmarkDecideBound(b *testing.B) {
	e := newEnv(b, nil)
	key := testbin.NewDPoPKey(b)
	ctx := context.Background()
	b.Run("bearer", func(b *testing.B) {
		r := bearer(e.is.Token(e.key, nil))
		b.ReportAllocs()
		for b.Loop() {
			if d := e.a.Decide(ctx, r); !d.Allowed() {
				b.Fatal(d.Denial)
			}
		}
	})
	b.Run("dpop", func(b *testing.B) {
		tok := e.is.Token(e.key, map[string]any{"cnf": map[string]any{"jkt": key.JKT}})
		iat := e.clock.Now().Unix()
		r := &Request{Host: "api.example.com", Method: "GET", Path: "/orders", Authorization: "DPoP " + tok}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			r.DPoP = []string{key.Proof(b, "GET", "https://api.example.com/orders", tok, func(_, c map[string]any) { c["iat"] = iat })}
			b.StartTimer()
			if d := e.a.Decide(ctx, r); !d.Allowed() {
				b.Fatal(d.Denial)
			}
		}
	})
}
