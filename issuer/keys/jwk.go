package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// maxNameLen bounds set names and key ids (they are stored in indexed
// columns and echoed in URLs).
const maxNameLen = 255

// material is a validated key: its clean public JWK and, when known, the
// private JWK. Both carry kid, alg and use.
type material struct {
	kid, alg, use string
	public        jwk.Key
	private       jwk.Key // nil for public-only keys
}

// validSetName checks a key set name. "/" is refused so that the
// encryption context set+"/"+kid names exactly one row.
func validSetName(set string) error {
	if err := validName(set); err != nil {
		return apierr.InvalidRequest("The key set name %s", err)
	}
	if strings.Contains(set, "/") {
		return apierr.InvalidRequest("The key set name must not contain \"/\"")
	}
	return nil
}

func validKID(kid string) error {
	if err := validName(kid); err != nil {
		return apierr.InvalidRequest("The key id (kid) %s", err)
	}
	return nil
}

func validName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > maxNameLen:
		return fmt.Errorf("must be at most %d bytes long", maxNameLen)
	case !utf8.ValidString(s):
		return errors.New("must be valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("must not contain control characters")
	}
	return nil
}

// newKID returns a random key id.
func newKID() string { return uuid.NewString() }

// fromPrivate wraps a raw private key (as generated) as material.
func fromPrivate(raw any, kid string, spec algSpec) (*material, error) {
	priv, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: importing generated key: %w", err)
	}
	m := &material{kid: kid, alg: spec.name, use: spec.use, private: priv}
	if err := m.annotate(priv); err != nil {
		return nil, err
	}
	if m.public, err = m.cleanPublic(priv); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *material) annotate(k jwk.Key) error {
	for name, v := range map[string]string{jwk.KeyIDKey: m.kid, jwk.AlgorithmKey: m.alg, jwk.KeyUsageKey: m.use} {
		if err := k.Set(name, v); err != nil {
			return fmt.Errorf("keys: setting %s: %w", name, err)
		}
	}
	return nil
}

// cleanPublic builds the public JWK from the key material alone plus kid,
// alg, use and the X.509 parameters. Any other member of the input is
// dropped, so nothing private can reach the public document through an
// unusual or custom parameter (RFC 7517 §9.1 / RFC 7518 §6: only the
// public parameters of a key may be published).
func (m *material) cleanPublic(k jwk.Key) (jwk.Key, error) {
	pk, err := k.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("keys: deriving the public key: %w", err)
	}
	var raw any
	if err := jwk.Export(pk, &raw); err != nil {
		return nil, fmt.Errorf("keys: exporting the public key: %w", err)
	}
	out, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: importing the public key: %w", err)
	}
	if priv, _ := jwk.IsPrivateKey(out); priv {
		return nil, errors.New("keys: public view of a key is private")
	}
	if err := m.annotate(out); err != nil {
		return nil, err
	}
	for _, name := range []string{jwk.X509CertChainKey, jwk.X509CertThumbprintKey, jwk.X509CertThumbprintS256Key, jwk.X509URLKey} {
		if !k.Has(name) {
			continue
		}
		var v any
		if err := k.Get(name, &v); err == nil {
			_ = out.Set(name, v)
		}
	}
	return out, nil
}

// parseJWK validates one JWK given through the admin API (or the CLI): it
// must be an RSA, EC or OKP key with a kid (defaultKID fills a missing
// one), a supported alg matching its type and use ("sig" when absent), of
// an acceptable size, and, when private, a private part that matches the
// public one. Errors are *apierr.Error invalid_request values whose
// descriptions never include key material.
func parseJWK(data []byte, defaultKID string) (*material, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, apierr.InvalidRequest("not a JSON Web Key object")
	}
	str := func(name string) (string, error) {
		raw, ok := fields[name]
		if !ok || bytes.Equal(raw, []byte("null")) {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", apierr.InvalidRequest("the member %q must be a string", name)
		}
		return s, nil
	}
	kty, err := str("kty")
	if err != nil {
		return nil, err
	}
	switch kty {
	case "RSA", "EC", "OKP":
	case "oct":
		return nil, apierr.InvalidRequest("symmetric (\"kty\": \"oct\") keys are not accepted: key sets are published")
	case "":
		return nil, apierr.InvalidRequest("the member \"kty\" is required")
	default:
		return nil, apierr.InvalidRequest("the key type %q is not supported (RSA, EC, OKP)", truncate(kty))
	}
	m := &material{}
	if m.kid, err = str("kid"); err != nil {
		return nil, err
	}
	if m.kid == "" {
		m.kid = defaultKID
	}
	if err := validKID(m.kid); err != nil {
		return nil, err
	}
	if m.use, err = str("use"); err != nil {
		return nil, err
	}
	switch m.use {
	case "":
		m.use = UseSig
	case UseSig, UseEnc:
	default:
		return nil, apierr.InvalidRequest("the member \"use\" must be \"sig\" or \"enc\"")
	}
	if m.alg, err = str("alg"); err != nil {
		return nil, err
	}
	if m.alg == "" {
		return nil, apierr.InvalidRequest("the member \"alg\" is required (e.g. %q)", DefaultAlg)
	}
	spec, err := lookupAlg(m.alg, m.use)
	if err != nil {
		return nil, apierr.InvalidRequest("%s", err)
	}

	if kty == "RSA" {
		// Checked before parsing: the parser refuses small moduli with a
		// message that would not say why.
		n, err := str("n")
		if err != nil {
			return nil, err
		}
		if nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n, "=")); err == nil && len(nb) > 0 {
			if bits := new(big.Int).SetBytes(nb).BitLen(); bits < MinRSABits || bits > MaxRSABits {
				return nil, apierr.InvalidRequest("the RSA modulus has %d bits, between %d and %d are required", bits, MinRSABits, MaxRSABits)
			}
		}
	}
	k, err := jwk.ParseKey(data)
	if err != nil {
		// The parser's message is not echoed: it may quote parameters.
		return nil, apierr.InvalidRequest("not a valid %s key: check its base64url-encoded key parameters", kty)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, apierr.InvalidRequest("not a usable %s key", kty)
	}
	if err := checkMaterial(spec, raw); err != nil {
		return nil, apierr.InvalidRequest("%s", err)
	}
	if err := m.annotate(k); err != nil {
		return nil, apierr.InvalidRequest("the key cannot carry kid, alg and use")
	}
	if m.public, err = m.cleanPublic(k); err != nil {
		return nil, apierr.InvalidRequest("no usable public key")
	}
	isPriv, err := jwk.IsPrivateKey(k)
	if err != nil {
		return nil, apierr.InvalidRequest("not an asymmetric key")
	}
	if !isPriv {
		return m, nil
	}
	// Prove the private part belongs to the public one: a mismatched key
	// would otherwise only fail once tokens signed with it are rejected.
	tok, err := jws.Sign([]byte("gatehouse key self-test"), jws.WithKey(selfTestAlg(spec, raw), raw))
	if err != nil {
		return nil, apierr.InvalidRequest("the private part cannot sign")
	}
	var pubRaw any
	if err := jwk.Export(m.public, &pubRaw); err != nil {
		return nil, apierr.InvalidRequest("no usable public key")
	}
	if _, err := jws.Verify(tok, jws.WithKey(selfTestAlg(spec, raw), pubRaw)); err != nil {
		return nil, apierr.InvalidRequest("the private part does not match the public part")
	}
	m.private = k
	return m, nil
}
