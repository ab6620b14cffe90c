package extauthz

import (
	"context"
	"testing"
)

// BenchmarkCheckInternalToken is one cached JWT checked and answered as
// Envoy's Check (decode aside) on a plain route and on a route with a
// warm internal token: what the exchange cache adds to a check, without
// the transport (scenario (e) of bench/extauthz measures it with).
func BenchmarkCheckInternalToken(b *testing.B) {
	te := newTokenEndpoint(b)
	e := internalEnv(b, te, nil)
	s := NewCheckServer(e.a)
	tok := e.is.Token(e.key, nil)
	ctx := context.Background()
	for _, route := range []struct{ name, path string }{{"plain", "/api/orders"}, {"internal", "/orders/1"}} {
		b.Run(route.name, func(b *testing.B) {
			req := envoyCheck("GET", "api.example.com", route.path, map[string]string{"authorization": "Bearer " + tok})
			for range 3 { // the decision cache admits a JWT on its second check
				if _, err := s.check(ctx, req); err != nil {
					b.Fatal(err)
				}
				e.a.cache.wait()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if te.calls.Load() != 1 {
		b.Fatalf("token endpoint calls = %d, want 1", te.calls.Load())
	}
}
