package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// eventStore reads the revocation event log; events are written by the
// stores whose changes raise them, in their transactions (recordEvents).
type eventStore struct{ s *Store }

var _ storage.RevocationEventStore = eventStore{}

const eventCols = "position, kind, created_at, until_at, data"

// recordEvents records evs inside tx. The position counter (one row) is
// updated once for all of them, after the caller's other writes so its
// row lock is held briefly: a concurrent recorder waits for this
// transaction to end, which is what makes positions follow commit order.
// An event without Until gets the latest expiry of any stored access
// token (or its Time): every token it can select has expired by then.
func (s *Store) recordEvents(ctx context.Context, tx *sql.Tx, evs ...storage.RevocationEvent) error {
	if len(evs) == 0 {
		return nil
	}
	var latest int64
	for _, e := range evs {
		if e.Until.IsZero() {
			var err error
			if latest, err = s.latestAccessExpiry(ctx, tx); err != nil {
				return err
			}
			break
		}
	}
	n := len(evs)
	var head int64
	switch s.dialect {
	case DialectMySQL:
		if _, err := tx.ExecContext(ctx, "UPDATE revocation_position SET position = position + ? WHERE id = 1", n); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT position FROM revocation_position WHERE id = 1").Scan(&head); err != nil {
			return err
		}
	default:
		if err := tx.QueryRowContext(ctx, s.q("UPDATE revocation_position SET position = position + ? WHERE id = 1 RETURNING position"), n).Scan(&head); err != nil {
			return err
		}
	}
	for i, e := range evs {
		until := ts(e.Until)
		if until == 0 {
			until = max(latest, ts(e.Time))
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO revocation_events ("+eventCols+") VALUES (?, ?, ?, ?, ?)"),
			head-int64(n-1-i), e.Kind, ts(e.Time), until, doc(e.Data)); err != nil {
			return err
		}
	}
	return nil
}

// expiryProbe bounds the rows latestAccessExpiry reads.
const expiryProbe = 1000

// latestAccessExpiry is the latest expiry of a stored access token, read
// from the top of the expiry index: refresh tokens outlive access tokens,
// so the latest ones sit above them, and reading down to the first
// access token could mean every live refresh token (millions) inside a
// writing transaction. Past expiryProbe rows it settles for the latest
// expiry of any token, a looser bound (storage.RevocationEvent.Until).
func (s *Store) latestAccessExpiry(ctx context.Context, tx *sql.Tx) (int64, error) {
	rows, err := tx.QueryContext(ctx, s.q("SELECT kind, expires_at FROM tokens ORDER BY expires_at DESC LIMIT "+strconv.Itoa(expiryProbe)))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var top int64
	for first := true; rows.Next(); first = false {
		var kind string
		var exp int64
		if err := rows.Scan(&kind, &exp); err != nil {
			return 0, err
		}
		if first {
			top = exp
		}
		if kind == string(storage.KindAccessToken) {
			return exp, nil
		}
	}
	return top, rows.Err()
}

// recordEvent records the event of a RevocationFunc (nil: none).
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, e *storage.RevocationEvent) error {
	if e == nil {
		return nil
	}
	return s.recordEvents(ctx, tx, *e)
}

func (es eventStore) List(ctx context.Context, after int64, limit int) ([]storage.RevocationEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := es.s.query(ctx, "SELECT "+eventCols+" FROM revocation_events WHERE position > ? ORDER BY position LIMIT "+strconv.Itoa(limit), after)
	if err != nil {
		return nil, mapErr(err)
	}
	return collect(rows, scanEvent)
}

func scanEvent(row interface{ Scan(...any) error }) (storage.RevocationEvent, error) {
	var e storage.RevocationEvent
	var created, until int64
	var data string
	if err := row.Scan(&e.Position, &e.Kind, &created, &until, &data); err != nil {
		return e, mapErr(err)
	}
	e.Time, e.Until, e.Data = fromTS(created), fromTS(until), fromDoc(data)
	return e, nil
}

func (es eventStore) Bounds(ctx context.Context) (storage.EventBounds, error) {
	var b storage.EventBounds
	var oldest sql.NullInt64
	err := es.s.queryRow(ctx, "SELECT p.position, (SELECT MIN(position) FROM revocation_events) FROM revocation_position p WHERE p.id = 1").
		Scan(&b.Head, &oldest)
	b.Oldest = oldest.Int64
	return b, mapErr(err)
}

func (es eventStore) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	limit = storage.FlushLimit(limit)
	cutoff := ts(before)
	var query string
	switch es.s.dialect {
	case DialectMySQL:
		query = "DELETE FROM revocation_events WHERE created_at < ? ORDER BY position LIMIT " + strconv.Itoa(limit)
	default:
		query = "DELETE FROM revocation_events WHERE position IN (SELECT position FROM revocation_events WHERE created_at < ? ORDER BY position LIMIT " +
			strconv.Itoa(limit) + ")"
	}
	res, err := es.s.exec(ctx, query, cutoff)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// selectTokens reads the tokens a query selects inside tx.
func (s *Store) selectTokens(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]storage.Token, error) {
	rows, err := tx.QueryContext(ctx, s.q("SELECT "+tokenCols+" FROM tokens WHERE "+where+s.forUpdate()), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanToken)
}

// collect scans every row of rows with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}
