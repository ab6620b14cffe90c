package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
)

// benchServe serves a small JSON answer through h, as a token endpoint's
// middleware would see it.
func benchServe(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func benchMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"access_token": "x"})
	})
	return mux
}

// BenchmarkMiddleware is the middleware around a request with no tracer
// provider (tracing off, the default). BenchmarkMiddlewareTracing in
// tracing_bench_test.go compares a no-op and a sampling SDK provider.
func BenchmarkMiddleware(b *testing.B) {
	benchServe(b, (&Middleware{Server: "public", Logger: zap.NewNop()}).Wrap(benchMux()))
}
