package extauthz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Revocation stream states (RevocationStatus.State).
const (
	RevocationsOff       = "off"       // not configured
	RevocationsConnected = "connected" // events arrive
	RevocationsDegraded  = "degraded"  // not connected: today's cache TTLs apply
)

// Limits of the stream client.
const (
	// maxEventBytes bounds one line and one frame's data: an event lists
	// at most a few thousand jti.
	maxEventBytes = 1 << 20
	// streamIdleTimeout: the issuer sends a keepalive at least every
	// 15 s; a connection silent for this long is dead.
	streamIdleTimeout = 45 * time.Second
	// overflowInterval: a full deny-set drops the decision cache at most
	// this often.
	overflowInterval = 10 * time.Second
)

var errNoEventsURL = errors.New("no revocation events URL yet (no introspection endpoint known)")

// knownEventKinds label the events metric; others count as "other".
var knownEventKinds = map[string]bool{"token": true, "consent": true, "session": true, "client": true, "key": true}

// RevocationStatus is what health and metrics report of the stream.
type RevocationStatus struct {
	State    string // RevocationsOff, RevocationsConnected or RevocationsDegraded
	Position int64  // last position applied (0: none yet)
	DenySet  int    // deny-set slots in use
}

// revocationStream subscribes to the issuer's revocation events
// (docs/revocation-events.md) and applies them to the authorizer's
// deny-set and decision cache. It is a service: start runs the
// subscription in the background, reconnecting with backoff and resuming
// with Last-Event-ID from the last position seen; stop ends it.
type revocationStream struct {
	url     func() string // "" while unknown (the introspection endpoint is not discovered yet)
	client  *http.Client
	log     *zap.Logger
	now     func() time.Time
	skew    time.Duration
	set     *denySet
	onReset func(reason string) // drops every cached decision
	m       *revMetrics

	minBackoff, maxBackoff time.Duration
	idleTimeout            time.Duration

	connected atomic.Bool
	position  atomic.Int64 // 0: none yet
	hasPos    atomic.Bool
	// firstConn: the connection being read is the process's first to
	// get a hello; lastOverflow: when a full deny-set last dropped the
	// caches (only the run goroutine uses them).
	firstConn    bool
	helloed      bool
	lastOverflow time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// revMetrics are the stream's Prometheus series.
type revMetrics struct {
	connected prometheus.Gauge
	events    *prometheus.CounterVec
	resets    *prometheus.CounterVec
	evicted   prometheus.Counter
	size      prometheus.GaugeFunc
	position  prometheus.GaugeFunc
	lag       prometheus.Gauge
	malformed prometheus.Counter
}

func newRevMetrics(reg prometheus.Registerer, size, position func() float64) *revMetrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gatehouse", Subsystem: "sidecar", Name: name, Help: help}
	}
	m := &revMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts(opts("revocation_stream_connected",
			"1 while the revocation event stream is connected; 0 means degraded (cache TTLs apply)."))),
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("revocation_events_total",
			"Revocation events applied, by kind (token, consent, session, client, key, other).")), []string{"kind"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts(opts("revocation_cache_resets_total",
			"Times every cached decision was dropped, by reason (reset: events missed past the issuer's retention; start: the first connection's backlog began past retention; overflow: deny-set full, at most every 10 s; malformed: an event could not be decoded).")), []string{"reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts(opts("revocation_deny_set_evictions_total",
			"Deny-set slots evicted because the set was full (those tokens fall back to TTL semantics)."))),
		size: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("revocation_deny_set_size",
			"Deny-set slots in use (one per revoked jti, one per other event).")), size),
		position: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("revocation_stream_position",
			"Position of the last revocation event seen.")), position),
		lag: prometheus.NewGauge(prometheus.GaugeOpts(opts("revocation_lag_seconds",
			"Time from the last applied event's creation at the issuer to its application here."))),
		malformed: prometheus.NewCounter(prometheus.CounterOpts(opts("revocation_events_malformed_total",
			"Revocation frames whose data could not be decoded (ignored)."))),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.events, m.resets, m.evicted, m.size, m.position, m.lag, m.malformed)
	}
	return m
}

// streamClient is client without its overall timeout (a stream lasts);
// the idle timeout and the context end a dead one.
func streamClient(c *http.Client) *http.Client {
	return &http.Client{Transport: c.Transport, CheckRedirect: c.CheckRedirect, Jar: c.Jar}
}

func (s *revocationStream) start() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan struct{})
	go s.run()
}

func (s *revocationStream) stop() {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
	})
}

func (s *revocationStream) status() RevocationStatus {
	st := RevocationStatus{State: RevocationsDegraded, DenySet: s.set.size()}
	if s.connected.Load() {
		st.State = RevocationsConnected
	}
	if s.hasPos.Load() {
		st.Position = s.position.Load()
	}
	return st
}

func (s *revocationStream) run() {
	defer close(s.done)
	backoff := s.minBackoff
	go s.sweep()
	for {
		healthy, err := s.subscribe()
		s.setConnected(false)
		if s.ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = s.minBackoff
		}
		// Full jitter on the doubled backoff: sidecars that lost the same
		// issuer do not all come back at the same instant.
		wait := backoff/2 + rand.N(backoff/2+1)
		if errors.Is(err, errNoEventsURL) {
			s.log.Debug("no revocation events URL (no introspection endpoint known)")
		} else {
			s.log.Warn("revocation stream down; decisions fall back to cache TTLs until it is back",
				zap.Error(err), zap.Duration("retry_in", wait))
		}
		backoff = min(2*backoff, s.maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// sweep forgets expired deny-set entries every 30 s (add does too).
func (s *revocationStream) sweep() {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.set.expire(s.now())
		}
	}
}

func (s *revocationStream) setConnected(c bool) {
	s.connected.Store(c)
	if c {
		s.m.connected.Set(1)
	} else {
		s.m.connected.Set(0)
	}
}

// subscribe runs one connection until it fails; healthy reports whether
// it got as far as the hello frame (the backoff starts over then).
func (s *revocationStream) subscribe() (healthy bool, err error) {
	u := s.url()
	if u == "" {
		return false, errNoEventsURL
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	// From the last position seen; a sidecar that has seen none asks for
	// every retained event (position 0), not the head: tokens revoked
	// before it started may still be unexpired, and only the backlog
	// names them.
	req.Header.Set("Last-Event-ID", strconv.FormatInt(s.position.Load(), 10))
	// A connection that stays silent past the idle timeout (no frame, no
	// keepalive) is dead: cancel it. Headers count as activity.
	idle := time.AfterFunc(s.idleTimeout, cancel)
	defer idle.Stop()
	// Errors name the endpoint without userinfo or query (never logged).
	u = (&url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: req.URL.Path}).String()
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("%s: content type %q is not text/event-stream", u, mt)
	}
	idle.Reset(s.idleTimeout)
	r := newSSEReader(resp.Body, maxEventBytes)
	r.onLine = func() { idle.Reset(s.idleTimeout) }
	for {
		f, err := r.Next()
		if err != nil {
			if s.ctx.Err() == nil && ctx.Err() != nil {
				err = fmt.Errorf("no data for %s", s.idleTimeout)
			}
			return healthy, err
		}
		if s.handle(f) {
			healthy = true
		}
	}
}

// handle applies one frame; it reports whether it was the hello.
func (s *revocationStream) handle(f sseFrame) (hello bool) {
	switch f.Event {
	case "hello":
		resumed := s.hasPos.Load()
		s.firstConn = !s.helloed
		s.helloed = true
		s.setPosition(f.ID)
		s.setConnected(true)
		s.log.Info("revocation stream connected", zap.Int64("position", s.position.Load()), zap.Bool("resumed", resumed))
		return true
	case "reset":
		// Events were flushed before this sidecar saw them: it cannot know
		// what it missed (docs/revocation-events.md), so no cached decision
		// may stay. At start (reason "start") it is only the backlog's
		// flushed beginning.
		reason := "reset"
		if s.firstConn {
			reason = "start"
		}
		s.setPosition(f.ID)
		s.onReset(reason)
		s.m.resets.WithLabelValues(reason).Inc()
		if reason == "reset" {
			s.log.Warn("revocation stream reset: events were missed past the issuer's retention; dropped every cached decision")
		}
	case "revocation":
		ev, err := parseRevocationEvent(f.Data)
		if err != nil {
			// It cannot be applied: as after a reset, nothing cached may
			// stay (opaque tokens are introspected again).
			s.m.malformed.Inc()
			s.m.resets.WithLabelValues("malformed").Inc()
			s.onReset("malformed")
			s.log.Warn("a revocation event could not be decoded; dropped every cached decision", zap.Error(err))
			s.setPosition(f.ID)
			return false
		}
		s.apply(ev)
		if f.ID == "" {
			f.ID = strconv.FormatInt(ev.Position, 10)
		}
		s.setPosition(f.ID)
	default:
		s.setPosition(f.ID)
	}
	return false
}

// apply adds an event to the deny-set.
func (s *revocationStream) apply(ev RevocationEvent) {
	now := s.now()
	until := ev.Until
	if until.IsZero() {
		// The contract always sends until; without it the event is kept as
		// long as a token can be cached at most (fail closed).
		until = now.Add(24 * time.Hour)
	}
	// Tokens are accepted up to exp plus the tolerated skew.
	if evicted := s.set.add(ev, until.Add(s.skew), now); evicted > 0 {
		s.m.evicted.Add(float64(evicted))
		// Cached decisions the evicted entries were denying must go; at
		// most once per overflowInterval, so that a set that stays full
		// does not empty the cache at every event (an opaque token's entry
		// lives introspection.cache_ttl at most: the TTL semantics the
		// evicted tokens fall back to).
		if s.lastOverflow.IsZero() || now.Sub(s.lastOverflow) >= overflowInterval {
			s.lastOverflow = now
			s.m.resets.WithLabelValues("overflow").Inc()
			s.onReset("overflow")
			s.log.Warn("revocation deny-set full: evicted the entries expiring first and dropped every cached decision",
				zap.Int("evicted", evicted), zap.Int("max_entries", s.set.max))
		}
	}
	kind := ev.Kind
	if !knownEventKinds[kind] {
		kind = "other"
	}
	s.m.events.WithLabelValues(kind).Inc()
	if !ev.Time.IsZero() {
		s.m.lag.Set(now.Sub(ev.Time).Seconds())
	}
	if ce := s.log.Check(zap.DebugLevel, "revocation applied"); ce != nil {
		ce.Write(zap.Int64("position", ev.Position), zap.String("kind", ev.Kind), zap.Int("deny_set", s.set.size()))
	}
}

// setPosition records the stream position of a frame id (a decimal
// integer; anything else is ignored).
func (s *revocationStream) setPosition(id string) {
	p, err := strconv.ParseInt(id, 10, 64)
	if err != nil || p < 0 {
		return
	}
	s.position.Store(p)
	s.hasPos.Store(true)
}
