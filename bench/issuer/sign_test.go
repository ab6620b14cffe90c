package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/keys"
)

// The RS256 sign cost of a private JWK read back with jwk.ParseKey and
// jwk.Export (as keys.Manager opens its keys) against the same key after
// rsa.PrivateKey.Precompute, which keys.Manager calls on opening a key.
//
//	go test -run '^$' -bench Sign -count 5 ./bench/issuer
func BenchmarkSignRS256(b *testing.B) {
	gen, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	exported := func(b *testing.B) *rsa.PrivateKey {
		jk, err := jwk.Import(gen)
		if err != nil {
			b.Fatal(err)
		}
		raw, err := json.Marshal(jk)
		if err != nil {
			b.Fatal(err)
		}
		if jk, err = jwk.ParseKey(raw); err != nil {
			b.Fatal(err)
		}
		var k any
		if err := jwk.Export(jk, &k); err != nil {
			b.Fatal(err)
		}
		return k.(*rsa.PrivateKey)
	}
	payload := []byte(`{"aud":[],"client_id":"6064a8d8-25b1-4f4a-9bc1-5dc384ae2c69","exp":1796176704,"iat":1796173104,"iss":"http://127.0.0.1:4444","jti":"6d31fdf4-b78e-45c0-95e2-831a9d7b04c7","nbf":1796173104,"scope":"read","scp":["read"],"sub":"6064a8d8-25b1-4f4a-9bc1-5dc384ae2c69"}`)
	run := func(b *testing.B, key *rsa.PrivateKey) {
		b.ReportAllocs()
		for b.Loop() {
			hdr := jws.NewHeaders()
			_ = hdr.Set(jws.KeyIDKey, "a870db34-842d-47cf-80e5-df5a383d0eb9")
			_ = hdr.Set(jws.TypeKey, "at+jwt")
			if _, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr))); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("generated", func(b *testing.B) { run(b, gen) })
	b.Run("jwk-exported", func(b *testing.B) { run(b, exported(b)) })
	b.Run("jwk-exported+Precompute", func(b *testing.B) {
		k := exported(b)
		k.Precompute()
		run(b, k)
	})
	// What keys.Manager.Sign calls: the JWS built on jwx's jwsbb.
	b.Run("keys.SignCompact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.SignCompact(gen, jwa.RS256(), "a870db34-842d-47cf-80e5-df5a383d0eb9", "at+jwt", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
