package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type trustStore struct{ *byID[storage.TrustedIssuer] }

var _ storage.TrustStore = trustStore{}

// Create refuses a taken id, and a taken (issuer, subject, key id) as the
// SQL backends' unique constraint does.
func (tr trustStore) Create(ctx context.Context, t storage.TrustedIssuer) error {
	unlock, err := tr.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for _, o := range tr.rows {
		if o.ID == t.ID || (o.Issuer == t.Issuer && o.Subject == t.Subject && o.KeyID == t.KeyID) {
			return storage.ErrAlreadyExists
		}
	}
	tr.rows[t.ID] = copyTrust(t)
	return nil
}

// list returns the grants match selects, oldest first (then by id).
func (tr trustStore) list(ctx context.Context, match func(*storage.TrustedIssuer) bool) ([]storage.TrustedIssuer, error) {
	out, err := selectRows(ctx, tr.s, tr.rows, match, copyTrust)
	slices.SortFunc(out, func(a, b storage.TrustedIssuer) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, err
}

func (tr trustStore) List(ctx context.Context, issuer string) ([]storage.TrustedIssuer, error) {
	return tr.list(ctx, func(t *storage.TrustedIssuer) bool { return issuer == "" || t.Issuer == issuer })
}

func (tr trustStore) Find(ctx context.Context, issuer, subject string, now time.Time) ([]storage.TrustedIssuer, error) {
	at := micros(now)
	return tr.list(ctx, func(t *storage.TrustedIssuer) bool {
		exp := micros(t.ExpiresAt)
		return t.Issuer == issuer && (t.Subject == subject || t.AllowAnySubject) && (exp == 0 || exp > at)
	})
}
