package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// MaxKeysPerSet bounds a set replaced through PUT /admin/keys/{set}.
const MaxKeysPerSet = 100

// GenerateParams ask for a new key (POST /admin/keys/{set}).
type GenerateParams struct {
	// Alg is the key's algorithm; empty means the default signing algorithm.
	Alg string `json:"alg"`
	// KID is the key id; empty means a random one.
	KID string `json:"kid"`
	// Use is "sig" (default) or "enc".
	Use string `json:"use"`
}

// Generate creates a key in set (creating the set if needed) and returns it
// WITH its private part, for the caller to hand out once. The new key is
// the newest of the set, so a signing key becomes the one Sign uses.
func (m *Manager) Generate(ctx context.Context, set string, p GenerateParams) (jwk.Key, error) {
	if err := validSetName(set); err != nil {
		return nil, err
	}
	if p.Use == "" {
		p.Use = UseSig
	}
	if p.Use != UseSig && p.Use != UseEnc {
		return nil, apierr.InvalidRequest("The member \"use\" must be \"sig\" or \"enc\"")
	}
	if p.Alg == "" {
		if p.Use != UseSig {
			return nil, apierr.InvalidRequest("The member \"alg\" is required for encryption keys (%v)", SupportedAlgs(UseEnc))
		}
		p.Alg = m.defaultAlg.name
	}
	spec, err := lookupAlg(p.Alg, p.Use)
	if err != nil {
		return nil, apierr.InvalidRequest("%s", err)
	}
	if p.KID == "" {
		p.KID = newKID()
	}
	if err := validKID(p.KID); err != nil {
		return nil, err
	}
	existing, err := m.existing(ctx, set)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(existing, func(k storage.Key) bool { return k.KID == p.KID }) {
		return nil, apierr.Conflict("The key set %q already holds a key with kid %q", set, p.KID)
	}
	mat, err := m.generate(spec, p.KID)
	if err != nil {
		return nil, err
	}
	row, err := m.seal(set, mat, m.nextCreatedAt(existing))
	if err != nil {
		return nil, err
	}
	if err := m.store.Add(ctx, row); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, apierr.Conflict("The key set %q already holds a key with kid %q", set, p.KID).WithCause(err)
		}
		return nil, fmt.Errorf("keys: storing key %q of set %q: %w", p.KID, set, err)
	}
	m.invalidate(set)
	m.log.Info("generated a key", zap.String("set", set), zap.String("kid", mat.kid), zap.String("alg", mat.alg), zap.String("use", mat.use))
	return mat.private, nil
}

// GetSet returns the public view of set, read from the store.
func (m *Manager) GetSet(ctx context.Context, set string) (jwk.Set, error) {
	if err := validSetName(set); err != nil {
		return nil, err
	}
	m.invalidate(set)
	st, err := m.reload(ctx, set)
	if err != nil {
		return nil, err
	}
	if st.missing {
		return nil, errSetNotFound(set)
	}
	return publicSet(st.keys)
}

// GetKey returns the public view of one key.
func (m *Manager) GetKey(ctx context.Context, set, kid string) (jwk.Key, error) {
	if err := validSetName(set); err != nil {
		return nil, err
	}
	if err := validKID(kid); err != nil {
		return nil, err
	}
	r, err := m.store.Get(ctx, set, kid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errKeyNotFound(set, kid).WithCause(err)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: loading key %q of set %q: %w", kid, set, err)
	}
	pub, err := jwk.ParseKey(r.PublicJWK)
	if err != nil {
		return nil, fmt.Errorf("keys: stored public key %q of set %q is unreadable: %w", kid, set, err)
	}
	if priv, _ := jwk.IsPrivateKey(pub); priv {
		return nil, fmt.Errorf("keys: stored public key %q of set %q holds private parameters", kid, set)
	}
	return pub, nil
}

// ReplaceSet replaces the content of set with keys (JWKs in JSON, the
// first becoming the newest). Private keys are encrypted, public-only
// keys are stored without a private part. It returns the public view.
func (m *Manager) ReplaceSet(ctx context.Context, set string, keys []json.RawMessage) (jwk.Set, error) {
	if err := validSetName(set); err != nil {
		return nil, err
	}
	switch {
	case len(keys) == 0:
		return nil, apierr.InvalidRequest("The member \"keys\" must hold at least one key; to remove the set use DELETE")
	case len(keys) > MaxKeysPerSet:
		return nil, apierr.InvalidRequest("A key set holds at most %d keys", MaxKeysPerSet)
	}
	mats := make([]*material, 0, len(keys))
	for i, raw := range keys {
		mat, err := parseJWK(raw, "")
		if err != nil {
			return nil, prefixed(err, fmt.Sprintf("keys[%d]", i))
		}
		if slices.ContainsFunc(mats, func(o *material) bool { return o.kid == mat.kid }) {
			return nil, apierr.InvalidRequest("keys[%d]: the kid %q appears more than once", i, mat.kid)
		}
		mats = append(mats, mat)
	}
	// Timestamps keep the document's order: the first key is the newest.
	base := m.now().UTC().Truncate(time.Microsecond)
	rows := make([]storage.Key, len(mats))
	for i, mat := range mats {
		row, err := m.seal(set, mat, base.Add(-time.Duration(i)*time.Microsecond))
		if err != nil {
			return nil, err
		}
		rows[i] = row
	}
	if err := m.checkSignable(set, rows); err != nil {
		return nil, err
	}
	if err := m.store.Replace(ctx, set, rows, m.keysRemoved); err != nil {
		return nil, fmt.Errorf("keys: replacing key set %q: %w", set, err)
	}
	m.invalidate(set)
	m.log.Info("replaced a key set", zap.String("set", set), zap.Int("keys", len(rows)))
	out := make([]loadedKey, len(mats))
	for i, mat := range mats {
		out[i] = loadedKey{kid: mat.kid, public: mat.public}
	}
	return publicSet(out)
}

// PutKey stores one key (a JWK in JSON) as kid in set, replacing a key
// with that kid if there is one; the key becomes the newest of the set.
// The JWK's kid, when present, must equal kid. It returns the public view.
func (m *Manager) PutKey(ctx context.Context, set, kid string, key json.RawMessage) (jwk.Key, error) {
	if err := validSetName(set); err != nil {
		return nil, err
	}
	if err := validKID(kid); err != nil {
		return nil, err
	}
	mat, err := parseJWK(key, kid)
	if err != nil {
		return nil, prefixed(err, "The JSON Web Key")
	}
	if mat.kid != kid {
		return nil, apierr.InvalidRequest("The kid in the body (%q) does not match the kid in the URL (%q)", truncate(mat.kid), kid)
	}
	existing, err := m.existing(ctx, set)
	if err != nil {
		return nil, err
	}
	row, err := m.seal(set, mat, m.nextCreatedAt(existing))
	if err != nil {
		return nil, err
	}
	rows := []storage.Key{row}
	for _, r := range existing {
		if r.KID != kid {
			rows = append(rows, r)
		}
	}
	if err := m.checkSignable(set, rows); err != nil {
		return nil, err
	}
	if err := m.store.Replace(ctx, set, rows, m.keysRemoved); err != nil {
		return nil, fmt.Errorf("keys: storing key %q of set %q: %w", kid, set, err)
	}
	m.invalidate(set)
	m.log.Info("stored a key", zap.String("set", set), zap.String("kid", kid), zap.String("alg", mat.alg),
		zap.Bool("private", mat.private != nil))
	return mat.public, nil
}

// DeleteKey removes one key.
func (m *Manager) DeleteKey(ctx context.Context, set, kid string) error {
	if err := validSetName(set); err != nil {
		return err
	}
	if err := validKID(kid); err != nil {
		return err
	}
	existing, err := m.existing(ctx, set)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(existing, func(k storage.Key) bool { return k.KID == kid })
	if i < 0 {
		return errKeyNotFound(set, kid)
	}
	rest := slices.Delete(slices.Clone(existing), i, i+1)
	if len(rest) > 0 && m.isEnsured(set) && !signable(rest) {
		return apierr.Conflict("Deleting the key %q would leave the key set %q, which signs tokens, without a private signing key: add a new key first, or delete the whole set to have it re-created", kid, set)
	}
	if err := m.store.Delete(ctx, set, kid, m.keysRemoved); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errKeyNotFound(set, kid).WithCause(err)
		}
		return fmt.Errorf("keys: deleting key %q of set %q: %w", kid, set, err)
	}
	m.invalidate(set)
	m.log.Info("deleted a key", zap.String("set", set), zap.String("kid", kid))
	return nil
}

// DeleteSet removes a set and its keys. The sets given to EnsureSets are
// re-created with a new key when next needed (as Hydra does).
func (m *Manager) DeleteSet(ctx context.Context, set string) error {
	if err := validSetName(set); err != nil {
		return err
	}
	existing, err := m.existing(ctx, set)
	if err != nil {
		return err
	}
	if len(existing) == 0 {
		return errSetNotFound(set)
	}
	if err := m.store.DeleteSet(ctx, set, m.keysRemoved); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errSetNotFound(set).WithCause(err)
		}
		return fmt.Errorf("keys: deleting key set %q: %w", set, err)
	}
	m.invalidate(set)
	m.log.Info("deleted a key set", zap.String("set", set))
	return nil
}

// keysRemoved are the revocation events of removed keys: the gateways
// deny the tokens signed with them (issuer/revocation), until every
// access token stored has expired.
func (m *Manager) keysRemoved(removed []storage.Key) []storage.RevocationEvent {
	now := m.now()
	out := make([]storage.RevocationEvent, 0, len(removed))
	for _, k := range removed {
		out = append(out, *revocation.NewEvent(revocation.KindKey, now, time.Time{}, revocation.Selectors{KID: k.KID}))
	}
	return out
}

// existing lists set's stored keys, newest first; none if it is missing.
func (m *Manager) existing(ctx context.Context, set string) ([]storage.Key, error) {
	rows, err := m.store.List(ctx, set)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: loading key set %q: %w", set, err)
	}
	sortNewestFirst(rows)
	return rows, nil
}

// nextCreatedAt is now, or just after the newest existing key when the
// clock has not moved past it, so that "newest" is never a tie.
// Timestamps are kept to microseconds, the precision of the SQL backends.
func (m *Manager) nextCreatedAt(existing []storage.Key) time.Time {
	t := m.now().UTC().Truncate(time.Microsecond)
	for _, r := range existing {
		if !t.After(r.CreatedAt) {
			t = r.CreatedAt.UTC().Truncate(time.Microsecond).Add(time.Microsecond)
		}
	}
	return t
}

// signable reports whether rows hold a private signing key.
func signable(rows []storage.Key) bool {
	return slices.ContainsFunc(rows, func(r storage.Key) bool {
		s, ok := algs[r.Alg]
		return ok && s.use == UseSig && r.Use == UseSig && len(r.PrivateEncrypted) > 0
	})
}

func (m *Manager) checkSignable(set string, rows []storage.Key) error {
	if m.isEnsured(set) && !signable(rows) {
		return apierr.InvalidRequest("The key set %q signs tokens and must hold at least one private key with \"use\": \"sig\"", set)
	}
	return nil
}

func errSetNotFound(set string) *apierr.Error {
	return apierr.NotFound("The JSON Web Key Set %q does not exist", set)
}

func errKeyNotFound(set, kid string) *apierr.Error {
	return apierr.NotFound("The JSON Web Key Set %q holds no key with kid %q", set, kid)
}

// prefixed names the key an invalid_request is about.
func prefixed(err error, what string) error {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.WithDescription("%s: %s", what, e.Description)
	}
	return err
}
