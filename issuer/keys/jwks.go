package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// DefaultJWKSMaxAge is the max-age sent with /.well-known/jwks.json.
const DefaultJWKSMaxAge = 300 * time.Second

// encodedJWKS is a public JWK Set document as sent, valid while the sets
// it was built from are the cached ones (a reload or change replaces a
// setState, so pointer equality is "unchanged").
type encodedJWKS struct {
	sets   []string
	states []*setState
	doc    []byte
	etag   string
}

// JWKSMaxAge is the Cache-Control max-age of the public JWKS; zero or
// negative means the document must not be cached.
func (m *Manager) JWKSMaxAge() time.Duration {
	if m.jwksMaxAge < 0 {
		return 0
	}
	return m.jwksMaxAge
}

// PublicKeys returns the public keys (each with kid, alg and use) of every
// key of the sets, newest first. Missing sets are skipped, except the
// ensured ones, which are re-created.
func (m *Manager) PublicKeys(ctx context.Context, sets ...string) (jwk.Set, error) {
	states, err := m.usableSets(ctx, sets)
	if err != nil {
		return nil, err
	}
	return publicSet(newestFirst(states))
}

// PublicJWKS returns PublicKeys(sets...) encoded as a JWK Set document
// (RFC 7517 §5) and its ETag. The encoding is made once and reused until
// one of the sets is reloaded or changed, so serving the public JWKS costs
// no JSON encoding per request.
func (m *Manager) PublicJWKS(ctx context.Context, sets ...string) (doc []byte, etag string, err error) {
	states, err := m.usableSets(ctx, sets)
	if err != nil {
		return nil, "", err
	}
	if c := m.jwksDoc.Load(); c != nil && slices.Equal(c.sets, sets) && slices.Equal(c.states, states) {
		return c.doc, c.etag, nil
	}
	set, err := publicSet(newestFirst(states))
	if err != nil {
		return nil, "", err
	}
	doc, err = json.Marshal(set)
	if err != nil {
		return nil, "", fmt.Errorf("keys: encoding the public JWKS: %w", err)
	}
	c := &encodedJWKS{sets: slices.Clone(sets), states: states, doc: doc, etag: httpx.ETag(doc)}
	m.jwksDoc.Store(c)
	return c.doc, c.etag, nil
}

func (m *Manager) usableSets(ctx context.Context, sets []string) ([]*setState, error) {
	states := make([]*setState, 0, len(sets))
	for _, set := range sets {
		st, err := m.usable(ctx, set)
		if err != nil {
			return nil, err
		}
		states = append(states, st)
	}
	return states, nil
}

// newestFirst returns the keys of the sets, newest first.
func newestFirst(states []*setState) []loadedKey {
	var all []loadedKey
	for _, st := range states {
		all = append(all, st.keys...)
	}
	slices.SortStableFunc(all, func(a, b loadedKey) int { return b.createdAt.Compare(a.createdAt) })
	return all
}

func publicSet(keys []loadedKey) (jwk.Set, error) {
	out := jwk.NewSet()
	for _, k := range keys {
		c, err := k.public.Clone()
		if err != nil {
			return nil, fmt.Errorf("keys: copying public key %q: %w", k.kid, err)
		}
		if err := out.AddKey(c); err != nil {
			return nil, fmt.Errorf("keys: adding public key %q: %w", k.kid, err)
		}
	}
	return out, nil
}
