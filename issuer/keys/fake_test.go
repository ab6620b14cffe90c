package keys

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// memKeys is an in-memory storage.KeyStore with the SQL backend's
// semantics: Init is create-if-absent under one lock, List is newest first
// (ties: last inserted first) and ErrNotFound for an empty set.
type memKeys struct {
	mu    sync.Mutex
	rows  map[string][]memRow // by set
	seq   int
	lists int // List calls, to observe caching
	inits int // Init calls
	// initDelay widens the race window between concurrent Inits.
	initDelay time.Duration
	// listGate, when set, runs at the start of List with its context,
	// like a database driver that honours it; its error is List's.
	listGate func(context.Context) error
}

type memRow struct {
	key storage.Key
	seq int
}

var _ storage.KeyStore = (*memKeys)(nil)

func newMemKeys() *memKeys { return &memKeys{rows: map[string][]memRow{}} }

func cloneKey(k storage.Key) storage.Key {
	k.PublicJWK = slices.Clone(k.PublicJWK)
	k.PrivateEncrypted = slices.Clone(k.PrivateEncrypted)
	return k
}

func (m *memKeys) add(k storage.Key) {
	m.seq++
	m.rows[k.Set] = append(m.rows[k.Set], memRow{key: cloneKey(k), seq: m.seq})
}

func (m *memKeys) Add(_ context.Context, keys ...storage.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		if slices.ContainsFunc(m.rows[k.Set], func(r memRow) bool { return r.key.KID == k.KID }) ||
			slices.ContainsFunc(keys[:i], func(o storage.Key) bool { return o.Set == k.Set && o.KID == k.KID }) {
			return storage.ErrAlreadyExists
		}
	}
	for _, k := range keys {
		m.add(k)
	}
	return nil
}

func (m *memKeys) Init(_ context.Context, set string, keys []storage.Key) (bool, error) {
	if m.initDelay > 0 {
		time.Sleep(m.initDelay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inits++
	if len(m.rows[set]) > 0 {
		return false, nil
	}
	for _, k := range keys {
		k.Set = set
		m.add(k)
	}
	return true, nil
}

func (m *memKeys) List(ctx context.Context, set string) ([]storage.Key, error) {
	if m.listGate != nil {
		if err := m.listGate(ctx); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	rows := slices.Clone(m.rows[set])
	if len(rows) == 0 {
		return nil, storage.ErrNotFound
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].key.CreatedAt.Equal(rows[j].key.CreatedAt) {
			return rows[i].key.CreatedAt.After(rows[j].key.CreatedAt)
		}
		return rows[i].seq > rows[j].seq
	})
	out := make([]storage.Key, len(rows))
	for i, r := range rows {
		out[i] = cloneKey(r.key)
	}
	return out, nil
}

func (m *memKeys) Get(_ context.Context, set, kid string) (storage.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows[set] {
		if r.key.KID == kid {
			return cloneKey(r.key), nil
		}
	}
	return storage.Key{}, storage.ErrNotFound
}

func (m *memKeys) Replace(_ context.Context, set string, keys []storage.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, set)
	for _, k := range keys {
		k.Set = set
		m.add(k)
	}
	return nil
}

func (m *memKeys) Delete(_ context.Context, set, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.rows[set]
	i := slices.IndexFunc(rows, func(r memRow) bool { return r.key.KID == kid })
	if i < 0 {
		return storage.ErrNotFound
	}
	m.rows[set] = slices.Delete(rows, i, i+1)
	if len(m.rows[set]) == 0 {
		delete(m.rows, set)
	}
	return nil
}

func (m *memKeys) DeleteSet(_ context.Context, set string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows[set]) == 0 {
		return storage.ErrNotFound
	}
	delete(m.rows, set)
	return nil
}

func (m *memKeys) Sets(_ context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for s, rows := range m.rows {
		if len(rows) > 0 {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// all returns every stored row (a "database dump").
func (m *memKeys) all() []storage.Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Key
	for _, rows := range m.rows {
		for _, r := range rows {
			out = append(out, cloneKey(r.key))
		}
	}
	return out
}

// put overwrites one stored row in place (to simulate tampering).
func (m *memKeys) put(k storage.Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range m.rows[k.Set] {
		if r.key.KID == k.KID {
			m.rows[k.Set][i].key = cloneKey(k)
		}
	}
}

func (m *memKeys) listCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lists
}

// clock is storage/storetest's settable clock.
type clock = storetest.Clock

func newClock() *clock { return storetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }
