package oauth2

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// ---------------------------------------------------------------- stores

// The stores are storage/memory's; the clock is storage/storetest's.
type clock = storetest.Clock

func newClock() *clock { return storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)) }

// failingTokens is a token store whose Get fails, once failGet was
// called, with the error given (a database that went down).
type failingTokens struct {
	storage.TokenStore
	mu     sync.Mutex
	getErr error
}

func (f *failingTokens) failGet(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getErr = err
}

func (f *failingTokens) Get(ctx context.Context, kind storage.TokenKind, sig string) (storage.Token, error) {
	f.mu.Lock()
	err := f.getErr
	f.mu.Unlock()
	if err != nil {
		return storage.Token{}, err
	}
	return f.TokenStore.Get(ctx, kind, sig)
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
