package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// SQLite allows one writer at a time. Rather than let connections fight
// over the lock ("database is locked"), every write of this process goes
// through one writer goroutine, which runs whatever writes are queued
// together in one transaction (group commit): under load, one WAL commit
// is shared by many writes, each isolated from the others by a savepoint
// so one failing write never undoes another. Readers use the pool in
// parallel under WAL.

// maxBatch bounds the writes committed together.
const maxBatch = 128

// A write's fate is decided when the writer takes it into a batch. A write
// whose caller gave up (its context ended) before then is not run and is
// answered with the context's error. Once in a batch, a write runs to its
// end under a context detached from its caller's cancellation
// (context.WithoutCancel): SQLite rolls back the whole explicit
// transaction when a statement in it is interrupted, and the driver
// interrupts a statement whose context ends, so one caller giving up
// would undo the other writes of its batch. submit waits for that answer
// even if its caller gave up meanwhile (a batch takes milliseconds), so
// every caller is told exactly what happened to its write: nil means it
// committed, an error means it did not.

type writeJob struct {
	ctx  context.Context
	fn   func(context.Context, *sql.Tx) error
	done chan error
	// stmt: fn runs exactly one statement. SQLite undoes a failing
	// statement by itself (statement journal), so it needs no savepoint.
	stmt bool
}

type writer struct {
	s         *Store
	conn      *sql.Conn // the writer's own connection (nil until first use or after an error)
	jobs      chan *writeJob
	quit      chan struct{} // closed by close: stop taking writes
	closeOnce sync.Once
	done      chan struct{} // closed when loop has returned
}

func newWriter(s *Store) *writer {
	w := &writer{s: s, jobs: make(chan *writeJob, 4*maxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// submit queues fn and waits for its batch to commit. oneStatement says
// that fn runs a single statement. After close it returns
// storage.ErrClosed.
func (w *writer) submit(ctx context.Context, oneStatement bool, fn func(context.Context, *sql.Tx) error) error {
	select {
	case <-w.quit:
		return storage.ErrClosed
	default:
	}
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1), stmt: oneStatement}
	select {
	case w.jobs <- j:
	case <-w.quit:
		return storage.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-w.done:
		// The loop answers every write it takes before it returns: a
		// write still unanswered was queued after its last look at the
		// queue, and never ran.
		select {
		case err := <-j.done:
			return err
		default:
			return storage.ErrClosed
		}
	}
}

// close stops the writer once the batch in hand is committed; writes
// still queued are answered storage.ErrClosed. It may be called more than
// once, and concurrently with submit.
func (w *writer) close() {
	w.closeOnce.Do(func() { close(w.quit) })
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	defer func() {
		if w.conn != nil {
			_ = w.conn.Close()
		}
	}()
	batch := make([]*writeJob, 0, maxBatch)
	for {
		var first *writeJob
		select {
		case first = <-w.jobs:
		case <-w.quit:
			for {
				select {
				case j := <-w.jobs:
					j.done <- storage.ErrClosed
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		batch = w.drain(batch)
		// Gather: let the goroutines that are about to submit (handlers
		// woken with this job's) do so before the batch is cut, so one
		// commit serves more writes. Yielding costs nothing when no one
		// else is runnable.
		for range gatherYields {
			if len(batch) >= maxBatch {
				break
			}
			runtime.Gosched()
			batch = w.drain(batch)
		}
		w.run(batch)
	}
}

// gatherYields is how many times the writer yields to collect more writes
// before it cuts a batch.
const gatherYields = 2

// drain adds the queued jobs to batch without waiting.
func (w *writer) drain(batch []*writeJob) []*writeJob {
	for len(batch) < maxBatch {
		select {
		case j := <-w.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// begin starts a transaction on the writer's own connection. Keeping one
// connection for every write keeps its page cache warm: SQLite drops a
// connection's cache when another connection wrote since it last read.
func (w *writer) begin() (*sql.Tx, error) {
	if w.conn == nil {
		c, err := w.s.db.Conn(context.Background())
		if err != nil {
			return nil, err
		}
		w.conn = c
	}
	tx, err := w.conn.BeginTx(context.Background(), nil)
	if err != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
	return tx, err
}

// run commits one batch and answers every job in it.
func (w *writer) run(batch []*writeJob) {
	unlock := w.s.lockWrites()
	defer unlock()
	results := make([]error, len(batch))
	live := 0
	for i, j := range batch {
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		live++
	}
	if live == 0 {
		w.answer(batch, results)
		return
	}
	tx, err := w.begin()
	if err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = mapErr(err)
			}
		}
		w.answer(batch, results)
		return
	}
	single := live == 1
	for i, j := range batch {
		if results[i] != nil {
			continue
		}
		if j.stmt && !single {
			results[i] = mapErr(j.fn(context.WithoutCancel(j.ctx), tx))
			continue
		}
		if single {
			results[i] = mapErr(j.fn(context.WithoutCancel(j.ctx), tx))
			if results[i] != nil {
				_ = tx.Rollback()
				w.answer(batch, results)
				return
			}
			continue
		}
		sp := fmt.Sprintf("w%d", i)
		if _, err := tx.Exec("SAVEPOINT " + sp); err != nil {
			results[i] = mapErr(err)
			continue
		}
		if err := j.fn(context.WithoutCancel(j.ctx), tx); err != nil {
			results[i] = mapErr(err)
			_, _ = tx.Exec("ROLLBACK TO " + sp)
		}
		_, _ = tx.Exec("RELEASE " + sp)
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = mapErr(err)
			}
		}
	}
	w.answer(batch, results)
}

func (w *writer) answer(batch []*writeJob, results []error) {
	for i, j := range batch {
		j.done <- results[i]
	}
}
