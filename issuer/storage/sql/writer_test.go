package sqlstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
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
