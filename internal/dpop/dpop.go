// Package dpop checks OAuth 2.0 DPoP proofs (RFC 9449): the JOSE and claim
// rules of §4.2 and §4.3 that need nothing but the request, the proof and
// a clock. What needs shared state (the jti replay store of §11.1, server
// nonces of §8) stays with the caller: Verify returns the proof's jti and
// issue time for the replay check and asks Options.Nonce about a nonce.
//
// It imports nothing from issuer/ so that the issuer and the sidecar
// (extauthz/) check proofs with the same code.
package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Header is the request header carrying the proof (§4.1); NonceHeader the
// response header carrying a server nonce (§8).
const (
	Header      = "DPoP"
	NonceHeader = "DPoP-Nonce"
	// Scheme is the authentication scheme of DPoP-bound access tokens
	// (§7.1); TokenType the token_type of a bound token response (§5).
	Scheme    = "DPoP"
	TokenType = "DPoP"
)

// Error codes of RFC 9449 §12.2.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Limits that keep hostile proofs cheap (§11.1: "reject DPoP proof JWTs
// with unnecessarily large jti values").
const (
	MaxProofLength = 8 << 10
	MaxJTILength   = 256
	minRSABits     = 2048
)

// Algs are the JWS algorithms accepted for proofs, in the order discovery
// advertises them (dpop_signing_alg_values_supported, §5.1): asymmetric
// signature algorithms only (§4.2, §11.6).
var Algs = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}

// ErrNoProof is returned by Verify when the request carries no DPoP header.
var ErrNoProof = errors.New("dpop: the request has no DPoP header")

// Error is a refused proof. Code is CodeInvalidProof, or CodeUseNonce when
// the proof lacks the server nonce or carries a stale one (§8);
// Description is safe to send to the client.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// Options are what a proof is checked against.
type Options struct {
	// Method is the request's HTTP method (htm, §4.3 item 8); URL the
	// absolute URL of the endpoint as clients address it (htu, item 9),
	// compared after normalisation (NormalizeURL). Both are required.
	Method string
	URL    string
	// Algs restricts the accepted algorithms; default Algs.
	Algs []string
	// Now is the current time (default time.Now()).
	Now time.Time
	// MaxAge is how old iat may be, Leeway how far in the future it may
	// be (§11.1); MaxAge must be positive.
	MaxAge time.Duration
	Leeway time.Duration
	// AccessToken, when set, is the token presented with the proof: the
	// proof must carry its hash in ath (§4.2, §7).
	AccessToken string
	// Headers, when set, remembers the JOSE headers of recent proofs
	// once checked, so that the proofs of one client key (whose headers
	// are the same bytes) skip parsing the key again.
	Headers *HeaderCache
	// Nonce, when set, makes the nonce claim required and reports
	// whether a nonce is one the server currently accepts (§4.3 item 10,
	// §8). Without it a nonce claim is ignored.
	Nonce func(nonce string) bool
}

// Proof is a checked proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url (the cnf.jkt of §6.1 and the dpop_jkt of §10).
	JKT string
	// JTI and IssuedAt are for the caller's replay check (§11.1).
	JTI      string
	IssuedAt time.Time
	Alg      string
}

// Verify checks the DPoP proof of r against o (§4.3). It returns
// ErrNoProof when r has no DPoP header, an *Error for a refused proof,
// and never panics on hostile input.
func Verify(r *http.Request, o Options) (*Proof, error) {
	// §4.3 item 1: not more than one DPoP header field.
	vals := r.Header.Values(Header)
	switch len(vals) {
	case 0:
		return nil, ErrNoProof
	case 1:
	default:
		return nil, invalid("More than one DPoP header was sent")
	}
	return VerifyProof(vals[0], o)
}

// header is the JOSE header of a proof. Members are kept raw to tell an
// absent member from an empty one and to look into the JWK.
type header struct {
	Typ  *string         `json:"typ"`
	Alg  *string         `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// claims are the proof's claims (§4.2).
type claims struct {
	JTI   *string  `json:"jti"`
	HTM   *string  `json:"htm"`
	HTU   *string  `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// privateMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

var b64 = base64.RawURLEncoding.Strict()

// VerifyProof checks the compact proof raw against o (§4.3 items 2 to 12).
func VerifyProof(raw string, o Options) (*Proof, error) {
	if o.URL == "" || o.Method == "" || o.MaxAge <= 0 {
		return nil, errors.New("dpop: Options.Method, URL and a positive MaxAge are required")
	}
	// §4.3 item 2: a single, well-formed JWT (token68 syntax, §4.1).
	if raw == "" || len(raw) > MaxProofLength {
		return nil, invalid("The DPoP proof is empty or longer than %d bytes", MaxProofLength)
	}
	hdrB64, rest, ok1 := strings.Cut(raw, ".")
	payloadB64, sigB64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sigB64, ".") {
		return nil, invalid("The DPoP proof is not a compact JWS")
	}
	hdrJSON, err1 := b64.DecodeString(hdrB64)
	payload, err2 := b64.DecodeString(payloadB64)
	sig, err3 := b64.DecodeString(sigB64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, invalid("The DPoP proof is not a compact JWS (bad base64url)")
	}
	if len(sig) == 0 {
		return nil, invalid("The DPoP proof is unsigned")
	}
	algs := o.Algs
	if algs == nil {
		algs = Algs
	}
	h := o.Headers.get(hdrB64)
	if h == nil {
		var err error
		if h, err = checkHeader(hdrJSON); err != nil {
			return nil, err
		}
		o.Headers.put(hdrB64, h)
	}
	// §4.3 item 5, §11.6: an asymmetric algorithm from the list.
	if !slices.Contains(algs, h.alg) {
		return nil, invalid("The DPoP proof's alg must be one of %s", strings.Join(algs, " "))
	}
	alg, pub := h.alg, h.pub
	// §4.3 item 6: the signature verifies with that key.
	if err := jwsbb.Verify(pub, alg, []byte(raw[:len(hdrB64)+1+len(payloadB64)]), sig); err != nil {
		return nil, invalid("The DPoP proof's signature does not verify with its jwk")
	}
	var c claims
	if err := strictJSON(payload, &c); err != nil {
		return nil, invalid("The DPoP proof's claims are not a JSON object with the types of RFC 9449 §4.2")
	}
	// §4.3 item 3: the required claims.
	if c.JTI == nil || *c.JTI == "" || c.HTM == nil || c.HTU == nil || c.IAT == nil {
		return nil, invalid("The DPoP proof must carry jti, htm, htu and iat")
	}
	if len(*c.JTI) > MaxJTILength {
		return nil, invalid("The DPoP proof's jti is longer than %d bytes", MaxJTILength)
	}
	// §4.3 item 8.
	if *c.HTM != o.Method {
		return nil, invalid("The DPoP proof's htm does not match the request method %s", o.Method)
	}
	// §4.3 item 9, with the normalisation it recommends.
	want, err := NormalizeURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: Options.URL: %w", err)
	}
	if got, err := NormalizeURL(*c.HTU); err != nil || got != want {
		return nil, invalid("The DPoP proof's htu does not match the request URL %s", o.URL)
	}
	// §4.3 item 11, §11.1: iat within the accepted window.
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if math.IsNaN(*c.IAT) || math.IsInf(*c.IAT, 0) || *c.IAT < 0 || *c.IAT > 1e12 {
		return nil, invalid("The DPoP proof's iat is not a valid NumericDate")
	}
	iat := time.Unix(int64(*c.IAT), 0)
	if iat.After(now.Add(o.Leeway)) {
		return nil, invalid("The DPoP proof's iat is in the future")
	}
	if iat.Before(now.Add(-o.MaxAge)) {
		return nil, invalid("The DPoP proof is too old (iat more than %s ago)", o.MaxAge)
	}
	// §4.3 item 12 (first half), §7: ath is the hash of the token.
	if o.AccessToken != "" {
		if c.ATH == nil {
			return nil, invalid("The DPoP proof must carry ath, the hash of the access token")
		}
		if *c.ATH != AccessTokenHash(o.AccessToken) {
			return nil, invalid("The DPoP proof's ath does not match the access token")
		}
	}
	// §4.3 item 10, §8, §11.3: with server nonces on, a proof without
	// one, or with one the server no longer accepts, gets use_dpop_nonce.
	if o.Nonce != nil {
		if c.Nonce == nil || *c.Nonce == "" {
			return nil, &Error{Code: CodeUseNonce, Description: "The authorization server requires a nonce in the DPoP proof"}
		}
		if !o.Nonce(*c.Nonce) {
			return nil, &Error{Code: CodeUseNonce, Description: "The DPoP proof's nonce is not one this server issued recently"}
		}
	}
	return &Proof{JKT: h.jkt, JTI: *c.JTI, IssuedAt: iat, Alg: alg}, nil
}

// checkedHeader is a proof's JOSE header that passed checkHeader.
type checkedHeader struct {
	alg string
	pub any
	jkt string
}

// checkHeader checks a proof's JOSE header (§4.3 items 4, 5 but for the
// server's list, and 7) and returns its algorithm, public key and the
// key's thumbprint.
func checkHeader(hdrJSON []byte) (*checkedHeader, error) {
	var h header
	if err := strictJSON(hdrJSON, &h); err != nil {
		return nil, invalid("The DPoP proof's JOSE header is not a JSON object")
	}
	// §4.3 item 4, §11.5: explicitly typed. RFC 7515 §4.1.9: the
	// "application/" prefix may be present and media types are
	// case-insensitive.
	if h.Typ == nil || strings.TrimPrefix(strings.ToLower(*h.Typ), "application/") != "dpop+jwt" {
		return nil, invalid("The DPoP proof's typ must be dpop+jwt")
	}
	// Extensions this server does not understand (RFC 7515 §4.1.11) and
	// unencoded payloads (RFC 7797) are refused.
	if h.Crit != nil || h.B64 != nil {
		return nil, invalid("The DPoP proof uses a JWS extension (crit or b64) that is not supported")
	}
	// §4.3 item 5, §11.6: only asymmetric algorithms this package knows.
	if h.Alg == nil || !slices.Contains(Algs, *h.Alg) {
		return nil, invalid("The DPoP proof's alg must be one of %s", strings.Join(Algs, " "))
	}
	alg := *h.Alg
	// §4.3 item 7: the jwk header is a public key.
	if len(h.JWK) == 0 || bytes.Equal(h.JWK, []byte("null")) {
		return nil, invalid("The DPoP proof has no jwk header")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(h.JWK, &members); err != nil {
		return nil, invalid("The DPoP proof's jwk header is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, invalid("The DPoP proof's jwk header contains a private key")
		}
	}
	key, err := jwk.ParseKey(h.JWK)
	if err != nil {
		return nil, invalid("The DPoP proof's jwk header is not a valid JSON Web Key")
	}
	pub, err := publicKeyFor(key, alg)
	if err != nil {
		return nil, invalid("%s", err.Error())
	}
	jkt, err := Thumbprint(key)
	if err != nil {
		return nil, invalid("The DPoP proof's jwk has no thumbprint")
	}
	return &checkedHeader{alg: alg, pub: pub, jkt: jkt}, nil
}

// strictJSON decodes one JSON object into v: trailing data is refused.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return errors.New("not an object")
	}
	return nil
}

// publicKeyFor returns the public key of key as the algorithm needs it,
// refusing keys of another type or curve and RSA keys under 2048 bits.
func publicKeyFor(key jwk.Key, alg string) (any, error) {
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return nil, errors.New("The DPoP proof's jwk cannot be used")
	}
	switch alg {
	case "ES256", "ES384", "ES512":
		k, ok := raw.(*ecdsa.PublicKey)
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if !ok || k.Curve != want {
			return nil, fmt.Errorf("The DPoP proof's jwk is not a %s key for %s", want.Params().Name, alg)
		}
		return k, nil
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := raw.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("The DPoP proof's jwk is not an RSA key for %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("The DPoP proof's RSA key is shorter than %d bits", minRSABits)
		}
		return k, nil
	case "EdDSA":
		k, ok := raw.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("The DPoP proof's jwk is not an Ed25519 key for EdDSA")
		}
		return k, nil
	}
	return nil, fmt.Errorf("The algorithm %s is not supported", alg)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of key, base64url without
// padding (§6.1).
func Thumbprint(key jwk.Key) (string, error) {
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// AccessTokenHash is the ath of a proof sent with token: the base64url
// SHA-256 of its ASCII characters (§4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidJKT reports whether s has the shape of a SHA-256 JWK thumbprint:
// 43 base64url characters (32 bytes), as dpop_jkt must (§10).
func ValidJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := b64.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
