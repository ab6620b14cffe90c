package memory

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type clientStore struct{ s *Store }

var _ storage.ClientStore = clientStore{}

func (cs clientStore) Create(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("client id is empty")
	}
	return create(ctx, cs.s, cs.s.clients, c.ID, c, copyClient)
}

func (cs clientStore) Get(ctx context.Context, id string) (storage.Client, error) {
	return get(ctx, cs.s, cs.s.clients, id, copyClient)
}

func (cs clientStore) Update(ctx context.Context, id string, fn func(*storage.Client) error) (storage.Client, error) {
	return update(ctx, cs.s, cs.s.clients, id, copyClient, func(c *storage.Client) { c.ID = id }, fn)
}

func (cs clientStore) Delete(ctx context.Context, id string) error {
	return remove(ctx, cs.s, cs.s.clients, id)
}

// List orders by id (byte order, as the SQL backends' binary collations)
// and pages by keyset: the clients after f.After, at most f.Limit (100
// when not set).
func (cs clientStore) List(ctx context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	out, err := selectRows(ctx, cs.s, cs.s.clients, func(c *storage.Client) bool {
		return c.ID > f.After && (f.Name == "" || c.Name == f.Name) && (f.Owner == "" || c.Owner == f.Owner)
	}, copyClient)
	slices.SortFunc(out, func(a, b storage.Client) int { return strings.Compare(a.ID, b.ID) })
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	return out[:min(limit, len(out))], err
}
