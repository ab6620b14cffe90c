// Package sqlstore implements issuer/storage on SQLite, PostgreSQL (and
// CockroachDB) and MySQL/MariaDB through database/sql, with embedded
// per-dialect migrations run by goose.
//
// On SQLite every write of the process goes through one writer goroutine
// that commits the writes queued together in one transaction (writer.go),
// so concurrent writers never see "database is locked"; readers run in
// parallel under WAL, and other processes on the same file wait up to the
// busy timeout.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.uber.org/zap"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

//go:embed migrations
var migrations embed.FS

// MigrationTable is where applied migrations are recorded.
const MigrationTable = "gatehouse_migrations"

// ErrNotMigrated is returned by CheckMigrated when migrations are pending.
var ErrNotMigrated = errors.New("the database schema is not up to date")

// Options tune a Store. The zero value is usable.
type Options struct {
	Logger *zap.Logger
	// Now is the clock of expiry checks and of creation times the caller
	// leaves unset; default time.Now.
	Now func() time.Time
	// MaxOpenConns caps the pool; 0 picks a default per dialect (or the
	// DSN's max_conns).
	MaxOpenConns int
}

// Store is a storage.Storage on one SQL database.
type Store struct {
	db        *sql.DB
	dialect   Dialect
	log       *zap.Logger
	now       func() time.Time
	writeMu   *sync.Mutex // SQLite only: held by the writer and by Migrate
	writer    *writer     // SQLite only: the single, batching writer
	pin       *sql.Conn   // memory only: keeps the database alive
	memory    bool
	stmts     sync.Map      // query -> *sql.Stmt
	async     atomic.Int32  // PostgreSQL: 0 not yet probed, 1 synchronous_commit=off is taken, 2 it is not (flows.go)
	stopCkpt  chan struct{} // SQLite file only: stops the checkpointer
	ckptDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ storage.Storage = (*Store)(nil)

// Open connects to dsn (see parseDSN for the accepted forms). It does not
// migrate: call Migrate, or CheckMigrated before serving.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	p, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	db, err := sql.Open(p.driver, p.driverDSN)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, dialect: p.dialect, log: log, now: now, memory: p.memory}
	maxOpen := o.MaxOpenConns
	if maxOpen == 0 {
		maxOpen = p.pool.maxConns
	}
	switch p.dialect {
	case DialectSQLite:
		s.writeMu = &sync.Mutex{}
		s.writer = newWriter(s)
		if maxOpen == 0 {
			// Readers, plus the connection the writer keeps.
			maxOpen = max(4, 2*runtime.GOMAXPROCS(0)) + 1
		}
		// The writer keeps one connection and memory pins another: leave
		// at least one for readers whatever was configured.
		minOpen := 2
		if p.memory {
			minOpen = 3
		}
		maxOpen = max(maxOpen, minOpen)
		db.SetMaxOpenConns(maxOpen)
		db.SetMaxIdleConns(maxOpen)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	default:
		if maxOpen == 0 {
			maxOpen = 4 * runtime.GOMAXPROCS(0)
		}
		db.SetMaxOpenConns(maxOpen)
		idle := p.pool.maxIdleConns
		if idle == 0 {
			idle = maxOpen
		}
		db.SetMaxIdleConns(idle)
		life := p.pool.maxConnLifetime
		if life == 0 {
			life = 30 * time.Minute
		}
		db.SetConnMaxLifetime(life)
		db.SetConnMaxIdleTime(p.pool.maxIdleTime)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if p.memory {
		if s.pin, err = db.Conn(pingCtx); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := db.PingContext(pingCtx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	if p.dialect == DialectSQLite && !p.memory {
		s.stopCkpt, s.ckptDone = make(chan struct{}), make(chan struct{})
		go s.checkpointer(checkpointEvery)
	}
	return s, nil
}

// checkpointEvery is how often the background checkpointer runs. Under
// a write load the WAL grows by thousands of frames a second (about six
// per commit of the writer's batch); checkpoints must come often enough
// that it never reaches SQLite's wal_autocheckpoint backstop (10,000
// frames), which runs inside a commit of the writer, fsyncs included, and
// stalls every write meanwhile. A PASSIVE checkpoint with nothing to copy
// costs next to nothing.
const checkpointEvery = 100 * time.Millisecond

// checkpointer copies the WAL back into the database file every interval
// on its own connection, without waiting for readers or the writer
// (PASSIVE), so no request pays for a checkpoint's syncs.
func (s *Store) checkpointer(every time.Duration) {
	defer close(s.ckptDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				s.log.Debug("background WAL checkpoint", zap.Error(err))
			}
			cancel()
		}
	}
}

// Dialect reports the backend's SQL flavour.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the pool for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Stats reports the connection pool for metrics.
func (s *Store) Stats() *storage.PoolStats {
	st := s.db.Stats()
	return &storage.PoolStats{OpenConnections: st.OpenConnections, InUse: st.InUse, Idle: st.Idle,
		WaitCount: st.WaitCount, WaitDuration: st.WaitDuration}
}

// Close closes the pool (and, for memory, drops the database). Writes
// queued for the SQLite writer are answered storage.ErrClosed, as is
// every call after Close. Close may be called more than once, also
// concurrently with other calls.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	if s.stopCkpt != nil {
		close(s.stopCkpt)
		<-s.ckptDone
	}
	if s.writer != nil {
		s.writer.close()
	}
	s.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	if s.pin != nil {
		_ = s.pin.Close()
	}
	return s.db.Close()
}

func (s *Store) Clients() storage.ClientStore                   { return clientStore{s} }
func (s *Store) Keys() storage.KeyStore                         { return keyStore{s} }
func (s *Store) Tokens() storage.TokenStore                     { return tokenStore{s} }
func (s *Store) Flows() storage.FlowStore                       { return flowStore{s} }
func (s *Store) LoginSessions() storage.LoginSessionStore       { return loginStore{s} }
func (s *Store) ConsentSessions() storage.ConsentSessionStore   { return consentStore{s} }
func (s *Store) Trust() storage.TrustStore                      { return trustStore{s} }
func (s *Store) Nonces() storage.NonceStore                     { return nonceStore{s} }
func (s *Store) RevocationEvents() storage.RevocationEventStore { return eventStore{s} }

// --- migrations ---

func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true)}
	var gd goose.Dialect
	switch s.dialect {
	case DialectSQLite:
		gd = goose.DialectSQLite3
	case DialectPostgres:
		gd = goose.DialectPostgres
		// Replicas migrating at once take turns on an advisory lock.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case DialectMySQL:
		gd = goose.DialectMySQL
	}
	return goose.NewProvider(gd, s.db, sub, opts...)
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if s.writeMu != nil {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	res, err := p.Up(ctx)
	for _, r := range res {
		s.log.Info("applied migration", zap.Int64("version", r.Source.Version), zap.String("file", r.Source.Path), zap.Duration("took", r.Duration))
	}
	if err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	return nil
}

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// MigrationStatus lists every embedded migration with its state.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, m := range st {
		out = append(out, MigrationStatus{Version: m.Source.Version, Name: baseName(m.Source.Path),
			Applied: m.State == goose.StateApplied, AppliedAt: m.AppliedAt})
	}
	return out, nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// CheckMigrated returns ErrNotMigrated (wrapped, with the count) when any
// migration is pending.
func (s *Store) CheckMigrated(ctx context.Context) error {
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	pending := 0
	for _, m := range st {
		if !m.Applied {
			pending++
		}
	}
	if pending > 0 {
		return fmt.Errorf("%w: %d of %d migrations pending", ErrNotMigrated, pending, len(st))
	}
	return nil
}

// --- query helpers ---

// q rewrites ? placeholders to $n for PostgreSQL.
func (s *Store) q(query string) string {
	if s.dialect != DialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// forUpdate locks the selected row in a read-modify-write transaction.
// SQLite needs none: its write transactions are exclusive.
func (s *Store) forUpdate() string {
	if s.dialect == DialectSQLite {
		return ""
	}
	return " FOR UPDATE"
}

func (s *Store) lockWrites() func() {
	if s.writeMu == nil {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// exec runs one writing statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.writer != nil {
		var res sql.Result
		st, perr := s.prepared(ctx, query)
		err := s.writer.submit(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			if perr == nil {
				res, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			} else {
				res, err = tx.ExecContext(ctx, query, args...)
			}
			return err
		})
		return res, err
	}
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	return res, mapErr(err)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st, err := s.prepared(ctx, query); err == nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

// query runs a multi-row read through a prepared statement (prepared),
// as queryRow does for single rows: a text query is parsed and planned
// again on every call (SQLite's driver keeps no statement cache).
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, err := s.prepared(ctx, query); err == nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, s.q(query), args...)
}

// prepared returns a prepared statement for a hot query, prepared once per
// connection by database/sql and kept for the life of the Store.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// tx runs fn in one transaction, retrying serialisation failures and
// deadlocks a few times. fn must not call other Store methods.
func (s *Store) tx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if s.writer != nil {
		return s.writer.submit(ctx, false, fn)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.txOnce(ctx, fn)
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

func (s *Store) txOnce(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == DialectMySQL {
		// Read-committed keeps short read-modify-write transactions from
		// taking gap locks that deadlock under concurrent inserts.
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

type retryableErr struct{ error }

func (e retryableErr) Unwrap() error { return e.error }

func retryable(err error) bool {
	var r retryableErr
	return errors.As(err, &r)
}

// mapErr turns driver codes into storage sentinels.
func mapErr(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if unreachable(err) {
		return unavailable(err)
	}
	if isClosed(err) {
		return fmt.Errorf("%w: %w", storage.ErrClosed, err)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "23505":
			return fmt.Errorf("%w: %s", storage.ErrAlreadyExists, pg.ConstraintName)
		case pg.Code == "40001", pg.Code == "40P01":
			return retryableErr{err}
		// Class 08 connection exception; 53300 too_many_connections;
		// 57P01-57P03 admin_shutdown, crash_shutdown, cannot_connect_now.
		case strings.HasPrefix(pg.Code, "08"), pg.Code == "53300", pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03":
			return unavailable(err)
		case pg.Code == "22021", pg.Code == "22P05", pg.Code == "22001", pg.Code == "54000":
			// Text with a NUL byte or invalid UTF-8 (character not in
			// repertoire, untranslatable character), too long for its
			// column, or too large for an index entry.
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		}
		return err
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		switch my.Number {
		case 1062:
			return storage.ErrAlreadyExists
		case 1213, 1205:
			return retryableErr{err}
		case 1040, 1053, 1927: // too many connections, server shutdown, connection killed
			return unavailable(err)
		case 1366, 1406, 1300:
			// Incorrect string value (invalid UTF-8), data too long for
			// its column, invalid character string.
			return fmt.Errorf("%w: %w", storage.ErrInvalid, err)
		}
		return err
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		switch code := lite.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return storage.ErrAlreadyExists
		case code&0xff == sqlite3.SQLITE_BUSY:
			// Another process held the file beyond the busy timeout.
			return retryableErr{unavailable(err)}
		case code == sqlite3.SQLITE_LOCKED:
			return retryableErr{err}
		case code&0xff == sqlite3.SQLITE_IOERR, code&0xff == sqlite3.SQLITE_CANTOPEN:
			return unavailable(err)
		}
	}
	return err
}

// unreachable reports whether err says the connection to the database
// server could not be made or broke: refused or reset connections, a
// connection the driver already closed, a server that went away mid-answer.
func unreachable(err error) bool {
	var (
		connect *pgconn.ConnectError
		netErr  *net.OpError
	)
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &connect) || errors.As(err, &netErr)
}

func unavailable(err error) error { return fmt.Errorf("%w: %w", storage.ErrUnavailable, err) }

// isClosed reports database/sql's errors for a call on a closed pool or
// on one of its closed prepared statements (Close closes both). They are
// not exported, so they are known by their text.
func isClosed(err error) bool {
	msg := err.Error()
	return strings.HasSuffix(msg, "sql: database is closed") || strings.HasSuffix(msg, "sql: statement is closed")
}

// --- value conversions ---

// ts stores a time as Unix microseconds; the zero time is 0.
func ts(t time.Time) int64 { return storage.UnixMicro(t) }

func fromTS(n int64) time.Time { return storage.FromUnixMicro(n) }

// doc stores an optional JSON document as text ("" when empty).
func doc(b []byte) string { return string(b) }

func fromDoc(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// deleteExpired deletes at most limit rows of table whose column expires_at
// is set and before `before`, in one short statement. Each dialect gets the
// form it can run without scanning or locking the whole table.
func (s *Store) deleteExpired(ctx context.Context, table, keyCols string, before time.Time, limit int) (int64, error) {
	limit = storage.FlushLimit(limit)
	cutoff := ts(before)
	var query string
	switch s.dialect {
	case DialectMySQL:
		query = "DELETE FROM " + table + " WHERE expires_at > 0 AND expires_at < ? LIMIT " + strconv.Itoa(limit)
	case DialectPostgres:
		query = "DELETE FROM " + table + " WHERE (" + keyCols + ") IN (SELECT " + keyCols + " FROM " + table +
			" WHERE expires_at > 0 AND expires_at < ? LIMIT " + strconv.Itoa(limit) + ")"
	default:
		query = "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table +
			" WHERE expires_at > 0 AND expires_at < ? LIMIT " + strconv.Itoa(limit) + ")"
	}
	res, err := s.exec(ctx, query, cutoff)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// affectedOne maps "no row changed" to ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}
