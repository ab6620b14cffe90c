package memory

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// nonceStore remembers used one-time values until they expire by the
// store's clock.
type nonceStore struct{ s *Store }

var _ storage.NonceStore = nonceStore{}

// Use refuses a key whose entry has no expiry or has not reached it.
func (ns nonceStore) Use(ctx context.Context, key string, expiresAt time.Time) error {
	unlock, err := ns.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if exp, ok := ns.s.nonces[key]; ok && (exp <= 0 || exp > micros(ns.s.now())) {
		return storage.ErrAlreadyExists
	}
	ns.s.nonces[key] = micros(expiresAt)
	return nil
}

func (ns nonceStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, ns.s, ns.s.nonces, storage.FromUnixMicro, before, limit)
}
