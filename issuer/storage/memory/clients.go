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
