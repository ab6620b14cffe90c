package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// flowStore keeps login, consent and logout requests (challenges).
type flowStore struct{ s *Store }

var _ storage.FlowStore = flowStore{}

const flowCols = "kind, id, client_id, subject, session_id, status, created_at, expires_at, data"

func scanFlow(row interface{ Scan(...any) error }) (storage.Flow, error) {
	var f storage.Flow
	var kind, data string
	var created, expires int64
	if err := row.Scan(&kind, &f.ID, &f.ClientID, &f.Subject, &f.SessionID, &f.Status, &created, &expires, &data); err != nil {
		return f, mapErr(err)
	}
	f.Kind = storage.FlowKind(kind)
	f.CreatedAt, f.ExpiresAt = fromTS(created), fromTS(expires)
	f.Data = fromDoc(data)
	return f, nil
}

func (fs flowStore) Create(ctx context.Context, f storage.Flow) error {
	_, err := fs.s.exec(ctx, "INSERT INTO flows ("+flowCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		string(f.Kind), f.ID, f.ClientID, f.Subject, f.SessionID, f.Status, ts(f.CreatedAt), ts(f.ExpiresAt), doc(f.Data))
	return err
}

func (fs flowStore) Get(ctx context.Context, kind storage.FlowKind, id string) (storage.Flow, error) {
	return scanFlow(fs.s.queryRow(ctx, "SELECT "+flowCols+" FROM flows WHERE kind = ? AND id = ?", string(kind), id))
}

func (fs flowStore) Update(ctx context.Context, kind storage.FlowKind, id string, fn func(*storage.Flow) error) (storage.Flow, error) {
	var out storage.Flow
	err := fs.s.tx(ctx, func(tx *sql.Tx) error {
		f, err := scanFlow(tx.QueryRowContext(ctx, fs.s.q("SELECT "+flowCols+" FROM flows WHERE kind = ? AND id = ?"+fs.s.forUpdate()), string(kind), id))
		if err != nil {
			return err
		}
		if err := fn(&f); err != nil {
			return err
		}
		f.Kind, f.ID = kind, id
		_, err = tx.ExecContext(ctx, fs.s.q("UPDATE flows SET client_id = ?, subject = ?, session_id = ?, status = ?, created_at = ?, expires_at = ?, data = ? WHERE kind = ? AND id = ?"),
			f.ClientID, f.Subject, f.SessionID, f.Status, ts(f.CreatedAt), ts(f.ExpiresAt), doc(f.Data), string(kind), id)
		out = f
		return err
	})
	return out, err
}

func (fs flowStore) Delete(ctx context.Context, kind storage.FlowKind, id string) error {
	return affectedOne(fs.s.exec(ctx, "DELETE FROM flows WHERE kind = ? AND id = ?", string(kind), id))
}

func (fs flowStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return fs.s.deleteExpired(ctx, "flows", "kind, id", before, limit)
}
