package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// tokenStore keeps tokens by kind and signature: for opaque tokens the
// signature is all that is stored, never the token itself.
type tokenStore struct{ s *Store }

var _ storage.TokenStore = tokenStore{}

const tokenCols = "kind, signature, request_id, client_id, subject, active, issued_at, expires_at, data"

func scanToken(row interface{ Scan(...any) error }) (storage.Token, error) {
	var t storage.Token
	var kind, data string
	var issued, expires int64
	if err := row.Scan(&kind, &t.Signature, &t.RequestID, &t.ClientID, &t.Subject, &t.Active, &issued, &expires, &data); err != nil {
		return t, mapErr(err)
	}
	t.Kind = storage.TokenKind(kind)
	t.IssuedAt, t.ExpiresAt = fromTS(issued), fromTS(expires)
	t.Data = fromDoc(data)
	return t, nil
}

func (ts_ tokenStore) Create(ctx context.Context, t storage.Token) error {
	_, err := ts_.s.exec(ctx, insertToken, tokenArgs(&t)...)
	return err
}

// tokenArgs are insertToken's arguments (tokenCols' order).
func tokenArgs(t *storage.Token) []any {
	return []any{string(t.Kind), t.Signature, t.RequestID, t.ClientID, t.Subject, t.Active, ts(t.IssuedAt), ts(t.ExpiresAt), doc(t.Data)}
}

func (ts_ tokenStore) Get(ctx context.Context, kind storage.TokenKind, sig string) (storage.Token, error) {
	return scanToken(ts_.s.queryRow(ctx, "SELECT "+tokenCols+" FROM tokens WHERE kind = ? AND signature = ?", string(kind), sig))
}

func (ts_ tokenStore) Update(ctx context.Context, kind storage.TokenKind, sig string, fn func(*storage.Token) error) (storage.Token, error) {
	return ts_.Redeem(ctx, kind, sig, fn, "", nil)
}

const (
	selectTokenForUpdate = "SELECT " + tokenCols + " FROM tokens WHERE kind = ? AND signature = ?"
	updateToken          = "UPDATE tokens SET request_id = ?, client_id = ?, subject = ?, active = ?, issued_at = ?, expires_at = ?, data = ? WHERE kind = ? AND signature = ?"
	// updateTokenState sets only columns no index covers. SQLite rewrites
	// the entries of every index whose columns an UPDATE sets, changed or
	// not, so marking a code or refresh token used through updateToken
	// deleted and re-inserted its entries in two indexes (and dirtied
	// their pages, more WAL frames per commit).
	updateTokenState    = "UPDATE tokens SET subject = ?, active = ?, issued_at = ?, data = ? WHERE kind = ? AND signature = ?"
	revokeRequestOthers = "UPDATE tokens SET active = ? WHERE client_id = ? AND request_id = ? AND NOT (kind = ? AND signature = ?)"
	insertToken         = "INSERT INTO tokens (" + tokenCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

func (ts_ tokenStore) Redeem(ctx context.Context, kind storage.TokenKind, sig string, fn func(*storage.Token) error, revokeRequest string, issue []storage.Token) (storage.Token, error) {
	s := ts_.s
	sel := selectTokenForUpdate + s.forUpdate()
	s.prepare(ctx, sel, updateToken, updateTokenState, revokeRequestOthers, insertToken)
	var out storage.Token
	err := s.tx(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(s.txStmt(ctx, tx, sel).QueryRowContext(ctx, string(kind), sig))
		if err != nil {
			return err
		}
		before := t
		if err := fn(&t); err != nil {
			return err
		}
		t.Kind, t.Signature = kind, sig
		if t.RequestID == before.RequestID && t.ClientID == before.ClientID && t.ExpiresAt.Equal(before.ExpiresAt) {
			_, err = s.txStmt(ctx, tx, updateTokenState).ExecContext(ctx, t.Subject, t.Active, ts(t.IssuedAt), doc(t.Data), string(kind), sig)
		} else {
			_, err = s.txStmt(ctx, tx, updateToken).ExecContext(ctx, t.RequestID, t.ClientID, t.Subject, t.Active, ts(t.IssuedAt), ts(t.ExpiresAt), doc(t.Data), string(kind), sig)
		}
		if err != nil {
			return err
		}
		if revokeRequest != "" {
			if _, err := s.txStmt(ctx, tx, revokeRequestOthers).ExecContext(ctx, false, t.ClientID, revokeRequest, string(kind), sig); err != nil {
				return err
			}
		}
		for _, n := range issue {
			if _, err := s.txStmt(ctx, tx, insertToken).ExecContext(ctx, tokenArgs(&n)...); err != nil {
				return err
			}
		}
		out = t
		return nil
	})
	return out, err
}

func (ts_ tokenStore) Delete(ctx context.Context, kind storage.TokenKind, sig string) error {
	return affectedOne(ts_.s.exec(ctx, "DELETE FROM tokens WHERE kind = ? AND signature = ?", string(kind), sig))
}

func (ts_ tokenStore) RevokeRequest(ctx context.Context, clientID, requestID string) error {
	_, err := ts_.s.exec(ctx, "UPDATE tokens SET active = ? WHERE client_id = ? AND request_id = ?", false, clientID, requestID)
	return err
}

func (ts_ tokenStore) RevokeClient(ctx context.Context, clientID string) (int64, error) {
	res, err := ts_.s.exec(ctx, "UPDATE tokens SET active = ? WHERE client_id = ? AND active = ?", false, clientID, true)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (ts_ tokenStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return ts_.s.deleteExpired(ctx, "tokens", "kind, signature", before, limit)
}
