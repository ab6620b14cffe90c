// Package revocation is the issuer side of the revocation event stream
// (docs/revocation-events.md): the events the revoking packages record in
// the database with their changes (NewEvent and the Selectors of each
// kind), and the admin endpoint that streams them to the gateways as
// Server-Sent Events (Handler), fed by one poller per process.
package revocation

import (
	"encoding/json"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The event kinds (docs/revocation-events.md, "Event data").
const (
	KindToken   = "token"
	KindConsent = "consent"
	KindSession = "session"
	KindClient  = "client"
	KindKey     = "key"
)

// The reasons of a client event.
const (
	ReasonDeleted       = "deleted"
	ReasonSecretRotated = "secret_rotated"
)

// Selectors are the members of an event that select the tokens it
// revokes: a token is revoked when every selector present matches it.
type Selectors struct {
	JTI          []string   `json:"jti,omitempty"`
	Sub          string     `json:"sub,omitempty"`
	ClientID     string     `json:"client_id,omitempty"`
	SID          string     `json:"sid,omitempty"`
	KID          string     `json:"kid,omitempty"`
	IssuedBefore *time.Time `json:"issued_before,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

// NewEvent is the event of kind raised at now with the selectors s. A zero
// until lets the storage backend bound it by the latest expiry of the
// stored access tokens (storage.RevocationEvent.Until).
func NewEvent(kind string, now, until time.Time, s Selectors) *storage.RevocationEvent {
	if s.IssuedBefore != nil {
		t := s.IssuedBefore.UTC()
		s.IssuedBefore = &t
	}
	data, err := json.Marshal(s)
	if err != nil { // a struct of strings and times always marshals
		panic(err)
	}
	return &storage.RevocationEvent{Kind: kind, Time: now.UTC(), Until: until, Data: data}
}

// Before is a pointer to t, for Selectors.IssuedBefore: the storage
// backends keep microseconds, so t is truncated to them here, so that the
// event says the same before and after it is stored.
func Before(t time.Time) *time.Time {
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

// frame is the data of an SSE revocation frame: the event's position,
// kind and times, then its selectors.
type frame struct {
	Position int64     `json:"position"`
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	Until    time.Time `json:"until"`
	Selectors
}

// frameData renders e as the JSON of its frame. Selectors the issuer
// does not know (recorded by a newer version) are dropped, never the
// event.
func frameData(e storage.RevocationEvent) []byte {
	f := frame{Position: e.Position, Kind: e.Kind, Time: e.Time.UTC(), Until: e.Until.UTC()}
	_ = json.Unmarshal(e.Data, &f.Selectors)
	b, _ := json.Marshal(f)
	return b
}
