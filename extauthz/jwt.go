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
	if !a.typeAccepted(jp.hdr.typ) {
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
	// Cached until the token expires (with the tolerated skew), at most
	// MaxTTL.
	return result{id: id, ttl: min(exp.Add(skew).Sub(now), a.cfg.Cache.MaxTTL)}, nil
}

// typeAccepted applies the typ header policy (RFC 9068 §2.1, §4: typ is
// "at+jwt"; media types are case-insensitive and "application/" may be
// omitted, RFC 7515 §4.1.9).
func (a *Authorizer) typeAccepted(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	switch t {
	case "at+jwt":
		return true
	case "jwt", "":
		return !a.cfg.JWT.RequireATJWTType
	}
	return false
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
