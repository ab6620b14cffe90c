package extauthz

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the authorizer's Prometheus series. Counters on the hot
// path are resolved once (no label lookups per request).
type metrics struct {
	decisions      *prometheus.CounterVec
	cacheHit       prometheus.Counter
	cacheMiss      prometheus.Counter
	jwksFetches    *prometheus.CounterVec
	jwksKeys       *prometheus.GaugeVec
	introspection  *prometheus.HistogramVec
	allowToken     prometheus.Counter
	allowAnonymous prometheus.Counter
	errUnavailable prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "sidecar", Name: "decisions_total",
			Help: "Authorization decisions by result (allow, deny, error) and reason.",
		}, []string{"result", "reason"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "sidecar", Name: "jwks_fetches_total",
			Help: "Discovery and JWKS fetches by issuer, trigger (scheduled, unknown_kid) and result (success, failure).",
		}, []string{"issuer", "trigger", "result"}),
		jwksKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "sidecar", Name: "jwks_keys",
			Help: "Signing keys currently usable, by issuer.",
		}, []string{"issuer"}),
		introspection: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "sidecar", Name: "introspection_duration_seconds",
			Help:    "Latency of introspection requests to the issuer, by result (active, inactive, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"issuer", "result"}),
	}
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sidecar", Name: "cache_requests_total",
		Help: "Decision cache lookups by result (hit, miss).",
	}, []string{"result"})
	m.cacheHit = cache.WithLabelValues("hit")
	m.cacheMiss = cache.WithLabelValues("miss")
	m.allowToken = m.decisions.WithLabelValues("allow", "valid_token")
	m.allowAnonymous = m.decisions.WithLabelValues("allow", "anonymous")
	m.errUnavailable = m.decisions.WithLabelValues("error", "unavailable")
	if reg != nil {
		reg.MustRegister(m.decisions, cache, m.jwksFetches, m.jwksKeys, m.introspection)
	}
	return m
}

// denyCounter returns the counter for a denial reason.
func (m *metrics) denyCounter(reason string) prometheus.Counter {
	return m.decisions.WithLabelValues("deny", reason)
}
