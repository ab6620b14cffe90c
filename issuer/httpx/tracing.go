package httpx

import (
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracingScope is the instrumentation scope of the request spans.
const TracingScope = "github.com/gatehouse-dev/gatehouse/issuer/httpx"

// ServerKey names the listener ("public" or "admin") on a request span.
const ServerKey = attribute.Key("gatehouse.server")

// startSpan continues the W3C trace context of the request's traceparent
// and tracestate headers, if any, and starts the request's server span. The
// name is the method alone until the route is known (endSpan).
func startSpan(tr trace.Tracer, server string, r *http.Request) (*http.Request, trace.Span) {
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	ctx, span := tr.Start(ctx, methodName(r.Method), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		ServerKey.String(server), semconv.HTTPRequestMethodKey.String(methodName(r.Method)),
		semconv.URLScheme(scheme), semconv.URLPath(truncate(r.URL.Path, 256))))
	return r.WithContext(ctx), span
}

// endSpan names the span after the route pattern the mux matched (its
// method included, as "POST /oauth2/token"), records the route, the status
// and the OAuth error code, and ends it. Only 5xx answers are span errors
// (OpenTelemetry's HTTP server conventions): a 4xx is the client's.
func endSpan(span trace.Span, r *http.Request, status int, ri *RequestInfo) {
	name, route := methodName(r.Method), ""
	if r.Pattern != "" {
		m, path, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			m, path = methodName(r.Method), r.Pattern
		}
		name, route = m+" "+path, path
		span.SetAttributes(semconv.HTTPRoute(route))
	}
	span.SetName(name)
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	switch {
	case ri.Err != nil && status >= 400:
		span.SetAttributes(semconv.ErrorTypeKey.String(ri.Err.Code))
	case status >= 500:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// methodName is the method for http.request.method and span names: the
// known methods as they are, any other as _OTHER (the client picks the
// method; names and attributes must stay a bounded set).
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodHead, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
