package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type loginStore struct{ s *Store }

var _ storage.LoginSessionStore = loginStore{}

const loginCols = "id, subject, authenticated_at, remember, expires_at, data"

func scanLogin(row interface{ Scan(...any) error }) (storage.LoginSession, error) {
	var l storage.LoginSession
	var auth, exp int64
	var data string
	if err := row.Scan(&l.ID, &l.Subject, &auth, &l.Remember, &exp, &data); err != nil {
		return l, mapErr(err)
	}
	l.AuthenticatedAt, l.ExpiresAt, l.Data = fromTS(auth), fromTS(exp), fromDoc(data)
	return l, nil
}

const insertLogin = "INSERT INTO login_sessions (" + loginCols + ") VALUES (?, ?, ?, ?, ?, ?)"

func loginArgs(l *storage.LoginSession) []any {
	return []any{l.ID, l.Subject, ts(l.AuthenticatedAt), l.Remember, ts(l.ExpiresAt), doc(l.Data)}
}

func (ls loginStore) Create(ctx context.Context, l storage.LoginSession) error {
	_, err := ls.s.exec(ctx, insertLogin, loginArgs(&l)...)
	return err
}

const (
	selectLoginForUpdate = "SELECT 1 FROM login_sessions WHERE id = ?"
	replaceLogin         = "UPDATE login_sessions SET subject = ?, authenticated_at = ?, remember = ?, expires_at = ? WHERE id = ?"
)

// put records l inside tx (FlowStore.Step): an insert, or with replace the
// update of the session l.ID when it exists (its data is kept).
func (ls loginStore) put(ctx context.Context, tx *sql.Tx, l *storage.LoginSession, replace bool) error {
	if replace {
		var one int
		err := ls.s.txStmt(ctx, tx, selectLoginForUpdate+ls.s.forUpdate()).QueryRowContext(ctx, l.ID).Scan(&one)
		switch {
		case err == nil:
			_, err = ls.s.txStmt(ctx, tx, replaceLogin).ExecContext(ctx,
				l.Subject, ts(l.AuthenticatedAt), l.Remember, ts(l.ExpiresAt), l.ID)
			return mapErr(err)
		case !errors.Is(err, sql.ErrNoRows):
			return mapErr(err)
		}
	}
	_, err := ls.s.txStmt(ctx, tx, insertLogin).ExecContext(ctx, loginArgs(l)...)
	return mapErr(err)
}

func (ls loginStore) Get(ctx context.Context, id string) (storage.LoginSession, error) {
	return scanLogin(ls.s.queryRow(ctx, "SELECT "+loginCols+" FROM login_sessions WHERE id = ?", id))
}

func (ls loginStore) Update(ctx context.Context, id string, fn func(*storage.LoginSession) error) (storage.LoginSession, error) {
	var out storage.LoginSession
	err := ls.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		l, err := scanLogin(tx.QueryRowContext(ctx, ls.s.q("SELECT "+loginCols+" FROM login_sessions WHERE id = ?"+ls.s.forUpdate()), id))
		if err != nil {
			return err
		}
		if err := fn(&l); err != nil {
			return err
		}
		l.ID = id
		_, err = tx.ExecContext(ctx, ls.s.q("UPDATE login_sessions SET subject = ?, authenticated_at = ?, remember = ?, expires_at = ?, data = ? WHERE id = ?"),
			l.Subject, ts(l.AuthenticatedAt), l.Remember, ts(l.ExpiresAt), doc(l.Data), id)
		out = l
		return err
	})
	return out, err
}

func (ls loginStore) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	const del = "DELETE FROM login_sessions WHERE id = ?"
	if ev == nil {
		return affectedOne(ls.s.exec(ctx, del, id))
	}
	return ls.s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := affectedOne(tx.ExecContext(ctx, ls.s.q(del), id)); err != nil {
			return err
		}
		return ls.s.recordEvent(ctx, tx, ev)
	})
}

func (ls loginStore) ListBySubject(ctx context.Context, subject string) ([]storage.LoginSession, error) {
	rows, err := ls.s.query(ctx, "SELECT "+loginCols+" FROM login_sessions WHERE subject = ? ORDER BY authenticated_at DESC, id", subject)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []storage.LoginSession
	for rows.Next() {
		l, err := scanLogin(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, mapErr(rows.Err())
}

func (ls loginStore) DeleteBySubject(ctx context.Context, subject string) (int64, error) {
	res, err := ls.s.exec(ctx, "DELETE FROM login_sessions WHERE subject = ?", subject)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (ls loginStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return ls.s.deleteExpired(ctx, "login_sessions", "id", before, limit)
}

type consentStore struct{ s *Store }

var _ storage.ConsentSessionStore = consentStore{}

const consentCols = "id, subject, client_id, login_session_id, remember, granted_scope, granted_audience, handled_at, expires_at, data"

func scanConsent(row interface{ Scan(...any) error }) (storage.ConsentSession, error) {
	var c storage.ConsentSession
	var scope, aud, data string
	var handled, exp int64
	if err := row.Scan(&c.ID, &c.Subject, &c.ClientID, &c.LoginSessionID, &c.Remember, &scope, &aud, &handled, &exp, &data); err != nil {
		return c, mapErr(err)
	}
	c.GrantedScope, c.GrantedAudience = fromJSONList(scope), fromJSONList(aud)
	c.HandledAt, c.ExpiresAt, c.Data = fromTS(handled), fromTS(exp), fromDoc(data)
	return c, nil
}

const insertConsent = "INSERT INTO consent_sessions (" + consentCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

func consentArgs(c *storage.ConsentSession) []any {
	return []any{c.ID, c.Subject, c.ClientID, c.LoginSessionID, c.Remember, jsonList(c.GrantedScope), jsonList(c.GrantedAudience),
		ts(c.HandledAt), ts(c.ExpiresAt), doc(c.Data)}
}

func (cs consentStore) Create(ctx context.Context, c storage.ConsentSession) error {
	_, err := cs.s.exec(ctx, insertConsent, consentArgs(&c)...)
	return err
}

func (cs consentStore) Get(ctx context.Context, id string) (storage.ConsentSession, error) {
	return scanConsent(cs.s.queryRow(ctx, "SELECT "+consentCols+" FROM consent_sessions WHERE id = ?", id))
}

func consentWhere(f storage.ConsentFilter) (string, []any) {
	where, args := " WHERE 1 = 1", []any{}
	if f.ID != "" {
		where += " AND id = ?"
		args = append(args, f.ID)
	}
	if f.Subject != "" {
		where += " AND subject = ?"
		args = append(args, f.Subject)
	}
	if f.ClientID != "" {
		where += " AND client_id = ?"
		args = append(args, f.ClientID)
	}
	if f.LoginSessionID != "" {
		where += " AND login_session_id = ?"
		args = append(args, f.LoginSessionID)
	}
	return where, args
}

func (cs consentStore) List(ctx context.Context, f storage.ConsentFilter) ([]storage.ConsentSession, error) {
	where, args := consentWhere(f)
	// consentWhere builds one of a few filters: each is prepared once.
	rows, err := cs.s.query(ctx, "SELECT "+consentCols+" FROM consent_sessions"+where+" ORDER BY handled_at DESC, id", args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []storage.ConsentSession
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

func (cs consentStore) Revoke(ctx context.Context, f storage.ConsentFilter, ev storage.ConsentRevocationFunc) (int64, error) {
	s := cs.s
	where, args := consentWhere(f)
	if len(args) == 0 {
		return 0, nil // an empty filter never deletes everything
	}
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q("SELECT "+consentCols+" FROM consent_sessions"+where+" ORDER BY handled_at DESC, id"+s.forUpdate()), args...)
		if err != nil {
			return err
		}
		removed, err := collect(rows, scanConsent)
		if err != nil {
			return err
		}
		n = int64(len(removed))
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM consent_sessions"+where), args...); err != nil {
			return err
		}
		var revoked []storage.Token
		for _, c := range removed {
			err := s.revokeRequest(ctx, tx, c.ClientID, c.ID, func(t []storage.Token) error {
				revoked = append(revoked, t...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		if ev == nil {
			return nil
		}
		e, err := ev(removed, revoked)
		if err != nil {
			return err
		}
		return s.recordEvent(ctx, tx, e)
	})
	return n, err
}

func (cs consentStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return cs.s.deleteExpired(ctx, "consent_sessions", "id", before, limit)
}
