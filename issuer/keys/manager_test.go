package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/internal/flight/flighttest"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

const (
	secretOld = "old-system-secret-0123456789"
	secretNew = "new-system-secret-9876543210"
)

func keyring(t testing.TB, system ...string) *secrets.Keyring {
	t.Helper()
	if len(system) == 0 {
		system = []string{secretNew}
	}
	k, err := secrets.NewKeyring(system)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type env struct {
	store *memKeys
	clock *clock
}

func newEnv() *env { return &env{store: newMemKeys(), clock: newClock()} }

// manager returns a Manager over the env's store and clock; opts may
// adjust the options.
func (e *env) manager(t testing.TB, ring *secrets.Keyring, opts ...func(*Options)) *Manager {
	t.Helper()
	o := Options{DefaultAlg: "ES256"}
	for _, f := range opts {
		f(&o)
	}
	m, err := New(Deps{Store: e.store, Keyring: ring, Now: e.clock.Now}, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// verify checks tok against the public keys of sets as published, the
// way a relying party would (the JWK's alg and kid select the key).
func verify(t *testing.T, m *Manager, tok string, sets ...string) []byte {
	t.Helper()
	pub, err := m.PublicKeys(context.Background(), sets...)
	if err != nil {
		t.Fatalf("PublicKeys: %v", err)
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(pub, jws.WithRequireKid(true)))
	if err != nil {
		t.Fatalf("token does not verify against the published keys: %v", err)
	}
	return payload
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(h, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// privateParams returns the base64url values of a private JWK's private
// parameters (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
func privateParams(t *testing.T, k jwk.Key) []string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var out []string
	for _, p := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if v, ok := m[p].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("key has no private parameters: %s", b)
	}
	return out
}

// assertNoPrivateMaterial checks a "database dump": no private parameter,
// neither base64url-encoded nor raw, appears in any row.
func assertNoPrivateMaterial(t *testing.T, rows []storage.Key, params []string) {
	t.Helper()
	for _, r := range rows {
		for _, p := range params {
			raw, _ := base64.RawURLEncoding.DecodeString(p)
			for _, field := range [][]byte{r.PublicJWK, r.PrivateEncrypted} {
				if bytes.Contains(field, []byte(p)) || (len(raw) >= 8 && bytes.Contains(field, raw)) {
					t.Fatalf("row %s/%s reveals private key material", r.Set, r.KID)
				}
			}
		}
		if bytes.Contains(r.PublicJWK, []byte(`"d"`)) {
			t.Fatalf("row %s/%s public JWK has a \"d\" member: %s", r.Set, r.KID, r.PublicJWK)
		}
	}
}

func TestNewManagerOptions(t *testing.T) {
	ring := keyring(t)
	store := newMemKeys()
	deps := Deps{Store: store, Keyring: ring}
	tests := []struct {
		name    string
		deps    Deps
		opts    Options
		wantErr string
	}{
		{"defaults", deps, Options{}, ""},
		{"no store", Deps{Keyring: ring}, Options{}, "Store"},
		{"no keyring", Deps{Store: store}, Options{}, "Keyring"},
		{"symmetric alg", deps, Options{DefaultAlg: "HS256"}, "not supported"},
		{"none alg", deps, Options{DefaultAlg: "none"}, "not supported"},
		{"encryption alg", deps, Options{DefaultAlg: "RSA-OAEP"}, "cannot be used"},
		{"small RSA", deps, Options{RSABits: 1024}, "between 2048 and 8192"},
		{"huge RSA", deps, Options{RSABits: 16384}, "between 2048 and 8192"},
		{"EdDSA", deps, Options{DefaultAlg: "EdDSA"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.deps, tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.opts.DefaultAlg == "" && m.DefaultAlg() != "RS256" {
					t.Fatalf("default alg %s", m.DefaultAlg())
				}
				if m.JWKSMaxAge() != DefaultJWKSMaxAge {
					t.Fatalf("JWKSMaxAge %v", m.JWKSMaxAge())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestGenerateAndSignPerAlg(t *testing.T) {
	tests := []struct {
		alg    string
		check  func(raw any) bool
		detail string
	}{
		{"RS256", isRSA2048, "RSA 2048"},
		{"RS384", isRSA2048, "RSA 2048"},
		{"RS512", isRSA2048, "RSA 2048"},
		{"PS256", isRSA2048, "RSA 2048"},
		{"ES256", isCurve("P-256"), "P-256"},
		{"ES384", isCurve("P-384"), "P-384"},
		{"ES512", isCurve("P-521"), "P-521"},
		{"EdDSA", func(raw any) bool { _, ok := raw.(ed25519.PrivateKey); return ok }, "Ed25519"},
	}
	e := newEnv()
	m := e.manager(t, keyring(t))
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			set := "set-" + tt.alg
			priv, err := m.Generate(ctx, set, GenerateParams{Alg: tt.alg})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			kid, _ := priv.KeyID()
			alg, _ := priv.Algorithm()
			use, _ := priv.KeyUsage()
			if kid == "" || alg.String() != tt.alg || use != "sig" {
				t.Fatalf("generated key kid=%q alg=%v use=%q", kid, alg, use)
			}
			var raw any
			if err := jwk.Export(priv, &raw); err != nil || !tt.check(raw) {
				t.Fatalf("generated key is not %s: %T (%v)", tt.detail, raw, err)
			}

			row, err := e.store.Get(ctx, set, kid)
			if err != nil {
				t.Fatal(err)
			}
			if row.Alg != tt.alg || row.Use != "sig" || len(row.PrivateEncrypted) == 0 {
				t.Fatalf("stored row alg=%q use=%q private=%d bytes", row.Alg, row.Use, len(row.PrivateEncrypted))
			}
			assertNoPrivateMaterial(t, []storage.Key{row}, privateParams(t, priv))

			if got, err := m.SigningAlg(ctx, set); err != nil || got != tt.alg {
				t.Fatalf("SigningAlg = %q, %v", got, err)
			}
			payload := []byte(`{"sub":"alice"}`)
			tok, err := m.Sign(ctx, set, "at+jwt", payload)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got := verify(t, m, tok, set); !bytes.Equal(got, payload) {
				t.Fatalf("payload %s", got)
			}
			h := header(t, tok)
			if h["alg"] != tt.alg || h["kid"] != kid || h["typ"] != "at+jwt" {
				t.Fatalf("protected header %v", h)
			}
			pub, _ := m.PublicKeys(ctx, set)
			k, _ := pub.Key(0)
			if pk, _ := jwk.IsPrivateKey(k); pk || pub.Len() != 1 {
				t.Fatal("PublicKeys returned a private key")
			}
			if a, _ := k.Algorithm(); a.String() != tt.alg {
				t.Fatalf("published alg %v", a)
			}
			if u, _ := k.KeyUsage(); u != "sig" {
				t.Fatalf("published use %q", u)
			}
		})
	}
}

func isRSA2048(raw any) bool {
	k, ok := raw.(*rsa.PrivateKey)
	return ok && k.N.BitLen() == 2048
}

func isCurve(name string) func(any) bool {
	return func(raw any) bool {
		k, ok := raw.(*ecdsa.PrivateKey)
		return ok && k.Curve.Params().Name == name
	}
}

func TestGenerateRSABitsAndEncryptionKeys(t *testing.T) {
	e := newEnv()
	m := e.manager(t, keyring(t), func(o *Options) { o.RSABits = 3072 })
	ctx := context.Background()
	priv, err := m.Generate(ctx, "big", GenerateParams{Alg: "RS256", KID: "rsa-3072"})
	if err != nil {
		t.Fatal(err)
	}
	var raw any
	_ = jwk.Export(priv, &raw)
	if k := raw.(*rsa.PrivateKey); k.N.BitLen() != 3072 {
		t.Fatalf("RSA key has %d bits", k.N.BitLen())
	}
	if kid, _ := priv.KeyID(); kid != "rsa-3072" {
		t.Fatalf("kid %q", kid)
	}

	// Encryption keys are stored and published but never sign.
	for _, alg := range []string{"ECDH-ES", "RSA-OAEP-256"} {
		if _, err := m.Generate(ctx, "enc", GenerateParams{Alg: alg, Use: "enc"}); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	if _, err := m.Sign(ctx, "enc", "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign with encryption keys only: %v", err)
	}
	pub, err := m.PublicKeys(ctx, "enc")
	if err != nil || pub.Len() != 2 {
		t.Fatalf("PublicKeys: %v, %d keys", err, pub.Len())
	}
}

func TestSignTypHeader(t *testing.T) {
	e := newEnv()
	m := e.manager(t, keyring(t))
	ctx := context.Background()
	if err := m.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"", "JWT", "at+jwt"} {
		tok, err := m.Sign(ctx, SetIDToken, typ, []byte(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		h := header(t, tok)
		got, has := h["typ"]
		if (typ == "" && has) || (typ != "" && got != typ) {
			t.Fatalf("typ %q: header %v", typ, h)
		}
		if len(h) != map[bool]int{true: 2, false: 3}[typ == ""] {
			t.Fatalf("unexpected header members %v", h)
		}
	}
	if _, err := m.Sign(ctx, "no-such-set", "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign on a missing set: %v", err)
	}
}

func TestRotationOfSystemSecrets(t *testing.T) {
	e := newEnv()
	ctx := context.Background()
	before := e.manager(t, keyring(t, secretOld))
	if err := before.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	kid, _ := before.SigningKeyID(ctx, SetIDToken)

	// SECRETS_SYSTEM=new,old: the key made under "old" still signs.
	rotated := e.manager(t, keyring(t, secretNew, secretOld))
	if err := rotated.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatalf("EnsureSets after rotation: %v", err)
	}
	tok, err := rotated.Sign(ctx, SetIDToken, "JWT", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if header(t, tok)["kid"] != kid {
		t.Fatal("rotation of the system secret changed the signing key")
	}
	verify(t, before, tok, SetIDToken)

	// A key generated after rotation is sealed under "new".
	if _, err := rotated.Generate(ctx, SetIDToken, GenerateParams{KID: "after-rotation"}); err != nil {
		t.Fatal(err)
	}
	newRow, _ := e.store.Get(ctx, SetIDToken, "after-rotation")
	if _, err := keyring(t, secretNew).Decrypt(purposeJWK, newRow.PrivateEncrypted, aad(SetIDToken, "after-rotation")); err != nil {
		t.Fatal("new key not encrypted under the first secret")
	}

	// SECRETS_SYSTEM=new alone: the old key can no longer be opened, and
	// a replica configured so fails at start, naming the problem.
	onlyNew := e.manager(t, keyring(t, secretNew))
	if err := e.store.Delete(ctx, SetIDToken, "after-rotation", nil); err != nil {
		t.Fatal(err)
	}
	err = onlyNew.EnsureSets(ctx, SetIDToken)
	if !errors.Is(err, ErrNoSigningKey) || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Fatalf("EnsureSets with the old secret removed: %v", err)
	}
	if _, err := onlyNew.Sign(ctx, SetIDToken, "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign with the old secret removed: %v", err)
	}
	// The old-only replica cannot open keys made under the new secret.
	if _, err := rotated.Generate(ctx, "fresh", GenerateParams{}); err != nil {
		t.Fatal(err)
	}
	oldOnly := e.manager(t, keyring(t, secretOld))
	if _, err := oldOnly.Sign(ctx, "fresh", "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("old-only keyring signed with a key sealed under the new secret: %v", err)
	}
}

func TestStoreNeverHoldsPrivateKeys(t *testing.T) {
	e := newEnv()
	m := e.manager(t, keyring(t))
	ctx := context.Background()
	var params []string
	for _, alg := range []string{"RS256", "ES384", "EdDSA"} {
		priv, err := m.Generate(ctx, "dump", GenerateParams{Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, privateParams(t, priv)...)
	}
	// Imported private keys too.
	imported := ecJWK(t, "imported", "ES256", "P-256", true)
	if _, err := m.PutKey(ctx, "dump", "imported", imported); err != nil {
		t.Fatal(err)
	}
	ik, _ := jwk.ParseKey(imported)
	params = append(params, privateParams(t, ik)...)
	assertNoPrivateMaterial(t, e.store.all(), params)
}

func TestTamperedRowsDoNotSign(t *testing.T) {
	e := newEnv()
	m := e.manager(t, keyring(t))
	ctx := context.Background()
	if _, err := m.Generate(ctx, "a", GenerateParams{KID: "ka"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(ctx, "b", GenerateParams{KID: "kb"}); err != nil {
		t.Fatal(err)
	}
	a, _ := e.store.Get(ctx, "a", "ka")
	b, _ := e.store.Get(ctx, "b", "kb")

	// b's ciphertext moved into a's row: bound to b/kb, it does not open.
	swapped := a
	swapped.PrivateEncrypted = b.PrivateEncrypted
	e.store.put(t, swapped)
	m.Refresh()
	if _, err := m.Sign(ctx, "a", "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign with a swapped private key: %v", err)
	}

	// A flipped bit fails the same way.
	flipped := a
	flipped.PrivateEncrypted = bytes.Clone(a.PrivateEncrypted)
	flipped.PrivateEncrypted[len(flipped.PrivateEncrypted)/2] ^= 1
	e.store.put(t, flipped)
	m.Refresh("a")
	if _, err := m.Sign(ctx, "a", "", []byte("{}")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Sign with a corrupted private key: %v", err)
	}

	// A row whose "public" JWK holds a private key is never published.
	priv, _ := m.Generate(ctx, "c", GenerateParams{KID: "kc"})
	c, _ := e.store.Get(ctx, "c", "kc")
	c.PublicJWK, _ = json.Marshal(priv)
	e.store.put(t, c)
	m.Refresh()
	pub, err := m.PublicKeys(ctx, "c")
	if err != nil || pub.Len() != 0 {
		t.Fatalf("PublicKeys published a row holding private parameters: %v, %d keys", err, pub.Len())
	}
	if _, err := m.GetKey(ctx, "c", "kc"); err == nil {
		t.Fatal("GetKey returned a row holding private parameters")
	}
}

func TestEnsureSetsRace(t *testing.T) {
	e := newEnv()
	e.store.initDelay = 20 * time.Millisecond
	ctx := context.Background()
	const replicas = 4
	ms := make([]*Manager, replicas)
	for i := range ms {
		ms[i] = e.manager(t, keyring(t, secretNew, secretOld))
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.EnsureSets(ctx, SetIDToken, SetAccessToken)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	if e.store.inits < 2 {
		t.Fatalf("the race was not exercised: %d Init calls", e.store.inits)
	}
	for _, set := range []string{SetIDToken, SetAccessToken} {
		rows, err := e.store.List(ctx, set)
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: %d keys (%v), want exactly one", set, len(rows), err)
		}
		for i, m := range ms {
			kid, err := m.SigningKeyID(ctx, set)
			if err != nil || kid != rows[0].KID {
				t.Fatalf("replica %d signs %s with %q (%v), the store holds %q", i, set, kid, err, rows[0].KID)
			}
		}
		// What one replica signs, another's JWKS verifies.
		tok, err := ms[0].Sign(ctx, set, "JWT", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		verify(t, ms[replicas-1], tok, SetIDToken, SetAccessToken)
	}
}

func TestEnsureSetsExisting(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	m := e.manager(t, keyring(t))
	if err := m.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	kid, _ := m.SigningKeyID(ctx, SetIDToken)
	// A second start keeps the key.
	m2 := e.manager(t, keyring(t))
	if err := m2.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	if kid2, _ := m2.SigningKeyID(ctx, SetIDToken); kid2 != kid {
		t.Fatal("EnsureSets replaced an existing set")
	}

	// A set holding only public keys cannot sign: refused at start.
	pubOnly := newEnv()
	if err := pubOnly.store.Add(ctx, storage.Key{Set: SetAccessToken, KID: "p", Alg: "ES256", Use: "sig",
		PublicJWK: ecJWK(t, "p", "ES256", "P-256", false), CreatedAt: pubOnly.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	err := pubOnly.manager(t, keyring(t)).EnsureSets(ctx, SetAccessToken)
	if !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("EnsureSets on a public-only set: %v", err)
	}
	if err := m.EnsureSets(ctx, "bad/name"); err == nil {
		t.Fatal("EnsureSets accepted a set name with a slash")
	}
}

func TestCacheAndCrossReplicaRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	a := e.manager(t, keyring(t))
	b := e.manager(t, keyring(t))
	if err := a.EnsureSets(ctx, SetAccessToken); err != nil {
		t.Fatal(err)
	}
	first, _ := b.SigningKeyID(ctx, SetAccessToken)

	// Signing is served from memory.
	lists := e.store.listCount()
	for range 50 {
		if _, err := b.Sign(ctx, SetAccessToken, "at+jwt", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.store.listCount() - lists; n != 0 {
		t.Fatalf("signing read the store %d times", n)
	}

	// Rotation on replica a: a signs with the new key at once ...
	if _, err := a.Generate(ctx, SetAccessToken, GenerateParams{KID: "second"}); err != nil {
		t.Fatal(err)
	}
	if kid, _ := a.SigningKeyID(ctx, SetAccessToken); kid != "second" {
		t.Fatalf("rotating replica signs with %q", kid)
	}
	// ... b within the refresh interval ...
	e.clock.Advance(DefaultRefreshInterval - time.Second)
	if kid, _ := b.SigningKeyID(ctx, SetAccessToken); kid != first {
		t.Fatalf("b re-read the store before the refresh interval: %q", kid)
	}
	e.clock.Advance(time.Second)
	if kid, _ := b.SigningKeyID(ctx, SetAccessToken); kid != "second" {
		t.Fatalf("b still signs with %q after the refresh interval", kid)
	}
	// ... or at once when asked.
	if _, err := a.Generate(ctx, SetAccessToken, GenerateParams{KID: "third"}); err != nil {
		t.Fatal(err)
	}
	b.Refresh(SetAccessToken)
	if kid, _ := b.SigningKeyID(ctx, SetAccessToken); kid != "third" {
		t.Fatalf("b signs with %q after Refresh", kid)
	}
	// Old keys stay published for tokens already issued.
	pub, _ := b.PublicKeys(ctx, SetAccessToken)
	if pub.Len() != 3 {
		t.Fatalf("%d published keys, want 3", pub.Len())
	}
}

func TestDeletedEnsuredSetIsRecreated(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	m := e.manager(t, keyring(t))
	if err := m.EnsureSets(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	old, _ := m.SigningKeyID(ctx, SetIDToken)
	if err := m.DeleteSet(ctx, SetIDToken); err != nil {
		t.Fatal(err)
	}
	tok, err := m.Sign(ctx, SetIDToken, "JWT", []byte("{}"))
	if err != nil {
		t.Fatalf("Sign after the set was deleted: %v", err)
	}
	if kid := header(t, tok)["kid"]; kid == old || kid == "" {
		t.Fatalf("signed with %v", kid)
	}
	verify(t, m, tok, SetIDToken)
	// Other sets are not invented.
	if pub, err := m.PublicKeys(ctx, "unknown"); err != nil || pub.Len() != 0 {
		t.Fatalf("PublicKeys of a missing set: %v", err)
	}
}

func TestPublicKeysNewestFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	m := e.manager(t, keyring(t))
	var want []string
	for i, set := range []string{SetIDToken, SetAccessToken, SetIDToken, SetAccessToken} {
		kid := fmt.Sprintf("k%d", i)
		if _, err := m.Generate(ctx, set, GenerateParams{KID: kid}); err != nil {
			t.Fatal(err)
		}
		want = append([]string{kid}, want...)
		e.clock.Advance(time.Minute)
	}
	// Same clock reading: still ordered by creation.
	if _, err := m.Generate(ctx, SetIDToken, GenerateParams{KID: "k4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(ctx, SetIDToken, GenerateParams{KID: "k5"}); err != nil {
		t.Fatal(err)
	}
	want = append([]string{"k5", "k4"}, want...)
	if kid, _ := m.SigningKeyID(ctx, SetIDToken); kid != "k5" {
		t.Fatalf("signing key %q, want the newest", kid)
	}
	pub, err := m.PublicKeys(ctx, SetIDToken, SetAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range pub.Len() {
		k, _ := pub.Key(i)
		kid, _ := k.KeyID()
		got = append(got, kid)
		if a, ok := k.Algorithm(); !ok || a != jwa.ES256() {
			t.Fatalf("key %s alg %v", kid, a)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v", got, want)
	}
	// Callers get copies: changing one does not change the Manager's.
	k, _ := pub.Key(0)
	_ = k.Set(jwk.KeyIDKey, "mutated")
	again, _ := m.PublicKeys(ctx, SetIDToken)
	k0, _ := again.Key(0)
	if kid, _ := k0.KeyID(); kid == "mutated" {
		t.Fatal("PublicKeys handed out the cached key")
	}
}

// TestCancelledCallerDoesNotFailTheSharedReload: two requests need the key
// set while it is being re-read; the one whose read it is gives up (its
// client hung up); the other still signs, with the keys that read loaded.
func TestCancelledCallerDoesNotFailTheSharedReload(t *testing.T) {
	e := newEnv()
	m := e.manager(t, keyring(t))
	if err := m.EnsureSets(context.Background(), SetAccessToken); err != nil {
		t.Fatal(err)
	}
	m.Refresh()
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.store.listGate = func(ctx context.Context) error {
		once.Do(func() { close(started) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := m.Sign(ctx1, SetAccessToken, "at+jwt", []byte("{}"))
		first <- err
	}()
	<-started
	ctx2, joined := flighttest.Waiter()
	var tok string
	second := make(chan error, 1)
	go func() {
		var err error
		tok, err = m.Sign(ctx2, SetAccessToken, "at+jwt", []byte("{}"))
		second <- err
	}()
	select {
	case <-joined:
	case <-time.After(time.Second): // the second caller waits inside the shared read
	}
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("the second caller failed with the first caller's cancellation: %v", err)
	}
	verify(t, m, tok, SetAccessToken)
}
