package extauthz

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkDecideRevocations is a decision-cache hit (the common check)
// with the revocation stream off, on with an empty deny-set, and on with
// 100,000 revoked jti (none of them the token's). The target: the
// check rate with the stream on within 5% of the rate without it.
func BenchmarkDecideRevocations(b *testing.B) {
	for _, c := range []struct {
		name    string
		off     bool
		entries int
	}{{"off", true, 0}, {"empty", false, 0}, {"100k", false, 100_000}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, func(cfg *Config) {
				if c.off {
					cfg.Revocations.EventsURL = RevocationsEventsOff
				} else {
					cfg.Revocations.EventsURL = "http://127.0.0.1:1/admin/revocations/events" // never connects
				}
			})
			if !c.off {
				fillDenySet(e.a.revoked, c.entries, e.clock.Now())
			}
			tok := e.is.Token(e.key, map[string]any{"sid": "s-1"})
			ctx := context.Background()
			r := bearer(tok)
			for range 3 {
				e.a.Decide(ctx, r)
				e.a.cache.wait()
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d := e.a.Decide(ctx, r); !d.Allowed() {
						b.Fatal(d.Denial)
					}
				}
			})
		})
	}
}

// fillDenySet adds n token events of one uuid-sized jti each, as the
// issuer sends for RFC 7009 revocations.
func fillDenySet(d *denySet, n int, now time.Time) {
	for i := range n {
		d.add(RevocationEvent{Position: int64(i + 1), Kind: "token",
			JTI: []string{fmt.Sprintf("0193a0c4-7b2e-7c1d-9e3f-%012d", i)}, ClientID: fmt.Sprintf("client-%d", i%100)},
			now.Add(time.Hour), now)
	}
}

// TestDenySetMemory reports the heap a deny-set of 100,000 revoked JWTs
// holds (go test -run TestDenySetMemory -v ./extauthz); the figure is in
// docs/benchmarks.md.
func TestDenySetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 entries")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := newDenySet("https://issuer.example", 250_000)
	fillDenySet(d, 100_000, testEpoch)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if d.size() != 100_000 {
		t.Fatalf("size %d", d.size())
	}
	delta := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("deny-set of 100,000 revoked JWTs: %.1f MiB live heap (%d bytes per entry)", float64(delta)/(1<<20), delta/100_000)
	runtime.KeepAlive(d)
}

// BenchmarkDenySetMatch is the deny-set lookup alone, for a token no
// entry names: what the stream adds to every check.
func BenchmarkDenySetMatch(b *testing.B) {
	id := &Identity{Issuer: "https://issuer.example", Subject: "alice", ClientID: "client-7",
		rev: revocationKeys{jti: "0193a0c4-7b2e-7c1d-9e3f-999999999999", sid: "s-1", kid: "k-1", iat: testEpoch, hasIAT: true}}
	for _, n := range []int{0, 1000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			d := newDenySet("https://issuer.example", 250_000)
			fillDenySet(d, n, testEpoch)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if d.match(id) {
					b.Fatal("matched")
				}
			}
		})
	}
}
