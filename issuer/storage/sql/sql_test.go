package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/conformance"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// Real-database runs are gated by these variables (scripts/with-dbs.sh and
// .ci/run set them; REQUIRE_DATABASES=1 turns a missing one into a failure).
const (
	envPostgres = "TEST_DATABASE_POSTGRES"
	envMySQL    = "TEST_DATABASE_MYSQL"
)

func openMigrated(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "gh_test_" + hex.EncodeToString(b[:])
}

func databaseDSN(t testing.TB, env string) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("REQUIRE_DATABASES") == "1" {
			t.Fatalf("%s is not set but REQUIRE_DATABASES=1", env)
		}
		t.Skipf("%s not set", env)
	}
	return dsn
}

// freshPostgres returns a DSN for a new, empty schema of the test database,
// dropped when the test ends.
func freshPostgres(t testing.TB) string {
	base := databaseDSN(t, envPostgres)
	admin, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := randomName()
	if _, err := admin.DB().Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
		if err == nil {
			_, _ = a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// freshMySQL returns a DSN for a new, empty database, dropped at the end.
func freshMySQL(t testing.TB) string {
	base := databaseDSN(t, envMySQL)
	admin, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := randomName()
	if _, err := admin.DB().Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sqlstore.Open(context.Background(), base, sqlstore.Options{})
		if err == nil {
			_, _ = a.DB().Exec("DROP DATABASE " + name)
			a.Close()
		}
	})
	// mysql://user@tcp(host:port)/db?params: swap the database name.
	head, params, _ := strings.Cut(base, "?")
	i := strings.LastIndex(head, "/")
	dsn := head[:i+1] + name
	if params != "" {
		dsn += "?" + params
	}
	return dsn
}

func sqliteFile(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "gatehouse.sqlite")
}

func TestConformanceSQLiteFile(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return openMigrated(t, sqliteFile(t)) })
}

func TestConformanceMemory(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return openMigrated(t, "memory") })
}

func TestConformancePostgres(t *testing.T) {
	databaseDSN(t, envPostgres)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return openMigrated(t, freshPostgres(t)) })
}

func TestConformanceMySQL(t *testing.T) {
	databaseDSN(t, envMySQL)
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return openMigrated(t, freshMySQL(t)) })
}
