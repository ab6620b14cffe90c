// Package keys manages the issuer's JSON Web Keys: named key sets (Hydra's
// hydra.openid.id-token and hydra.jwt.access-token, plus any the operator
// creates), key generation, signing, the public JWKS document and the
// Hydra v2 admin API under /admin/keys.
//
// Private keys are stored only encrypted: the private JWK is sealed with
// the system secrets (secrets.Keyring, AES-256-GCM) and bound to its set
// and kid, so a database dump reveals no private key and rows cannot be
// swapped. All JOSE work uses github.com/lestrrat-go/jwx/v3.
package keys

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-dev/gatehouse/internal/flight"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The key sets the issuer signs with (Hydra's names, so that exported
// keys and admin scripts carry over).
const (
	SetIDToken     = "hydra.openid.id-token"
	SetAccessToken = "hydra.jwt.access-token"
)

// Defaults.
const (
	// DefaultRefreshInterval bounds how long a replica keeps using a key
	// set from memory before re-reading it, so that keys rotated on
	// another replica are picked up.
	DefaultRefreshInterval = 30 * time.Second
	// DefaultJWKSMaxAge is the max-age sent with /.well-known/jwks.json.
	DefaultJWKSMaxAge = 300 * time.Second
	// MaxKeysPerSet bounds a set replaced through PUT /admin/keys/{set}.
	MaxKeysPerSet = 100
	// sharedWorkTimeout bounds a key set read (or the re-creation of a
	// deleted set) that concurrent callers share: it runs detached from
	// the context of the caller that started it, so that one cancelled
	// request does not fail the others waiting for it.
	sharedWorkTimeout = 10 * time.Second
)

// purposeJWK is the secrets.Keyring purpose private JWKs are sealed under.
const purposeJWK = "jwk"

// ErrNoSigningKey: the set does not exist or holds no private key usable
// for signing. Token endpoints should treat it as a server error.
var ErrNoSigningKey = errors.New("keys: no private signing key")

// Options are the Manager's dependencies and settings.
type Options struct {
	Store   storage.KeyStore
	Keyring *secrets.Keyring
	Logger  *zap.Logger
	// DefaultAlg is the algorithm of keys generated for missing sets and
	// of POST /admin/keys/{set} without "alg": a signing algorithm such as
	// RS256 (default), ES256 or EdDSA.
	DefaultAlg string
	// RSABits is the modulus size of generated RSA keys (default 2048,
	// between 2048 and 8192).
	RSABits int
	Now     func() time.Time
	// RefreshInterval is how long key sets are served from memory before
	// being re-read from the store (default 30s; negative: always re-read).
	// Changes made through this Manager are seen at once.
	RefreshInterval time.Duration
	// JWKSMaxAge is sent as Cache-Control max-age with the public JWKS
	// (default 300s; negative: no-store, as Hydra sends).
	JWKSMaxAge time.Duration
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
	refresh    time.Duration
	jwksMaxAge time.Duration

	mu      sync.Mutex
	cache   map[string]*setState
	gen     uint64 // bumped by every change through this Manager
	ensured map[string]bool
	loads   singleflight.Group // reloads of a set
	creates singleflight.Group // re-creation of a deleted ensured set

	jwksDoc atomic.Pointer[encodedJWKS] // the last public JWKS encoded
}

// encodedJWKS is a public JWK Set document as sent, valid while the sets
// it was built from are the cached ones (a reload or change replaces a
// setState, so pointer equality is "unchanged").
type encodedJWKS struct {
	sets   []string
	states []*setState
	doc    []byte
	etag   string
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

type signer struct {
	kid string
	alg jwa.SignatureAlgorithm
	key any // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey

	headers sync.Map // typ -> base64url protected header
}

// NewManager returns a Manager.
func NewManager(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("keys: Options.Store is required")
	}
	if o.Keyring == nil {
		return nil, errors.New("keys: Options.Keyring is required")
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
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
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
	return &Manager{
		store: o.Store, keyring: o.Keyring, log: o.Logger, now: o.Now,
		defaultAlg: spec, rsaBits: o.RSABits, refresh: o.RefreshInterval, jwksMaxAge: o.JWKSMaxAge,
		cache: map[string]*setState{}, ensured: map[string]bool{},
	}, nil
}

// JWKSMaxAge is the Cache-Control max-age of the public JWKS; zero or
// negative means the document must not be cached.
func (m *Manager) JWKSMaxAge() time.Duration {
	if m.jwksMaxAge < 0 {
		return 0
	}
	return m.jwksMaxAge
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

func aad(set, kid string) []byte { return []byte(set + "/" + kid) }

// openSigner decrypts a stored private key.
func (m *Manager) openSigner(set string, r storage.Key, spec algSpec) (*signer, error) {
	pt, err := m.keyring.Decrypt(purposeJWK, r.PrivateEncrypted, aad(set, r.KID))
	if err != nil {
		return nil, fmt.Errorf("%w: the private key %q of set %q cannot be decrypted with the configured system secrets (was the secret it was made with removed from SECRETS_SYSTEM?)", ErrNoSigningKey, r.KID, set)
	}
	defer clear(pt)
	k, err := jwk.ParseKey(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: the private key %q of set %q is not a valid JWK", ErrNoSigningKey, r.KID, set)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, fmt.Errorf("%w: the private key %q of set %q cannot be used", ErrNoSigningKey, r.KID, set)
	}
	if err := checkMaterial(spec, raw); err != nil {
		return nil, fmt.Errorf("%w: the private key %q of set %q: %v", ErrNoSigningKey, r.KID, set, err)
	}
	// A key rebuilt from JWK parameters has no CRT values precomputed;
	// doing it once here saves ~13% of every RSA signature.
	if rk, ok := raw.(*rsa.PrivateKey); ok {
		rk.Precompute()
	}
	return &signer{kid: r.KID, alg: spec.sig, key: raw}, nil
}

// ------------------------------------------------------------ ensure

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

// ------------------------------------------------------------ signing

// Sign returns payload as a JWS in compact serialization (RFC 7515 §7.1)
// signed with the newest private signing key of set. The protected header
// carries alg, kid and, when typ is not empty, typ (e.g. "JWT", or
// "at+jwt" for RFC 9068 §2.1 access tokens).
func (m *Manager) Sign(ctx context.Context, set, typ string, payload []byte) (string, error) {
	s, err := m.signer(ctx, set)
	if err != nil {
		return "", err
	}
	tok, err := s.sign(typ, payload)
	if err != nil {
		return "", fmt.Errorf("keys: signing with key %q of set %q: %w", s.kid, set, err)
	}
	return tok, nil
}

// sign signs payload with the key, the protected header of each typ
// encoded once per key.
func (s *signer) sign(typ string, payload []byte) (string, error) {
	hdr, ok := s.headers.Load(typ)
	if !ok {
		h, err := protectedHeader(s.alg, s.kid, typ)
		if err != nil {
			return "", err
		}
		s.headers.Store(typ, h)
		hdr = h
	}
	return signWithHeader(s.key, s.alg, hdr.(string), payload)
}

// SignCompact returns payload as a compact JWS (RFC 7515 §7.1) signed with
// key under alg, with the protected header {"alg","kid"[,"typ"]}: what
// Manager.Sign does with a set's newest key (benchmarks measure it).
func SignCompact(key any, alg jwa.SignatureAlgorithm, kid, typ string, payload []byte) (string, error) {
	hdr, err := protectedHeader(alg, kid, typ)
	if err != nil {
		return "", err
	}
	return signWithHeader(key, alg, hdr, payload)
}

// protectedHeader is the base64url JWS protected header (RFC 7515 §4.1).
func protectedHeader(alg jwa.SignatureAlgorithm, kid, typ string) (string, error) {
	raw, err := json.Marshal(struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
		Typ string `json:"typ,omitempty"`
	}{alg.String(), kid, typ})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// signWithHeader builds the compact JWS with jwx's building blocks (jwsbb,
// the layer under jws.Sign) in one buffer, so a token costs the signature
// and little else.
func signWithHeader(key any, alg jwa.SignatureAlgorithm, hdr string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(hdr)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := jwsbb.Sign(key, alg.String(), buf, nil)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// SigningAlg returns the algorithm Sign uses for set (e.g. for the
// discovery document's id_token_signing_alg_values_supported).
func (m *Manager) SigningAlg(ctx context.Context, set string) (string, error) {
	s, err := m.signer(ctx, set)
	if err != nil {
		return "", err
	}
	return s.alg.String(), nil
}

// SigningKeyID returns the kid of the key Sign uses for set.
func (m *Manager) SigningKeyID(ctx context.Context, set string) (string, error) {
	s, err := m.signer(ctx, set)
	if err != nil {
		return "", err
	}
	return s.kid, nil
}

func (m *Manager) signer(ctx context.Context, set string) (*signer, error) {
	st, err := m.usable(ctx, set)
	if err != nil {
		return nil, err
	}
	if st.missing {
		return nil, fmt.Errorf("%w: the key set %q does not exist", ErrNoSigningKey, set)
	}
	if st.signer == nil {
		return nil, st.signErr
	}
	return st.signer, nil
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

// ------------------------------------------------------------ admin

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
	if err := m.store.Replace(ctx, set, rows); err != nil {
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
	if err := m.store.Replace(ctx, set, rows); err != nil {
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
	if err := m.store.Delete(ctx, set, kid); err != nil {
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
	if err := m.store.DeleteSet(ctx, set); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errSetNotFound(set).WithCause(err)
		}
		return fmt.Errorf("keys: deleting key set %q: %w", set, err)
	}
	m.invalidate(set)
	m.log.Info("deleted a key set", zap.String("set", set))
	return nil
}

// ------------------------------------------------------------ helpers

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
