package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// nonceStore remembers used one-time values (assertion jti) until they
// expire, so a replay inside the lifetime is refused.
type nonceStore struct{ s *Store }

var _ storage.NonceStore = nonceStore{}

func (ns nonceStore) Use(ctx context.Context, key string, expiresAt time.Time) error {
	err := ns.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// An expired entry may be reused: drop it first.
		if _, err := tx.ExecContext(ctx, ns.s.q("DELETE FROM nonces WHERE nonce_key = ? AND expires_at > 0 AND expires_at <= ?"), key, ts(ns.s.now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, ns.s.q("INSERT INTO nonces (nonce_key, expires_at) VALUES (?, ?)"), key, ts(expiresAt))
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return storage.ErrAlreadyExists
	}
	return err
}

func (ns nonceStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return ns.s.deleteExpired(ctx, "nonces", "nonce_key", before, limit)
}
