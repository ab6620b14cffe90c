// Package tracing wraps a storage.Storage so that every call of every store
// is an OpenTelemetry span: named "storage <store>.<Method>" (for example
// "storage tokens.Redeem"), a child of the span in the caller's context (the
// request's server span), with the attributes gatehouse.storage.store,
// gatehouse.storage.method, gatehouse.storage.backend and db.system.name.
//
// Arguments and results are never recorded: they are client ids, token
// signatures, subjects and session data. An error is recorded by its class
// only (error.type: not_found, already_exists, conflict, invalid,
// unavailable, closed, canceled or _OTHER), never by its text, which for
// some drivers quotes the offending value. not_found, already_exists and
// conflict are answers the callers expect (an unknown token, a replayed jti,
// a lost race) and leave the span's status unset; the others set it to
// Error.
//
// The binary wraps its store only when tracing is on; with tracing off
// nothing of this package runs.
package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/gatehouse-dev/gatehouse/issuer/storage/tracing"

// Attribute keys of the storage spans.
const (
	StoreKey   = attribute.Key("gatehouse.storage.store")
	MethodKey  = attribute.Key("gatehouse.storage.method")
	BackendKey = attribute.Key("gatehouse.storage.backend")
)

// Wrap returns s with every store call traced by tp. backend names the
// database ("sqlite", "postgres", "mysql", "memory"); it is recorded as
// gatehouse.storage.backend and, in OpenTelemetry's spelling, as
// db.system.name. Ping is traced too; Stats and Close pass through.
func Wrap(s storage.Storage, tp trace.TracerProvider, backend string) storage.Storage {
	t := &tracer{tr: tp.Tracer(ScopeName), backend: BackendKey.String(backend)}
	switch backend {
	case "sqlite":
		t.system = semconv.DBSystemNameSQLite
	case "postgres":
		t.system = semconv.DBSystemNamePostgreSQL
	case "mysql":
		t.system = semconv.DBSystemNameMySQL
	default:
		t.system = semconv.DBSystemNameKey.String("other_sql")
		if backend == "memory" {
			t.system = semconv.DBSystemNameKey.String("memory")
		}
	}
	return &store{Storage: s, op: op{t, "storage"},
		clients: clients{s.Clients(), op{t, "clients"}}, keys: keys{s.Keys(), op{t, "keys"}},
		tokens: tokens{s.Tokens(), op{t, "tokens"}}, flows: flows{s.Flows(), op{t, "flows"}},
		logins:   loginSessions{s.LoginSessions(), op{t, "login_sessions"}},
		consents: consentSessions{s.ConsentSessions(), op{t, "consent_sessions"}},
		trust:    trust{s.Trust(), op{t, "trust"}}, nonces: nonces{s.Nonces(), op{t, "nonces"}},
		events: events{s.RevocationEvents(), op{t, "revocation_events"}}}
}

type tracer struct {
	tr      trace.Tracer
	backend attribute.KeyValue
	system  attribute.KeyValue
}

// start begins the span of one store call.
func (t *tracer) start(ctx context.Context, store, method string) (context.Context, trace.Span) {
	return t.tr.Start(ctx, "storage "+store+"."+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(StoreKey.String(store), MethodKey.String(method), t.backend, t.system,
			semconv.DBOperationName(store+"."+method)))
}

// end records err's class on span and ends it.
func end(span trace.Span, err error) {
	if err != nil {
		class, expected := Classify(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(class))
		if !expected {
			span.SetStatus(codes.Error, class)
		}
	}
	span.End()
}

// Classify names err's class for error.type and says whether callers expect
// it as an answer (not found, already exists, conflict) rather than a
// failure.
func Classify(err error) (class string, expected bool) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "not_found", true
	case errors.Is(err, storage.ErrAlreadyExists):
		return "already_exists", true
	case errors.Is(err, storage.ErrConflict):
		return "conflict", true
	case errors.Is(err, storage.ErrInvalid):
		return "invalid", false
	case errors.Is(err, storage.ErrUnavailable):
		return "unavailable", false
	case errors.Is(err, storage.ErrClosed):
		return "closed", false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled", false
	}
	return semconv.ErrorTypeOther.Value.AsString(), false
}

// op names the spans of one store ("storage <store>.<Method>").
type op struct {
	t     *tracer
	store string
}

// traced runs fn in a span named after o's store and method.
func traced[T any](ctx context.Context, o op, method string, fn func(context.Context) (T, error)) (v T, err error) {
	ctx, span := o.t.start(ctx, o.store, method)
	defer func() { end(span, err) }()
	return fn(ctx)
}

// tracedErr is traced for a method that returns only an error.
func tracedErr(ctx context.Context, o op, method string, fn func(context.Context) error) (err error) {
	ctx, span := o.t.start(ctx, o.store, method)
	defer func() { end(span, err) }()
	return fn(ctx)
}
