// Package dpopsign writes the ES256 DPoP proofs (RFC 9449 §4.2) of the
// load generators: one P-256 key, a fresh jti per proof.
package dpopsign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Signer signs proofs with one key.
type Signer struct {
	key *ecdsa.PrivateKey
	hdr string // base64url protected header: typ, alg, jwk
}

// New returns a Signer with a new P-256 key.
func New() (*Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := jwk.Import(key.Public())
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pub})
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, hdr: base64.RawURLEncoding.EncodeToString(hdr)}, nil
}

// Proof is a proof for a request with method htm to htu, issued now.
func (s *Signer) Proof(htm, htu string) (string, error) {
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims, _ := json.Marshal(map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": htm,
		"htu": htu, "iat": time.Now().Unix()})
	in := s.hdr + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := jwsbb.Sign(s.key, "ES256", []byte(in), nil)
	if err != nil {
		return "", err
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
