package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// result is the outcome of validating a token: an identity or a denial,
// with how long it may be cached.
type result struct {
	id   *Identity
	deny *Denial
	ttl  time.Duration
	key  tokenKey // the token's hash (authenticate)
}

// looksLikeJWT reports whether a token has the JWS compact shape
// (three dot-separated parts); anything else is treated as opaque.
func looksLikeJWT(tok string) bool {
	return strings.Count(tok, ".") == 2
}

// verifyJWT validates a JWT access token (RFC 9068, RFC 7519, RFC 7515).
// The signature algorithm must be one its JWKS key allows (never taken
// from the token alone); jku, x5u, jwk and x5c headers are never used;
// a crit header is refused as no extension is understood (RFC 7515
// §4.1.11). It returns an error only when no decision can be made.
func (a *Authorizer) verifyJWT(ctx context.Context, tok string) (result, error) {
	d := &a.deny
	neg := func(deny *Denial) (result, error) { return result{deny: deny, ttl: a.cfg.Cache.NegativeTTL}, nil }

	sc := jwsScratchPool.Get().(*jwsScratch)
	defer jwsScratchPool.Put(sc)
	jp, ok := splitJWS(sc, tok)
	if !ok {
		return neg(d.malformed)
	}
	if jp.hdr.critical {
		return neg(d.critical)
	}
	alg, ok := a.algs[jp.hdr.alg] // never "none", never HMAC
	if !ok {
		return neg(d.algorithm)
	}
	tc := typeClassOf(jp.hdr.typ)
	if tc == typOther || (tc == typGeneric && !a.anyTypJWT) {
		return neg(d.tokenType)
	}
	payload, err := base64.RawURLEncoding.DecodeString(jp.payload)
	if err != nil {
		return neg(d.malformed)
	}

	is := a.issuers[0]
	if len(a.issuers) > 1 {
		// Pick the key set by the (not yet trusted) iss; it is checked
		// again once the signature is verified.
		var pre struct {
			Iss string `json:"iss"`
		}
		if json.Unmarshal(payload, &pre) != nil {
			return neg(d.malformed)
		}
		if is = a.issuerByName[pre.Iss]; is == nil {
			return neg(d.wrongIssuer)
		}
	}
	if tc == typGeneric && !is.typJWT {
		return neg(d.tokenType)
	}

	vk, err := is.keys.key(ctx, jp.hdr.kid)
	switch {
	case errors.Is(err, ErrUnavailable):
		return result{}, err
	case err != nil:
		return neg(d.unknownKey)
	}
	// The algorithm is the token's only if its key allows it (the JWK's
	// alg, or its key type and curve).
	if !slices.Contains(vk.algs, alg) {
		return neg(d.algorithm)
	}
	sig, ok := sc.decodeSignature(jp.sig)
	if !ok || jwsbb.Verify(vk.key, alg.String(), bytesOf(jp.signingInput), sig) != nil {
		return neg(d.badSignature)
	}

	// The header's parser is free again: the claims are read in place.
	var claims claimSet = &sc.claims
	if !sc.claims.parse(&sc.p, payload, a.jwtClaims) {
		m, err := parseClaimsStd(payload)
		if err != nil {
			return neg(d.invalidClaims)
		}
		claims = mapClaims(m)
	}
	if iss, _, _ := claims.str("iss"); iss != is.cfg.Issuer {
		// RFC 9068 §4: iss must match exactly.
		return neg(d.wrongIssuer)
	}
	if tc == typGeneric && !accessTokenClaims(claims) {
		return neg(d.tokenType)
	}
	now := a.now()
	skew := a.cfg.JWT.ClockSkew
	exp, present, err := claims.date("exp")
	if err != nil || !present {
		// RFC 9068 §2.2: exp is required; a token that never expires is
		// not accepted.
		return neg(d.invalidClaims)
	}
	if !now.Before(exp.Add(skew)) {
		return neg(d.expired)
	}
	if nbf, present, err := claims.date("nbf"); err != nil {
		return neg(d.invalidClaims)
	} else if present && now.Add(skew).Before(nbf) {
		return result{deny: d.notYetValid, ttl: min(a.cfg.Cache.NegativeTTL, nbf.Sub(now.Add(skew)))}, nil
	}
	if iat, present, err := claims.date("iat"); err != nil {
		return neg(d.invalidClaims)
	} else if present && now.Add(skew).Before(iat) {
		return result{deny: d.notYetValid, ttl: min(a.cfg.Cache.NegativeTTL, iat.Sub(now.Add(skew)))}, nil
	}
	id, err := a.buildIdentity(TokenTypeJWT, is.cfg.Issuer, claims, payload, exp)
	if err != nil {
		return neg(d.invalidClaims)
	}
	id.rev.kid = jp.hdr.kid // key revocation events name it
	// Cached until the token expires (with the tolerated skew), at most
	// MaxTTL.
	return result{id: id, ttl: min(exp.Add(skew).Sub(now), a.cfg.Cache.MaxTTL)}, nil
}

// Classes of the JWS header typ of a JWT presented as an access token.
const (
	// typOther is another kind of JWT (logout+jwt, secevent+jwt, ...):
	// never an access token.
	typOther = iota
	// typAccessToken is "at+jwt", the explicit type of RFC 9068 §2.1.
	typAccessToken
	// typGeneric is "JWT" or no typ: what ID tokens carry (Gatehouse's,
	// Hydra's) and what Hydra's JWT access tokens carry too. Accepted only
	// from issuers with accept_typ_jwt, and only with an access token's
	// claims (accessTokenClaims).
	typGeneric
)

// typeClassOf classifies a typ header (RFC 9068 §2.1, §4; media types are
// case-insensitive and "application/" may be omitted, RFC 7515 §4.1.9).
func typeClassOf(typ string) int {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	switch t {
	case "at+jwt":
		return typAccessToken
	case "jwt", "":
		return typGeneric
	}
	return typOther
}

// idTokenOnlyClaims are claims OpenID Connect defines for ID tokens
// alone: nonce (Core §2, §3.1.2.1), at_hash (Core §3.1.3.6, §3.2.2.10),
// c_hash (Core §3.3.2.11) and s_hash (FAPI 1.0 Advanced §5.1).
var idTokenOnlyClaims = [...]string{"nonce", "at_hash", "c_hash", "s_hash"}

// accessTokenClaims decides whether a JWT that its header does not type
// as an access token (typ "JWT" or none) is one anyway. Explicit typing
// is the defence against taking one kind of JWT for another (RFC 8725
// §3.11, RFC 9068 §4): an ID token is signed by the same issuer, often
// with a key of the same JWKS, and must never open an API. Without it,
// the claims must tell:
//   - an access token names its client or its scope: client_id (RFC 9068
//     §2.2, RFC 8693 §4.3), scope (RFC 9068 §2.2.3) or scp (Hydra's
//     array); OpenID Connect Core §2 defines none of them for an ID
//     token, whose aud is the client;
//   - and it carries no claim Core defines for ID tokens alone
//     (idTokenOnlyClaims), so that an ID token a consent app decorated with
//     a scope claim is still refused.
//
// Gatehouse's and Hydra's ID tokens (aud [client id], at_hash, nonce when
// the client sent one, no client_id, scope or scp) fail; Hydra v2's JWT
// access tokens (client_id, scp, jti, ext) pass.
func accessTokenClaims(c claimSet) bool {
	for _, name := range idTokenOnlyClaims {
		if c.has(name) {
			return false
		}
	}
	return c.has("client_id") || c.has("scope") || c.has("scp")
}

// algorithmSet maps accepted algorithm names to their jwa values.
func algorithmSet(names []string) (map[string]jwa.SignatureAlgorithm, []jwa.SignatureAlgorithm) {
	m := map[string]jwa.SignatureAlgorithm{}
	var l []jwa.SignatureAlgorithm
	for _, n := range names {
		if a, ok := jwa.LookupSignatureAlgorithm(n); ok {
			m[n] = a
			l = append(l, a)
		}
	}
	return m, l
}
