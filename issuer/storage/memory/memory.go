// Package memory implements issuer/storage in process memory: one struct
// of maps behind one lock, for tests and for programs that embed the
// issuer without a database. It is not a production store: nothing
// survives the process, and replicas do not share it.
//
// It keeps the SQL backends' contracts and shapes, so that code tested on
// it behaves the same on them: the same sentinel errors; values copied in
// and out (no caller ever shares memory with a stored row); times kept in
// UTC to the microsecond and empty lists and documents returned as nil, as
// the SQL columns hold them; read-modify-write updaters run under the lock
// (an updater must not call the store); compare-and-set writes compare
// what the SQL statements compare. It passes storage/conformance.
package memory

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// ErrClosed is returned by every call after Close; it is storage.ErrClosed,
// as the SQL backends return.
var ErrClosed = storage.ErrClosed

// Options tune a Store. The zero value is usable.
type Options struct {
	// Now is the clock used where a backend reads the time itself: the
	// expiry of used nonces and the creation time of keys stored
	// without one. Default time.Now.
	Now func() time.Time
}

// Store is a storage.Storage in memory.
type Store struct {
	now func() time.Time

	// mu guards closed and the content of the maps (the fields
	// themselves are set once by New).
	mu       sync.RWMutex
	closed   bool
	clients  byID[storage.Client]
	keySets  map[string]map[string]storage.Key // set -> kid -> key; a set without keys exists until a key is deleted from it
	tokens   byKind[storage.TokenKind, storage.Token]
	flows    byKind[storage.FlowKind, storage.Flow]
	logins   byID[storage.LoginSession]
	consents byID[storage.ConsentSession]
	trust    byID[storage.TrustedIssuer]
	nonces   map[string]int64          // key -> expiry in Unix microseconds (0: never)
	events   []storage.RevocationEvent // in position order
	head     int64                     // last position given
}

var _ storage.Storage = (*Store)(nil)

type (
	tokenKey = kindID[storage.TokenKind] // kind and signature
	flowKey  = kindID[storage.FlowKind]
)

// New returns an empty store.
func New(o Options) *Store {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{
		now:     now,
		keySets: map[string]map[string]storage.Key{},
		nonces:  map[string]int64{},
	}
	s.tokens = newByKind(s, copyToken, func(t *storage.Token) (*storage.TokenKind, *string) { return &t.Kind, &t.Signature },
		func(t storage.Token) time.Time { return t.ExpiresAt })
	s.flows = newByKind(s, copyFlow, func(f *storage.Flow) (*storage.FlowKind, *string) { return &f.Kind, &f.ID },
		func(f storage.Flow) time.Time { return f.ExpiresAt })
	s.clients = newByID(s, copyClient, func(c *storage.Client) *string { return &c.ID })
	s.logins = newByID(s, copyLogin, func(l *storage.LoginSession) *string { return &l.ID })
	s.consents = newByID(s, copyConsent, func(c *storage.ConsentSession) *string { return &c.ID })
	s.trust = newByID(s, copyTrust, func(t *storage.TrustedIssuer) *string { return &t.ID })
	return s
}

func (s *Store) Clients() storage.ClientStore                 { return clientStore{&s.clients} }
func (s *Store) Keys() storage.KeyStore                       { return keyStore{s} }
func (s *Store) Tokens() storage.TokenStore                   { return tokenStore{&s.tokens} }
func (s *Store) Flows() storage.FlowStore                     { return flowStore{&s.flows} }
func (s *Store) LoginSessions() storage.LoginSessionStore     { return loginStore{&s.logins} }
func (s *Store) ConsentSessions() storage.ConsentSessionStore { return consentStore{&s.consents} }
func (s *Store) Trust() storage.TrustStore                    { return trustStore{&s.trust} }
func (s *Store) Nonces() storage.NonceStore                   { return nonceStore{s} }

// Ping answers nil until the store is closed.
func (s *Store) Ping(ctx context.Context) error {
	unlock, err := s.rlock(ctx)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// Stats reports an empty pool: there are no connections.
func (s *Store) Stats() *storage.PoolStats { return &storage.PoolStats{} }

// Close drops every row; later calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	clear(s.clients.rows)
	clear(s.keySets)
	clear(s.tokens.rows)
	clear(s.flows.rows)
	clear(s.logins.rows)
	clear(s.consents.rows)
	clear(s.trust.rows)
	clear(s.nonces)
	s.events = nil
	return nil
}

// lock takes the write lock for a call with ctx, failing as a database
// call would if ctx is done or the store is closed.
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	return s.acquire(ctx, &s.mu)
}

// rlock is lock for reading.
func (s *Store) rlock(ctx context.Context) (unlock func(), err error) {
	return s.acquire(ctx, s.mu.RLocker())
}

func (s *Store) acquire(ctx context.Context, l sync.Locker) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.Lock()
	if s.closed {
		l.Unlock()
		return nil, ErrClosed
	}
	return l.Unlock, nil
}

// --- values as the SQL columns keep them ---

func micros(t time.Time) int64 { return storage.UnixMicro(t) }

// stored is t as it comes back from an SQL backend.
func stored(t time.Time) time.Time { return storage.FromUnixMicro(storage.UnixMicro(t)) }

// expiredBefore is the SQL backends' flush condition: an expiry that is
// set and before cutoff (Unix microseconds).
func expiredBefore(exp time.Time, cutoff int64) bool {
	e := micros(exp)
	return e > 0 && e < cutoff
}

// flush deletes at most limit rows of m that expired before `before`
// and returns how many it deleted.
func flush[K comparable, V any](m map[K]V, expires func(V) time.Time, before time.Time, limit int) int64 {
	limit, cutoff := storage.FlushLimit(limit), micros(before)
	var n int64
	for k, v := range m {
		if n == int64(limit) {
			break
		}
		if expiredBefore(expires(v), cutoff) {
			delete(m, k)
			n++
		}
	}
	return n
}

// doc copies a JSON document or byte string; empty is nil.
func doc(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// list copies a string list; empty is nil.
func list(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// The copy functions return a value that shares no memory with their
// argument, in the form an SQL backend would return it.

func copyClient(c storage.Client) storage.Client {
	c.RotatedSecretHashes, c.Metadata = list(c.RotatedSecretHashes), doc(c.Metadata)
	c.CreatedAt, c.UpdatedAt = stored(c.CreatedAt), stored(c.UpdatedAt)
	return c
}

func copyKey(k storage.Key) storage.Key {
	k.PublicJWK, k.PrivateEncrypted = doc(k.PublicJWK), doc(k.PrivateEncrypted)
	k.CreatedAt = stored(k.CreatedAt)
	return k
}

func copyToken(t storage.Token) storage.Token {
	t.Data = doc(t.Data)
	t.IssuedAt, t.ExpiresAt = stored(t.IssuedAt), stored(t.ExpiresAt)
	return t
}

func copyFlow(f storage.Flow) storage.Flow {
	f.Data = doc(f.Data)
	f.CreatedAt, f.ExpiresAt = stored(f.CreatedAt), stored(f.ExpiresAt)
	return f
}

func copyLogin(l storage.LoginSession) storage.LoginSession {
	l.Data = doc(l.Data)
	l.AuthenticatedAt, l.ExpiresAt = stored(l.AuthenticatedAt), stored(l.ExpiresAt)
	return l
}

func copyConsent(c storage.ConsentSession) storage.ConsentSession {
	c.GrantedScope, c.GrantedAudience, c.Data = list(c.GrantedScope), list(c.GrantedAudience), doc(c.Data)
	c.HandledAt, c.ExpiresAt = stored(c.HandledAt), stored(c.ExpiresAt)
	return c
}

func copyTrust(t storage.TrustedIssuer) storage.TrustedIssuer {
	t.Scope, t.PublicKey = list(t.Scope), doc(t.PublicKey)
	t.ExpiresAt, t.CreatedAt = stored(t.ExpiresAt), stored(t.CreatedAt)
	return t
}

// update is the read-modify-write of one row of rows under the store's
// write lock: fn gets a copy of the row, its error is returned as is, and
// what it leaves (with the key fields set back by fix) is stored as a
// copy. It returns what fn left.
func update[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, k K, cp func(V) V, fix func(*V), fn func(*V) error) (V, error) {
	var zero V
	unlock, err := s.lock(ctx)
	if err != nil {
		return zero, err
	}
	defer unlock()
	v, ok := rows[k]
	if !ok {
		return zero, storage.ErrNotFound
	}
	v = cp(v)
	if err := fn(&v); err != nil {
		return zero, err
	}
	fix(&v)
	rows[k] = cp(v)
	return v, nil
}

// get returns a copy of one row of rows.
func get[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, k K, cp func(V) V) (V, error) {
	var zero V
	unlock, err := s.rlock(ctx)
	if err != nil {
		return zero, err
	}
	defer unlock()
	v, ok := rows[k]
	if !ok {
		return zero, storage.ErrNotFound
	}
	return cp(v), nil
}

// create stores a copy of v under k unless k is taken.
func create[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, k K, v V, cp func(V) V) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := rows[k]; ok {
		return storage.ErrAlreadyExists
	}
	rows[k] = cp(v)
	return nil
}

// remove deletes the row k of rows and records ev (if not nil) with it;
// ErrNotFound if there is none.
func remove[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, k K, ev *storage.RevocationEvent) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := rows[k]; !ok {
		return storage.ErrNotFound
	}
	delete(rows, k)
	if ev != nil {
		s.record(*ev)
	}
	return nil
}

// flushExpired is FlushExpired on rows.
func flushExpired[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, expires func(V) time.Time, before time.Time, limit int) (int64, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	return flush(rows, expires, before, limit), nil
}

// selectRows returns copies of the rows match selects, in no order.
func selectRows[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, match func(*V) bool, cp func(V) V) ([]V, error) {
	unlock, err := s.rlock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []V
	for _, v := range rows {
		if match(&v) {
			out = append(out, cp(v))
		}
	}
	return out, nil
}

// deleteRows deletes the rows match selects and returns how many.
func deleteRows[K comparable, V any](ctx context.Context, s *Store, rows map[K]V, match func(*V) bool) (int64, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var n int64
	for k, v := range rows {
		if match(&v) {
			delete(rows, k)
			n++
		}
	}
	return n, nil
}

// byID is a table of rows with a string id, and the Create, Get, Update
// and Delete of the stores that keep such rows.
type byID[V any] struct {
	s    *Store
	rows map[string]V
	cp   func(V) V
	id   func(*V) *string
}

func newByID[V any](s *Store, cp func(V) V, id func(*V) *string) byID[V] {
	return byID[V]{s: s, rows: map[string]V{}, cp: cp, id: id}
}

func (t *byID[V]) Create(ctx context.Context, v V) error {
	return create(ctx, t.s, t.rows, *t.id(&v), v, t.cp)
}

func (t *byID[V]) Get(ctx context.Context, id string) (V, error) {
	return get(ctx, t.s, t.rows, id, t.cp)
}

// Update runs fn on a copy of the row under the lock; the id cannot be
// changed.
func (t *byID[V]) Update(ctx context.Context, id string, fn func(*V) error) (V, error) {
	return update(ctx, t.s, t.rows, id, t.cp, func(v *V) { *t.id(v) = id }, fn)
}

func (t *byID[V]) Delete(ctx context.Context, id string) error {
	return remove(ctx, t.s, t.rows, id, nil)
}

// deleteRecording is Delete recording ev (if not nil) with the deletion,
// for the stores whose deletions revoke tokens.
func (t *byID[V]) deleteRecording(ctx context.Context, id string, ev *storage.RevocationEvent) error {
	return remove(ctx, t.s, t.rows, id, ev)
}

// kindID is the key of a row named by kind and id (a token's id is its
// signature).
type kindID[K ~string] struct {
	kind K
	id   string
}

// byKind is a table of rows keyed by kind and id, and the Create, Get,
// Update, Delete and FlushExpired of the stores that keep such rows.
type byKind[K ~string, V any] struct {
	s       *Store
	rows    map[kindID[K]]V
	cp      func(V) V
	key     func(*V) (kind *K, id *string)
	expires func(V) time.Time
}

func newByKind[K ~string, V any](s *Store, cp func(V) V, key func(*V) (*K, *string), expires func(V) time.Time) byKind[K, V] {
	return byKind[K, V]{s: s, rows: map[kindID[K]]V{}, cp: cp, key: key, expires: expires}
}

func (t *byKind[K, V]) Create(ctx context.Context, v V) error {
	kind, id := t.key(&v)
	return create(ctx, t.s, t.rows, kindID[K]{*kind, *id}, v, t.cp)
}

func (t *byKind[K, V]) Get(ctx context.Context, kind K, id string) (V, error) {
	return get(ctx, t.s, t.rows, kindID[K]{kind, id}, t.cp)
}

// Update runs fn on a copy of the row under the lock; the kind and id
// cannot be changed.
func (t *byKind[K, V]) Update(ctx context.Context, kind K, id string, fn func(*V) error) (V, error) {
	fix := func(v *V) {
		k, i := t.key(v)
		*k, *i = kind, id
	}
	return update(ctx, t.s, t.rows, kindID[K]{kind, id}, t.cp, fix, fn)
}

func (t *byKind[K, V]) Delete(ctx context.Context, kind K, id string) error {
	return remove(ctx, t.s, t.rows, kindID[K]{kind, id}, nil)
}

func (t *byKind[K, V]) FlushExpired(ctx context.Context, before time.Time, limit int) (int64, error) {
	return flushExpired(ctx, t.s, t.rows, t.expires, before, limit)
}
