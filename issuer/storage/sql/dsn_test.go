package sqlstore

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		dialect Dialect
		driver  string
		want    string // substring of the driver DSN
		err     string
	}{
		{dsn: "memory", dialect: DialectSQLite, driver: "sqlite", want: "vfs=memdb"},
		{dsn: "sqlite://:memory:", dialect: DialectSQLite, want: "vfs=memdb"},
		{dsn: "sqlite:///tmp/gh-dsn-test/db.sqlite?_fk=true", dialect: DialectSQLite, want: "file:/tmp/gh-dsn-test/db.sqlite?_pragma=journal_mode(WAL)"},
		{dsn: "postgres://u:p@h:5432/db?sslmode=disable&max_conns=7", dialect: DialectPostgres, driver: "pgx", want: "sslmode=disable"},
		{dsn: "cockroach://root@h:26257/db?sslmode=disable", dialect: DialectPostgres, driver: "pgx", want: "postgres://root@h:26257/db"},
		{dsn: "mysql://root@tcp(127.0.0.1:3306)/test", dialect: DialectMySQL, driver: "mysql", want: "root@tcp(127.0.0.1:3306)/test"},
		{dsn: "mysql://u:pw@db.local:3306/gh", dialect: DialectMySQL, driver: "mysql", want: "u:pw@tcp(db.local:3306)/gh"},
		{dsn: "oracle://x", err: "unsupported DSN scheme"},
		{dsn: "nonsense", err: "DSN must start with"},
		{dsn: "sqlite://", err: "needs a file path"},
		{dsn: "postgres://h/db?max_conns=many", err: "max_conns"},
		{dsn: "mysql://u@tcp(h:1)/d?max_conn_lifetime=soon", err: "max_conn_lifetime"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			p, err := parseDSN(tc.dsn)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.dialect != tc.dialect || (tc.driver != "" && p.driver != tc.driver) || !strings.Contains(p.driverDSN, tc.want) {
				t.Fatalf("got %+v", p)
			}
			if strings.Contains(p.driverDSN, "max_conns") {
				t.Fatal("pool parameters must not reach the driver")
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:s3cret@h:5432/db":      "postgres://user:xxxxx@h:5432/db",
		"mysql://root:pw@tcp(h:3306)/db?x=1":    "mysql://root:xxxxx@tcp(h:3306)/db?x=1",
		"mysql://root@tcp(h:3306)/db":           "mysql://root@tcp(h:3306)/db",
		"sqlite:///var/lib/gatehouse/db.sqlite": "sqlite:///var/lib/gatehouse/db.sqlite",
		"memory":                                "memory",
	} {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"memory", "sqlite:///x.db", "postgres://u:p@h/db?max_conns=3", "mysql://u@tcp(h:1)/d", "mysql://u:p@h:1/d?x=%zz", "cockroach://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		if strings.HasPrefix(dsn, "sqlite") {
			return // would create directories
		}
		_, _ = parseDSN(dsn)
		if red := RedactDSN(dsn); strings.Contains(dsn, ":s3cr3t@") && strings.Contains(red, "s3cr3t") {
			t.Fatalf("password left in %q", red)
		}
	})
}
