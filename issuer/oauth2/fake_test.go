package oauth2

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// ---------------------------------------------------------------- clock

// The client and nonce stores and the clock are storage/storetest's.
type (
	clock      = storetest.Clock
	memClients = storetest.Clients
	memNonces  = storetest.Nonces
)

func newClock() *clock                             { return storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)) }
func newMemClients() *memClients                   { return storetest.NewClients() }
func newMemNonces(now func() time.Time) *memNonces { return storetest.NewNonces(now) }

// ---------------------------------------------------------------- tokens

type tokenKey struct {
	kind storage.TokenKind
	sig  string
}

// memTokens is an in-memory storage.TokenStore honouring the documented
// semantics; flushCalls counts FlushExpired calls.
type memTokens struct {
	mu         sync.Mutex
	rows       map[tokenKey]storage.Token
	flushCalls int
	failGet    error // injected Get failure
}

var _ storage.TokenStore = (*memTokens)(nil)

func newMemTokens() *memTokens { return &memTokens{rows: map[tokenKey]storage.Token{}} }

func cloneToken(t storage.Token) storage.Token {
	t.Data = slices.Clone(t.Data)
	return t
}

func (m *memTokens) Create(_ context.Context, t storage.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := tokenKey{t.Kind, t.Signature}
	if _, ok := m.rows[k]; ok {
		return storage.ErrAlreadyExists
	}
	m.rows[k] = cloneToken(t)
	return nil
}

func (m *memTokens) Get(_ context.Context, kind storage.TokenKind, sig string) (storage.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGet != nil {
		return storage.Token{}, m.failGet
	}
	t, ok := m.rows[tokenKey{kind, sig}]
	if !ok {
		return storage.Token{}, storage.ErrNotFound
	}
	return cloneToken(t), nil
}

func (m *memTokens) Update(ctx context.Context, kind storage.TokenKind, sig string, fn func(*storage.Token) error) (storage.Token, error) {
	return m.Redeem(ctx, kind, sig, nil, fn, "", nil)
}

func (m *memTokens) Redeem(_ context.Context, kind storage.TokenKind, sig string, _ *storage.Token, fn func(*storage.Token) error, revokeRequest string, issue []storage.Token) (storage.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := tokenKey{kind, sig}
	t, ok := m.rows[k]
	if !ok {
		return storage.Token{}, storage.ErrNotFound
	}
	t = cloneToken(t)
	if err := fn(&t); err != nil {
		return storage.Token{}, err
	}
	for _, n := range issue {
		if _, dup := m.rows[tokenKey{n.Kind, n.Signature}]; dup {
			return storage.Token{}, storage.ErrAlreadyExists
		}
	}
	t.Kind, t.Signature = kind, sig
	if revokeRequest != "" {
		for rk, r := range m.rows {
			if r.ClientID == t.ClientID && r.RequestID == revokeRequest && rk != k {
				r.Active = false
				m.rows[rk] = r
			}
		}
	}
	m.rows[k] = cloneToken(t)
	for _, n := range issue {
		m.rows[tokenKey{n.Kind, n.Signature}] = cloneToken(n)
	}
	return t, nil
}

func (m *memTokens) Delete(_ context.Context, kind storage.TokenKind, sig string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := tokenKey{kind, sig}
	if _, ok := m.rows[k]; !ok {
		return storage.ErrNotFound
	}
	delete(m.rows, k)
	return nil
}

func (m *memTokens) RevokeRequest(_ context.Context, clientID, requestID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.rows {
		if t.ClientID == clientID && t.RequestID == requestID {
			t.Active = false
			m.rows[k] = t
		}
	}
	return nil
}

func (m *memTokens) RevokeClient(_ context.Context, clientID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, t := range m.rows {
		if t.ClientID == clientID && t.Active {
			t.Active = false
			m.rows[k] = t
			n++
		}
	}
	return n, nil
}

// FlushExpired deletes tokens that expired before `before`, and revoked
// ones (the fake does not record when they were revoked).
func (m *memTokens) FlushExpired(_ context.Context, before time.Time, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushCalls++
	var n int64
	for k, t := range m.rows {
		if int(n) >= limit {
			break
		}
		if t.ExpiresAt.Before(before) || !t.Active {
			delete(m.rows, k)
			n++
		}
	}
	return n, nil
}

func (m *memTokens) all() []storage.Token {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]storage.Token, 0, len(m.rows))
	for _, t := range m.rows {
		out = append(out, cloneToken(t))
	}
	return out
}

// ---------------------------------------------------------------- trust

type memTrust struct {
	mu   sync.Mutex
	rows map[string]storage.TrustedIssuer
}

var _ storage.TrustStore = (*memTrust)(nil)

func newMemTrust() *memTrust { return &memTrust{rows: map[string]storage.TrustedIssuer{}} }

func cloneTrust(t storage.TrustedIssuer) storage.TrustedIssuer {
	t.Scope = slices.Clone(t.Scope)
	t.PublicKey = slices.Clone(t.PublicKey)
	return t
}

func (m *memTrust) Create(_ context.Context, t storage.TrustedIssuer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.rows {
		if o.ID == t.ID || (o.Issuer == t.Issuer && o.Subject == t.Subject && o.KeyID == t.KeyID) {
			return storage.ErrAlreadyExists
		}
	}
	m.rows[t.ID] = cloneTrust(t)
	return nil
}

func (m *memTrust) Get(_ context.Context, id string) (storage.TrustedIssuer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.rows[id]
	if !ok {
		return storage.TrustedIssuer{}, storage.ErrNotFound
	}
	return cloneTrust(t), nil
}

func (m *memTrust) List(_ context.Context, issuer string) ([]storage.TrustedIssuer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.TrustedIssuer
	for _, t := range m.rows {
		if issuer == "" || t.Issuer == issuer {
			out = append(out, cloneTrust(t))
		}
	}
	return out, nil
}

func (m *memTrust) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[id]; !ok {
		return storage.ErrNotFound
	}
	delete(m.rows, id)
	return nil
}

func (m *memTrust) Find(_ context.Context, issuer, subject string, now time.Time) ([]storage.TrustedIssuer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.TrustedIssuer
	for _, t := range m.rows {
		if t.Issuer == issuer && (t.AllowAnySubject || t.Subject == subject) && now.Before(t.ExpiresAt) {
			out = append(out, cloneTrust(t))
		}
	}
	return out, nil
}

// ---------------------------------------------------------------- MAC

// fakeKeyring is HMAC-SHA256 under purpose-derived keys of a list of
// secrets: MAC with the first, VerifyMAC with any (as issuer/secrets).
type fakeKeyring struct{ secrets [][]byte }

var _ MACer = (*fakeKeyring)(nil)

func newKeyring(secrets ...string) *fakeKeyring {
	k := &fakeKeyring{}
	for _, s := range secrets {
		k.secrets = append(k.secrets, []byte(s))
	}
	return k
}

func macWith(secret []byte, purpose string, data []byte) []byte {
	d := hmac.New(sha256.New, secret)
	d.Write([]byte(purpose))
	m := hmac.New(sha256.New, d.Sum(nil))
	m.Write(data)
	return m.Sum(nil)
}

func (k *fakeKeyring) MAC(purpose string, data []byte) []byte {
	return macWith(k.secrets[0], purpose, data)
}

func (k *fakeKeyring) VerifyMAC(purpose string, data, mac []byte) bool {
	for _, s := range k.secrets {
		if hmac.Equal(macWith(s, purpose, data), mac) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- signer

// rsaSigner signs with an RSA key through jwx, as issuer/keys will.
type rsaSigner struct {
	key  jwk.Key // private
	pub  jwk.Key
	sets []string // sets asked for
	mu   sync.Mutex
	fail error
}

var _ Signer = (*rsaSigner)(nil)

func newRSASigner(t testing.TB) *rsaSigner {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "at-key-1")
	_ = k.Set(jwk.AlgorithmKey, jwa.RS256())
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return &rsaSigner{key: k, pub: pub}
}

func (s *rsaSigner) Sign(_ context.Context, set, typ string, payload []byte) (string, error) {
	s.mu.Lock()
	s.sets = append(s.sets, set)
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return "", fail
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "at-key-1")
	_ = hdr.Set(jws.TypeKey, typ)
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), s.key, jws.WithProtectedHeaders(hdr)))
	return string(out), err
}

func (s *rsaSigner) publicSet(t testing.TB) jwk.Set {
	set := jwk.NewSet()
	if err := set.AddKey(s.pub); err != nil {
		t.Fatal(err)
	}
	return set
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
