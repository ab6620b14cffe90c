package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

var errClosed = errors.New("storage: store is closed")

type writeJob struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

type writer struct {
	s    *Store
	jobs chan *writeJob
	quit chan struct{}
	done chan struct{}
}

func newWriter(s *Store) *writer {
	w := &writer{s: s, jobs: make(chan *writeJob, 4*maxBatch), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// submit queues fn and waits for its batch to commit.
func (w *writer) submit(ctx context.Context, fn func(*sql.Tx) error) error {
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-w.quit:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-w.quit:
		// The writer finishes the batch in hand before it stops.
		return <-j.done
	}
}

func (w *writer) close() {
	close(w.quit)
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*writeJob, 0, maxBatch)
	for {
		var first *writeJob
		select {
		case first = <-w.jobs:
		case <-w.quit:
			for {
				select {
				case j := <-w.jobs:
					j.done <- errClosed
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case j := <-w.jobs:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		w.run(batch)
	}
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
	tx, err := w.s.db.BeginTx(context.Background(), nil)
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
		if single {
			results[i] = mapErr(j.fn(tx))
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
		if err := j.fn(tx); err != nil {
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
