package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type loginStore struct{ *byID[storage.LoginSession] }

var _ storage.LoginSessionStore = loginStore{}

// ListBySubject returns the subject's sessions, newest authentication
// first (then by id).
func (ls loginStore) ListBySubject(ctx context.Context, subject string) ([]storage.LoginSession, error) {
	out, err := selectRows(ctx, ls.s, ls.rows, func(l *storage.LoginSession) bool { return l.Subject == subject }, copyLogin)
	slices.SortFunc(out, func(a, b storage.LoginSession) int {
		return cmp.Or(b.AuthenticatedAt.Compare(a.AuthenticatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

func (ls loginStore) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	return ls.deleteRecording(ctx, id, ev)
}

func (ls loginStore) DeleteBySubject(ctx context.Context, subject string) (int64, error) {
	return deleteRows(ctx, ls.s, ls.rows, func(l *storage.LoginSession) bool { return l.Subject == subject })
}

func (ls loginStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, ls.s, ls.rows, func(l storage.LoginSession) time.Time { return l.ExpiresAt }, before, limit)
}

type consentStore struct{ *byID[storage.ConsentSession] }

var _ storage.ConsentSessionStore = consentStore{}

func consentMatch(f storage.ConsentFilter) func(*storage.ConsentSession) bool {
	return func(c *storage.ConsentSession) bool {
		return (f.ID == "" || c.ID == f.ID) && (f.Subject == "" || c.Subject == f.Subject) && (f.ClientID == "" || c.ClientID == f.ClientID) &&
			(f.LoginSessionID == "" || c.LoginSessionID == f.LoginSessionID)
	}
}

// List returns the matching sessions, newest HandledAt first (then by id).
func (cs consentStore) List(ctx context.Context, f storage.ConsentFilter) ([]storage.ConsentSession, error) {
	out, err := selectRows(ctx, cs.s, cs.rows, consentMatch(f), copyConsent)
	slices.SortFunc(out, func(a, b storage.ConsentSession) int {
		return cmp.Or(b.HandledAt.Compare(a.HandledAt), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

// Revoke with an empty filter removes nothing.
func (cs consentStore) Revoke(ctx context.Context, f storage.ConsentFilter, ev storage.ConsentRevocationFunc) (int64, error) {
	if f == (storage.ConsentFilter{}) {
		return 0, nil
	}
	s := cs.s
	unlock, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	match := consentMatch(f)
	var removed []storage.ConsentSession
	for _, c := range cs.rows {
		if match(&c) {
			removed = append(removed, copyConsent(c))
		}
	}
	if len(removed) == 0 {
		return 0, nil
	}
	slices.SortFunc(removed, func(a, b storage.ConsentSession) int {
		return cmp.Or(b.HandledAt.Compare(a.HandledAt), strings.Compare(a.ID, b.ID))
	})
	tokens := tokenStore{&s.tokens}
	var keys []tokenKey
	var revoked []storage.Token
	for _, c := range removed {
		k, t := tokens.active(func(t *storage.Token) bool { return t.ClientID == c.ClientID && t.RequestID == c.ID })
		keys, revoked = append(keys, k...), append(revoked, t...)
	}
	var e *storage.RevocationEvent
	if ev != nil {
		if e, err = ev(removed, revoked); err != nil {
			return 0, err
		}
	}
	for _, c := range removed {
		delete(cs.rows, c.ID)
	}
	tokens.deactivate(keys)
	if e != nil {
		s.record(*e)
	}
	return int64(len(removed)), nil
}

func (cs consentStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, cs.s, cs.rows, func(c storage.ConsentSession) time.Time { return c.ExpiresAt }, before, limit)
}
