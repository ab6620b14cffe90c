package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value.Emit()
	}
	return m
}

func TestRequestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mux := http.NewServeMux()
	var inner trace.SpanContext
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		_, child := tp.Tracer("test").Start(r.Context(), "child")
		inner = child.SpanContext()
		child.End()
		WriteError(w, r, apierr.InvalidRequest("bad"))
	})
	mux.HandleFunc("GET /admin/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apierr.ServerError(errors.New("database on fire")))
	})
	mux.HandleFunc("/any", func(w http.ResponseWriter, r *http.Request) {})
	h := (&Middleware{Server: "public", TracerProvider: tp}).Wrap(mux)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		method, path, traceparent string
		name, route, status       string
		errType                   string
		isError                   bool
	}{
		{"POST", "/oauth2/token", "00-" + traceID + "-" + parentID + "-01", "POST /oauth2/token", "/oauth2/token", "400", "invalid_request", false},
		{"GET", "/admin/clients/abc", "", "GET /admin/clients/{id}", "/admin/clients/{id}", "500", "server_error", true},
		{"PUT", "/any", "", "PUT /any", "/any", "200", "", false},
		{"GET", "/nowhere", "", "GET", "", "404", "not_found", false},
		{"BREW", "/nowhere", "", "_OTHER", "", "404", "not_found", false},
		{"POST", "/oauth2/token", "garbage", "POST /oauth2/token", "/oauth2/token", "400", "invalid_request", false},
	}
	for _, tc := range cases {
		before := len(rec.Ended())
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.traceparent != "" {
			req.Header.Set("traceparent", tc.traceparent)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		ended := rec.Ended()[before:]
		s := ended[len(ended)-1]
		a := attrs(s)
		if s.Name() != tc.name || s.SpanKind() != trace.SpanKindServer || a["http.route"] != tc.route ||
			a["http.response.status_code"] != tc.status || a["error.type"] != tc.errType || a["gatehouse.server"] != "public" {
			t.Errorf("%s %s: span %q kind %v attributes %v", tc.method, tc.path, s.Name(), s.SpanKind(), a)
		}
		if (s.Status().Code == codes.Error) != tc.isError {
			t.Errorf("%s %s: status %v", tc.method, tc.path, s.Status())
		}
		if tc.method == "BREW" && a["http.request.method"] != "_OTHER" {
			t.Errorf("unknown method recorded as %q", a["http.request.method"])
		}
		switch tc.traceparent {
		case "":
			if s.Parent().IsValid() {
				t.Errorf("%s %s: a parent without traceparent", tc.method, tc.path)
			}
		case "garbage":
			if s.Parent().IsValid() || s.SpanContext().TraceID().String() == traceID {
				t.Error("a malformed traceparent was continued")
			}
		default:
			if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != parentID || !s.Parent().IsRemote() {
				t.Errorf("traceparent not continued: trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID())
			}
			if inner.TraceID() != s.SpanContext().TraceID() || ended[0].Parent().SpanID() != s.SpanContext().SpanID() {
				t.Error("the handler's span is not a child of the request span")
			}
		}
	}
}

// Without a TracerProvider no span context reaches the handlers.
func TestNoTracingByDefault(t *testing.T) {
	var sc trace.SpanContext
	h := (&Middleware{Server: "public"}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc = trace.SpanContextFromContext(r.Context())
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if sc.IsValid() {
		t.Fatalf("span context %v without tracing", sc)
	}
}
