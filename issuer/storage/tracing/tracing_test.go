package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/conformance"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/tracing"
)

func newTraced(t *testing.T) (storage.Storage, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	inner := memory.New(memory.Options{})
	t.Cleanup(func() { _ = inner.Close() })
	return tracing.Wrap(inner, tp, "memory"), rec, tp
}

// The wrapper changes nothing a caller sees: values and sentinel errors pass
// through as the backend returns them.
func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage {
		s, _, _ := newTraced(t)
		return s
	})
}

// TestEveryMethodIsTraced calls every method of every store interface of
// storage.Storage through the wrapper and expects one span per call, named
// after the store and the method. A method added to a storage interface
// fails here until stores.go wraps it.
func TestEveryMethodIsTraced(t *testing.T) {
	s, rec, _ := newTraced(t)
	sv := reflect.ValueOf(s)
	st := reflect.TypeFor[storage.Storage]()
	for i := range st.NumMethod() {
		acc := st.Method(i)
		if acc.Type.NumOut() != 1 || acc.Type.Out(0).Kind() != reflect.Interface || acc.Type.Out(0).PkgPath() != st.PkgPath() {
			continue // Ping, Stats, Close
		}
		it := acc.Type.Out(0)
		store := sv.MethodByName(acc.Name).Call(nil)[0]
		for j := range it.NumMethod() {
			m := it.Method(j)
			want := "storage " + snake(acc.Name) + "." + m.Name
			before := len(rec.Ended())
			callWithZeroArgs(store.MethodByName(m.Name))
			ended := rec.Ended()
			if len(ended) != before+1 || ended[len(ended)-1].Name() != want {
				t.Errorf("%s.%s: no span %q", acc.Name, m.Name, want)
			}
		}
	}
	before := len(rec.Ended())
	_ = s.Ping(context.Background())
	if ended := rec.Ended(); len(ended) != before+1 || ended[len(ended)-1].Name() != "storage storage.Ping" {
		t.Error("Ping: no span")
	}
}

// callWithZeroArgs calls m with a background context, updaters that change
// nothing and zero values otherwise; a panic of the backend on such input
// (a nil updater in a RedeemRequest) is recovered.
func callWithZeroArgs(m reflect.Value) {
	defer func() { _ = recover() }()
	mt := m.Type()
	var args []reflect.Value
	for k := range mt.NumIn() {
		in := mt.In(k)
		switch {
		case mt.IsVariadic() && k == mt.NumIn()-1:
			continue
		case in == reflect.TypeFor[context.Context]():
			args = append(args, reflect.ValueOf(context.Background()))
		case in.Kind() == reflect.Func:
			args = append(args, reflect.MakeFunc(in, func([]reflect.Value) []reflect.Value {
				out := make([]reflect.Value, in.NumOut())
				for o := range out {
					out[o] = reflect.Zero(in.Out(o))
				}
				return out
			}))
		default:
			args = append(args, reflect.Zero(in))
		}
	}
	m.Call(args)
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// A store call is a child of the span in its context; it carries the
// store, method and backend, and an error by its class only.
func TestSpanParentAttributesAndErrors(t *testing.T) {
	s, rec, tp := newTraced(t)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	if _, err := s.Clients().Get(ctx, "no-such-client"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	parent.End()
	spans := rec.Ended()
	get := spans[0]
	if get.Name() != "storage clients.Get" || get.Parent().SpanID() != parent.SpanContext().SpanID() ||
		get.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Fatalf("span %q parent %v, want storage clients.Get under %v", get.Name(), get.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	attrs := map[attribute.Key]string{}
	for _, a := range get.Attributes() {
		attrs[a.Key] = a.Value.Emit()
	}
	for k, v := range map[attribute.Key]string{tracing.StoreKey: "clients", tracing.MethodKey: "Get",
		tracing.BackendKey: "memory", "db.system.name": "memory", "error.type": "not_found"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	for _, v := range attrs {
		if strings.Contains(v, "no-such-client") {
			t.Errorf("an argument was recorded: %q", v)
		}
	}
	if get.Status().Code != codes.Unset {
		t.Errorf("not found set status %v; it is an expected answer", get.Status())
	}

	// A cancelled call is a failure: status Error with the class only.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Tokens().Get(cctx, storage.KindAccessToken, "sig"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	last := rec.Ended()[len(rec.Ended())-1]
	if last.Status().Code != codes.Error || last.Status().Description != "canceled" {
		t.Errorf("cancelled call: status %+v, want Error canceled", last.Status())
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err      error
		class    string
		expected bool
	}{
		{storage.ErrNotFound, "not_found", true},
		{fmt.Errorf("%w: constraint x", storage.ErrAlreadyExists), "already_exists", true},
		{storage.ErrConflict, "conflict", true},
		{fmt.Errorf("%w: %w", storage.ErrInvalid, errors.New("pq: invalid byte sequence")), "invalid", false},
		{storage.ErrUnavailable, "unavailable", false},
		{storage.ErrClosed, "closed", false},
		{context.DeadlineExceeded, "canceled", false},
		{errors.New("Error 1062: Duplicate entry 'secret' for key"), "_OTHER", false},
	} {
		class, expected := tracing.Classify(tc.err)
		if class != tc.class || expected != tc.expected {
			t.Errorf("Classify(%v) = %s, %v; want %s, %v", tc.err, class, expected, tc.class, tc.expected)
		}
	}
}
