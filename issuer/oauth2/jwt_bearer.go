package oauth2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-dev/gatehouse/issuer/jwtclaims"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

const (
	// assertionLeeway is the clock skew allowed on exp, nbf and iat.
	assertionLeeway = 30 * time.Second
	maxAssertionJTI = 512
)

// jwtBearerGrant is RFC 7523 §2.1: a JWT signed by a trusted issuer (see
// the trust API) is exchanged for an access token whose subject is the
// JWT's sub. The client authenticates as at any grant (Hydra does not let
// it skip authentication by default) and must list the grant type.
type jwtBearerGrant struct{ h *Handler }

var _ grantHandler = (*jwtBearerGrant)(nil)

func (g *jwtBearerGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	h := g.h
	if req.Assertion == "" {
		return nil, apierr.InvalidRequest("The assertion parameter is missing")
	}
	trust, claims, err := g.verify(ctx, req.Assertion)
	if err != nil {
		return nil, err
	}
	exp, err := g.checkClaims(trust, claims)
	if err != nil {
		return nil, err
	}
	c := req.Client
	if err := checkScopes(h.scopes, c.Scopes(), req.Scope, "The OAuth 2.0 Client"); err != nil {
		return nil, err
	}
	if err := checkScopes(h.scopes, trust.Scope, req.Scope,
		fmt.Sprintf("The public key registered for issuer %q and subject %q", truncate(claims.Iss), truncate(claims.Sub))); err != nil {
		return nil, err
	}
	// RFC 8707 §2.2: resource (and Hydra's audience) name the token's aud.
	aud, err := AllowedTargets(c, Targets(req.Resource, req.Audience))
	if err != nil {
		return nil, err
	}
	// RFC 7523 §3 item 7: a jti is used once. Recorded last, so that a
	// request refused for another reason can be corrected and retried.
	if claims.Jti != "" {
		sum := sha256.Sum256([]byte(claims.Iss + "\x00" + claims.Jti))
		if err := h.nonces.Use(ctx, "jwt_bearer:"+hex.EncodeToString(sum[:]), exp.Add(assertionLeeway)); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return nil, apierr.InvalidGrant("The assertion's jti was already used (replay)")
			}
			return nil, apierr.ServerError(err)
		}
	}
	httpx.Info(ctx).Subject = claims.Sub
	return h.issueAccessToken(ctx, &accessGrant{
		GrantType: client.GrantJWTBearer,
		Client:    c,
		Subject:   claims.Sub,
		Scope:     req.Scope,
		Audience:  aud,
		Lifespan:  c.JWTBearerGrantAccessTokenLifespan.Get(h.opts.AccessTokenLifespan),
		JKT:       req.jkt(),
		X5T:       req.X5T,
	})
}

// verify finds the trust relationship whose key verifies the assertion
// (RFC 7523 §3 item 9) and returns it with the verified claims.
func (g *jwtBearerGrant) verify(ctx context.Context, assertion string) (*storage.TrustedIssuer, *assertionClaims, error) {
	h := g.h
	msg, err := jws.Parse([]byte(assertion), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, nil, apierr.InvalidGrant("The assertion is not a compact signed JWT").WithCause(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || !asymmetricAlg(alg) {
		// Never "none" or an HMAC: the trusted key material is public.
		return nil, nil, apierr.InvalidGrant("The assertion must be signed with an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)")
	}
	// Unverified claims, used only to find the trusted keys.
	var unverified assertionClaims
	if err := json.Unmarshal(msg.Payload(), &unverified); err != nil {
		return nil, nil, apierr.InvalidGrant("The assertion has an unreadable claims set").WithCause(err)
	}
	// RFC 7523 §3 items 1 and 2.
	if unverified.Iss == "" {
		return nil, nil, apierr.InvalidGrant("The assertion must have an iss claim")
	}
	if unverified.Sub == "" {
		return nil, nil, apierr.InvalidGrant("The assertion must have a sub claim")
	}
	grants, err := h.trust.Find(ctx, unverified.Iss, unverified.Sub, h.now())
	if err != nil {
		return nil, nil, apierr.ServerError(err)
	}
	kid, _ := hdr.KeyID()
	candidates := 0
	for i := range grants {
		t := &grants[i]
		if kid != "" && t.KeyID != kid {
			continue
		}
		candidates++
		key, err := jwk.ParseKey(t.PublicKey)
		if err != nil {
			h.log.Error("unreadable trusted issuer key", zap.String("trust_id", t.ID), zap.Error(err))
			continue
		}
		if ka, ok := key.Algorithm(); ok && ka.String() != alg.String() {
			continue
		}
		payload, err := jws.Verify([]byte(assertion), jws.WithKey(alg, key))
		if err != nil {
			continue
		}
		var claims assertionClaims
		if err := json.Unmarshal(payload, &claims); err != nil {
			return nil, nil, apierr.InvalidGrant("The assertion has an unreadable claims set").WithCause(err)
		}
		return t, &claims, nil
	}
	if candidates == 0 {
		return nil, nil, apierr.InvalidGrant("No public key is trusted for issuer %q and subject %q", truncate(unverified.Iss), truncate(unverified.Sub))
	}
	return nil, nil, apierr.InvalidGrant("The assertion's signature could not be verified with a trusted key")
}

// checkClaims applies RFC 7523 §3 to verified claims and returns exp.
func (g *jwtBearerGrant) checkClaims(t *storage.TrustedIssuer, cl *assertionClaims) (time.Time, error) {
	h := g.h
	now := h.now()
	jc := h.opts.JWTBearer
	if cl.Iss != t.Issuer {
		return time.Time{}, apierr.InvalidGrant("The assertion's iss does not match the trusted issuer")
	}
	if !t.AllowAnySubject && cl.Sub != t.Subject {
		return time.Time{}, apierr.InvalidGrant("The assertion's sub is not trusted for this issuer")
	}
	// Item 3: aud identifies the authorization server: its token endpoint
	// URL or its issuer identifier.
	if !containsAny(cl.Aud, h.assertionAudiences) {
		return time.Time{}, apierr.InvalidGrant("The assertion's aud must contain the token endpoint URL %q", h.assertionAudiences[0])
	}
	// Item 4: exp is required; the lifetime is bounded by
	// Options.JWTBearer.MaxLifetime.
	if cl.Exp == nil {
		return time.Time{}, apierr.InvalidGrant("The assertion must have an exp claim")
	}
	exp := cl.Exp.Time()
	if !now.Before(exp.Add(assertionLeeway)) {
		return time.Time{}, apierr.InvalidGrant("The assertion has expired")
	}
	if exp.Sub(now) > jc.MaxLifetime {
		return time.Time{}, apierr.InvalidGrant("The assertion's exp is too far in the future: at most %s from now is accepted", jc.MaxLifetime)
	}
	// Item 5: nbf.
	if cl.Nbf != nil && now.Add(assertionLeeway).Before(cl.Nbf.Time()) {
		return time.Time{}, apierr.InvalidGrant("The assertion is not valid yet (nbf)")
	}
	// Item 6: iat (required unless JWTBearer.IATOptional).
	if cl.Iat == nil && !jc.IATOptional {
		return time.Time{}, apierr.InvalidGrant("The assertion must have an iat claim")
	}
	if cl.Iat != nil && now.Add(assertionLeeway).Before(cl.Iat.Time()) {
		return time.Time{}, apierr.InvalidGrant("The assertion was issued in the future (iat)")
	}
	// Item 7: jti (required unless JWTBearer.JTIOptional).
	if cl.Jti == "" && !jc.JTIOptional {
		return time.Time{}, apierr.InvalidGrant("The assertion must have a jti claim")
	}
	if len(cl.Jti) > maxAssertionJTI {
		return time.Time{}, apierr.InvalidGrant("The assertion's jti is longer than %d characters", maxAssertionJTI)
	}
	return exp, nil
}

// asymmetricAlg accepts only public-key JWS algorithms.
func asymmetricAlg(alg jwa.SignatureAlgorithm) bool {
	a, ok := jwa.LookupSignatureAlgorithm(alg.String())
	return ok && !a.IsSymmetric() && a != jwa.NoSignature()
}

func containsAny(have, want []string) bool {
	for _, v := range have {
		if contains(want, v) {
			return true
		}
	}
	return false
}

type assertionClaims = jwtclaims.Registered
