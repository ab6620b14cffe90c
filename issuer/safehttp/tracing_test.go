package safehttp

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Each outbound request, each redirect on its own, is a client span under
// the caller's span, and the receiver gets a traceparent naming that span.
func TestTraceContextPropagated(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("traceparent"))
		mu.Unlock()
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/jwks?secret=1", http.StatusFound)
			return
		}
		okHandler(w, r)
	})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := New(Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := c.GetBody(ctx, srv.URL+"/start", ""); err != nil {
		t.Fatal(err)
	}
	parent.End()
	spans := rec.Ended()
	if len(spans) != 3 || len(seen) != 2 {
		t.Fatalf("%d spans, %d requests; want 2 client spans and the parent", len(spans), len(seen))
	}
	for i, s := range spans[:2] {
		want := "00-" + parent.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"
		if seen[i] != want || s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("request %d: traceparent %q, want %q (span %q under %v)", i, seen[i], want, s.Name(), s.Parent().SpanID())
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "/jwks") || strings.Contains(a.Value.Emit(), "secret") {
				t.Errorf("the URL's path or query was recorded: %s=%s", a.Key, a.Value.Emit())
			}
		}
	}
}

// A refused connection is an error span classed blocked_address.
func TestTracedBlockedAddress(t *testing.T) {
	srv := newServer(t, okHandler)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := New(Options{TracerProvider: tp, DisallowPrivateIPRanges: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)); err == nil {
		t.Fatal("loopback by name was fetched")
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error || spans[0].Status().Description != "blocked_address" {
		t.Fatalf("spans %v", spans)
	}
}
