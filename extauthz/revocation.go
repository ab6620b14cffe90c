package extauthz

import (
	"container/heap"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RevocationEvent is one event of the issuer's revocation stream
// (docs/revocation-events.md, "Event data"). Selectors the kind does not
// use are empty.
type RevocationEvent struct {
	Position     int64     `json:"position"`
	Kind         string    `json:"kind"`
	Time         time.Time `json:"time"`
	Until        time.Time `json:"until"`
	JTI          []string  `json:"jti"`
	Sub          string    `json:"sub"`
	ClientID     string    `json:"client_id"`
	SID          string    `json:"sid"`
	KID          string    `json:"kid"`
	IssuedBefore time.Time `json:"issued_before"`
	Reason       string    `json:"reason"`
}

var errBadEvent = errors.New("revocation event is not a JSON object with a position")

// parseRevocationEvent decodes an event's data line. Unknown members are
// ignored (forward compatible); a kind it does not know is applied by the
// same matching rule.
func parseRevocationEvent(data []byte) (RevocationEvent, error) {
	var ev RevocationEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return RevocationEvent{}, errBadEvent
	}
	if ev.Position <= 0 {
		return RevocationEvent{}, errBadEvent
	}
	ev.JTI = slices.DeleteFunc(ev.JTI, func(s string) bool { return s == "" })
	return ev, nil
}

// hasSelector reports whether the event can match any token: one with no
// selector matches nothing (the contract's rule).
func (ev *RevocationEvent) hasSelector() bool {
	return len(ev.JTI) > 0 || ev.Sub != "" || ev.ClientID != "" || ev.SID != "" || ev.KID != "" || !ev.IssuedBefore.IsZero()
}

// revocationKeys are the token identifiers the matching rule reads that
// Identity does not already hold (Subject and ClientID). Kept with every
// identity, cached or not, whatever claims the rules read.
type revocationKeys struct {
	jti, sid string
	kid      string // JWS header kid; "" for opaque tokens
	iat      time.Time
	hasIAT   bool
}

// denyEntry is one remembered event: its selectors, kept until until.
type denyEntry struct {
	jti                     []string
	sub, clientID, sid, kid string
	issuedBefore            time.Time
	until                   time.Time
	heapIdx                 int
	slots                   int // index slots it holds: its share of the bound
}

// matches applies the contract's rule: every selector the event carries
// matches the token. A token without iat is taken as issued before any
// time (fail closed).
func (e *denyEntry) matches(id *Identity) bool {
	if len(e.jti) > 0 && (id.rev.jti == "" || !slices.Contains(e.jti, id.rev.jti)) {
		return false
	}
	if e.sub != "" && e.sub != id.Subject {
		return false
	}
	if e.clientID != "" && e.clientID != id.ClientID {
		return false
	}
	if e.sid != "" && e.sid != id.rev.sid {
		return false
	}
	if e.kid != "" && e.kid != id.rev.kid {
		return false
	}
	if !e.issuedBefore.IsZero() && id.rev.hasIAT && !id.rev.iat.Before(e.issuedBefore) {
		return false
	}
	return true
}

// denySet holds the revocation events that may still affect a token,
// indexed by their most selective member, each until its until. It is
// bounded by max index slots (one per jti, one per other event): when an
// event does not fit, the entries that expire first are evicted and
// onOverflow is called (the authorizer drops its decision cache; the
// evicted tokens fall back to the TTL/expiry semantics of a sidecar
// without the stream).
//
// match is on the request path: with nothing remembered it is one atomic
// load; otherwise a read lock and up to five map lookups.
type denySet struct {
	issuer string // only this issuer's tokens are matched
	max    int

	n atomic.Int64 // slots in use, read without the lock

	mu       sync.RWMutex
	byJTI    map[string][]*denyEntry
	bySID    map[string][]*denyEntry
	byKID    map[string][]*denyEntry
	byClient map[string][]*denyEntry
	bySub    map[string][]*denyEntry
	global   []*denyEntry // issued_before alone
	expiry   entryHeap
}

func newDenySet(issuer string, max int) *denySet {
	d := &denySet{issuer: issuer, max: max}
	d.resetLocked()
	return d
}

func (d *denySet) resetLocked() {
	d.byJTI = map[string][]*denyEntry{}
	d.bySID = map[string][]*denyEntry{}
	d.byKID = map[string][]*denyEntry{}
	d.byClient = map[string][]*denyEntry{}
	d.bySub = map[string][]*denyEntry{}
	d.global = nil
	d.expiry = nil
	d.n.Store(0)
}

// size is the number of index slots in use.
func (d *denySet) size() int { return int(d.n.Load()) }

// match reports whether a remembered event revokes the token id.
func (d *denySet) match(id *Identity) bool {
	if d.n.Load() == 0 || id.Issuer != d.issuer {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, bucket := range [...][]*denyEntry{
		d.lookup(d.byJTI, id.rev.jti), d.lookup(d.bySID, id.rev.sid), d.lookup(d.byKID, id.rev.kid),
		d.lookup(d.byClient, id.ClientID), d.lookup(d.bySub, id.Subject), d.global,
	} {
		for _, e := range bucket {
			if e.matches(id) {
				return true
			}
		}
	}
	return false
}

func (d *denySet) lookup(m map[string][]*denyEntry, k string) []*denyEntry {
	if k == "" || len(m) == 0 {
		return nil
	}
	return m[k]
}

// add remembers an event until its until (plus the tolerated clock skew,
// as tokens are accepted that long past exp). It returns how many slots
// were evicted to make room (0 when it fit).
func (d *denySet) add(ev RevocationEvent, keepUntil time.Time, now time.Time) (evicted int) {
	if !ev.hasSelector() || !keepUntil.After(now) {
		return 0
	}
	e := &denyEntry{jti: ev.JTI, sub: ev.Sub, clientID: ev.ClientID, sid: ev.SID, kid: ev.KID,
		issuedBefore: ev.IssuedBefore, until: keepUntil, slots: max(len(ev.JTI), 1)}
	if e.slots > d.max {
		// Larger than the whole set: keep what fits (the rest of its
		// tokens fall back to TTL semantics, as evicted ones do).
		e.jti = e.jti[:d.max]
		evicted += e.slots - d.max
		e.slots = d.max
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked(now)
	for int(d.n.Load())+e.slots > d.max && len(d.expiry) > 0 {
		old := heap.Pop(&d.expiry).(*denyEntry)
		d.unindexLocked(old)
		evicted += old.slots
	}
	switch {
	case len(e.jti) > 0:
		for _, j := range e.jti {
			d.byJTI[j] = append(d.byJTI[j], e)
		}
	case e.sid != "":
		d.bySID[e.sid] = append(d.bySID[e.sid], e)
	case e.kid != "":
		d.byKID[e.kid] = append(d.byKID[e.kid], e)
	case e.clientID != "":
		d.byClient[e.clientID] = append(d.byClient[e.clientID], e)
	case e.sub != "":
		d.bySub[e.sub] = append(d.bySub[e.sub], e)
	default:
		d.global = append(d.global, e)
	}
	heap.Push(&d.expiry, e)
	d.n.Add(int64(e.slots))
	return evicted
}

// expire forgets the entries whose until has passed.
func (d *denySet) expire(now time.Time) {
	if d.n.Load() == 0 {
		return
	}
	d.mu.Lock()
	d.expireLocked(now)
	d.mu.Unlock()
}

func (d *denySet) expireLocked(now time.Time) {
	for len(d.expiry) > 0 && !d.expiry[0].until.After(now) {
		d.unindexLocked(heap.Pop(&d.expiry).(*denyEntry))
	}
}

// unindexLocked removes an entry (already off the heap) from its index.
func (d *denySet) unindexLocked(e *denyEntry) {
	drop := func(m map[string][]*denyEntry, k string) {
		b := slices.DeleteFunc(m[k], func(x *denyEntry) bool { return x == e })
		if len(b) == 0 {
			delete(m, k)
		} else {
			m[k] = b
		}
	}
	switch {
	case len(e.jti) > 0:
		for _, j := range e.jti {
			drop(d.byJTI, j)
		}
	case e.sid != "":
		drop(d.bySID, e.sid)
	case e.kid != "":
		drop(d.byKID, e.kid)
	case e.clientID != "":
		drop(d.byClient, e.clientID)
	case e.sub != "":
		drop(d.bySub, e.sub)
	default:
		d.global = slices.DeleteFunc(d.global, func(x *denyEntry) bool { return x == e })
	}
	d.n.Add(-int64(e.slots))
}

// entryHeap orders entries by until (container/heap).
type entryHeap []*denyEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*denyEntry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
