package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// stressDuration is 30 s (the acceptance figure) unless -short or
// GATEHOUSE_STRESS_DURATION says otherwise.
func stressDuration(t *testing.T) time.Duration {
	if v := os.Getenv("GATEHOUSE_STRESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 30 * time.Second
}

// TestSQLiteConcurrentWriters: 64 writers (plus readers) for the stress
// duration on the file and memory backends must see no error at all, in
// particular no "database is locked".
func TestSQLiteConcurrentWriters(t *testing.T) {
	for _, backend := range []string{"file", "memory"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := "memory"
			if backend == "file" {
				dsn = sqliteFile(t)
			}
			s := openMigrated(t, dsn)
			ctx, cancel := context.WithTimeout(context.Background(), stressDuration(t))
			defer cancel()
			var writes, reads atomic.Int64
			var wg sync.WaitGroup
			var firstErr atomic.Value
			fail := func(err error) {
				if ctx.Err() == nil { // errors after the deadline are the context's
					firstErr.CompareAndSwap(nil, err)
				}
			}
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ctx.Err() == nil; i++ {
						sig := fmt.Sprintf("w%d-%d", w, i)
						tk := storage.Token{Kind: storage.KindAccessToken, Signature: sig, RequestID: sig, ClientID: "c", Active: true,
							IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: json.RawMessage(`{}`)}
						if err := s.Tokens().Create(ctx, tk); err != nil {
							fail(err)
							return
						}
						if _, err := s.Tokens().Update(ctx, storage.KindAccessToken, sig, func(t *storage.Token) error { t.Active = false; return nil }); err != nil {
							fail(err)
							return
						}
						writes.Add(2)
					}
				}()
			}
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						if _, err := s.Tokens().Get(ctx, storage.KindAccessToken, "w0-0"); err != nil && err != storage.ErrNotFound {
							fail(err)
							return
						}
						reads.Add(1)
					}
				}()
			}
			wg.Wait()
			if err, _ := firstErr.Load().(error); err != nil {
				t.Fatalf("error under load: %v", err)
			}
			t.Logf("%s: %d writes, %d reads, no errors", backend, writes.Load(), reads.Load())
			if backend == "file" {
				// The background checkpointer keeps the WAL bounded.
				path := strings.TrimPrefix(dsn, "sqlite://") + "-wal"
				if fi, err := os.Stat(path); err == nil {
					t.Logf("WAL size after the run: %d KiB", fi.Size()/1024)
					if fi.Size() > 64<<20 {
						t.Errorf("WAL grew to %d MiB", fi.Size()>>20)
					}
				}
			}
			if writes.Load() == 0 {
				t.Fatal("no write went through")
			}
		})
	}
}

// TestMemoryOutlivesPoolDrain: Hydra's in-memory SQLite loses its tables
// when its pool drains; ours lives exactly as long as the Store.
func TestMemoryOutlivesPoolDrain(t *testing.T) {
	s := openMigrated(t, "memory")
	ctx := context.Background()
	if err := s.Clients().Create(ctx, storage.Client{ID: "survivor"}); err != nil {
		t.Fatal(err)
	}
	s.DB().SetMaxIdleConns(0) // closes every idle connection
	time.Sleep(10 * time.Millisecond)
	s.DB().SetMaxIdleConns(4)
	if _, err := s.Clients().Get(ctx, "survivor"); err != nil {
		t.Fatalf("memory database lost after the pool drained: %v", err)
	}
	// Two stores never share one memory database.
	other := openMigrated(t, "memory")
	if _, err := other.Clients().Get(ctx, "survivor"); err != storage.ErrNotFound {
		t.Fatalf("second memory store sees the first one's data: %v", err)
	}
}

func TestMigrationStatusAndCheck(t *testing.T) {
	for name, fresh := range map[string]func(testing.TB) string{"sqlite": sqliteFile, "postgres": freshPostgres, "mysql": freshMySQL} {
		t.Run(name, func(t *testing.T) {
			dsn := fresh(t)
			s, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			err = s.CheckMigrated(ctx)
			if err == nil || !strings.Contains(err.Error(), "pending") {
				t.Fatalf("unmigrated database: CheckMigrated = %v", err)
			}
			st, err := s.MigrationStatus(ctx)
			if err != nil || len(st) == 0 || st[0].Applied {
				t.Fatalf("status before: %+v %v", st, err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil { // idempotent
				t.Fatal(err)
			}
			if err := s.CheckMigrated(ctx); err != nil {
				t.Fatal(err)
			}
			st, _ = s.MigrationStatus(ctx)
			if !st[0].Applied || st[0].Name != "00001_init.sql" {
				t.Fatalf("status after: %+v", st)
			}
		})
	}
}

// TestPostgresReplicasStartTogether: two replicas migrating and creating
// their key sets at once on one fresh database end with one consistent set.
func TestPostgresReplicasStartTogether(t *testing.T) {
	dsn := freshPostgres(t)
	var wg sync.WaitGroup
	created := make([]bool, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			if errs[i] = s.Migrate(context.Background()); errs[i] != nil {
				return
			}
			created[i], errs[i] = s.Keys().Init(context.Background(), "hydra.openid.id-token",
				[]storage.Key{{Set: "hydra.openid.id-token", KID: "replica-" + strconv.Itoa(i), Alg: "RS256", Use: "sig", PublicJWK: json.RawMessage(`{}`)}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if created[0] == created[1] {
		t.Fatalf("created = %v, want exactly one winner", created)
	}
	s := openMigrated(t, dsn)
	keys, err := s.Keys().List(context.Background(), "hydra.openid.id-token")
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %+v %v", keys, err)
	}
}

// janitorRows is the number of expired rows the janitor test deletes:
// 1,000,000 in CI (GATEHOUSE_JANITOR_ROWS), fewer by default.
func janitorRows(t *testing.T) int {
	if v := os.Getenv("GATEHOUSE_JANITOR_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// bulkInsertExpired writes n expired tokens and 100 live ones fast.
func bulkInsertExpired(t *testing.T, db *sql.DB, dialect sqlstore.Dialect, n int) {
	const per = 500
	now := time.Now()
	past, future := now.Add(-time.Hour).UnixMicro(), now.Add(time.Hour).UnixMicro()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	insert := func(prefix string, count int, exp int64) {
		for i := 0; i < count; i += per {
			var b strings.Builder
			b.WriteString("INSERT INTO tokens (kind, signature, request_id, client_id, subject, active, issued_at, expires_at, data) VALUES ")
			for j := i; j < min(i+per, count); j++ {
				if j > i {
					b.WriteByte(',')
				}
				active := "1"
				if dialect == sqlstore.DialectPostgres {
					active = "TRUE"
				}
				fmt.Fprintf(&b, "('access_token','%s%d','r%d','c','u',%s,%d,%d,'')", prefix, j, j, active, past, exp)
			}
			if _, err := tx.Exec(b.String()); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert("expired-", n, past)
	insert("live-", 100, future)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestJanitorLargeTable: flushing 1,000,000 expired tokens in bounded
// batches finishes and keeps every live token.
func TestJanitorLargeTable(t *testing.T) {
	for name, fresh := range map[string]func(testing.TB) string{"sqlite": sqliteFile, "postgres": freshPostgres} {
		t.Run(name, func(t *testing.T) {
			s := openMigrated(t, fresh(t))
			n := janitorRows(t)
			start := time.Now()
			bulkInsertExpired(t, s.DB(), s.Dialect(), n)
			t.Logf("inserted %d expired rows in %v", n, time.Since(start))
			ctx := context.Background()
			start = time.Now()
			var total int64
			batches := 0
			for {
				d, err := s.Tokens().FlushExpired(ctx, time.Now(), 10_000)
				if err != nil {
					t.Fatal(err)
				}
				total += d
				batches++
				if d < 10_000 {
					break
				}
			}
			t.Logf("flushed %d rows in %d batches in %v", total, batches, time.Since(start))
			if total != int64(n) {
				t.Fatalf("flushed %d, want %d", total, n)
			}
			var live int
			if err := s.DB().QueryRow("SELECT COUNT(*) FROM tokens").Scan(&live); err != nil {
				t.Fatal(err)
			}
			if live != 100 {
				t.Fatalf("%d rows left, want the 100 live tokens", live)
			}
		})
	}
}
