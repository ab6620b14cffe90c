package sqlstore

import (
	"context"
	"database/sql"
)

// Tx exposes tx to the tests of package sqlstore_test: they run writes of
// their own through the SQLite writer.
func (s *Store) Tx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return s.tx(ctx, fn)
}

// QueuedWrites is how many writes wait for the SQLite writer.
func (s *Store) QueuedWrites() int { return len(s.writer.jobs) }
