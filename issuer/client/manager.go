package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Manager defaults.
const (
	// DefaultCacheTTL bounds how stale a cached client may be on a replica
	// that did not make the change.
	DefaultCacheTTL        = 5 * time.Second
	DefaultCacheMaxClients = 10_000
	// DefaultMaxRotatedSecrets bounds how many previous secrets stay valid
	// during rotation: each one adds a full hash verification to every
	// failed authentication, so the list must stay short.
	DefaultMaxRotatedSecrets = 5
	maxPatchOperations       = 100
)

// ManagerOptions are the Manager's dependencies and settings.
type ManagerOptions struct {
	Store storage.ClientStore
	// Hasher hashes new secrets; nil means PBKDF2 with the defaults.
	Hasher     *Hasher
	Validation ValidationOptions
	Logger     *zap.Logger
	Now        func() time.Time
	// CacheTTL is how long Get serves a client from memory. Changes made
	// through this Manager invalidate its cache at once; changes made on
	// another replica are seen within CacheTTL. Default 5s; negative
	// disables the cache.
	CacheTTL time.Duration
	// CacheMaxClients bounds the number of cached clients (default 10,000).
	CacheMaxClients int64
	// MaxRotatedSecrets bounds the previous secrets kept by RotateSecret
	// (default 5); the oldest is dropped first.
	MaxRotatedSecrets int
}

// Manager is the client registry: CRUD with validation and secret hashing
// over storage.ClientStore, and a read cache for Get.
type Manager struct {
	store      storage.ClientStore
	hasher     *Hasher
	validation ValidationOptions
	log        *zap.Logger
	now        func() time.Time
	ttl        time.Duration
	maxRotated int

	cache *ristretto.Cache[string, *cacheEntry]
	// gen is bumped by every change made through this Manager; a cached
	// entry is only served while its generation is current, so a load
	// racing with a change can never put a stale client back in the cache.
	gen atomic.Uint64
}

type cacheEntry struct {
	client  *Client // never handed out: Get returns clones
	gen     uint64
	expires time.Time
}

// NewManager returns a Manager. Close releases its cache.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("client: ManagerOptions.Store is required")
	}
	if o.Hasher == nil {
		h, err := NewHasher(HasherOptions{})
		if err != nil {
			return nil, err
		}
		o.Hasher = h
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheMaxClients <= 0 {
		o.CacheMaxClients = DefaultCacheMaxClients
	}
	if o.MaxRotatedSecrets <= 0 {
		o.MaxRotatedSecrets = DefaultMaxRotatedSecrets
	}
	m := &Manager{store: o.Store, hasher: o.Hasher, validation: o.Validation, log: o.Logger,
		now: o.Now, ttl: o.CacheTTL, maxRotated: o.MaxRotatedSecrets}
	if o.CacheTTL > 0 {
		c, err := ristretto.NewCache(&ristretto.Config[string, *cacheEntry]{
			NumCounters: o.CacheMaxClients * 10,
			MaxCost:     o.CacheMaxClients,
			BufferItems: 64,
		})
		if err != nil {
			return nil, fmt.Errorf("client: cache: %w", err)
		}
		m.cache = c
	}
	return m, nil
}

// Close releases the cache.
func (m *Manager) Close() {
	if m.cache != nil {
		m.cache.Close()
	}
}

// Hasher returns the secret hasher.
func (m *Manager) Hasher() *Hasher { return m.hasher }

// invalidate drops id from the cache and, by bumping the generation,
// retires every entry loaded before the call.
func (m *Manager) invalidate(id string) {
	m.gen.Add(1)
	if m.cache != nil {
		m.cache.Del(id)
	}
}

func notFound(id string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return apierr.NotFound("The OAuth 2.0 client %q does not exist", truncate(id)).WithCause(err)
	}
	return err
}

// read reads the client with this id from the store (not_found, as Get
// answers, when there is none).
func (m *Manager) read(ctx context.Context, id string) (*Client, error) {
	sc, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	return fromStorage(sc)
}

// Get returns the client with this id. The result is the caller's to
// modify. Unknown ids give an *apierr.Error not_found (404) wrapping
// storage.ErrNotFound. Served from the cache for up to CacheTTL.
func (m *Manager) Get(ctx context.Context, id string) (*Client, error) {
	now := m.now()
	if m.cache != nil {
		if e, ok := m.cache.Get(id); ok && e.gen == m.gen.Load() && now.Before(e.expires) {
			return e.client.Clone(), nil
		}
	}
	gen := m.gen.Load()
	c, err := m.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.cache != nil && m.gen.Load() == gen {
		m.cache.SetWithTTL(id, &cacheEntry{client: c.Clone(), gen: gen, expires: now.Add(m.ttl)}, 1, m.ttl)
	}
	return c, nil
}

// Create validates and stores a new client. A missing client_id is
// generated (UUID); a confidential client without client_secret gets a
// generated one. The result carries the plaintext secret (when there is
// one): it is shown once and only its hash is kept.
func (m *Manager) Create(ctx context.Context, in *Client) (*Client, error) {
	c := in.Clone()
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	c.ApplyDefaults()
	if err := m.validation.Validate(ctx, c); err != nil {
		return nil, err
	}
	if !c.IsPublic() && c.Secret == "" {
		s, err := GenerateSecret()
		if err != nil {
			return nil, err
		}
		c.Secret = s
	}
	c.SecretHash, c.RotatedSecretHashes = "", nil
	if !c.IsPublic() {
		if err := m.hasher.CheckSecret(c.Secret); err != nil {
			return nil, metaErr("client_secret: %s", err.Error())
		}
		h, err := m.hasher.Hash(c.Secret)
		if err != nil {
			return nil, err
		}
		c.SecretHash = h
	}
	now := m.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	c.ClientSecretExpiresAt = 0
	sc, err := toStorage(c)
	if err != nil {
		return nil, err
	}
	if err := m.store.Create(ctx, sc); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, apierr.Conflict("An OAuth 2.0 client with id %q already exists", truncate(c.ID)).WithCause(err)
		}
		return nil, err
	}
	m.invalidate(c.ID)
	out := c.Clone()
	out.Secret = c.Secret
	return out, nil
}

// updateOptions tune replace for the admin API, PATCH and DCR.
type updateOptions struct {
	// ifUpdatedAt, when non-zero, makes the update fail with a conflict if
	// the stored client changed since it was read (PATCH).
	ifUpdatedAt time.Time
	// newRegistrationTokenHash replaces the registration access token hash.
	newRegistrationTokenHash string
	// check runs against the stored client inside the transaction.
	check func(old *Client) error
}

// Update replaces the client in.ID with in (PUT semantics). An empty
// client_secret keeps the current secret; a new one is hashed and ends any
// rotation. A client that becomes public loses its secrets; one that
// becomes confidential without a secret gets a generated secret, returned
// in the result's Secret (the only case where Update returns a secret).
func (m *Manager) Update(ctx context.Context, in *Client) (*Client, error) {
	return m.replace(ctx, in, updateOptions{})
}

func (m *Manager) replace(ctx context.Context, in *Client, uo updateOptions) (*Client, error) {
	c := in.Clone()
	if c.ID == "" {
		return nil, apierr.InvalidRequest("client_id is required")
	}
	c.ApplyDefaults()
	if err := m.validation.Validate(ctx, c); err != nil {
		return nil, err
	}
	// Hash outside the transaction when the secret is known up front.
	var newHash string
	if c.Secret != "" {
		if err := m.hasher.CheckSecret(c.Secret); err != nil {
			return nil, metaErr("client_secret: %s", err.Error())
		}
		h, err := m.hasher.Hash(c.Secret)
		if err != nil {
			return nil, err
		}
		newHash = h
	}
	var generated string
	sc, err := m.store.Update(ctx, c.ID, func(sc *storage.Client) error {
		old, err := fromStorage(*sc)
		if err != nil {
			return err
		}
		if !uo.ifUpdatedAt.IsZero() && !old.UpdatedAt.Equal(uo.ifUpdatedAt) {
			return apierr.Conflict("The client was changed concurrently, retry the request").WithCause(storage.ErrConflict)
		}
		if uo.check != nil {
			if err := uo.check(old); err != nil {
				return err
			}
		}
		next := c.Clone()
		next.CreatedAt = old.CreatedAt
		next.RegistrationAccessTokenHash = old.RegistrationAccessTokenHash
		if uo.newRegistrationTokenHash != "" {
			next.RegistrationAccessTokenHash = uo.newRegistrationTokenHash
		}
		switch {
		case next.IsPublic():
			next.SecretHash, next.RotatedSecretHashes = "", nil
		case newHash != "":
			next.SecretHash, next.RotatedSecretHashes = newHash, nil
		case old.SecretHash != "":
			next.SecretHash, next.RotatedSecretHashes = old.SecretHash, old.RotatedSecretHashes
		default:
			s, err := GenerateSecret()
			if err != nil {
				return err
			}
			h, err := m.hasher.Hash(s)
			if err != nil {
				return err
			}
			generated = s
			next.SecretHash, next.RotatedSecretHashes = h, nil
		}
		next.UpdatedAt = m.changeTime(old.UpdatedAt)
		n, err := toStorage(next)
		if err != nil {
			return err
		}
		*sc = n
		return nil
	}, m.secretChanged)
	m.invalidate(c.ID)
	if err != nil {
		return nil, notFound(c.ID, err)
	}
	out, err := fromStorage(sc)
	if err != nil {
		return nil, err
	}
	out.Secret = generated
	return out, nil
}

// changeTime returns the UpdatedAt of a change: now, but always after the
// previous value so that every change yields a new version, even under a
// fixed test clock or a clock step backwards.
func (m *Manager) changeTime(prev time.Time) time.Time {
	now := m.now().UTC()
	if !now.After(prev) {
		now = prev.Add(time.Microsecond)
	}
	return now.Truncate(time.Microsecond)
}

// Patch applies an RFC 6902 JSON Patch to the client's JSON document (the
// admin API's form, with "client_secret": "" present so that it can be
// replaced). A patched client_secret is hashed; client_id cannot change.
// A concurrent change makes the patch fail with a conflict (409).
func (m *Manager) Patch(ctx context.Context, id string, patch []byte) (*Client, error) {
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, apierr.InvalidRequest("The body must be an RFC 6902 JSON Patch document (an array of operations)").WithCause(err)
	}
	if len(ops) > maxPatchOperations {
		return nil, apierr.InvalidRequest("A patch may hold at most %d operations", maxPatchOperations)
	}
	cur, err := m.read(ctx, id)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(cur.publicView())
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return nil, err
	}
	obj["client_secret"] = json.RawMessage(`""`)
	doc, _ = json.Marshal(obj)
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = 1 << 20
	opts.EscapeHTML = false
	patched, err := ops.ApplyWithOptions(doc, opts)
	if err != nil {
		return nil, apierr.InvalidRequest("The JSON Patch could not be applied: %s", patchErrText(err)).WithCause(err)
	}
	next, err := DecodeClient(patched)
	if err != nil {
		return nil, err
	}
	if next.ID != id {
		return nil, apierr.InvalidRequest("client_id cannot be changed")
	}
	return m.replace(ctx, next, updateOptions{ifUpdatedAt: cur.UpdatedAt})
}

func patchErrText(err error) string {
	for _, e := range []error{jsonpatch.ErrTestFailed, jsonpatch.ErrMissing, jsonpatch.ErrInvalidIndex,
		jsonpatch.ErrUnknownType, jsonpatch.ErrInvalid, jsonpatch.ErrExpectedObject} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Delete removes a client.
//
// Its tokens are announced revoked to the gateways with the deletion
// (issuer/revocation): every token of the client issued before now.
func (m *Manager) Delete(ctx context.Context, id string) error {
	now := m.now()
	err := m.store.Delete(ctx, id, revocation.NewEvent(revocation.KindClient, now, time.Time{},
		revocation.Selectors{ClientID: id, IssuedBefore: revocation.Before(now), Reason: revocation.ReasonDeleted}))
	m.invalidate(id)
	return notFound(id, err)
}

// ListOptions select a page of clients, ordered by client_id.
type ListOptions struct {
	Name  string // exact client_name
	Owner string // exact owner
	After string // client_id to start after (keyset pagination)
	Limit int    // page size (1-500)
}

// List returns a page of clients and whether more follow.
func (m *Manager) List(ctx context.Context, o ListOptions) ([]*Client, bool, error) {
	if o.Limit <= 0 {
		o.Limit = 250
	}
	rows, err := m.store.List(ctx, storage.ClientFilter{Name: o.Name, Owner: o.Owner, After: o.After, Limit: o.Limit + 1})
	if err != nil {
		return nil, false, err
	}
	more := len(rows) > o.Limit
	if more {
		rows = rows[:o.Limit]
	}
	out := make([]*Client, 0, len(rows))
	for _, r := range rows {
		c, err := fromStorage(r)
		if err != nil {
			return nil, false, err
		}
		out = append(out, c)
	}
	return out, more, nil
}

// RotateSecret generates a new secret for a confidential client. The
// previous secret keeps working (appended to RotatedSecretHashes, at most
// MaxRotatedSecrets kept) until FinalizeSecretRotation. The result carries
// the new plaintext secret, shown once.
func (m *Manager) RotateSecret(ctx context.Context, id string) (*Client, error) {
	secret, err := GenerateSecret()
	if err != nil {
		return nil, err
	}
	hash, err := m.hasher.Hash(secret)
	if err != nil {
		return nil, err
	}
	out, err := m.modify(ctx, id, func(c *Client) error {
		if c.IsPublic() {
			return apierr.InvalidRequest("The client is public (token_endpoint_auth_method none) and has no secret to rotate")
		}
		rotated := append([]string{}, c.RotatedSecretHashes...)
		if c.SecretHash != "" {
			rotated = append(rotated, c.SecretHash)
		}
		if len(rotated) > m.maxRotated {
			rotated = rotated[len(rotated)-m.maxRotated:]
		}
		c.SecretHash, c.RotatedSecretHashes = hash, rotated
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Secret = secret
	return out, nil
}

// FinalizeSecretRotation forgets the rotated secrets: only the current
// secret works afterwards.
func (m *Manager) FinalizeSecretRotation(ctx context.Context, id string) (*Client, error) {
	return m.modify(ctx, id, func(c *Client) error {
		c.RotatedSecretHashes = nil
		return nil
	})
}

// SetLifespans replaces the client's token lifespans.
func (m *Manager) SetLifespans(ctx context.Context, id string, l Lifespans) (*Client, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return m.modify(ctx, id, func(c *Client) error {
		c.Lifespans = *cloneLifespans(&l)
		return nil
	})
}

// secretChanged is the revocation event of a change of a client's secret
// (RotateSecret, or a new secret or none given by an update): the
// gateways deny the client's tokens issued before now, which may have
// been obtained with a leaked secret. nil when the secret stays.
func (m *Manager) secretChanged(before, after storage.Client) *storage.RevocationEvent {
	if before.SecretHash == "" || before.SecretHash == after.SecretHash {
		return nil
	}
	now := m.now()
	return revocation.NewEvent(revocation.KindClient, now, time.Time{},
		revocation.Selectors{ClientID: before.ID, IssuedBefore: revocation.Before(now), Reason: revocation.ReasonSecretRotated})
}

// modify runs fn on the stored client inside the store's transaction.
func (m *Manager) modify(ctx context.Context, id string, fn func(*Client) error) (*Client, error) {
	sc, err := m.store.Update(ctx, id, func(sc *storage.Client) error {
		c, err := fromStorage(*sc)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		c.UpdatedAt = m.changeTime(c.UpdatedAt)
		n, err := toStorage(c)
		if err != nil {
			return err
		}
		*sc = n
		return nil
	}, m.secretChanged)
	m.invalidate(id)
	if err != nil {
		return nil, notFound(id, err)
	}
	return fromStorage(sc)
}

// matchRegistrationToken checks an RFC 7592 registration access token
// against the stored hash in constant time.
func (c *Client) matchRegistrationToken(token string) bool {
	if c.RegistrationAccessTokenHash == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashRegistrationToken(token)), []byte(c.RegistrationAccessTokenHash)) == 1
}

// hashRegistrationToken hashes a registration access token. The token has
// 256 bits of entropy, so a fast hash suffices: guessing is hopeless and a
// database dump does not reveal usable tokens.
func hashRegistrationToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newRegistrationToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashRegistrationToken(token), nil
}

// ---------------------------------------------------------------- storage mapping

// storedDoc is the JSON document kept in storage.Client.Metadata: the
// client's API form without plaintext secrets or one-time values.
func (c *Client) storedDoc() *Client {
	d := c.Clone()
	d.Secret = ""
	d.RegistrationAccessToken = ""
	d.RegistrationClientURI = ""
	return d
}

// publicView is the client as the APIs show it: no secret, no hashes.
func (c *Client) publicView() *Client {
	return c.storedDoc()
}

func toStorage(c *Client) (storage.Client, error) {
	doc, err := json.Marshal(c.storedDoc())
	if err != nil {
		return storage.Client{}, fmt.Errorf("client: encoding %q: %w", c.ID, err)
	}
	return storage.Client{
		ID:                          c.ID,
		SecretHash:                  c.SecretHash,
		RotatedSecretHashes:         slices.Clone(c.RotatedSecretHashes),
		Name:                        c.Name,
		Owner:                       c.Owner,
		Metadata:                    doc,
		RegistrationAccessTokenHash: c.RegistrationAccessTokenHash,
		CreatedAt:                   c.CreatedAt,
		UpdatedAt:                   c.UpdatedAt,
	}, nil
}

func fromStorage(sc storage.Client) (*Client, error) {
	c := &Client{}
	if len(sc.Metadata) > 0 {
		if err := json.Unmarshal(sc.Metadata, c); err != nil {
			return nil, fmt.Errorf("client: stored document of %q is unreadable: %w", sc.ID, err)
		}
	}
	c.ID, c.Name, c.Owner = sc.ID, sc.Name, sc.Owner
	c.Secret, c.RegistrationAccessToken, c.RegistrationClientURI = "", "", ""
	c.SecretHash = sc.SecretHash
	c.RotatedSecretHashes = slices.Clone(sc.RotatedSecretHashes)
	c.RegistrationAccessTokenHash = sc.RegistrationAccessTokenHash
	if !sc.CreatedAt.IsZero() {
		c.CreatedAt = sc.CreatedAt.UTC()
	}
	if !sc.UpdatedAt.IsZero() {
		c.UpdatedAt = sc.UpdatedAt.UTC()
	}
	c.ClientSecretExpiresAt = 0
	c.normalize()
	return c, nil
}

// DecodeClient decodes a client JSON document (the admin API's and dynamic
// registration's request body) into a Client. Unknown fields are ignored,
// as Hydra does. It never panics on hostile input.
func DecodeClient(b []byte) (*Client, error) {
	var c Client
	if err := json.Unmarshal(b, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, metaErr("The field %q has the wrong JSON type", te.Field)
		}
		return nil, apierr.InvalidRequest("The request body is not a valid client JSON document").WithCause(err)
	}
	c.SecretHash, c.RotatedSecretHashes, c.RegistrationAccessTokenHash = "", nil, ""
	c.RegistrationAccessToken, c.RegistrationClientURI = "", ""
	c.normalize()
	return &c, nil
}

// Clone returns a deep copy of c.
func (c *Client) Clone() *Client {
	if c == nil {
		return nil
	}
	d := *c
	d.RedirectURIs = slices.Clone(c.RedirectURIs)
	d.GrantTypes = slices.Clone(c.GrantTypes)
	d.ResponseTypes = slices.Clone(c.ResponseTypes)
	d.Audience = slices.Clone(c.Audience)
	d.DefaultAccessTokenAudience = slices.Clone(c.DefaultAccessTokenAudience)
	d.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	d.AllowedCORSOrigins = slices.Clone(c.AllowedCORSOrigins)
	d.Contacts = slices.Clone(c.Contacts)
	d.RequestURIs = slices.Clone(c.RequestURIs)
	d.RotatedSecretHashes = slices.Clone(c.RotatedSecretHashes)
	d.JWKS = slices.Clone(c.JWKS)
	d.Metadata = slices.Clone(c.Metadata)
	d.Lifespans = *cloneLifespans(&c.Lifespans)
	return &d
}

func cloneLifespans(l *Lifespans) *Lifespans {
	cp := func(d *Duration) *Duration {
		if d == nil {
			return nil
		}
		v := *d
		return &v
	}
	return &Lifespans{
		AuthorizationCodeGrantAccessTokenLifespan:    cp(l.AuthorizationCodeGrantAccessTokenLifespan),
		AuthorizationCodeGrantIDTokenLifespan:        cp(l.AuthorizationCodeGrantIDTokenLifespan),
		AuthorizationCodeGrantRefreshTokenLifespan:   cp(l.AuthorizationCodeGrantRefreshTokenLifespan),
		ClientCredentialsGrantAccessTokenLifespan:    cp(l.ClientCredentialsGrantAccessTokenLifespan),
		ImplicitGrantAccessTokenLifespan:             cp(l.ImplicitGrantAccessTokenLifespan),
		ImplicitGrantIDTokenLifespan:                 cp(l.ImplicitGrantIDTokenLifespan),
		JWTBearerGrantAccessTokenLifespan:            cp(l.JWTBearerGrantAccessTokenLifespan),
		RefreshTokenGrantIDTokenLifespan:             cp(l.RefreshTokenGrantIDTokenLifespan),
		RefreshTokenGrantAccessTokenLifespan:         cp(l.RefreshTokenGrantAccessTokenLifespan),
		RefreshTokenGrantRefreshTokenLifespan:        cp(l.RefreshTokenGrantRefreshTokenLifespan),
		DeviceAuthorizationGrantAccessTokenLifespan:  cp(l.DeviceAuthorizationGrantAccessTokenLifespan),
		DeviceAuthorizationGrantIDTokenLifespan:      cp(l.DeviceAuthorizationGrantIDTokenLifespan),
		DeviceAuthorizationGrantRefreshTokenLifespan: cp(l.DeviceAuthorizationGrantRefreshTokenLifespan),
	}
}
