package memory

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type clientStore struct{ *byID[storage.Client] }

var _ storage.ClientStore = clientStore{}

func (cs clientStore) Create(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("client id is empty")
	}
	return cs.byID.Create(ctx, c)
}

// List orders by id (byte order, as the SQL backends' binary collations)
// and pages by keyset: the clients after f.After, at most f.Limit (100
// when not set).
func (cs clientStore) List(ctx context.Context, f storage.ClientFilter) ([]storage.Client, error) {
	out, err := selectRows(ctx, cs.s, cs.rows, func(c *storage.Client) bool {
		return c.ID > f.After && (f.Name == "" || c.Name == f.Name) && (f.Owner == "" || c.Owner == f.Owner)
	}, copyClient)
	slices.SortFunc(out, func(a, b storage.Client) int { return strings.Compare(a.ID, b.ID) })
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	return out[:min(limit, len(out))], err
}

func (cs clientStore) Update(ctx context.Context, id string, fn func(*storage.Client) error, ev func(before, after storage.Client) *storage.RevocationEvent) (storage.Client, error) {
	unlock, err := cs.s.lock(ctx)
	if err != nil {
		return storage.Client{}, err
	}
	defer unlock()
	cur, ok := cs.rows[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	c := copyClient(cur)
	if err := fn(&c); err != nil {
		return storage.Client{}, err
	}
	c.ID = id
	cs.rows[id] = copyClient(c)
	if ev != nil {
		if e := ev(copyClient(cur), copyClient(c)); e != nil {
			cs.s.record(*e)
		}
	}
	return c, nil
}

func (cs clientStore) Delete(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	return cs.deleteRecording(ctx, id, ev)
}
