package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// BenchmarkTokenCreate measures the write the token endpoint pays per
// opaque token, sequentially and from parallel callers.
func BenchmarkTokenCreate(b *testing.B) {
	for _, backend := range []string{"memory", "file"} {
		dsn := "memory"
		if backend == "file" {
			dsn = sqliteFile(b)
		}
		s := openMigrated(b, dsn)
		var n atomic.Int64
		// Signatures and request ids start with the issue time, as the
		// token endpoint's do (the rest is random), so inserts land near
		// the right edge of their indexes.
		mk := func() storage.Token {
			n.Add(1)
			ts := strconv.FormatInt(time.Now().UnixMilli(), 36)
			sig, req := ts+rand.Text(), ts+rand.Text()
			return storage.Token{Kind: storage.KindAccessToken, Signature: sig, RequestID: req, ClientID: "c", Active: true,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: json.RawMessage(`{"scope":"a b"}`)}
		}
		b.Run(backend+"/serial", func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				if err := s.Tokens().Create(context.Background(), mk()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(backend+"/parallel16", func(b *testing.B) {
			b.SetParallelism(8) // 16 callers on 2 cores, like 16 connections
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Tokens().Create(context.Background(), mk()); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run(backend+"/get", func(b *testing.B) {
			tk := mk()
			_ = s.Tokens().Create(context.Background(), tk)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Tokens().Get(context.Background(), tk.Kind, tk.Signature); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// reportCPU adds the process CPU time per operation (user+system, all
// goroutines) to the benchmark's figures: steadier than ns/op on a shared
// machine, and what a batching writer saves.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	t0 := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-t0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// BenchmarkConsentList measures the remembered-consent lookup every
// login_verifier makes (subject and client; none found for a new user).
func BenchmarkConsentList(b *testing.B) {
	s := openMigrated(b, sqliteFile(b))
	ctx := context.Background()
	for i := range 100 {
		c := storage.ConsentSession{ID: "cs-" + strconv.Itoa(i), Subject: "user-" + strconv.Itoa(i), ClientID: "c", Remember: true,
			GrantedScope: []string{"openid"}, GrantedAudience: []string{}, HandledAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.ConsentSessions().Create(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := s.ConsentSessions().List(ctx, storage.ConsentFilter{Subject: "someone-new", ClientID: "c"}); err != nil {
			b.Fatal(err)
		}
	}
}
