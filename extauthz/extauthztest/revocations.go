package extauthztest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RevocationStream is a scripted issuer revocation event stream
// (docs/revocation-events.md) on a loopback httptest server: GET
// /admin/revocations/events serves hello, reset when the requested
// position is older than what it retains, the retained events after the
// position, and then every event published while connected.
type RevocationStream struct {
	Server *httptest.Server
	// URL is the events endpoint.
	URL string
	// Now dates published events (default time.Now).
	Now func() time.Time

	// Connects counts the requests; LastEventIDs records each one's
	// Last-Event-ID ("" when absent).
	Connects atomic.Int64

	mu           sync.Mutex
	events       []map[string]any // position i+1
	oldest       int64            // positions below are flushed
	wake         chan struct{}    // closed when an event is published
	kill         chan struct{}    // closed to drop every connection
	down         bool
	lastEventIDs []string
}

// NewRevocationStream starts a scripted stream.
func NewRevocationStream() *RevocationStream {
	s := &RevocationStream{Now: time.Now, wake: make(chan struct{}), kill: make(chan struct{}), oldest: 1}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/revocations/events", s.serve)
	s.Server = httptest.NewServer(mux)
	s.URL = s.Server.URL + "/admin/revocations/events"
	return s
}

// Close stops the server.
func (s *RevocationStream) Close() {
	s.Drop()
	s.Server.Close()
}

// Publish appends an event (its members as in the contract's event data;
// position and time are filled in) and returns its position.
func (s *RevocationStream) Publish(ev map[string]any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(map[string]any, len(ev)+2)
	for k, v := range ev {
		c[k] = v
	}
	pos := int64(len(s.events) + 1)
	c["position"] = pos
	if _, ok := c["time"]; !ok {
		c["time"] = s.Now().UTC().Format(time.RFC3339Nano)
	}
	s.events = append(s.events, c)
	close(s.wake)
	s.wake = make(chan struct{})
	return pos
}

// PublishRaw appends a revocation frame whose data is data as given (a
// malformed event) and returns its position.
func (s *RevocationStream) PublishRaw(data string) int64 {
	return s.Publish(map[string]any{rawData: data})
}

// rawData marks an event PublishRaw sends as is.
const rawData = "\x00raw"

// Head is the last position published.
func (s *RevocationStream) Head() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.events))
}

// FlushThrough forgets the events up to and including pos, as the
// issuer's janitor does after the retention.
func (s *RevocationStream) FlushThrough(pos int64) {
	s.mu.Lock()
	s.oldest = pos + 1
	s.mu.Unlock()
}

// Drop ends every open connection (the client reconnects).
func (s *RevocationStream) Drop() {
	s.mu.Lock()
	close(s.kill)
	s.kill = make(chan struct{})
	s.mu.Unlock()
}

// SetDown makes the endpoint answer 503 (and drops open connections).
func (s *RevocationStream) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.Drop()
	}
}

// LastEventIDs returns the Last-Event-ID of each request so far.
func (s *RevocationStream) LastEventIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastEventIDs...)
}

func (s *RevocationStream) serve(w http.ResponseWriter, r *http.Request) {
	s.Connects.Add(1)
	s.mu.Lock()
	down := s.down
	last := r.Header.Get("Last-Event-ID")
	s.lastEventIDs = append(s.lastEventIDs, last)
	head, oldest, kill := int64(len(s.events)), s.oldest, s.kill
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	from := head
	if last != "" {
		p, err := strconv.ParseInt(last, 10, 64)
		if err != nil || p < 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"Last-Event-ID is not a position."}`))
			return
		}
		from = p
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fl := w.(http.Flusher)
	fmt.Fprintf(w, "id: %d\nevent: hello\ndata: {\"head\":%d,\"oldest\":%d,\"retention\":\"24h0m0s\"}\n\n", from, head, oldest)
	if from+1 < oldest {
		fmt.Fprintf(w, "id: %d\nevent: reset\ndata: {\"head\":%d,\"oldest\":%d}\n\n", oldest-1, head, oldest)
		from = oldest - 1
	}
	fl.Flush()
	for {
		s.mu.Lock()
		pending := []map[string]any{}
		if from < int64(len(s.events)) {
			pending = append(pending, s.events[from:]...)
		}
		wake := s.wake
		s.mu.Unlock()
		for _, ev := range pending {
			b, _ := json.Marshal(ev)
			if raw, ok := ev[rawData].(string); ok {
				b = []byte(raw)
			}
			fmt.Fprintf(w, "id: %d\nevent: revocation\ndata: %s\n\n", ev["position"], b)
			from = ev["position"].(int64)
		}
		fl.Flush()
		select {
		case <-wake:
		case <-kill:
			return
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			fmt.Fprint(w, ": keepalive\n\n")
		}
	}
}
