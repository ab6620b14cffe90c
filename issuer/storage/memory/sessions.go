package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type loginStore struct{ s *Store }

var _ storage.LoginSessionStore = loginStore{}

func (ls loginStore) Create(ctx context.Context, l storage.LoginSession) error {
	return create(ctx, ls.s, ls.s.logins, l.ID, l, copyLogin)
}

func (ls loginStore) Get(ctx context.Context, id string) (storage.LoginSession, error) {
	return get(ctx, ls.s, ls.s.logins, id, copyLogin)
}

func (ls loginStore) Update(ctx context.Context, id string, fn func(*storage.LoginSession) error) (storage.LoginSession, error) {
	return update(ctx, ls.s, ls.s.logins, id, copyLogin, func(l *storage.LoginSession) { l.ID = id }, fn)
}

func (ls loginStore) Delete(ctx context.Context, id string) error {
	return remove(ctx, ls.s, ls.s.logins, id)
}

// ListBySubject returns the subject's sessions, newest authentication
// first (then by id).
func (ls loginStore) ListBySubject(ctx context.Context, subject string) ([]storage.LoginSession, error) {
	out, err := selectRows(ctx, ls.s, ls.s.logins, func(l *storage.LoginSession) bool { return l.Subject == subject }, copyLogin)
	slices.SortFunc(out, func(a, b storage.LoginSession) int {
		return cmp.Or(b.AuthenticatedAt.Compare(a.AuthenticatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

func (ls loginStore) DeleteBySubject(ctx context.Context, subject string) (int64, error) {
	return deleteRows(ctx, ls.s, ls.s.logins, func(l *storage.LoginSession) bool { return l.Subject == subject })
}

func (ls loginStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, ls.s, ls.s.logins, func(l storage.LoginSession) time.Time { return l.ExpiresAt }, before, limit)
}

type consentStore struct{ s *Store }

var _ storage.ConsentSessionStore = consentStore{}

func (cs consentStore) Create(ctx context.Context, c storage.ConsentSession) error {
	return create(ctx, cs.s, cs.s.consents, c.ID, c, copyConsent)
}

func (cs consentStore) Get(ctx context.Context, id string) (storage.ConsentSession, error) {
	return get(ctx, cs.s, cs.s.consents, id, copyConsent)
}

func consentMatch(f storage.ConsentFilter) func(*storage.ConsentSession) bool {
	return func(c *storage.ConsentSession) bool {
		return (f.Subject == "" || c.Subject == f.Subject) && (f.ClientID == "" || c.ClientID == f.ClientID) &&
			(f.LoginSessionID == "" || c.LoginSessionID == f.LoginSessionID)
	}
}

// List returns the matching sessions, newest HandledAt first (then by id).
func (cs consentStore) List(ctx context.Context, f storage.ConsentFilter) ([]storage.ConsentSession, error) {
	out, err := selectRows(ctx, cs.s, cs.s.consents, consentMatch(f), copyConsent)
	slices.SortFunc(out, func(a, b storage.ConsentSession) int {
		return cmp.Or(b.HandledAt.Compare(a.HandledAt), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

// Delete with an empty filter deletes nothing.
func (cs consentStore) Delete(ctx context.Context, f storage.ConsentFilter) (int64, error) {
	if f == (storage.ConsentFilter{}) {
		return 0, nil
	}
	return deleteRows(ctx, cs.s, cs.s.consents, consentMatch(f))
}

func (cs consentStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, cs.s, cs.s.consents, func(c storage.ConsentSession) time.Time { return c.ExpiresAt }, before, limit)
}
