package benchproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// Databases of the load generators: a fresh schema or database per run on
// the server given, migrated as an operator would.

// BackendOf names the backend of a DSN: sqlite, postgres, mysql or other.
func BackendOf(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(dsn, "mysql://"):
		return "mysql"
	case dsn == "" || strings.HasPrefix(dsn, "sqlite"):
		return "sqlite"
	}
	return "other"
}

// FreshDatabase makes an empty place for the issuer on the server of base:
// a new PostgreSQL schema (selected with search_path) or a new MySQL
// database, named prefix plus random hex. drop removes it. Any other DSN
// is used as it is.
func FreshDatabase(base, prefix string) (dsn, backend string, drop func(), err error) {
	backend = BackendOf(base)
	if backend != "postgres" && backend != "mysql" {
		return base, backend, func() {}, nil
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	name := prefix + hex.EncodeToString(rb[:])
	if dsn, err = DSNFor(base, backend, name); err != nil {
		return "", "", nil, err
	}
	stmt, dropStmt := "CREATE SCHEMA "+name, "DROP SCHEMA "+name+" CASCADE"
	if backend == "mysql" {
		stmt, dropStmt = "CREATE DATABASE "+name, "DROP DATABASE "+name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sqlstore.Open(ctx, base, sqlstore.Options{})
	if err != nil {
		return "", "", nil, fmt.Errorf("opening %s: %w", RedactDSN(base), err)
	}
	defer admin.Close()
	if _, err := admin.DB().ExecContext(ctx, stmt); err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", stmt, err)
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := sqlstore.Open(ctx, base, sqlstore.Options{})
		if err == nil {
			_, err = a.DB().ExecContext(ctx, dropStmt)
			a.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: WARNING: %s: %v\n", dropStmt, err)
		}
	}
	return dsn, backend, drop, nil
}

// DSNFor is base pointed at the schema (PostgreSQL, through search_path)
// or database (MySQL) name.
func DSNFor(base, backend, name string) (string, error) {
	if backend == "postgres" {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	head, params, _ := strings.Cut(base, "?")
	i := strings.LastIndex(head, "/")
	if i < 0 || strings.HasSuffix(head[:i], "/") {
		return "", fmt.Errorf("no database name in %s", RedactDSN(base))
	}
	dsn := head[:i+1] + name
	if params != "" {
		dsn += "?" + params
	}
	return dsn, nil
}

// RedactDSN hides a password in a URL-shaped DSN (also in the
// user:password@tcp(host)/db form url.Parse refuses).
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		if u.User == nil {
			return dsn
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	_, rest, ok := strings.Cut(dsn, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return dsn
	}
	user, _, hasPW := strings.Cut(rest[:at], ":")
	if !hasPW {
		return dsn
	}
	return dsn[:len(dsn)-len(rest)] + user + ":xxxxx" + rest[at:]
}

// Migrate runs `gatehouse migrate sql --yes -e` with the binary bin on dsn.
func Migrate(bin, dsn string) error {
	cmd := exec.Command(bin, "migrate", "sql", "--yes", "-e")
	cmd.Env = append(os.Environ(), "DSN="+dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gatehouse migrate sql --yes -e: %v\n%s", err, out)
	}
	return nil
}

// FreshMigrated is FreshDatabase on the server of base, migrated with the
// binary bin; drop removes it.
func FreshMigrated(base, prefix, bin string) (dsn string, drop func(), err error) {
	dsn, _, drop, err = FreshDatabase(base, prefix)
	if err != nil {
		return "", nil, err
	}
	if err := Migrate(bin, dsn); err != nil {
		drop()
		return "", nil, err
	}
	return dsn, drop, nil
}
