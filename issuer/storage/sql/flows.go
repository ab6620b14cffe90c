package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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

// Challenges on PostgreSQL: Create and Swap only move a challenge's state
// between the steps of a browser flow (a new challenge, the app's
// decision with the hash of its verifier), so they commit with
// synchronous_commit off, set for their own transaction only: PostgreSQL
// does not wait for the WAL flush (about 1 ms per commit on a plain disk),
// the write is visible at once and is made durable by the WAL writer
// within 3 × wal_writer_delay (600 ms by default), or earlier by any later
// synchronous commit, since the WAL is flushed in order. A crash inside
// that window loses only such state: the challenge or verifier is then
// unknown and the End-User starts again (fail closed). The login step
// (Step with only a login session and the consent challenge, asyncStep)
// commits the same way. Everything a guarantee rests on commits
// synchronously: the consent step (consent session, code and tokens),
// Update, Delete, logout, codes and tokens. See docs/flows.md.

// insertFlowAsync is the PostgreSQL insert of Create: set_config(...,
// true) lasts until the end of the statement's own (implicit) transaction,
// so the insert stays one round trip.
const insertFlowAsync = "INSERT INTO flows (" + flowCols + ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"

const insertFlow = "INSERT INTO flows (" + flowCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

func flowArgs(f *storage.Flow) []any {
	return []any{string(f.Kind), f.ID, f.ClientID, f.Subject, f.SessionID, f.Status, ts(f.CreatedAt), ts(f.ExpiresAt), doc(f.Data)}
}

// asyncCommits reports (probing once per Store) whether the database
// takes synchronous_commit = off: PostgreSQL does; CockroachDB, spoken to
// with the same dialect, is left alone.
func (s *Store) asyncCommits(ctx context.Context) bool {
	if s.dialect != DialectPostgres {
		return false
	}
	switch s.async.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	var version, setting string
	err := s.db.QueryRowContext(ctx, "SELECT version(), set_config('synchronous_commit', 'off', true)").Scan(&version, &setting)
	if err != nil && ctx.Err() != nil {
		return false // ask again next time
	}
	ok := err == nil && setting == "off" && !strings.Contains(version, "CockroachDB")
	if ok {
		s.async.Store(1)
	} else {
		s.async.Store(2)
	}
	return ok
}

func (fs flowStore) Create(ctx context.Context, f storage.Flow) error {
	query := insertFlow
	if fs.s.asyncCommits(ctx) {
		query = insertFlowAsync
	}
	_, err := fs.s.exec(ctx, query, flowArgs(&f)...)
	return err
}

func (fs flowStore) Get(ctx context.Context, kind storage.FlowKind, id string) (storage.Flow, error) {
	return scanFlow(fs.s.queryRow(ctx, "SELECT "+flowCols+" FROM flows WHERE kind = ? AND id = ?", string(kind), id))
}

const (
	selectFlowForUpdate = "SELECT " + flowCols + " FROM flows WHERE kind = ? AND id = ?"
	updateFlow          = "UPDATE flows SET client_id = ?, subject = ?, session_id = ?, status = ?, created_at = ?, expires_at = ?, data = ? WHERE kind = ? AND id = ?"
)

func (fs flowStore) Update(ctx context.Context, kind storage.FlowKind, id string, fn func(*storage.Flow) error) (storage.Flow, error) {
	var out storage.Flow
	fs.s.prepare(ctx, selectFlowForUpdate+fs.s.forUpdate(), updateFlow)
	err := fs.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = fs.update(ctx, tx, kind, id, fn)
		return err
	})
	return out, err
}

// update is the read-modify-write of one flow inside tx.
func (fs flowStore) update(ctx context.Context, tx *sql.Tx, kind storage.FlowKind, id string, fn func(*storage.Flow) error) (storage.Flow, error) {
	f, err := scanFlow(fs.s.txStmt(ctx, tx, selectFlowForUpdate+fs.s.forUpdate()).QueryRowContext(ctx, string(kind), id))
	if err != nil {
		return f, err
	}
	if err := fn(&f); err != nil {
		return f, err
	}
	f.Kind, f.ID = kind, id
	_, err = fs.s.txStmt(ctx, tx, updateFlow).ExecContext(ctx,
		f.ClientID, f.Subject, f.SessionID, f.Status, ts(f.CreatedAt), ts(f.ExpiresAt), doc(f.Data), string(kind), id)
	return f, mapErr(err)
}

const swapFlow = "UPDATE flows SET client_id = ?, subject = ?, session_id = ?, status = ?, created_at = ?, expires_at = ?, data = ? WHERE kind = ? AND id = ? AND status = ? AND data = ?"

// swapFlowState is swapFlow for a change that leaves the indexed columns
// (session_id, expires_at) as they were: SQLite rewrites the entries of
// every index whose columns an UPDATE sets, changed or not.
const swapFlowState = "UPDATE flows SET client_id = ?, subject = ?, status = ?, created_at = ?, data = ? WHERE kind = ? AND id = ? AND status = ? AND data = ?"

// swapFlowAsync is swapFlow on PostgreSQL, committed asynchronously (see
// insertFlowAsync) in one round trip.
const swapFlowAsync = "UPDATE flows SET client_id = ?, subject = ?, session_id = ?, status = ?, created_at = ?, expires_at = ?, data = ? FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit WHERE kind = ? AND id = ? AND status = ? AND data = ?"

// Swap is one conditional UPDATE on SQLite and PostgreSQL: text equality
// there is byte equality (SQLite's BINARY collation, PostgreSQL's
// deterministic collations). MySQL compares text through the column's
// collation (case-insensitive by default), so there it is a locked
// read-modify-write comparing the bytes.
func (fs flowStore) Swap(ctx context.Context, old, next storage.Flow) error {
	if next.Kind != old.Kind || next.ID != old.ID {
		return fmt.Errorf("storage: Swap cannot change a flow's kind or id")
	}
	if fs.s.dialect == DialectMySQL {
		_, err := fs.Update(ctx, old.Kind, old.ID, func(cur *storage.Flow) error {
			if cur.Status != old.Status || !bytes.Equal(cur.Data, old.Data) {
				return storage.ErrConflict
			}
			*cur = next
			return nil
		})
		if errors.Is(err, storage.ErrNotFound) {
			return storage.ErrConflict
		}
		return err
	}
	if fs.s.dialect == DialectSQLite && next.SessionID == old.SessionID && next.ExpiresAt.Equal(old.ExpiresAt) {
		return conflictIfNone(fs.s.exec(ctx, swapFlowState, next.ClientID, next.Subject, next.Status, ts(next.CreatedAt),
			doc(next.Data), string(old.Kind), old.ID, old.Status, doc(old.Data)))
	}
	query := swapFlow
	if fs.s.asyncCommits(ctx) {
		query = swapFlowAsync
	}
	return conflictIfNone(fs.s.exec(ctx, query, next.ClientID, next.Subject, next.SessionID, next.Status, ts(next.CreatedAt),
		ts(next.ExpiresAt), doc(next.Data), string(old.Kind), old.ID, old.Status, doc(old.Data)))
}

// conflictIfNone maps a conditional write that changed no row to
// ErrConflict.
func conflictIfNone(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return storage.ErrConflict
	}
	return nil
}

// Step commits synchronously on every backend. On PostgreSQL it is one
// statement (one round trip, one commit): the conditional UPDATE of the
// flow in a data-modifying WITH, and each insert selecting from its
// RETURNING, so that nothing is inserted unless the flow was updated.
// Elsewhere it is a transaction: on SQLite with the same conditional
// UPDATE (its BINARY collation compares bytes), on MySQL with a locked
// read comparing the bytes (MySQL compares text through the column's
// collation).
func (fs flowStore) Step(ctx context.Context, st storage.FlowStep) error {
	if fs.s.dialect == DialectPostgres {
		query, args := stepStatement(&st, asyncStep(&st) && fs.s.asyncCommits(ctx))
		var n int
		if err := fs.s.queryRow(ctx, query, args...).Scan(&n); err != nil {
			return mapErr(err)
		}
		if n == 0 {
			return storage.ErrConflict
		}
		return nil
	}
	old := st.Flow
	if fs.s.dialect != DialectSQLite {
		fs.s.prepare(ctx, selectFlowForUpdate+fs.s.forUpdate(), updateFlow)
	}
	if st.LoginSession != nil {
		fs.s.prepare(ctx, insertLogin)
		if st.ReplaceLoginSession {
			fs.s.prepare(ctx, selectLoginForUpdate+fs.s.forUpdate(), replaceLogin)
		}
	}
	if st.ConsentSession != nil {
		fs.s.prepare(ctx, insertConsent)
	}
	if st.Next != nil {
		fs.s.prepare(ctx, insertFlow)
	}
	if len(st.Tokens) > 0 {
		fs.s.prepare(ctx, insertToken)
	}
	if fs.s.dialect == DialectSQLite {
		fs.s.prepare(ctx, useFlow)
	}
	return fs.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if fs.s.dialect == DialectSQLite {
			err = conflictIfNone(fs.s.txStmt(ctx, tx, useFlow).ExecContext(ctx, st.Status, string(old.Kind), old.ID, old.Status, doc(old.Data)))
		} else {
			_, err = fs.update(ctx, tx, old.Kind, old.ID, func(cur *storage.Flow) error {
				if cur.Status != old.Status || !bytes.Equal(cur.Data, old.Data) {
					return storage.ErrConflict
				}
				cur.Status = st.Status
				return nil
			})
		}
		if errors.Is(err, storage.ErrNotFound) {
			return storage.ErrConflict
		}
		if err != nil {
			return err
		}
		if l := st.LoginSession; l != nil {
			if err := loginStore(fs).put(ctx, tx, l, st.ReplaceLoginSession); err != nil {
				return err
			}
		}
		if c := st.ConsentSession; c != nil {
			if _, err := fs.s.txStmt(ctx, tx, insertConsent).ExecContext(ctx, consentArgs(c)...); err != nil {
				return mapErr(err)
			}
		}
		if n := st.Next; n != nil {
			if _, err := fs.s.txStmt(ctx, tx, insertFlow).ExecContext(ctx, flowArgs(n)...); err != nil {
				return mapErr(err)
			}
		}
		for i := range st.Tokens {
			if _, err := fs.s.txStmt(ctx, tx, insertToken).ExecContext(ctx, tokenArgs(&st.Tokens[i])...); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
}

// useFlow sets the status of a flow that is still as read.
const useFlow = "UPDATE flows SET status = ? WHERE kind = ? AND id = ? AND status = ? AND data = ?"

// useFlowAsync is useFlow committed with synchronous_commit off (PostgreSQL).
const useFlowAsync = "UPDATE flows SET status = ? FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit WHERE kind = ? AND id = ? AND status = ? AND data = ?"

// asyncStep tells whether a step only moves the End-User on to the next
// challenge (the login step: the login challenge used, the login session
// and the consent challenge), so that on PostgreSQL it may commit without
// waiting for the WAL flush, like Create and Swap. Losing it in a crash
// of the database loses the whole step, and everything after it that no
// synchronous commit has flushed yet (the WAL is flushed in order): the
// consent challenge it created is then unknown and the End-User logs in
// again, fail closed. A step that records a consent session or tokens
// (the consent step: a code, implicit tokens) commits synchronously, and
// in doing so makes every earlier step durable first.
func asyncStep(st *storage.FlowStep) bool {
	return st.Next != nil && st.ConsentSession == nil && len(st.Tokens) == 0
}

// stepStatement is Step on PostgreSQL.
func stepStatement(st *storage.FlowStep, async bool) (string, []any) {
	var b strings.Builder
	use := useFlow
	if async {
		use = useFlowAsync
	}
	b.WriteString("WITH used AS (" + use + " RETURNING 1)")
	args := []any{st.Status, string(st.Flow.Kind), st.Flow.ID, st.Flow.Status, doc(st.Flow.Data)}
	if l := st.LoginSession; l != nil {
		b.WriteString(", login AS (INSERT INTO login_sessions (" + loginCols + ") SELECT ?, ?, ?, ?, ?, ? FROM used")
		if st.ReplaceLoginSession {
			b.WriteString(" ON CONFLICT (id) DO UPDATE SET subject = EXCLUDED.subject, authenticated_at = EXCLUDED.authenticated_at, remember = EXCLUDED.remember, expires_at = EXCLUDED.expires_at")
		}
		b.WriteString(")")
		args = append(args, loginArgs(l)...)
	}
	if c := st.ConsentSession; c != nil {
		b.WriteString(", consent AS (INSERT INTO consent_sessions (" + consentCols + ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM used)")
		args = append(args, consentArgs(c)...)
	}
	if n := st.Next; n != nil {
		b.WriteString(", next AS (INSERT INTO flows (" + flowCols + ") SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM used)")
		args = append(args, flowArgs(n)...)
	}
	args = insertTokensFromUsed(&b, args, st.Tokens)
	b.WriteString(" SELECT count(*) FROM used")
	return b.String(), args
}

// stmtExecQuerier is the part of *sql.Stmt the transactions here use.
type stmtExecQuerier interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
}

// prepare prepares queries (Store.prepared) before a transaction that
// runs them through txStmt: preparing inside the transaction would need a
// second connection, and could wait forever for one of a full pool.
func (s *Store) prepare(ctx context.Context, queries ...string) {
	for _, q := range queries {
		_, _ = s.prepared(ctx, q)
	}
}

// txStmt binds the statement prepare prepared to tx, so that it is not
// parsed again on every call; a query that was not prepared runs as text.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) stmtExecQuerier {
	if st, ok := s.stmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	return txQuery{tx, s.q(query)}
}

type txQuery struct {
	tx    *sql.Tx
	query string
}

func (t txQuery) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.query, args...)
}

func (t txQuery) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.query, args...)
}

func (fs flowStore) Delete(ctx context.Context, kind storage.FlowKind, id string) error {
	return affectedOne(fs.s.exec(ctx, "DELETE FROM flows WHERE kind = ? AND id = ?", string(kind), id))
}

func (fs flowStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return fs.s.deleteExpired(ctx, "flows", "kind, id", before, limit)
}
