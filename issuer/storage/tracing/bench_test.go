package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/tracing"
)

// BenchmarkClientGet reads a client from the memory backend as it is
// (tracing off: the binary does not wrap its store) and wrapped, every call
// sampled and exported nowhere: the cost of one storage span.
func BenchmarkClientGet(b *testing.B) {
	inner := memory.New(memory.Options{})
	defer inner.Close()
	ctx := context.Background()
	if err := inner.Clients().Create(ctx, storage.Client{ID: "c1", Metadata: []byte(`{}`)}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    storage.Storage
	}{{"off", inner}, {"sampled", tracing.Wrap(inner, sdktrace.NewTracerProvider(), "memory")}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.s.Clients().Get(ctx, "c1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
