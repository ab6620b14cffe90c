package main

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	storagetracing "github.com/gatehouse-dev/gatehouse/issuer/storage/tracing"
)

// startTracing sets up the OTLP/HTTP exporter of the tracing section. It
// returns a nil provider when tracing is off (tracing.provider empty):
// then no span is made anywhere. shutdown flushes the spans still queued.
func startTracing(ctx context.Context, c config.Tracing, log *zap.Logger) (tp trace.TracerProvider, shutdown func(), err error) {
	if c.Provider == "" {
		return nil, func() {}, nil
	}
	o := c.Providers.OTLP
	// Hydra's server_url is host:port; the exporter posts to /v1/traces
	// there (OTLP/HTTP, protobuf). The SDK also reads the standard
	// OTEL_EXPORTER_OTLP_* variables; these options take precedence.
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(o.ServerURL)}
	if o.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if o.AuthorizationHeader != "" {
		opts = append(opts, otlptracehttp.WithHeaders(map[string]string{"Authorization": o.AuthorizationHeader}))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("TRACING_PROVIDERS_OTLP_SERVER_URL: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(c.ServiceName), semconv.ServiceVersion(version)}
	if c.DeploymentEnvironment != "" {
		attrs = append(attrs, semconv.DeploymentEnvironmentNameKey.String(c.DeploymentEnvironment))
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, attrs...)),
		// A caller's sampling decision (the traceparent's flag) is kept;
		// traces started here are sampled at the configured ratio.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.Sampling.SamplingRatio))),
	)
	// Export failures (collector down) are logged, not fatal.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: exporting spans failed", zap.Error(err))
	}))
	log.Info("tracing: exporting spans over OTLP/HTTP", zap.String("server_url", o.ServerURL),
		zap.Bool("insecure", o.Insecure), zap.Float64("sampling_ratio", o.Sampling.SamplingRatio))
	return sdk, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sdk.Shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans at shutdown failed", zap.Error(err))
		}
	}, nil
}

// traceStore wraps the store so every storage call is a span, when
// tracing is on.
func traceStore(st storage.Storage, tp trace.TracerProvider, backend string) storage.Storage {
	if tp == nil {
		return st
	}
	return storagetracing.Wrap(st, tp, backend)
}
