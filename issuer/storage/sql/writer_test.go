package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// Writes batched into one SQLite transaction stay independent: a failing
// one (a duplicate key) is undone alone, whether it ran under a savepoint
// or as a single statement, and every other write of its batch commits.
func TestSQLiteBatchedWritesFailAlone(t *testing.T) {
	s := openMigrated(t, sqliteFile(t))
	ctx := context.Background()
	tok := func(sig string) storage.Token {
		return storage.Token{Kind: storage.KindAccessToken, Signature: sig, RequestID: "r" + sig, ClientID: "c", Active: true,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: []byte(`{}`)}
	}
	const n = 400
	for i := 0; i < n; i += 2 { // every even signature exists already
		if err := s.Tokens().Create(ctx, tok(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Tokens().Create(ctx, tok(strconv.Itoa(i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("duplicate %d: %v", i, err)
		}
		if i%2 == 1 && err != nil {
			t.Fatalf("new %d: %v", i, err)
		}
		if _, err := s.Tokens().Get(ctx, storage.KindAccessToken, strconv.Itoa(i)); err != nil {
			t.Fatalf("token %d lost: %v", i, err)
		}
	}
}

// A write whose caller gives up while its statement runs inside a busy
// batch must not undo the other writes of the batch, nor be undone itself:
// SQLite rolls back a whole explicit transaction when a statement in it is
// interrupted, and the SQLite driver interrupts a statement when its
// context ends. Every write, the cancelled one included, must be told
// exactly what the database holds afterwards.
func TestSQLiteWriterCancelledJobKeepsBatch(t *testing.T) {
	s := openMigrated(t, sqliteFile(t))
	bg := context.Background()
	if _, err := s.DB().Exec("CREATE TABLE wtest (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	insert := func(id int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO wtest (id) VALUES (?)", id)
			return err
		}
	}
	// Hold the writer in a batch of its own while the next batch queues up.
	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.Tx(bg, func(context.Context, *sql.Tx) error { close(held); <-release; return nil })
	}()
	<-held

	const n, victim = 100, 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	started := make(chan struct{})
	vctx, cancel := context.WithCancel(bg)
	defer cancel()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i != victim {
				errs[i] = s.Tx(bg, insert(i))
				return
			}
			errs[i] = s.Tx(vctx, func(ctx context.Context, tx *sql.Tx) error {
				if err := insert(i)(ctx, tx); err != nil {
					return err
				}
				close(started)
				// A statement slow enough to be interrupted: an INSERT
				// that walks a few million generated rows and inserts none.
				_, err := tx.ExecContext(ctx, `INSERT INTO wtest (id) SELECT x FROM (WITH RECURSIVE c(x) AS
					(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c) WHERE x < 0`)
				return err
			})
		}()
		// Queue the writes in order, the victim in the middle of the batch.
		for s.QueuedWrites() < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	go func() {
		<-started
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	close(release)
	wg.Wait()

	for i, err := range errs {
		var got int
		switch qerr := s.DB().QueryRow("SELECT count(*) FROM wtest WHERE id = ?", i).Scan(&got); {
		case qerr != nil:
			t.Fatal(qerr)
		case err == nil && got != 1:
			t.Errorf("write %d was told it committed but is not in the database", i)
		case err != nil && got != 0:
			t.Errorf("write %d was told %v but is in the database", i, err)
		}
	}
}

// Closing a SQLite store while writes are in flight: every call returns
// (none waits forever for a writer that has stopped), each is either done
// or refused with storage.ErrClosed, and calls after Close are refused.
// Run under -race, it also checks that Close does not race with writes.
func TestSQLiteCloseDuringWrites(t *testing.T) {
	for round := range 20 {
		s, err := sqlstore.Open(context.Background(), sqliteFile(t), sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		const writers = 16
		errs := make(chan error, writers*1000)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					err := s.Nonces().Use(context.Background(), fmt.Sprintf("%d-%d-%d", round, w, i), time.Now().Add(time.Hour))
					errs <- err
					if err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		closed := make(chan error, 2)
		go func() { closed <- s.Close() }()
		go func() { closed <- s.Close() }()
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		select {
		case <-allDone:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: writes still waiting 30 s after Close", round)
		}
		for range 2 {
			if err := <-closed; err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
		}
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, storage.ErrClosed) {
				t.Fatalf("round %d: a write during Close answered %v, want nil or storage.ErrClosed", round, err)
			}
		}
		if err := s.Nonces().Use(context.Background(), "after", time.Now().Add(time.Hour)); !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("write after Close: %v, want storage.ErrClosed", err)
		}
		if _, err := s.Clients().Get(context.Background(), "after"); !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("read after Close: %v, want storage.ErrClosed", err)
		}
	}
}
