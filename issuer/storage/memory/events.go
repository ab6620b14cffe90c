package memory

import (
	"context"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type eventStore struct{ s *Store }

var _ storage.RevocationEventStore = eventStore{}

func (s *Store) RevocationEvents() storage.RevocationEventStore { return eventStore{s} }

// record appends evs to the event log with the next positions, as the
// SQL backends do (an event without Until gets the latest expiry of any
// stored access token, or its Time). Called under the write lock.
func (s *Store) record(evs ...storage.RevocationEvent) {
	for _, e := range evs {
		s.head++
		e.Position = s.head
		e.Time, e.Until, e.Data = stored(e.Time), stored(e.Until), doc(e.Data)
		if e.Until.IsZero() {
			latest := micros(e.Time)
			for _, t := range s.tokens.rows {
				if t.Kind == storage.KindAccessToken {
					latest = max(latest, micros(t.ExpiresAt))
				}
			}
			e.Until = storage.FromUnixMicro(latest)
		}
		s.events = append(s.events, e)
	}
}

// revoked builds the event of a token revocation with ev (may be nil)
// and, unless ev fails, applies the change and records the event. Called
// under the write lock.
func (s *Store) revoked(ev storage.RevocationFunc, rows []storage.Token, apply func()) error {
	var e *storage.RevocationEvent
	if ev != nil {
		var err error
		if e, err = ev(rows); err != nil {
			return err
		}
	}
	apply()
	if e != nil {
		s.record(*e)
	}
	return nil
}

func copyEvent(e storage.RevocationEvent) storage.RevocationEvent {
	e.Data = doc(e.Data)
	return e
}

func (es eventStore) List(ctx context.Context, after int64, limit int) ([]storage.RevocationEvent, error) {
	unlock, err := es.s.rlock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if limit <= 0 {
		limit = 100
	}
	i, _ := slices.BinarySearchFunc(es.s.events, after+1, func(e storage.RevocationEvent, p int64) int {
		switch {
		case e.Position < p:
			return -1
		case e.Position > p:
			return 1
		}
		return 0
	})
	var out []storage.RevocationEvent
	for _, e := range es.s.events[i:min(len(es.s.events), i+limit)] {
		out = append(out, copyEvent(e))
	}
	return out, nil
}

func (es eventStore) Bounds(ctx context.Context) (storage.EventBounds, error) {
	unlock, err := es.s.rlock(ctx)
	if err != nil {
		return storage.EventBounds{}, err
	}
	defer unlock()
	b := storage.EventBounds{Head: es.s.head}
	if len(es.s.events) > 0 {
		b.Oldest = es.s.events[0].Position
	}
	return b, nil
}

// FlushExpired deletes the oldest events recorded before `before`.
func (es eventStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	unlock, err := es.s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	limit, cutoff := storage.FlushLimit(limit), micros(before)
	keep := es.s.events[:0]
	var n int64
	for _, e := range es.s.events {
		if n < int64(limit) && micros(e.Time) < cutoff {
			n++
			continue
		}
		keep = append(keep, e)
	}
	clear(es.s.events[len(keep):])
	es.s.events = keep
	return n, nil
}
