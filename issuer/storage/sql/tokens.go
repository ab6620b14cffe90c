package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
	return ts_.Redeem(ctx, storage.RedeemRequest{Kind: kind, Signature: sig, Update: fn})
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

// Redeem reads the token inside its transaction on SQLite (whose writer
// connection has the pages at hand) and MySQL (a locking read), so it
// does not need r.Read there.
func (ts_ tokenStore) Redeem(ctx context.Context, r storage.RedeemRequest) (storage.Token, error) {
	s := ts_.s
	if s.dialect == DialectPostgres {
		return ts_.redeemSwap(ctx, r)
	}
	kind, sig := r.Kind, r.Signature
	sel := selectTokenForUpdate + s.forUpdate()
	s.prepare(ctx, sel, updateToken, updateTokenState, revokeRequestOthers, insertToken)
	var out storage.Token
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		t, err := scanToken(s.txStmt(ctx, tx, sel).QueryRowContext(ctx, string(kind), sig))
		if err != nil {
			return err
		}
		before := t
		if err := r.Update(&t); err != nil {
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
		if r.RevokeRequest != "" {
			if _, err := s.txStmt(ctx, tx, revokeRequestOthers).ExecContext(ctx, false, t.ClientID, r.RevokeRequest, string(kind), sig); err != nil {
				return err
			}
		}
		for _, n := range r.Issue {
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

func (ts_ tokenStore) Revoke(ctx context.Context, kind storage.TokenKind, sig string, ev storage.RevocationFunc) error {
	s := ts_.s
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := s.selectTokens(ctx, tx, "kind = ? AND signature = ?", string(kind), sig)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return storage.ErrNotFound
		}
		if !rows[0].Active {
			rows = nil
		} else if _, err := tx.ExecContext(ctx, s.q("UPDATE tokens SET active = ? WHERE kind = ? AND signature = ?"), false, string(kind), sig); err != nil {
			return err
		}
		return s.revoked(ctx, tx, ev, rows)
	})
}

func (ts_ tokenStore) RevokeRequest(ctx context.Context, clientID, requestID string, ev storage.RevocationFunc) error {
	s := ts_.s
	if ev == nil {
		_, err := s.exec(ctx, "UPDATE tokens SET active = ? WHERE client_id = ? AND request_id = ?", false, clientID, requestID)
		return err
	}
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.revokeRequest(ctx, tx, clientID, requestID, func(rows []storage.Token) error { return s.revoked(ctx, tx, ev, rows) })
	})
}

// revokeRequest deactivates the tokens of one grant inside tx and hands
// the active ones it deactivated to then.
func (s *Store) revokeRequest(ctx context.Context, tx *sql.Tx, clientID, requestID string, then func([]storage.Token) error) error {
	rows, err := s.selectTokens(ctx, tx, "client_id = ? AND request_id = ? AND active = ?", clientID, requestID, true)
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE tokens SET active = ? WHERE client_id = ? AND request_id = ? AND active = ?"), false, clientID, requestID, true); err != nil {
			return err
		}
	}
	return then(rows)
}

// revoked records the event ev builds from the tokens a revocation
// deactivated (ev may be nil).
func (s *Store) revoked(ctx context.Context, tx *sql.Tx, ev storage.RevocationFunc, rows []storage.Token) error {
	if ev == nil {
		return nil
	}
	e, err := ev(rows)
	if err != nil {
		return err
	}
	return s.recordEvent(ctx, tx, e)
}

func (ts_ tokenStore) RevokeClient(ctx context.Context, clientID string, ev storage.RevocationFunc) (int64, error) {
	s := ts_.s
	const revoke = "UPDATE tokens SET active = ? WHERE client_id = ? AND active = ?"
	if ev == nil {
		res, err := s.exec(ctx, revoke, false, clientID, true)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(revoke), false, clientID, true)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return s.revoked(ctx, tx, ev, nil)
	})
	return n, err
}

func (ts_ tokenStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return ts_.s.deleteExpired(ctx, "tokens", "kind, signature", before, limit)
}

// redeemAttempts bounds how often redeemSwap reads again a token that
// changed between its read and its write.
const redeemAttempts = 10

// redeemSwap is Redeem on PostgreSQL as an optimistic compare-and-set
// rather than a transaction with a locking read, which would cost a round
// trip per statement (BEGIN, the read, the update, the revocation, each
// insert, COMMIT): a plain read, r.Update, then one statement that updates
// the token only if it is still as read and revokes and inserts only if it
// did (redeemStatement). A token changed meanwhile (a concurrent
// redemption) is read again and r.Update runs on what is there then, so
// the loser of a race sees the winner's change, as with a locking read.
// With the caller's read (r.Read) the first attempt skips the read.
func (ts_ tokenStore) redeemSwap(ctx context.Context, r storage.RedeemRequest) (storage.Token, error) {
	s := ts_.s
	kind, sig, read := r.Kind, r.Signature, r.Read
	for range redeemAttempts {
		var t storage.Token
		if read != nil && read.Kind == kind && read.Signature == sig {
			t, read = *read, nil
		} else {
			var err error
			if t, err = scanToken(s.queryRow(ctx, selectTokenForUpdate, string(kind), sig)); err != nil {
				return storage.Token{}, err
			}
		}
		before := t
		if err := r.Update(&t); err != nil {
			return storage.Token{}, err
		}
		t.Kind, t.Signature = kind, sig
		query, args := redeemStatement(&before, &t, r.RevokeRequest, r.Issue)
		var n int
		if err := s.queryRow(ctx, query, args...).Scan(&n); err != nil {
			return storage.Token{}, mapErr(err)
		}
		if n == 1 {
			return t, nil
		}
		if err := ctx.Err(); err != nil {
			return storage.Token{}, err
		}
	}
	return storage.Token{}, storage.ErrConflict
}

// redeemStatement is one PostgreSQL statement: the update of the token as
// a compare-and-set on the row as read (active, expires_at and data: every
// change of a token changes one of them), in a data-modifying WITH whose
// RETURNING the revocation and each insert select from, so that nothing
// else happens unless the token was updated. The sub-statements share one
// snapshot: the revocation does not see the inserted tokens, as in the
// transaction the other dialects run.
func redeemStatement(old, next *storage.Token, revokeRequest string, issue []storage.Token) (string, []any) {
	var b strings.Builder
	b.WriteString("WITH used AS (UPDATE tokens SET request_id = ?, client_id = ?, subject = ?, active = ?, issued_at = ?, expires_at = ?, data = ?" +
		" WHERE kind = ? AND signature = ? AND active = ? AND expires_at = ? AND data = ? RETURNING 1)")
	args := []any{next.RequestID, next.ClientID, next.Subject, next.Active, ts(next.IssuedAt), ts(next.ExpiresAt), doc(next.Data),
		string(old.Kind), old.Signature, old.Active, ts(old.ExpiresAt), doc(old.Data)}
	if revokeRequest != "" {
		b.WriteString(", revoked AS (UPDATE tokens SET active = ? WHERE EXISTS (SELECT 1 FROM used) AND client_id = ? AND request_id = ? AND NOT (kind = ? AND signature = ?))")
		args = append(args, false, next.ClientID, revokeRequest, string(old.Kind), old.Signature)
	}
	args = insertTokensFromUsed(&b, args, issue)
	b.WriteString(" SELECT count(*) FROM used")
	return b.String(), args
}

// insertTokensFromUsed appends to a PostgreSQL data-modifying WITH whose
// first sub-statement is named used one INSERT per token, each selecting
// from used (so nothing is inserted unless used changed a row), and
// returns args with their arguments added.
func insertTokensFromUsed(b *strings.Builder, args []any, tokens []storage.Token) []any {
	for i := range tokens {
		fmt.Fprintf(b, ", token%d AS (INSERT INTO tokens ("+tokenCols+") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM used)", i)
		args = append(args, tokenArgs(&tokens[i])...)
	}
	return args
}
