package keys

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// ErrNoSigningKey: the set does not exist or holds no private key usable
// for signing. Token endpoints should treat it as a server error.
var ErrNoSigningKey = errors.New("keys: no private signing key")

// signer is the signing key of a set, decrypted, with the protected
// headers it has written so far.
type signer struct {
	kid string
	alg jwa.SignatureAlgorithm
	key any // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey

	headers sync.Map // typ -> base64url protected header
}

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
	// A key rebuilt from JWK parameters has no CRT values precomputed:
	// computing them once here keeps every RSA signature from redoing it.
	if rk, ok := raw.(*rsa.PrivateKey); ok {
		rk.Precompute()
	}
	return &signer{kid: r.KID, alg: spec.sig, key: raw}, nil
}
