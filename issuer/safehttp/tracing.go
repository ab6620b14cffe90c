package safehttp

import (
	"errors"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracingScope is the instrumentation scope of the outbound spans.
const TracingScope = "github.com/gatehouse-dev/gatehouse/issuer/safehttp"

// tracingTransport makes every outbound request, each redirect on its own,
// a client span (a child of the span in the request's context) and sends
// the W3C trace context (traceparent, tracestate) with it, so that the
// receiver (a jwks_uri host, a back-channel logout endpoint, a token hook)
// can continue the trace. The URL is recorded by scheme, host and port
// only: paths and queries of client-supplied URLs may carry secrets.
type tracingTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m := req.Method
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
	default:
		m = "_OTHER"
	}
	attrs := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(m), semconv.URLScheme(req.URL.Scheme), semconv.ServerAddress(req.URL.Hostname()))}
	if p, err := strconv.Atoi(req.URL.Port()); err == nil {
		attrs = append(attrs, trace.WithAttributes(semconv.ServerPort(p)))
	}
	ctx, span := t.tracer.Start(req.Context(), m, attrs...)
	defer span.End()
	// A RoundTripper must not change the caller's request.
	req = req.Clone(ctx)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, errorType(err))
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// errorType classes a transport error without its text (which names the
// dialled address).
func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return "blocked_address"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}
