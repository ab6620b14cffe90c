package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// trustStore keeps RFC 7523 trust relationships (Hydra's trust API).
type trustStore struct{ s *Store }

var _ storage.TrustStore = trustStore{}

const trustCols = "id, issuer, subject, allow_any_subject, scope, key_set, key_id, public_key, expires_at, created_at"

func scanTrust(row interface{ Scan(...any) error }) (storage.TrustedIssuer, error) {
	var t storage.TrustedIssuer
	var scope, pub string
	var exp, created int64
	if err := row.Scan(&t.ID, &t.Issuer, &t.Subject, &t.AllowAnySubject, &scope, &t.KeySet, &t.KeyID, &pub, &exp, &created); err != nil {
		return t, mapErr(err)
	}
	t.Scope, t.PublicKey = fromJSONList(scope), fromDoc(pub)
	t.ExpiresAt, t.CreatedAt = fromTS(exp), fromTS(created)
	return t, nil
}

func (tr trustStore) Create(ctx context.Context, t storage.TrustedIssuer) error {
	_, err := tr.s.exec(ctx, "INSERT INTO trusted_issuers ("+trustCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Issuer, t.Subject, t.AllowAnySubject, jsonList(t.Scope), t.KeySet, t.KeyID, doc(t.PublicKey), ts(t.ExpiresAt), ts(t.CreatedAt))
	return err
}

func (tr trustStore) Get(ctx context.Context, id string) (storage.TrustedIssuer, error) {
	return scanTrust(tr.s.queryRow(ctx, "SELECT "+trustCols+" FROM trusted_issuers WHERE id = ?", id))
}

func (tr trustStore) list(ctx context.Context, where string, args ...any) ([]storage.TrustedIssuer, error) {
	rows, err := tr.s.db.QueryContext(ctx, tr.s.q("SELECT "+trustCols+" FROM trusted_issuers"+where+" ORDER BY created_at, id"), args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []storage.TrustedIssuer
	for rows.Next() {
		t, err := scanTrust(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

func (tr trustStore) List(ctx context.Context, issuer string) ([]storage.TrustedIssuer, error) {
	if issuer == "" {
		return tr.list(ctx, "")
	}
	return tr.list(ctx, " WHERE issuer = ?", issuer)
}

func (tr trustStore) Delete(ctx context.Context, id string) error {
	return affectedOne(tr.s.exec(ctx, "DELETE FROM trusted_issuers WHERE id = ?", id))
}

func (tr trustStore) Find(ctx context.Context, issuer, subject string, now time.Time) ([]storage.TrustedIssuer, error) {
	return tr.list(ctx, " WHERE issuer = ? AND (subject = ? OR allow_any_subject = ?) AND (expires_at = 0 OR expires_at > ?)",
		issuer, subject, true, ts(now))
}
