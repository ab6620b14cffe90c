package httpx

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// Metrics are the per-request Prometheus series of one server.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests served, by server, route, method and status code.",
		}, []string{"server", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "HTTP request latency, by server, route, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"server", "route", "method", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Middleware wraps a router with panic recovery, one log line per request,
// metrics and JSON answers for the mux's own 404/405.
type Middleware struct {
	Server  string // "public" or "admin"
	Logger  *zap.Logger
	Metrics *Metrics // optional
	Now     func() time.Time
	// TracerProvider, when set, gives every request a server span
	// continuing the caller's W3C trace context (tracing.go); nil traces
	// nothing and costs nothing.
	TracerProvider trace.TracerProvider
}

// Wrap returns h wrapped in the middleware chain.
func (m *Middleware) Wrap(h http.Handler) http.Handler {
	now := m.Now
	if now == nil {
		now = time.Now
	}
	log := m.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var tracer trace.Tracer
	if m.TracerProvider != nil {
		tracer = m.TracerProvider.Tracer(TracingScope)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		var span trace.Span
		if tracer != nil {
			r, span = startSpan(tracer, m.Server, r)
		}
		ri := &RequestInfo{}
		r = r.WithContext(WithInfo(r.Context(), ri))
		rec := &recorder{ResponseWriter: w, r: r}
		func() {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic while serving request", zap.String("server", m.Server),
						zap.String("path", r.URL.Path), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
					if !rec.wroteHeader {
						WriteError(rec, r, apierr.ServerError(fmt.Errorf("panic: %v", p)))
					}
				}
			}()
			h.ServeHTTP(rec, r)
		}()
		if !rec.wroteHeader {
			rec.WriteHeader(http.StatusOK)
		}
		elapsed := now().Sub(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		code := strconv.Itoa(rec.status)
		if span != nil {
			endSpan(span, r, rec.status, ri)
		}
		if m.Metrics != nil {
			m.Metrics.requests.WithLabelValues(m.Server, route, r.Method, code).Inc()
			m.Metrics.duration.WithLabelValues(m.Server, route, r.Method, code).Observe(elapsed.Seconds())
		}
		// Never log the query string, headers or bodies: they carry codes,
		// tokens, secrets and challenges.
		fields := []zap.Field{
			zap.String("server", m.Server), zap.String("method", r.Method), zap.String("route", route),
			zap.String("path", truncate(r.URL.Path, 256)), zap.Int("status", rec.status),
			zap.Duration("latency", elapsed), zap.Int64("bytes", rec.bytes),
		}
		if ri.ClientID != "" {
			fields = append(fields, zap.String("client_id", ri.ClientID))
		}
		if ri.Err != nil {
			fields = append(fields, zap.String("error", ri.Err.Code))
			if ri.Err.Cause != nil {
				fields = append(fields, zap.String("cause", ri.Err.Cause.Error()))
			}
		}
		switch {
		case rec.status >= 500:
			log.Error("request", fields...)
		default:
			log.Info("request", fields...)
		}
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// recorder captures the status and size, and turns the ServeMux's plain-text
// 404 and 405 answers into JSON errors.
type recorder struct {
	http.ResponseWriter
	r           *http.Request
	status      int
	bytes       int64
	wroteHeader bool
	swallow     bool
}

func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader {
		return
	}
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && isPlainText(rec.Header()) {
		rec.swallow = true
		rec.Header().Del("X-Content-Type-Options")
		var e *apierr.Error
		if code == http.StatusNotFound {
			e = apierr.NotFound("The requested route does not exist")
		} else {
			e = apierr.MethodNotAllowed("The method %s is not allowed on this route", rec.r.Method)
		}
		rec.wroteHeader = true
		rec.status = code
		WriteError(passthrough{rec}, rec.r, e)
		return
	}
	rec.wroteHeader = true
	rec.status = code
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.swallow {
		return len(b), nil
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// passthrough writes straight to the underlying writer (used for the JSON
// replacement of a mux error) while counting bytes.
type passthrough struct{ rec *recorder }

func (p passthrough) Header() http.Header { return p.rec.ResponseWriter.Header() }
func (p passthrough) WriteHeader(code int) {
	p.rec.ResponseWriter.WriteHeader(code)
}
func (p passthrough) Write(b []byte) (int, error) {
	n, err := p.rec.ResponseWriter.Write(b)
	p.rec.bytes += int64(n)
	return n, err
}

func isPlainText(h http.Header) bool {
	ct := h.Get("Content-Type")
	return len(ct) >= 10 && ct[:10] == "text/plain"
}
