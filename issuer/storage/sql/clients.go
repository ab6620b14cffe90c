package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type clientStore struct{ s *Store }

var _ storage.ClientStore = clientStore{}

const clientCols = "id, secret_hash, rotated_secret_hashes, name, owner, metadata, registration_access_token_hash, created_at, updated_at"

func clientArgs(c storage.Client) []any {
	return []any{c.ID, c.SecretHash, jsonList(c.RotatedSecretHashes), c.Name, c.Owner, doc(c.Metadata),
		c.RegistrationAccessTokenHash, ts(c.CreatedAt), ts(c.UpdatedAt)}
}

func scanClient(row interface{ Scan(...any) error }) (storage.Client, error) {
	var c storage.Client
	var rotated, meta string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.SecretHash, &rotated, &c.Name, &c.Owner, &meta, &c.RegistrationAccessTokenHash, &created, &updated); err != nil {
		return c, mapErr(err)
	}
	c.RotatedSecretHashes = fromJSONList(rotated)
	c.Metadata = fromDoc(meta)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	return c, nil
}

func (cs clientStore) Create(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return fmt.Errorf("client id is empty")
	}
	_, err := cs.s.exec(ctx, "INSERT INTO clients ("+clientCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", clientArgs(c)...)
	return err
}

func (cs clientStore) Get(ctx context.Context, id string) (storage.Client, error) {
	return scanClient(cs.s.queryRow(ctx, "SELECT "+clientCols+" FROM clients WHERE id = ?", id))
}

func (cs clientStore) Update(ctx context.Context, id string, fn func(*storage.Client) error, ev func(before, after storage.Client) *storage.RevocationEvent) (storage.Client, error) {
	var out storage.Client
	err := cs.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		c, err := scanClient(tx.QueryRowContext(ctx, cs.s.q("SELECT "+clientCols+" FROM clients WHERE id = ?"+cs.s.forUpdate()), id))
		if err != nil {
			return err
		}
		before := c
		before.RotatedSecretHashes = slices.Clone(c.RotatedSecretHashes)
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id
		a := clientArgs(c)
		_, err = tx.ExecContext(ctx, cs.s.q("UPDATE clients SET secret_hash = ?, rotated_secret_hashes = ?, name = ?, owner = ?, metadata = ?, registration_access_token_hash = ?, created_at = ?, updated_at = ? WHERE id = ?"),
			append(a[1:], id)...)
		if err != nil {
			return err
		}
		out = c
		if ev != nil {
			return cs.s.recordEvent(ctx, tx, ev(before, c))
		}
		return nil
	})
	return out, err
}

func (cs clientStore) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	const del = "DELETE FROM clients WHERE id = ?"
	if ev == nil {
		return affectedOne(cs.s.exec(ctx, del, id))
	}
	return cs.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := affectedOne(tx.ExecContext(ctx, cs.s.q(del), id)); err != nil {
			return err
		}
		return cs.s.recordEvent(ctx, tx, ev)
	})
}

func (cs clientStore) List(ctx context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	query := "SELECT " + clientCols + " FROM clients WHERE id > ?"
	args := []any{f.After}
	if f.Name != "" {
		query += " AND name = ?"
		args = append(args, f.Name)
	}
	if f.Owner != "" {
		query += " AND owner = ?"
		args = append(args, f.Owner)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := cs.s.db.QueryContext(ctx, cs.s.q(query), args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// jsonList stores a string list as a JSON array ("" when empty).
func jsonList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func fromJSONList(s string) []string {
	if s == "" {
		return nil
	}
	var l []string
	if json.Unmarshal([]byte(s), &l) != nil {
		return nil
	}
	return l
}
