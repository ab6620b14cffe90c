package revocation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// EventsPath is the stream's route on the admin listener.
const EventsPath = "/admin/revocations/events"

// Deps are the handler's dependencies.
type Deps struct {
	Events storage.RevocationEventStore
	Logger *zap.Logger
	// Registerer, when set, gets the stream's metrics (metrics.go).
	Registerer prometheus.Registerer
}

// Options are the stream's settings.
type Options struct {
	// Retention is how long events are kept (revocation_events.retention):
	// announced in the hello frame; the janitor flushes older events.
	Retention time.Duration
	// PollInterval is how often the poller reads new events from the
	// database (revocation_events.poll_interval); default 150ms.
	PollInterval time.Duration
	// Keepalive is the longest a stream stays silent: a comment line is
	// sent then; default 15s.
	Keepalive time.Duration
	// BatchSize bounds the events read per query; default 500.
	BatchSize int
	// Buffer is how many recent events the poller keeps in memory for the
	// streams that are live (older positions are read from the database
	// by their stream); default 4096.
	Buffer int
}

// Handler serves GET /admin/revocations/events. One poller (Run) reads
// the events other transactions commit, at this or another instance on
// the same database, and wakes every stream; a stream behind the
// poller's buffer reads its backlog from the database itself.
type Handler struct {
	events  storage.RevocationEventStore
	log     *zap.Logger
	opts    Options
	metrics *metrics

	mu      sync.Mutex
	started bool
	head    int64                     // last position the poller read (valid once started)
	recent  []storage.RevocationEvent // the last events read, in position order, at most opts.Buffer
	wake    chan struct{}             // closed and replaced when events arrive
	done    chan struct{}             // closed when Run returns: streams end
}

var _ interface {
	MountPublic(*http.ServeMux)
	MountAdmin(*http.ServeMux)
	discovery.Contributor
} = (*Handler)(nil)

// New returns the handler; Run must be started for its streams to get
// events past the backlog they find at connection.
func New(d Deps, o Options) (*Handler, error) {
	if d.Events == nil {
		return nil, errors.New("revocation: Deps.Events is required")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if o.Retention <= 0 {
		return nil, errors.New("revocation: Options.Retention must be positive")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 150 * time.Millisecond
	}
	if o.Keepalive <= 0 {
		o.Keepalive = 15 * time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	return &Handler{events: d.Events, log: d.Logger, opts: o, metrics: m, wake: make(chan struct{}), done: make(chan struct{})}, nil
}

// MountPublic mounts nothing: the stream is an admin API.
func (h *Handler) MountPublic(*http.ServeMux) {}

// MountAdmin mounts EventsPath.
func (h *Handler) MountAdmin(mux *http.ServeMux) { mux.HandleFunc("GET "+EventsPath, h.stream) }

// Discovery contributes nothing: the admin API is not advertised.
func (h *Handler) Discovery(context.Context) (discovery.Metadata, error) {
	return discovery.Metadata{}, nil
}

// Run polls the database every PollInterval until ctx ends, then ends
// every stream (their responses finish cleanly, so a server shutdown
// does not wait for them). A failing read is logged and retried at the
// next tick: streams stay open and catch up when the database is back.
func (h *Handler) Run(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	var failing bool
	for {
		err := h.poll(ctx)
		if err != nil && ctx.Err() == nil {
			h.metrics.pollErrors.Inc()
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			h.log.Warn("reading revocation events", zap.Error(err))
			failing = true
		case err == nil && failing:
			h.log.Info("reading revocation events again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the events after the poller's head and wakes the streams.
func (h *Handler) poll(ctx context.Context) error {
	h.mu.Lock()
	started, head := h.started, h.head
	h.mu.Unlock()
	if !started {
		b, err := h.events.Bounds(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.started, h.head = true, b.Head
		h.mu.Unlock()
		h.metrics.head.Set(float64(b.Head))
		return nil
	}
	for {
		evs, err := h.events.List(ctx, head, h.opts.BatchSize)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		head = evs[len(evs)-1].Position
		h.mu.Lock()
		h.recent = append(h.recent, evs...)
		if over := len(h.recent) - h.opts.Buffer; over > 0 {
			h.recent = append(h.recent[:0:0], h.recent[over:]...)
		}
		h.head = head
		close(h.wake)
		h.wake = make(chan struct{})
		h.mu.Unlock()
		h.metrics.head.Set(float64(head))
		h.metrics.read.Add(float64(len(evs)))
		if len(evs) < h.opts.BatchSize {
			return nil
		}
	}
}

// since returns the buffered events after pos, whether the buffer covers
// pos (else the stream reads from the database), and the channel closed
// when more arrive.
func (h *Handler) since(pos int64) (evs []storage.RevocationEvent, covered bool, wake <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wake = h.wake
	if !h.started {
		return nil, false, wake
	}
	if pos >= h.head {
		return nil, true, wake
	}
	if len(h.recent) == 0 || h.recent[0].Position > pos+1 {
		return nil, false, wake
	}
	i := int(pos + 1 - h.recent[0].Position)
	return append([]storage.RevocationEvent(nil), h.recent[i:]...), true, wake
}

// ParsePosition parses a stream position: a non-negative decimal integer
// of at most 18 digits (an int64 that cannot overflow), no sign, no
// spaces.
func ParsePosition(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// requestedPosition is the position a stream request asks to continue
// after: Last-Event-ID (what an EventSource sends when it reconnects)
// wins over ?from=. ok is false for a malformed one; set is false when
// neither is given.
func requestedPosition(r *http.Request) (pos int64, set bool, err error) {
	q := r.URL.Query()
	if len(q["from"]) > 1 || len(r.Header.Values("Last-Event-ID")) > 1 {
		return 0, false, apierr.InvalidRequest("The position must be given once")
	}
	raw, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if _, ok := r.Header["Last-Event-Id"]; !ok {
		raw, name = q.Get("from"), "from"
		if _, ok := q["from"]; !ok {
			return 0, false, nil
		}
	}
	p, ok := ParsePosition(raw)
	if !ok {
		return 0, false, apierr.InvalidRequest("The %s position must be a non-negative decimal integer", name)
	}
	return p, true, nil
}

// stream is GET /admin/revocations/events (docs/revocation-events.md).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pos, set, err := requestedPosition(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	b, err := h.events.Bounds(ctx)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	reset := false
	switch {
	case !set:
		pos = b.Head
	case pos > b.Head:
		// A position this database never gave (it was restored, or the
		// client talked to another one): the client's state is unknown.
		reset, pos = true, b.Head
	case pos < b.Head && (b.Oldest == 0 || b.Oldest > pos+1):
		// Events after pos were flushed before the client saw them.
		reset = true
		pos = b.Head
		if b.Oldest != 0 {
			pos = b.Oldest - 1
		}
	}
	rc := http.NewResponseController(w)
	// The stream outlives the listener's write timeout.
	_ = rc.SetWriteDeadline(time.Time{})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	h.metrics.streams.Inc()
	defer h.metrics.streams.Dec()
	if reset {
		h.metrics.resets.Inc()
	}
	sw := &sse{w: w, rc: rc}
	sw.frame("hello", pos, fmt.Appendf(nil, `{"head":%d,"oldest":%d,"retention":%q}`, b.Head, b.Oldest, h.opts.Retention.String()))
	if reset {
		sw.frame("reset", pos, fmt.Appendf(nil, `{"head":%d,"oldest":%d}`, b.Head, b.Oldest))
	}
	if err := sw.flush(); err != nil {
		return
	}
	keepalive := time.NewTimer(h.opts.Keepalive)
	defer keepalive.Stop()
	for {
		evs, covered, wake := h.since(pos)
		if !covered {
			// Behind the poller's buffer (or the poller has not read yet):
			// the backlog comes from the database.
			if evs, err = h.events.List(ctx, pos, h.opts.BatchSize); err != nil {
				if ctx.Err() == nil {
					h.log.Warn("reading revocation events for a stream", zap.Error(err))
				}
				return
			}
			if len(evs) > 0 && evs[0].Position > pos+1 {
				// Flushed while this stream lagged behind: as at
				// connection, the client must drop what it cached.
				h.metrics.resets.Inc()
				h.mu.Lock()
				head := max(h.head, evs[len(evs)-1].Position)
				h.mu.Unlock()
				sw.frame("reset", pos, fmt.Appendf(nil, `{"head":%d,"oldest":%d}`, head, evs[0].Position))
			}
		}
		for _, e := range evs {
			sw.frame("revocation", e.Position, frameData(e))
			pos = e.Position
		}
		h.metrics.sent.Add(float64(len(evs)))
		if len(evs) > 0 {
			if err := sw.flush(); err != nil {
				return
			}
			keepalive.Reset(h.opts.Keepalive)
			if !covered {
				continue // more backlog, maybe
			}
		} else if !covered {
			// Caught up with the database but the poller is behind it:
			// wait for the poller.
			h.mu.Lock()
			caughtUp := h.started && pos <= h.head
			h.mu.Unlock()
			if !caughtUp {
				select {
				case <-ctx.Done():
					return
				case <-h.done:
					return
				case <-time.After(h.opts.PollInterval):
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-wake:
		case <-keepalive.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			if err := sw.flush(); err != nil {
				return
			}
			keepalive.Reset(h.opts.Keepalive)
		}
	}
}

// sse writes Server-Sent Events frames (HTML Living Standard §9.2.5).
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (s *sse) frame(event string, id int64, data []byte) {
	if s.err != nil {
		return
	}
	buf := make([]byte, 0, len(data)+64)
	buf = fmt.Appendf(buf, "id: %d\nevent: %s\ndata: ", id, event)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, s.err = s.w.Write(buf)
}

func (s *sse) flush() error {
	if s.err != nil {
		return s.err
	}
	return s.rc.Flush()
}
