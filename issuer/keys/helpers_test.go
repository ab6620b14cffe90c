package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

var curves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}

// jwkJSON encodes raw (a private key) as a JWK with kid and alg (omitted
// when empty), private or only its public part, plus extra members.
func jwkJSON(t testing.TB, raw any, kid, alg string, private bool, extra map[string]any) json.RawMessage {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !private {
		if k, err = k.PublicKey(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	for n, v := range extra {
		if v == nil {
			delete(m, n)
			continue
		}
		m[n] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ecJWK(t testing.TB, kid, alg, crv string, private bool) json.RawMessage {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curves[crv], rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwkJSON(t, priv, kid, alg, private, nil)
}

func edJWK(t testing.TB, kid string, private bool) json.RawMessage {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwkJSON(t, priv, kid, "EdDSA", private, nil)
}

var (
	rsaOnce sync.Once
	rsaKeys map[int]*rsa.PrivateKey
)

// testRSA returns a cached RSA key of bits (1024 or 2048; generation is
// slow, so each size is made once per test binary).
func testRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		rsaKeys = map[int]*rsa.PrivateKey{}
		for _, b := range []int{1024, 2048} {
			k, err := rsa.GenerateKey(rand.Reader, b)
			if err != nil {
				panic(err)
			}
			rsaKeys[b] = k
		}
	})
	return rsaKeys[bits]
}
