package keys

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// memKeys is storage/memory's key store with two probes: Init waits
// initDelay first (to widen the race between concurrent Inits) and List
// runs listGate first with its context, like a database driver that
// honours it (listGate's error is List's); both count their calls.
type memKeys struct {
	storage.KeyStore
	mem *memory.Store

	mu        sync.Mutex
	lists     int // List calls, to observe caching
	inits     int // Init calls
	initDelay time.Duration
	listGate  func(context.Context) error
}

func newMemKeys() *memKeys {
	mem := memory.New(memory.Options{})
	return &memKeys{KeyStore: mem.Keys(), mem: mem}
}

func (m *memKeys) Init(ctx context.Context, set string, keys []storage.Key) (bool, error) {
	if m.initDelay > 0 {
		time.Sleep(m.initDelay)
	}
	m.mu.Lock()
	m.inits++
	m.mu.Unlock()
	return m.KeyStore.Init(ctx, set, keys)
}

func (m *memKeys) List(ctx context.Context, set string) ([]storage.Key, error) {
	if m.listGate != nil {
		if err := m.listGate(ctx); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	m.lists++
	m.mu.Unlock()
	return m.KeyStore.List(ctx, set)
}

func (m *memKeys) listCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lists
}

// all returns every stored row (a "database dump").
func (m *memKeys) all() []storage.Key { return m.mem.Dump().Keys }

// put overwrites the stored row of k's set and kid (to simulate
// tampering), leaving the set's other rows as they are.
func (m *memKeys) put(t testing.TB, k storage.Key) {
	t.Helper()
	ctx := context.Background()
	rows, err := m.KeyStore.List(ctx, k.Set)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if rows[i].KID == k.KID {
			rows[i] = k
		}
	}
	if err := m.KeyStore.Replace(ctx, k.Set, rows, nil); err != nil {
		t.Fatal(err)
	}
}

// clock is storage/storetest's settable clock.
type clock = storetest.Clock

func newClock() *clock { return storetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }
