package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// keyStore keeps JSON Web Keys in jwks and one marker row per set in
// jwk_sets: the marker's primary key is what makes Init atomic across
// replicas (the second inserter gets a unique violation, or waits for the
// first and then gets it).
type keyStore struct{ s *Store }

var _ storage.KeyStore = keyStore{}

const keyCols = "set_id, kid, alg, key_use, public_jwk, private_encrypted, created_at"

func scanKey(row interface{ Scan(...any) error }) (storage.Key, error) {
	var k storage.Key
	var pub string
	var created int64
	if err := row.Scan(&k.Set, &k.KID, &k.Alg, &k.Use, &pub, &k.PrivateEncrypted, &created); err != nil {
		return k, mapErr(err)
	}
	k.PublicJWK = fromDoc(pub)
	k.CreatedAt = fromTS(created)
	if len(k.PrivateEncrypted) == 0 {
		k.PrivateEncrypted = nil
	}
	return k, nil
}

func (ks keyStore) insertKeys(ctx context.Context, tx *sql.Tx, keys []storage.Key) error {
	for _, k := range keys {
		if k.CreatedAt.IsZero() {
			k.CreatedAt = ks.s.now()
		}
		if _, err := tx.ExecContext(ctx, ks.s.q("INSERT INTO jwks ("+keyCols+") VALUES (?, ?, ?, ?, ?, ?, ?)"),
			k.Set, k.KID, k.Alg, k.Use, doc(k.PublicJWK), k.PrivateEncrypted, ts(k.CreatedAt)); err != nil {
			return err
		}
	}
	return nil
}

// ensureSet inserts the set's marker row unless it exists.
func (ks keyStore) ensureSet(ctx context.Context, tx *sql.Tx, set string) error {
	var n int
	if err := tx.QueryRowContext(ctx, ks.s.q("SELECT COUNT(*) FROM jwk_sets WHERE set_id = ?"), set).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, ks.s.q("INSERT INTO jwk_sets (set_id, created_at) VALUES (?, ?)"), set, ts(ks.s.now()))
	return err
}

func (ks keyStore) Add(ctx context.Context, keys ...storage.Key) error {
	return ks.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, k := range keys {
			if err := ks.ensureSet(ctx, tx, k.Set); err != nil {
				return err
			}
		}
		return ks.insertKeys(ctx, tx, keys)
	})
}

func (ks keyStore) Init(ctx context.Context, set string, keys []storage.Key) (bool, error) {
	err := ks.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, ks.s.q("INSERT INTO jwk_sets (set_id, created_at) VALUES (?, ?)"), set, ts(ks.s.now())); err != nil {
			return err
		}
		return ks.insertKeys(ctx, tx, keys)
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return false, nil
	}
	return err == nil, err
}

func (ks keyStore) List(ctx context.Context, set string) ([]storage.Key, error) {
	rows, err := ks.s.db.QueryContext(ctx, ks.s.q("SELECT "+keyCols+" FROM jwks WHERE set_id = ? ORDER BY created_at DESC, kid"), set)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := collect(rows, scanKey)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

func (ks keyStore) Get(ctx context.Context, set, kid string) (storage.Key, error) {
	return scanKey(ks.s.queryRow(ctx, "SELECT "+keyCols+" FROM jwks WHERE set_id = ? AND kid = ?", set, kid))
}

func (ks keyStore) Replace(ctx context.Context, set string, keys []storage.Key, ev storage.KeyRevocationFunc) error {
	return ks.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		old, err := ks.selectKeys(ctx, tx, ev, "set_id = ?", set)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ks.s.q("DELETE FROM jwks WHERE set_id = ?"), set); err != nil {
			return err
		}
		if err := ks.ensureSet(ctx, tx, set); err != nil {
			return err
		}
		for i := range keys {
			keys[i].Set = set
		}
		if err := ks.insertKeys(ctx, tx, keys); err != nil {
			return err
		}
		return ks.recordRemoved(ctx, tx, ev, storage.KeysRemoved(old, keys))
	})
}

func (ks keyStore) Delete(ctx context.Context, set, kid string, ev storage.KeyRevocationFunc) error {
	return ks.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		removed, err := ks.selectKeys(ctx, tx, ev, "set_id = ? AND kid = ?", set, kid)
		if err != nil {
			return err
		}
		if err := affectedOne(tx.ExecContext(ctx, ks.s.q("DELETE FROM jwks WHERE set_id = ? AND kid = ?"), set, kid)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, ks.s.q("SELECT COUNT(*) FROM jwks WHERE set_id = ?"), set).Scan(&n); err != nil {
			return err
		}
		if n == 0 { // the set is gone with its last key
			if _, err := tx.ExecContext(ctx, ks.s.q("DELETE FROM jwk_sets WHERE set_id = ?"), set); err != nil {
				return err
			}
		}
		return ks.recordRemoved(ctx, tx, ev, removed)
	})
}

func (ks keyStore) DeleteSet(ctx context.Context, set string, ev storage.KeyRevocationFunc) error {
	return ks.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		removed, err := ks.selectKeys(ctx, tx, ev, "set_id = ?", set)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ks.s.q("DELETE FROM jwks WHERE set_id = ?"), set); err != nil {
			return err
		}
		if err := affectedOne(tx.ExecContext(ctx, ks.s.q("DELETE FROM jwk_sets WHERE set_id = ?"), set)); err != nil {
			return err
		}
		return ks.recordRemoved(ctx, tx, ev, removed)
	})
}

// selectKeys reads, inside tx, the keys a removal is about to delete, when
// ev wants them.
func (ks keyStore) selectKeys(ctx context.Context, tx *sql.Tx, ev storage.KeyRevocationFunc, where string, args ...any) ([]storage.Key, error) {
	if ev == nil {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, ks.s.q("SELECT "+keyCols+" FROM jwks WHERE "+where+" ORDER BY kid"), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanKey)
}

func (ks keyStore) recordRemoved(ctx context.Context, tx *sql.Tx, ev storage.KeyRevocationFunc, removed []storage.Key) error {
	if ev == nil || len(removed) == 0 {
		return nil
	}
	return ks.s.recordEvents(ctx, tx, ev(removed)...)
}

func (ks keyStore) Sets(ctx context.Context) ([]string, error) {
	rows, err := ks.s.db.QueryContext(ctx, "SELECT set_id FROM jwk_sets ORDER BY set_id")
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, mapErr(rows.Err())
}
