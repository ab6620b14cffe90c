// Package storetest holds in-memory doubles for the issuer's unit tests:
// a client store, a nonce store and a settable clock. They follow the
// storage interfaces' contracts (sentinel errors, copies in and out, the
// SQL stores' default list limit); the real backends are tested by
// storage/conformance.
package storetest

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Clients is an in-memory storage.ClientStore.
type Clients struct {
	mu   sync.Mutex
	rows map[string]storage.Client
	gets int
}

var _ storage.ClientStore = (*Clients)(nil)

// NewClients returns an empty client store.
func NewClients() *Clients { return &Clients{rows: map[string]storage.Client{}} }

func cloneClient(c storage.Client) storage.Client {
	c.RotatedSecretHashes = slices.Clone(c.RotatedSecretHashes)
	c.Metadata = slices.Clone(c.Metadata)
	return c
}

func (m *Clients) Create(_ context.Context, c storage.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[c.ID]; ok {
		return storage.ErrAlreadyExists
	}
	m.rows[c.ID] = cloneClient(c)
	return nil
}

func (m *Clients) Get(_ context.Context, id string) (storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	c, ok := m.rows[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return cloneClient(c), nil
}

// Gets is the number of Get calls so far (to observe a cache in front).
func (m *Clients) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *Clients) Update(_ context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.rows[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	c = cloneClient(c)
	if err := fn(&c); err != nil {
		return storage.Client{}, err
	}
	c.ID = id
	m.rows[id] = cloneClient(c)
	return c, nil
}

func (m *Clients) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[id]; !ok {
		return storage.ErrNotFound
	}
	delete(m.rows, id)
	return nil
}

// List filters, orders by id and pages as the SQL stores do (Limit 0 or
// less: 100).
func (m *Clients) List(_ context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Client
	for _, c := range m.rows {
		if (f.Name != "" && c.Name != f.Name) || (f.Owner != "" && c.Owner != f.Owner) || c.ID <= f.After {
			continue
		}
		out = append(out, cloneClient(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Nonces is an in-memory storage.NonceStore.
type Nonces struct {
	mu   sync.Mutex
	used map[string]time.Time
	now  func() time.Time
}

var _ storage.NonceStore = (*Nonces)(nil)

// NewNonces returns an empty nonce store whose notion of "still used"
// follows now.
func NewNonces(now func() time.Time) *Nonces {
	return &Nonces{used: map[string]time.Time{}, now: now}
}

func (n *Nonces) Use(_ context.Context, key string, expiresAt time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if exp, ok := n.used[key]; ok && n.now().Before(exp) {
		return storage.ErrAlreadyExists
	}
	n.used[key] = expiresAt
	return nil
}

func (n *Nonces) FlushExpired(_ context.Context, before time.Time, limit int) (int64, error) {
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

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
