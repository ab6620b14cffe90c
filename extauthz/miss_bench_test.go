package extauthz

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// BenchmarkAuthenticateMiss validates distinct valid JWTs (every call a
// decision-cache miss, as scenario (b) of bench/extauthz): the
// signature plus everything around it.
func BenchmarkAuthenticateMiss(b *testing.B) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.RS256(), jwa.ES256()} {
		b.Run(alg.String(), func(b *testing.B) {
			e := newEnv(b, nil)
			k := e.key
			if alg != jwa.RS256() {
				k = e.is.AddKey(alg)
			}
			toks := make([]string, 2000)
			for i := range toks {
				toks[i] = e.is.Token(k, nil)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(toks) == 0 && i > 0 {
					b.StopTimer()
					e.a.cache.clear()
					b.StartTimer()
				}
				id, deny, err := e.a.Authenticate(ctx, toks[i%len(toks)])
				if err != nil || deny != nil || id == nil {
					b.Fatal(err, deny)
				}
			}
		})
	}
}
