package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// keyStore keeps each set as a map of its keys. A set exists from its
// first Add, Init or Replace until DeleteSet or the deletion of its last
// key, as the SQL backends' jwk_sets marker row does.
type keyStore struct{ s *Store }

var _ storage.KeyStore = keyStore{}

// put checks that keys can be added to the store's sets (no (set, kid)
// pair taken, none twice among keys) and then adds them, creating their
// sets; nothing is added when one cannot be. Called under the write lock.
func (ks keyStore) put(keys []storage.Key) error {
	type pair struct{ set, kid string }
	seen := make(map[pair]bool, len(keys))
	for _, k := range keys {
		p := pair{k.Set, k.KID}
		if _, ok := ks.s.keySets[k.Set][k.KID]; ok || seen[p] {
			return storage.ErrAlreadyExists
		}
		seen[p] = true
	}
	now := ks.s.now()
	for _, k := range keys {
		if k.CreatedAt.IsZero() {
			k.CreatedAt = now
		}
		ks.ensureSet(k.Set)[k.KID] = copyKey(k)
	}
	return nil
}

// inSet returns a copy of keys with each key's Set set to set.
func inSet(set string, keys []storage.Key) []storage.Key {
	out := slices.Clone(keys)
	for i := range out {
		out[i].Set = set
	}
	return out
}

func (ks keyStore) ensureSet(set string) map[string]storage.Key {
	m, ok := ks.s.keySets[set]
	if !ok {
		m = map[string]storage.Key{}
		ks.s.keySets[set] = m
	}
	return m
}

func (ks keyStore) Add(ctx context.Context, keys ...storage.Key) error {
	unlock, err := ks.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return ks.put(keys)
}

// Init stores keys in set (whatever their own Set fields say) if the set
// does not exist yet.
func (ks keyStore) Init(ctx context.Context, set string, keys []storage.Key) (bool, error) {
	unlock, err := ks.s.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, ok := ks.s.keySets[set]; ok {
		return false, nil
	}
	if err := ks.put(inSet(set, keys)); err != nil {
		return false, err
	}
	ks.ensureSet(set)
	return true, nil
}

// List returns the set's keys newest first (then by kid).
func (ks keyStore) List(ctx context.Context, set string) ([]storage.Key, error) {
	unlock, err := ks.s.rlock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m := ks.s.keySets[set]
	if len(m) == 0 {
		return nil, storage.ErrNotFound
	}
	out := make([]storage.Key, 0, len(m))
	for _, k := range m {
		out = append(out, copyKey(k))
	}
	slices.SortFunc(out, func(a, b storage.Key) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.KID, b.KID))
	})
	return out, nil
}

func (ks keyStore) Get(ctx context.Context, set, kid string) (storage.Key, error) {
	unlock, err := ks.s.rlock(ctx)
	if err != nil {
		return storage.Key{}, err
	}
	defer unlock()
	k, ok := ks.s.keySets[set][kid]
	if !ok {
		return storage.Key{}, storage.ErrNotFound
	}
	return copyKey(k), nil
}

// Replace stores keys as the whole content of set, each under set
// whatever its own Set field says.
func (ks keyStore) Replace(ctx context.Context, set string, keys []storage.Key, ev storage.KeyRevocationFunc) error {
	unlock, err := ks.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	old, existed := ks.s.keySets[set]
	ks.s.keySets[set] = map[string]storage.Key{}
	if err := ks.put(inSet(set, keys)); err != nil {
		if existed {
			ks.s.keySets[set] = old
		} else {
			delete(ks.s.keySets, set)
		}
		return err
	}
	if ev != nil {
		var before []storage.Key
		for _, k := range old {
			before = append(before, copyKey(k))
		}
		slices.SortFunc(before, func(a, b storage.Key) int { return strings.Compare(a.KID, b.KID) })
		if removed := storage.KeysRemoved(before, keys); len(removed) > 0 {
			ks.s.record(ev(removed)...)
		}
	}
	return nil
}

func (ks keyStore) Delete(ctx context.Context, set, kid string, ev storage.KeyRevocationFunc) error {
	unlock, err := ks.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	m := ks.s.keySets[set]
	k, ok := m[kid]
	if !ok {
		return storage.ErrNotFound
	}
	delete(m, kid)
	if len(m) == 0 { // the set is gone with its last key
		delete(ks.s.keySets, set)
	}
	if ev != nil {
		ks.s.record(ev([]storage.Key{copyKey(k)})...)
	}
	return nil
}

func (ks keyStore) DeleteSet(ctx context.Context, set string, ev storage.KeyRevocationFunc) error {
	unlock, err := ks.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	m, ok := ks.s.keySets[set]
	if !ok {
		return storage.ErrNotFound
	}
	delete(ks.s.keySets, set)
	if ev != nil && len(m) > 0 {
		removed := make([]storage.Key, 0, len(m))
		for _, k := range m {
			removed = append(removed, copyKey(k))
		}
		slices.SortFunc(removed, func(a, b storage.Key) int { return strings.Compare(a.KID, b.KID) })
		ks.s.record(ev(removed)...)
	}
	return nil
}

func (ks keyStore) Sets(ctx context.Context) ([]string, error) {
	unlock, err := ks.s.rlock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []string
	for set := range ks.s.keySets {
		out = append(out, set)
	}
	slices.Sort(out)
	return out, nil
}
