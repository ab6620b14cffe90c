package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// clientCalls are a read, a write and a read-modify-write transaction.
func clientCalls(s storage.Storage) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"get": func(ctx context.Context) error { _, err := s.Clients().Get(ctx, "c1"); return err },
		"create": func(ctx context.Context) error {
			return s.Clients().Create(ctx, storage.Client{ID: "c-" + randomName(), Metadata: []byte(`{}`)})
		},
		"update": func(ctx context.Context) error {
			_, err := s.Clients().Update(ctx, "c1", func(c *storage.Client) error { c.Name = "renamed"; return nil }, nil)
			return err
		},
	}
}

// assertUnavailable: every call fails with storage.ErrUnavailable.
func assertUnavailable(t *testing.T, s storage.Storage) {
	t.Helper()
	for name, call := range clientCalls(s) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := call(ctx)
		cancel()
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s while the database is unreachable: %v, want storage.ErrUnavailable", name, err)
		}
	}
}

func assertAvailable(t *testing.T, s storage.Storage) {
	t.Helper()
	for name, call := range clientCalls(s) {
		if err := call(context.Background()); err != nil {
			t.Errorf("%s with the database reachable: %v", name, err)
		}
	}
}

// TestUnavailableServer: when the connection to PostgreSQL or MySQL is
// cut (open connections broken, new ones refused), reads, writes and
// transactions fail with storage.ErrUnavailable, which the API answers
// with a 503; once the server is reachable again the same Store works.
func TestUnavailableServer(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
		// via rewrites dsn to reach the server through proxy address addr.
		via func(t testing.TB, dsn string) (target string, rewrite func(addr string) string)
	}{
		{"postgres", freshPostgres, func(t testing.TB, dsn string) (string, func(string) string) {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			return u.Host, func(addr string) string { u.Host = addr; return u.String() }
		}},
		{"mysql", freshMySQL, func(t testing.TB, dsn string) (string, func(string) string) {
			_, rest, ok := strings.Cut(dsn, "@tcp(")
			host, _, ok2 := strings.Cut(rest, ")")
			if !ok || !ok2 {
				t.Fatalf("want a mysql://user@tcp(host:port)/db DSN, got %q", dsn)
			}
			return host, func(addr string) string { return strings.Replace(dsn, "@tcp("+host+")", "@tcp("+addr+")", 1) }
		}},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			direct := openMigrated(t, dsn)
			if err := direct.Clients().Create(context.Background(), storage.Client{ID: "c1", Metadata: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			target, rewrite := db.via(t, dsn)
			proxy := testbin.StartProxy(t, target)
			s, err := sqlstore.Open(context.Background(), rewrite(proxy.Addr()), sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			assertAvailable(t, s)

			proxy.Cut()
			assertUnavailable(t, s)
			if err := s.Ping(context.Background()); err == nil {
				t.Fatal("Ping succeeded through a cut connection")
			}

			proxy.Restore()
			assertAvailable(t, s)
		})
	}
}

// TestUnavailableSQLiteLocked: a SQLite file held by another process (a
// backup, a sqlite3 shell in a transaction) beyond the busy timeout makes
// writes fail with storage.ErrUnavailable. It waits out the busy timeout
// (10 s). A file made unreadable is no equivalent: the open connections
// keep their file descriptors and go on working.
func TestUnavailableSQLiteLocked(t *testing.T) {
	dsn := sqliteFile(t)
	s := openMigrated(t, dsn)
	if err := s.Clients().Create(context.Background(), storage.Client{ID: "c1", Metadata: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(dsn, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	err = s.Clients().Create(context.Background(), storage.Client{ID: "c2", Metadata: []byte(`{}`)})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("write while another process holds the file: %v, want storage.ErrUnavailable", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	assertAvailable(t, s)
}
