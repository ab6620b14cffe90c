package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

type tokenStore struct {
	*byKind[storage.TokenKind, storage.Token]
}

var _ storage.TokenStore = tokenStore{}

// Update is Redeem without a read, revocation or successors.
func (ts tokenStore) Update(ctx context.Context, kind storage.TokenKind, sig string, fn func(*storage.Token) error) (storage.Token, error) {
	return ts.Redeem(ctx, storage.RedeemRequest{Kind: kind, Signature: sig, Update: fn})
}

// Redeem with a read of this token runs r.Update on a copy of the read
// first, outside the lock, and stores the result only if the token is
// still stored as read; otherwise (or without a read) r.Update runs
// under the lock on the token as it is now. That is what PostgreSQL does
// (one compare-and-set statement, then a new read on a conflict), so code
// tested here meets r.Update running twice, on an outdated read and then
// on the current token, as it will in production.
func (ts tokenStore) Redeem(ctx context.Context, r storage.RedeemRequest) (storage.Token, error) {
	k := tokenKey{r.Kind, r.Signature}
	var first *storage.Token
	if r.Read != nil && r.Read.Kind == r.Kind && r.Read.Signature == r.Signature {
		t := copyToken(*r.Read)
		if err := r.Update(&t); err != nil {
			return storage.Token{}, err
		}
		first = &t
	}
	unlock, err := ts.s.lock(ctx)
	if err != nil {
		return storage.Token{}, err
	}
	defer unlock()
	cur, ok := ts.rows[k]
	if !ok {
		return storage.Token{}, storage.ErrNotFound
	}
	var t storage.Token
	if first != nil && sameState(cur, *r.Read) {
		t = *first
	} else {
		t = copyToken(cur)
		if err := r.Update(&t); err != nil {
			return storage.Token{}, err
		}
	}
	t.Kind, t.Signature = r.Kind, r.Signature
	if err := ts.insertable(r.Issue); err != nil {
		return storage.Token{}, err
	}
	ts.rows[k] = copyToken(t)
	if r.RevokeRequest != "" {
		for ko, o := range ts.rows {
			if o.ClientID == t.ClientID && o.RequestID == r.RevokeRequest && ko != k {
				o.Active = false
				ts.rows[ko] = o
			}
		}
	}
	ts.insert(r.Issue)
	return t, nil
}

// sameState reports whether the stored token cur is still as read, by
// the columns PostgreSQL's compare-and-set compares (redeemStatement in
// storage/sql): every change of a token changes its active flag, expiry or
// data. The caller's other fields may come from the write that created
// the token rather than a read (finer times, say) and must not count.
func sameState(cur, read storage.Token) bool {
	return cur.Active == read.Active && micros(cur.ExpiresAt) == micros(read.ExpiresAt) && bytes.Equal(cur.Data, read.Data)
}

// insertable checks that every token of issue can be created: none is
// stored already, none is there twice. Called under the write lock.
func (ts tokenStore) insertable(issue []storage.Token) error {
	seen := make(map[tokenKey]bool, len(issue))
	for _, n := range issue {
		k := tokenKey{n.Kind, n.Signature}
		if _, ok := ts.rows[k]; ok || seen[k] {
			return storage.ErrAlreadyExists
		}
		seen[k] = true
	}
	return nil
}

// insert stores copies of tokens insertable accepted.
func (ts tokenStore) insert(tokens []storage.Token) {
	for _, n := range tokens {
		ts.rows[tokenKey{n.Kind, n.Signature}] = copyToken(n)
	}
}

func (ts tokenStore) Revoke(ctx context.Context, kind storage.TokenKind, sig string, ev storage.RevocationFunc) error {
	unlock, err := ts.s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	k := tokenKey{kind, sig}
	t, ok := ts.rows[k]
	if !ok {
		return storage.ErrNotFound
	}
	var revoked []storage.Token
	if t.Active {
		revoked = []storage.Token{copyToken(t)}
		t.Active = false
	}
	return ts.s.revoked(ev, revoked, func() { ts.rows[k] = t })
}

func (ts tokenStore) RevokeRequest(ctx context.Context, clientID, requestID string, ev storage.RevocationFunc) error {
	_, err := ts.revoke(ctx, func(t *storage.Token) bool { return t.ClientID == clientID && t.RequestID == requestID }, true, ev)
	return err
}

func (ts tokenStore) RevokeClient(ctx context.Context, clientID string, ev storage.RevocationFunc) (int64, error) {
	return ts.revoke(ctx, func(t *storage.Token) bool { return t.ClientID == clientID }, false, ev)
}

// revoke deactivates every active token match selects, records the event
// ev builds (from those tokens when rows is set) and returns how many it
// changed; an error of ev changes nothing.
func (ts tokenStore) revoke(ctx context.Context, match func(*storage.Token) bool, rows bool, ev storage.RevocationFunc) (int64, error) {
	unlock, err := ts.s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	keys, revoked := ts.active(match)
	var arg []storage.Token
	if rows {
		arg = revoked
	}
	err = ts.s.revoked(ev, arg, func() { ts.deactivate(keys) })
	if err != nil {
		return 0, err
	}
	return int64(len(keys)), nil
}

// active returns the keys and copies of the active tokens match selects,
// ordered by key. Called under the lock.
func (ts tokenStore) active(match func(*storage.Token) bool) ([]tokenKey, []storage.Token) {
	var keys []tokenKey
	for k, t := range ts.rows {
		if t.Active && match(&t) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b tokenKey) int {
		return cmp.Or(strings.Compare(string(a.kind), string(b.kind)), strings.Compare(a.id, b.id))
	})
	out := make([]storage.Token, len(keys))
	for i, k := range keys {
		out[i] = copyToken(ts.rows[k])
	}
	return keys, out
}

// deactivate marks the tokens keys name inactive. Called under the lock.
func (ts tokenStore) deactivate(keys []tokenKey) {
	for _, k := range keys {
		t := ts.rows[k]
		t.Active = false
		ts.rows[k] = t
	}
}
