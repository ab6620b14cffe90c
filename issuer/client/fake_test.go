package client

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// memClients is an in-memory storage.ClientStore for tests.
type memClients struct {
	mu   sync.Mutex
	rows map[string]storage.Client
	gets int // number of Get calls (to observe the cache)
}

var _ storage.ClientStore = (*memClients)(nil)

func newMemClients() *memClients { return &memClients{rows: map[string]storage.Client{}} }

func cloneRow(c storage.Client) storage.Client {
	c.RotatedSecretHashes = slices.Clone(c.RotatedSecretHashes)
	c.Metadata = slices.Clone(c.Metadata)
	return c
}

func (m *memClients) Create(_ context.Context, c storage.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[c.ID]; ok {
		return storage.ErrAlreadyExists
	}
	m.rows[c.ID] = cloneRow(c)
	return nil
}

func (m *memClients) Get(_ context.Context, id string) (storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	c, ok := m.rows[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return cloneRow(c), nil
}

func (m *memClients) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memClients) Update(_ context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.rows[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	c = cloneRow(c)
	if err := fn(&c); err != nil {
		return storage.Client{}, err
	}
	c.ID = id
	m.rows[id] = cloneRow(c)
	return c, nil
}

func (m *memClients) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[id]; !ok {
		return storage.ErrNotFound
	}
	delete(m.rows, id)
	return nil
}

func (m *memClients) List(_ context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Client
	for _, c := range m.rows {
		if (f.Name != "" && c.Name != f.Name) || (f.Owner != "" && c.Owner != f.Owner) || c.ID <= f.After {
			continue
		}
		out = append(out, cloneRow(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// memNonces is an in-memory storage.NonceStore for tests.
type memNonces struct {
	mu   sync.Mutex
	used map[string]time.Time
	now  func() time.Time
}

var _ storage.NonceStore = (*memNonces)(nil)

func newMemNonces(now func() time.Time) *memNonces {
	return &memNonces{used: map[string]time.Time{}, now: now}
}

func (n *memNonces) Use(_ context.Context, key string, expiresAt time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if exp, ok := n.used[key]; ok && n.now().Before(exp) {
		return storage.ErrAlreadyExists
	}
	n.used[key] = expiresAt
	return nil
}

func (n *memNonces) FlushExpired(_ context.Context, before time.Time, limit int) (int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var k int64
	for key, exp := range n.used {
		if exp.Before(before) && int(k) < limit {
			delete(n.used, key)
			k++
		}
	}
	return k, nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
