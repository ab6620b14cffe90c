package revocation

import "github.com/prometheus/client_golang/prometheus"

// metrics are the stream's Prometheus metrics; without a registerer they
// are kept but not exported.
type metrics struct {
	streams    prometheus.Gauge
	head       prometheus.Gauge
	read       prometheus.Counter
	sent       prometheus.Counter
	resets     prometheus.Counter
	pollErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gatehouse_revocation_streams",
			Help: "Revocation event streams open at this issuer."}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gatehouse_revocation_events_head_position",
			Help: "The last revocation event position this issuer's poller read from the database."}),
		read: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_revocation_events_read_total",
			Help: "Revocation events the poller read from the database."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_revocation_events_sent_total",
			Help: "Revocation frames sent, over every stream."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_revocation_stream_resets_total",
			Help: "Streams opened at a position the log no longer holds (sent a reset frame)."}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_revocation_poll_errors_total",
			Help: "Failed reads of the revocation event log by the poller (retried at the next interval)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.streams, m.head, m.read, m.sent, m.resets, m.pollErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
