package sqlstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Dialect is the SQL flavour of a backend.
type Dialect string

const (
	DialectSQLite   Dialect = "sqlite"
	DialectPostgres Dialect = "postgres"
	DialectMySQL    Dialect = "mysql"
)

// poolSettings are Hydra's DSN query parameters for the connection pool;
// they are removed from the DSN before it reaches the driver.
type poolSettings struct {
	maxConns        int
	maxIdleConns    int
	maxConnLifetime time.Duration
	maxIdleTime     time.Duration
}

// parsedDSN is a DSN resolved to a driver and its own connection string.
type parsedDSN struct {
	dialect   Dialect
	driver    string // database/sql driver name
	driverDSN string
	memory    bool // throwaway in-memory SQLite
	path      string
	pool      poolSettings
}

// sqlitePragmas are applied to every SQLite connection: WAL so readers never
// block the writer, a busy timeout for other processes on the same file,
// and BEGIN IMMEDIATE so a write transaction takes the lock up front instead
// of failing on upgrade.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// parseDSN understands Hydra's DSN forms:
//
//	memory                                      in-memory SQLite for this process
//	sqlite:///abs/path.sqlite?_fk=true          SQLite file (sqlite://./rel.sqlite too)
//	postgres://user:pw@host:5432/db?sslmode=... PostgreSQL (also postgresql://)
//	cockroach://...                             CockroachDB, spoken to as PostgreSQL
//	mysql://user:pw@tcp(host:3306)/db?...       MySQL / MariaDB
func parseDSN(dsn string) (*parsedDSN, error) {
	dsn = strings.TrimSpace(dsn)
	scheme, rest, ok := strings.Cut(dsn, "://")
	if dsn == "memory" || dsn == "sqlite://:memory:" || dsn == "sqlite://memory" {
		scheme, ok = "memory", true
	}
	if !ok {
		return nil, fmt.Errorf("DSN must start with memory, sqlite://, postgres://, cockroach:// or mysql://")
	}
	switch strings.ToLower(scheme) {
	case "memory":
		var b [8]byte
		_, _ = rand.Read(b[:])
		// The memdb VFS shares one in-memory database between all
		// connections of this process; it lives as long as one connection
		// is open, and the store pins one for its whole life.
		return &parsedDSN{dialect: DialectSQLite, driver: "sqlite", memory: true,
			driverDSN: "file:/gatehouse-" + hex.EncodeToString(b[:]) + "?vfs=memdb&" + sqlitePragmas}, nil
	case "sqlite", "sqlite3":
		path, _, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("sqlite DSN needs a file path, e.g. sqlite:///var/lib/gatehouse/db.sqlite")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("creating the database directory: %w", err)
			}
		}
		return &parsedDSN{dialect: DialectSQLite, driver: "sqlite", path: path,
			// Checkpoints run in the background (Store.checkpointer) instead of
			// inside whichever write crosses the threshold; the automatic one
			// stays as a backstop at a larger WAL (10,000 pages, ~40 MB).
			driverDSN: "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(10000)&" + sqlitePragmas}, nil
	case "postgres", "postgresql", "cockroach", "cockroachdb", "crdb":
		u, err := url.Parse("postgres://" + rest)
		if err != nil {
			return nil, fmt.Errorf("invalid PostgreSQL DSN: %v", redactErr(err))
		}
		q := u.Query()
		pool, err := takePoolSettings(q)
		if err != nil {
			return nil, err
		}
		u.RawQuery = q.Encode()
		return &parsedDSN{dialect: DialectPostgres, driver: "pgx", driverDSN: u.String(), pool: pool}, nil
	case "mysql":
		return parseMySQL(rest)
	default:
		return nil, fmt.Errorf("unsupported DSN scheme %q: use memory, sqlite://, postgres://, cockroach:// or mysql://", scheme)
	}
}

func parseMySQL(rest string) (*parsedDSN, error) {
	base, rawQuery, _ := strings.Cut(rest, "?")
	if !strings.Contains(base, "@tcp(") && !strings.Contains(base, "@unix(") && strings.Contains(base, "@") {
		// mysql://user:pw@host:3306/db, the URL form: turn it into the driver's.
		u, err := url.Parse("mysql://" + base)
		if err != nil {
			return nil, fmt.Errorf("invalid MySQL DSN: %v", redactErr(err))
		}
		pw, _ := u.User.Password()
		cred := u.User.Username()
		if pw != "" {
			cred += ":" + pw
		}
		base = cred + "@tcp(" + u.Host + ")" + u.Path
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("invalid MySQL DSN parameters: %v", err)
	}
	pool, err := takePoolSettings(q)
	if err != nil {
		return nil, err
	}
	cfg, err := mysql.ParseDSN(base + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("invalid MySQL DSN: %v", redactErr(err))
	}
	cfg.ParseTime = true // goose reads its own DATETIME column; our tables keep integers
	cfg.MultiStatements = false
	// RowsAffected counts matched rows, so an update that changes nothing
	// is not mistaken for a missing row.
	cfg.ClientFoundRows = true
	cfg.Loc = time.UTC
	return &parsedDSN{dialect: DialectMySQL, driver: "mysql", driverDSN: cfg.FormatDSN(), pool: pool}, nil
}

func takePoolSettings(q url.Values) (poolSettings, error) {
	var p poolSettings
	for _, k := range []string{"max_conns", "max_idle_conns", "max_conn_lifetime", "max_idle_conn_time"} {
		v := q.Get(k)
		q.Del(k)
		if v == "" {
			continue
		}
		switch k {
		case "max_conns", "max_idle_conns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return p, fmt.Errorf("DSN parameter %s must be a non-negative integer", k)
			}
			if k == "max_conns" {
				p.maxConns = n
			} else {
				p.maxIdleConns = n
			}
		default:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return p, fmt.Errorf("DSN parameter %s must be a duration such as 5m", k)
			}
			if k == "max_conn_lifetime" {
				p.maxConnLifetime = d
			} else {
				p.maxIdleTime = d
			}
		}
	}
	return p, nil
}

// redactErr keeps a parse error from echoing a password back.
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "malformed"
}

// RedactDSN returns dsn with any password replaced by "xxxxx", for logs
// and error messages.
func RedactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@")
	if strings.Contains(rest, "@tcp(") || strings.Contains(rest, "@unix(") {
		at = strings.Index(rest, "@")
	}
	if at < 0 {
		return dsn
	}
	cred := rest[:at]
	if user, _, hasPW := strings.Cut(cred, ":"); hasPW {
		return scheme + "://" + user + ":xxxxx" + rest[at:]
	}
	return dsn
}
