// Package keys manages the issuer's JSON Web Keys: named key sets (Hydra's
// hydra.openid.id-token and hydra.jwt.access-token, plus any the operator
// creates), key generation, signing, the public JWKS document and the
// Hydra v2 admin API under /admin/keys.
//
// One Manager serves three jobs over one cache of key sets, each in its
// own file: signing.go (the signer token minting calls), jwks.go (the
// public key set and its encoded document) and admin.go (CRUD of key sets
// behind /admin/keys). manager.go holds what they share: the cache of sets
// read from the store, the sets re-created when deleted, and sealing.
//
// Private keys are stored only encrypted: the private JWK is sealed with
// the system secrets (secrets.Keyring, AES-256-GCM) and bound to its set
// and kid, so a database dump reveals no private key and rows cannot be
// swapped. All JOSE work uses github.com/lestrrat-go/jwx/v3.
package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/flight"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The key sets the issuer signs with (Hydra's names, so that exported
// keys and admin scripts carry over).
const (
	SetIDToken     = "hydra.openid.id-token"
	SetAccessToken = "hydra.jwt.access-token"
)

const (
	// DefaultRefreshInterval bounds how long a replica keeps using a key
	// set from memory before re-reading it, so that keys rotated on
	// another replica are picked up.
	DefaultRefreshInterval = 30 * time.Second
	// sharedWorkTimeout bounds a key set read (or the re-creation of a
	// deleted set) that concurrent callers share: it runs detached from
	// the context of the caller that started it, so that one cancelled
	// request does not fail the others waiting for it.
	sharedWorkTimeout = 10 * time.Second
)

// purposeJWK is the secrets.Keyring purpose private JWKs are sealed under.
const purposeJWK = "jwk"

// Deps are what the Manager works with.
type Deps struct {
	Store storage.KeyStore
	// Keyring seals private keys (the system secrets).
	Keyring *secrets.Keyring
	// Logger defaults to a no-op logger, Now to time.Now.
	Logger *zap.Logger
	Now    func() time.Time
}

// Options are the Manager's settings.
type Options struct {
	// DefaultAlg is the algorithm of keys generated for missing sets and
	// of POST /admin/keys/{set} without "alg": a signing algorithm such as
	// RS256 (default), ES256 or EdDSA.
	DefaultAlg string
	// RSABits is the modulus size of generated RSA keys (default 2048,
	// between 2048 and 8192).
	RSABits int
	// RefreshInterval is how long key sets are served from memory before
	// being re-read from the store (default 30s; negative: always re-read).
	// Changes made through this Manager are seen at once.
	RefreshInterval time.Duration
	// JWKSMaxAge is sent as Cache-Control max-age with the public JWKS
	// (default 300s; negative: no-store, as Hydra sends).
	JWKSMaxAge time.Duration
	// JWKSSets are the sets published at /.well-known/jwks.json (Hydra's
	// webfinger.jwks.broadcast_keys); default: the ID token and access
	// token sets.
	JWKSSets []string
}

// Manager owns the key sets: generation, import, signing and the public
// view. It is safe for concurrent use; several replicas may share a store.
type Manager struct {
	store      storage.KeyStore
	keyring    *secrets.Keyring
	log        *zap.Logger
	now        func() time.Time
	defaultAlg algSpec
	rsaBits    int

	// The cache of key sets (manager.go).
	refresh time.Duration
	mu      sync.Mutex
	cache   map[string]*setState
	gen     uint64 // bumped by every change through this Manager
	ensured map[string]bool
	loads   singleflight.Group // reloads of a set
	creates singleflight.Group // re-creation of a deleted ensured set

	// The public JWKS (jwks.go).
	jwksMaxAge time.Duration
	jwksSets   []string
	jwksDoc    atomic.Pointer[encodedJWKS] // the last public JWKS encoded
}

// setState is a set as loaded from the store, with its signing key
// decrypted.
type setState struct {
	loadedAt time.Time
	missing  bool
	keys     []loadedKey // newest first
	signer   *signer     // nil: no usable signing key (see signErr)
	signErr  error
}

type loadedKey struct {
	kid       string
	createdAt time.Time
	public    jwk.Key // never handed out: callers get clones
}

// New checks the dependencies and options and returns a Manager.
func New(d Deps, o Options) (*Manager, error) {
	if d.Store == nil {
		return nil, errors.New("keys: Deps.Store is required")
	}
	if d.Keyring == nil {
		return nil, errors.New("keys: Deps.Keyring is required")
	}
	if o.DefaultAlg == "" {
		o.DefaultAlg = DefaultAlg
	}
	spec, err := lookupAlg(o.DefaultAlg, UseSig)
	if err != nil {
		return nil, fmt.Errorf("keys: default algorithm: %w", err)
	}
	if o.RSABits == 0 {
		o.RSABits = DefaultRSABits
	}
	if o.RSABits < MinRSABits || o.RSABits > MaxRSABits {
		return nil, fmt.Errorf("keys: RSA key size must be between %d and %d bits, got %d", MinRSABits, MaxRSABits, o.RSABits)
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	switch {
	case o.RefreshInterval == 0:
		o.RefreshInterval = DefaultRefreshInterval
	case o.RefreshInterval < 0:
		o.RefreshInterval = 0
	}
	if o.JWKSMaxAge == 0 {
		o.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if len(o.JWKSSets) == 0 {
		o.JWKSSets = []string{SetIDToken, SetAccessToken}
	}
	return &Manager{
		store: d.Store, keyring: d.Keyring, log: d.Logger, now: d.Now,
		defaultAlg: spec, rsaBits: o.RSABits, refresh: o.RefreshInterval,
		jwksMaxAge: o.JWKSMaxAge, jwksSets: slices.Clone(o.JWKSSets),
		cache: map[string]*setState{}, ensured: map[string]bool{},
	}, nil
}

// DefaultAlg is the algorithm of generated signing keys.
func (m *Manager) DefaultAlg() string { return m.defaultAlg.name }

// ------------------------------------------------------------ cache

// Refresh forgets the cached copies of sets (all sets when none is named),
// so that the next use re-reads them from the store: keys rotated on
// another replica are then used at once instead of within RefreshInterval.
func (m *Manager) Refresh(sets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if len(sets) == 0 {
		clear(m.cache)
		return
	}
	for _, s := range sets {
		delete(m.cache, s)
	}
}

func (m *Manager) invalidate(set string) { m.Refresh(set) }

func (m *Manager) fresh(st *setState) bool {
	age := m.now().Sub(st.loadedAt)
	return age >= 0 && age < m.refresh
}

// state returns the set, from memory while fresh.
func (m *Manager) state(ctx context.Context, set string) (*setState, error) {
	m.mu.Lock()
	st := m.cache[set]
	m.mu.Unlock()
	if st != nil && m.fresh(st) {
		return st, nil
	}
	return m.reload(ctx, set)
}

// reload reads the set from the store. Concurrent reloads of one set share
// one read; a read started before a change made through this Manager is
// neither shared with later callers nor cached. The read belongs to no
// caller: it runs to its end (at most sharedWorkTimeout) even when the
// request that started it is cancelled, and each caller stops waiting
// when its own context is done.
func (m *Manager) reload(ctx context.Context, set string) (*setState, error) {
	m.mu.Lock()
	gen := m.gen
	m.mu.Unlock()
	return flight.Do(ctx, &m.loads, set+"\x00"+strconv.FormatUint(gen, 10), sharedWorkTimeout, func(ctx context.Context) (*setState, error) {
		st, err := m.load(ctx, set)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		if m.gen == gen {
			m.cache[set] = st
		}
		m.mu.Unlock()
		return st, nil
	})
}

func (m *Manager) load(ctx context.Context, set string) (*setState, error) {
	st := &setState{loadedAt: m.now()}
	rows, err := m.store.List(ctx, set)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && len(rows) == 0) {
		st.missing = true
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: loading key set %q: %w", set, err)
	}
	sortNewestFirst(rows)
	for _, r := range rows {
		pub, err := jwk.ParseKey(r.PublicJWK)
		if err != nil {
			m.log.Error("stored public key is unreadable and left out of the key set",
				zap.String("set", set), zap.String("kid", r.KID), zap.Error(err))
			continue
		}
		if priv, _ := jwk.IsPrivateKey(pub); priv {
			// Never publish a private key, whatever the row holds.
			m.log.Error("stored public key holds private parameters and is left out of the key set",
				zap.String("set", set), zap.String("kid", r.KID))
			continue
		}
		_ = pub.Set(jwk.KeyIDKey, r.KID)
		st.keys = append(st.keys, loadedKey{kid: r.KID, createdAt: r.CreatedAt, public: pub})

		// The signing key is the newest key with a private part made for
		// signing. If it cannot be opened, signing fails loudly rather
		// than falling back to an older key.
		if st.signer != nil || st.signErr != nil || len(r.PrivateEncrypted) == 0 || r.Use != UseSig {
			continue
		}
		spec, ok := algs[r.Alg]
		if !ok || spec.use != UseSig {
			continue
		}
		if st.signer, err = m.openSigner(set, r, spec); err != nil {
			st.signErr = err
			m.log.Error("signing key cannot be used", zap.String("set", set), zap.String("kid", r.KID), zap.Error(err))
		}
	}
	if st.signer == nil && st.signErr == nil {
		st.signErr = fmt.Errorf("%w: the key set %q holds no private key with \"use\": \"sig\"", ErrNoSigningKey, set)
	}
	return st, nil
}

func sortNewestFirst(rows []storage.Key) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].CreatedAt.After(rows[j].CreatedAt) })
}

// ------------------------------------------------------------ ensured sets

// EnsureSets makes sure each set exists and can sign: a missing set is
// created with one key of the default algorithm. Replicas starting at once
// agree on one key: the store's Init creates the set only if it is still
// absent, and the losers use the winner's key. A set that exists but
// cannot sign (only public keys, or a private key the system secrets
// cannot decrypt) is an error, so a misconfigured replica fails at start
// rather than at its first token.
//
// Sets named here are also re-created on demand if they are deleted later,
// as Hydra does.
func (m *Manager) EnsureSets(ctx context.Context, sets ...string) error {
	for _, set := range sets {
		if err := validSetName(set); err != nil {
			return fmt.Errorf("keys: %q: %w", set, err)
		}
		m.mu.Lock()
		m.ensured[set] = true
		m.mu.Unlock()
		if err := m.ensure(ctx, set); err != nil {
			return err
		}
		m.invalidate(set)
		st, err := m.reload(ctx, set)
		if err != nil {
			return err
		}
		if st.signer == nil {
			return st.signErr
		}
	}
	return nil
}

func (m *Manager) isEnsured(set string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ensured[set]
}

// ensure creates set with one generated key unless it exists.
func (m *Manager) ensure(ctx context.Context, set string) error {
	if _, err := m.store.List(ctx, set); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("keys: loading key set %q: %w", set, err)
	}
	mat, err := m.generate(m.defaultAlg, newKID())
	if err != nil {
		return err
	}
	row, err := m.seal(set, mat, m.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return err
	}
	created, err := m.store.Init(ctx, set, []storage.Key{row})
	if err != nil {
		return fmt.Errorf("keys: creating key set %q: %w", set, err)
	}
	m.invalidate(set)
	if created {
		m.log.Info("generated a signing key for a new key set",
			zap.String("set", set), zap.String("kid", mat.kid), zap.String("alg", mat.alg))
	} else {
		m.log.Debug("another replica created the key set first; using its key", zap.String("set", set))
	}
	return nil
}

// usable returns the set, re-creating it first if it is one of the
// ensured sets and has been deleted.
func (m *Manager) usable(ctx context.Context, set string) (*setState, error) {
	st, err := m.state(ctx, set)
	if err != nil || !st.missing || !m.isEnsured(set) {
		return st, err
	}
	// One generation per replica however many requests notice at once.
	if _, err := flight.Do(ctx, &m.creates, set, sharedWorkTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, m.ensure(ctx, set)
	}); err != nil {
		return nil, err
	}
	return m.reload(ctx, set)
}

// ------------------------------------------------------------ stored rows

// aad is the additional authenticated data a private key is sealed with:
// a sealed key opens only for the set and kid it was stored as.
func aad(set, kid string) []byte { return []byte(set + "/" + kid) }

// generate creates key material for spec.
func (m *Manager) generate(spec algSpec, kid string) (*material, error) {
	raw, err := generate(spec, m.rsaBits)
	if err != nil {
		return nil, fmt.Errorf("keys: generating a %s key: %w", spec.name, err)
	}
	return fromPrivate(raw, kid, spec)
}

// seal turns material into a storage row: the public JWK in clear, the
// private JWK encrypted under the system secrets and bound to set and kid.
func (m *Manager) seal(set string, mat *material, createdAt time.Time) (storage.Key, error) {
	pub, err := json.Marshal(mat.public)
	if err != nil {
		return storage.Key{}, fmt.Errorf("keys: encoding public key %q: %w", mat.kid, err)
	}
	row := storage.Key{Set: set, KID: mat.kid, Alg: mat.alg, Use: mat.use, PublicJWK: pub, CreatedAt: createdAt}
	if mat.private != nil {
		pt, err := json.Marshal(mat.private)
		if err != nil {
			return storage.Key{}, fmt.Errorf("keys: encoding private key %q: %w", mat.kid, err)
		}
		row.PrivateEncrypted, err = m.keyring.Encrypt(purposeJWK, pt, aad(set, mat.kid))
		clear(pt)
		if err != nil {
			return storage.Key{}, fmt.Errorf("keys: encrypting private key %q: %w", mat.kid, err)
		}
	}
	return row, nil
}
