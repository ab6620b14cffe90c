package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
	"sort"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// Key uses (RFC 7517 §4.2).
const (
	UseSig = "sig"
	UseEnc = "enc"
)

// RSA modulus bounds for generated and imported keys. RFC 7518 §3.3
// requires at least 2048 bits for RS*/PS*; the upper bound keeps a single
// admin request from costing minutes of CPU.
const (
	DefaultRSABits = 2048
	MinRSABits     = 2048
	MaxRSABits     = 8192
)

// DefaultAlg is the algorithm of generated keys when Options.DefaultAlg is
// empty. RS256 is the one algorithm every relying party must support
// (OpenID Connect Core §3.1.3.7) and the only one some gateways verify.
const DefaultAlg = "RS256"

type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
)

// algSpec describes one supported JWK "alg".
type algSpec struct {
	name  string
	use   string
	kind  keyKind
	curve elliptic.Curve // kindEC only; nil means any NIST curve (ECDH-ES)
	sig   jwa.SignatureAlgorithm
}

// algs lists the algorithms keys may carry. Symmetric algorithms (HS*) are
// deliberately absent: a key set is published, and a shared secret in it
// would be a leak.
var algs = map[string]algSpec{
	"RS256": {name: "RS256", use: UseSig, kind: kindRSA, sig: jwa.RS256()},
	"RS384": {name: "RS384", use: UseSig, kind: kindRSA, sig: jwa.RS384()},
	"RS512": {name: "RS512", use: UseSig, kind: kindRSA, sig: jwa.RS512()},
	"PS256": {name: "PS256", use: UseSig, kind: kindRSA, sig: jwa.PS256()},
	"PS384": {name: "PS384", use: UseSig, kind: kindRSA, sig: jwa.PS384()},
	"PS512": {name: "PS512", use: UseSig, kind: kindRSA, sig: jwa.PS512()},
	"ES256": {name: "ES256", use: UseSig, kind: kindEC, curve: elliptic.P256(), sig: jwa.ES256()},
	"ES384": {name: "ES384", use: UseSig, kind: kindEC, curve: elliptic.P384(), sig: jwa.ES384()},
	"ES512": {name: "ES512", use: UseSig, kind: kindEC, curve: elliptic.P521(), sig: jwa.ES512()},
	"EdDSA": {name: "EdDSA", use: UseSig, kind: kindEd25519, sig: jwa.EdDSA()},
	// Encryption keys (RFC 7518 §4.3, §4.6) can be generated and stored
	// for clients that encrypt to the issuer; they are never used to sign.
	"RSA-OAEP":     {name: "RSA-OAEP", use: UseEnc, kind: kindRSA},
	"RSA-OAEP-256": {name: "RSA-OAEP-256", use: UseEnc, kind: kindRSA},
	"ECDH-ES":      {name: "ECDH-ES", use: UseEnc, kind: kindEC},
}

// SupportedAlgs returns the algorithms accepted for use ("sig" or "enc").
func SupportedAlgs(use string) []string {
	var out []string
	for n, s := range algs {
		if s.use == use {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func lookupAlg(alg, use string) (algSpec, error) {
	s, ok := algs[alg]
	if !ok {
		return algSpec{}, fmt.Errorf("the algorithm %q is not supported (signing: %v; encryption: %v)",
			truncate(alg), SupportedAlgs(UseSig), SupportedAlgs(UseEnc))
	}
	if s.use != use {
		return algSpec{}, fmt.Errorf("the algorithm %q cannot be used with \"use\": %q (allowed: %v)",
			alg, use, SupportedAlgs(use))
	}
	return s, nil
}

// generate creates a private key for spec.
func generate(spec algSpec, rsaBits int) (crypto.Signer, error) {
	switch spec.kind {
	case kindRSA:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case kindEC:
		curve := spec.curve
		if curve == nil {
			curve = elliptic.P256()
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case kindEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("keys: no generator for %s", spec.name)
}

// checkMaterial verifies that a raw key (as exported by jwk.Export) is of
// the kind spec needs, with an acceptable size or curve.
func checkMaterial(spec algSpec, raw any) error {
	switch spec.kind {
	case kindRSA:
		var n int
		switch k := raw.(type) {
		case *rsa.PrivateKey:
			n = k.N.BitLen()
		case *rsa.PublicKey:
			n = k.N.BitLen()
		default:
			return fmt.Errorf("the algorithm %s needs an RSA key", spec.name)
		}
		if n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("the RSA modulus has %d bits, between %d and %d are required", n, MinRSABits, MaxRSABits)
		}
	case kindEC:
		var c elliptic.Curve
		switch k := raw.(type) {
		case *ecdsa.PrivateKey:
			c = k.Curve
		case *ecdsa.PublicKey:
			c = k.Curve
		default:
			return fmt.Errorf("the algorithm %s needs an EC key", spec.name)
		}
		if spec.curve != nil && c != spec.curve {
			return fmt.Errorf("the algorithm %s needs the curve %s", spec.name, spec.curve.Params().Name)
		}
		if spec.curve == nil && !slices.Contains([]elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()}, c) {
			return fmt.Errorf("the algorithm %s needs one of the curves P-256, P-384, P-521", spec.name)
		}
	case kindEd25519:
		switch raw.(type) {
		case ed25519.PrivateKey, ed25519.PublicKey:
		default:
			return fmt.Errorf("the algorithm %s needs an OKP key on the curve Ed25519", spec.name)
		}
	}
	return nil
}

// selfTestAlg is a signature algorithm able to exercise a private key of
// spec's kind, to prove that an imported private key matches its public
// part (sign, then verify with the public key).
func selfTestAlg(spec algSpec, raw any) jwa.SignatureAlgorithm {
	if spec.use == UseSig {
		return spec.sig
	}
	switch k := raw.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P384():
			return jwa.ES384()
		case elliptic.P521():
			return jwa.ES512()
		}
		return jwa.ES256()
	case ed25519.PrivateKey:
		return jwa.EdDSA()
	}
	return jwa.RS256()
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
