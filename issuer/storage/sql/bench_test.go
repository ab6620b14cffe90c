package sqlstore_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
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
		mk := func() storage.Token {
			sig := strconv.FormatInt(n.Add(1), 36)
			return storage.Token{Kind: storage.KindAccessToken, Signature: sig, RequestID: sig, ClientID: "c", Active: true,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: json.RawMessage(`{"scope":"a b"}`)}
		}
		b.Run(backend+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := s.Tokens().Create(context.Background(), mk()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(backend+"/parallel16", func(b *testing.B) {
			b.SetParallelism(8) // 16 callers on 2 cores, like 16 connections
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
