package httpx

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

func BenchmarkMiddlewareTracing(b *testing.B) {
	b.Run("noop", func(b *testing.B) {
		benchServe(b, (&Middleware{Server: "public", Logger: zap.NewNop(), TracerProvider: noop.NewTracerProvider()}).Wrap(benchMux()))
	})
	// Every request sampled; spans are made and ended but exported
	// nowhere: the cost of the instrumentation itself.
	b.Run("sampled", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		benchServe(b, (&Middleware{Server: "public", Logger: zap.NewNop(), TracerProvider: tp}).Wrap(benchMux()))
	})
}
