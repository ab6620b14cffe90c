package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
)

// maxExchangeDepth bounds the chain of tokens exchanged from tokens
// exchanged from ... that liveness checks walk, and the nesting of act.
const maxExchangeDepth = 8

// tokenRef names a stored token: the token an exchanged token was
// exchanged from.
type tokenRef struct {
	Kind      storage.TokenKind `json:"kind"`
	Signature string            `json:"sig"`
}

// tokenExchangeGrant is RFC 8693 token exchange: a client presents a
// subject token (and, for delegation, an actor token) and gets an access
// token for another audience, whose sub is the subject token's.
//
//   - Subject and actor tokens: this server's access tokens (opaque or
//     JWT), refresh tokens (only the client's own), ID tokens, and JWTs of
//     an issuer trusted through the RFC 7523 trust relationships (checked
//     exactly as jwt-bearer assertions are, without using up their jti).
//   - audience and resource name the target, which must be in the
//     client's registered audience (allowedTargets; else invalid_target).
//   - scope may only narrow the subject token's scope; omitted, the new
//     token gets the subject token's scope the client may have.
//   - With an actor_token the new token carries act {sub: actor} (§4.1),
//     the subject token's own act nested inside; a subject token with
//     may_act (§4.4) is only exchanged for the actors it names. Without
//     one the exchange is impersonation, which only clients registered
//     with token_exchange_impersonation may do.
//   - The new token lives no longer than the subject token and is linked
//     to it (tokenRef): it stops being active as soon as the subject token
//     is (revocation of the token, its grant or its consent; rotation of
//     a refresh token, which retires the grant's earlier tokens).
type tokenExchangeGrant struct{ h *Handler }

var _ grantHandler = (*tokenExchangeGrant)(nil)

// exchangedToken is what a subject or actor token stands for.
type exchangedToken struct {
	Subject string
	// Issuer is set for tokens of a trusted external issuer.
	Issuer  string
	Scope   []string
	Ext     map[string]any
	Act     map[string]any
	MayAct  map[string]any
	Expires time.Time
	Parent  *tokenRef
}

func (g *tokenExchangeGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	h := g.h
	c := req.Client
	p, err := parseExchangeParams(req.Form)
	if err != nil {
		return nil, err
	}
	// RFC 8693 §2.1: requested_token_type; an access token of the
	// client's format unless a JWT is asked for by name.
	strategyClient := c
	issued := TokenTypeAccessToken
	switch p.requestedType {
	case "", TokenTypeAccessToken:
	case TokenTypeJWT:
		cc := *c
		cc.AccessTokenStrategy = formatJWT
		strategyClient, issued = &cc, TokenTypeJWT
	default:
		// §2.2.2: a request that is not valid is invalid_request.
		return nil, apierr.InvalidRequest("The requested_token_type %q is not supported: ask for %s or %s", truncate(p.requestedType), TokenTypeAccessToken, TokenTypeJWT)
	}
	targets, err := allowedTargets(c, req.Audience, p.resource)
	if err != nil {
		return nil, err
	}
	subj, err := g.resolve(ctx, req, p.subjectToken, p.subjectType, "subject_token")
	if err != nil {
		return nil, err
	}
	act := subj.Act
	var actor *exchangedToken
	if p.actorToken != "" {
		if actor, err = g.resolve(ctx, req, p.actorToken, p.actorType, "actor_token"); err != nil {
			return nil, err
		}
		// §4.1: the current actor outermost, prior actors nested.
		act = map[string]any{"sub": actor.Subject}
		if actor.Issuer != "" {
			act["iss"] = actor.Issuer
		}
		if subj.Act != nil {
			act["act"] = subj.Act
		}
		if actDepth(act) > maxExchangeDepth {
			return nil, apierr.InvalidRequest("The delegation chain is longer than %d actors", maxExchangeDepth)
		}
	}
	// §4.4: may_act names who may act for the subject; §2.2.2: a token
	// unacceptable by policy is invalid_request.
	if subj.MayAct != nil && (actor == nil || !mayAct(subj.MayAct, actor, h.opts.IssuerURL)) {
		return nil, apierr.InvalidRequest("The subject token's may_act does not name the actor of this exchange")
	}
	if actor == nil && !c.TokenExchangeImpersonation {
		return nil, apierr.InvalidRequest("The OAuth 2.0 Client may not impersonate (token_exchange_impersonation): an actor_token is required")
	}
	scope, err := g.narrowScope(c, subj.Scope, req.Scope)
	if err != nil {
		return nil, err
	}
	lifespan := h.opts.AccessTokenLifespan
	if left := subj.Expires.Sub(h.now()); left < lifespan {
		lifespan = left.Truncate(time.Second)
	}
	if lifespan < time.Second {
		return nil, apierr.InvalidRequest("The subject_token expires too soon to be exchanged")
	}
	ext := maps.Clone(subj.Ext)
	delete(ext, "may_act")
	actorSub := ""
	if actor != nil {
		actorSub = actor.Subject
	}
	httpx.Info(ctx).Subject = subj.Subject
	resp, err := h.issueAccessToken(ctx, &accessGrant{
		GrantType: client.GrantTokenExchange,
		Client:    strategyClient,
		Subject:   subj.Subject,
		Scope:     scope,
		Audience:  targets,
		Ext:       ext,
		Act:       act,
		Parent:    subj.Parent,
		Lifespan:  lifespan,
		JKT:       req.jkt(),
	})
	if err != nil {
		return nil, err
	}
	// Who got a token for whom: never the tokens themselves.
	h.log.Info("token exchange", zap.String("client_id", c.ID), zap.String("subject", subj.Subject),
		zap.String("actor", actorSub), zap.Strings("audience", targets))
	// §2.2.1: issued_token_type is required; no refresh token.
	resp.IssuedTokenType = issued
	return resp, nil
}

// exchangeParams are the RFC 8693 §2.1 parameters besides audience and
// scope (parsed with the other grants' parameters).
type exchangeParams struct {
	subjectToken, subjectType, actorToken, actorType, requestedType string
	resource                                                        []string
}

func parseExchangeParams(form url.Values) (*exchangeParams, error) {
	var v [5]string
	for i, name := range []string{"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type"} {
		s, err := httpx.SingleValue(form, name)
		if err != nil {
			return nil, err
		}
		if len(s) > maxAssertion {
			return nil, apierr.InvalidRequest("The %s parameter is longer than %d bytes", name, maxAssertion)
		}
		v[i] = s
	}
	p := &exchangeParams{subjectToken: v[0], subjectType: v[1], actorToken: v[2], actorType: v[3], requestedType: v[4]}
	switch {
	case p.subjectToken == "":
		return nil, apierr.InvalidRequest("The subject_token parameter is missing")
	case p.subjectType == "":
		return nil, apierr.InvalidRequest("The subject_token_type parameter is missing")
	case p.actorToken != "" && p.actorType == "":
		// §2.1: actor_token_type is REQUIRED when actor_token is present
		// and MUST NOT be included otherwise.
		return nil, apierr.InvalidRequest("The actor_token_type parameter is missing")
	case p.actorToken == "" && p.actorType != "":
		return nil, apierr.InvalidRequest("The actor_token_type parameter is only allowed with an actor_token")
	}
	res := form["resource"]
	if len(res) > maxAudiences {
		return nil, apierr.InvalidRequest("At most %d resources may be requested", maxAudiences)
	}
	for _, r := range res {
		// RFC 8707 §2 (referenced by RFC 8693 §2.1): an absolute URI
		// without a fragment.
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || strings.Contains(r, "#") || len(r) > maxAudienceValue {
			return nil, apierr.InvalidTarget("The resource %q is not an absolute URI without a fragment", truncate(r))
		}
		if !contains(p.resource, r) {
			p.resource = append(p.resource, r)
		}
	}
	return p, nil
}

// allowedTargets is the audience of an exchanged token: the requested
// audience and resource values, under the rule of every target a client
// names (AllowedTargets; RFC 8693 §2.2.2: invalid_target).
func allowedTargets(c *client.Client, audience, resource []string) ([]string, error) {
	return AllowedTargets(c, append(slices.Clone(audience), resource...))
}

// narrowScope is the new token's scope: the requested scope, which must be
// within the subject token's and allowed to the client (invalid_scope);
// none requested, the subject token's scope the client may have.
func (g *tokenExchangeGrant) narrowScope(c *client.Client, have, requested []string) ([]string, error) {
	if len(requested) == 0 {
		var out []string
		for _, s := range have {
			if g.h.scopes(c.Scopes(), s) {
				out = append(out, s)
			}
		}
		return out, nil
	}
	for _, s := range requested {
		if !contains(have, s) {
			return nil, apierr.InvalidScope("The scope %q is not in the subject token's scope: an exchange may only narrow it", truncate(s))
		}
	}
	if err := checkScopes(g.h.scopes, c.Scopes(), requested, "The OAuth 2.0 Client"); err != nil {
		return nil, err
	}
	return requested, nil
}

// resolve checks a subject or actor token of the given type (§3) and
// returns what it stands for. Every failure is invalid_request (§2.2.2).
func (g *tokenExchangeGrant) resolve(ctx context.Context, req *tokenRequest, token, typ, param string) (*exchangedToken, error) {
	var et *exchangedToken
	var err error
	switch typ {
	case TokenTypeAccessToken:
		et, err = g.stored(ctx, req, token, storage.KindAccessToken)
	case TokenTypeRefreshToken:
		et, err = g.stored(ctx, req, token, storage.KindRefreshToken)
	case TokenTypeIDToken:
		et, err = g.idToken(ctx, token)
	case TokenTypeJWT:
		// One of our JWT access tokens, or a trusted issuer's JWT.
		if et, err = g.stored(ctx, req, token, storage.KindAccessToken); errors.Is(err, errNotStored) {
			et, err = g.external(ctx, token)
		}
	default:
		return nil, apierr.InvalidRequest("The %s_type %q is not supported", param, truncate(typ))
	}
	if errors.Is(err, errNotStored) {
		return nil, apierr.InvalidRequest("The %s is malformed, unknown, expired or was revoked", param)
	}
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Code != "server_error" && ae.Code != "temporarily_unavailable" {
			return nil, apierr.InvalidRequest("The %s is not acceptable: %s", param, ae.Description).WithCause(err)
		}
		return nil, err
	}
	return et, nil
}

// errNotStored: the token is not one this server has on record
// (malformed, forged, unknown or flushed).
var errNotStored = errors.New("oauth2: not a stored token")

// stored resolves one of this server's access or refresh tokens: active,
// unexpired, of a client that still exists, every token it was exchanged
// from still active; a refresh token only for the client it was issued to.
func (g *tokenExchangeGrant) stored(ctx context.Context, req *tokenRequest, token string, kind storage.TokenKind) (*exchangedToken, error) {
	h := g.h
	var sig string
	ok := false
	if kind == storage.KindRefreshToken {
		sig, ok = opaqueSignature(h.mac, opaqueRefreshToken, token)
	} else {
		var k storage.TokenKind
		k, sig, ok = h.tokenSignature(token)
		ok = ok && k == kind
	}
	if !ok {
		return nil, errNotStored
	}
	t, err := h.tokens.Get(ctx, kind, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNotStored
	}
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	s, err := decodeSession(t.Data)
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	alive, err := h.tokenActive(ctx, &t, s)
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	if !alive || (kind == storage.KindRefreshToken && s.Used) {
		return nil, apierr.InvalidRequest("it is inactive, expired or was revoked")
	}
	// Tokens die with their client, as at introspection.
	if _, err := h.clients.Get(ctx, t.ClientID); errors.Is(err, storage.ErrNotFound) {
		return nil, apierr.InvalidRequest("its client was deleted")
	} else if err != nil {
		return nil, apierr.ServerError(err)
	}
	if kind == storage.KindRefreshToken && t.ClientID != req.Client.ID {
		return nil, apierr.InvalidRequest("a refresh token is only exchanged by the client it was issued to")
	}
	// A DPoP-bound token is only usable with a proof of its key (RFC 9449).
	if s.JKT != "" && s.JKT != req.jkt() {
		return nil, apierr.InvalidRequest("it is bound to a DPoP key and the request carries no proof made with it")
	}
	scope := s.Scope
	if kind == storage.KindRefreshToken && s.Grant != nil {
		scope = s.Grant.GrantedScope
	}
	var ext map[string]any
	if kind == storage.KindAccessToken {
		ext = s.Ext
	} else if s.Grant != nil {
		ext = s.Grant.AccessTokenClaims
	}
	mayAct, _ := ext["may_act"].(map[string]any)
	return &exchangedToken{
		Subject: t.Subject, Scope: scope, Ext: ext, Act: s.Act, MayAct: mayAct,
		Expires: t.ExpiresAt, Parent: &tokenRef{Kind: kind, Signature: sig},
	}, nil
}

// tokenActive reports whether a stored token is usable now: active,
// unexpired, and, for an exchanged token, every token up its chain too.
// Tokens of a deleted client are checked by the callers that need it.
func (h *Handler) tokenActive(ctx context.Context, t *storage.Token, s *session) (bool, error) {
	for depth := 0; ; depth++ {
		if !t.Active || !h.now().Before(t.ExpiresAt) {
			return false, nil
		}
		if s.Parent == nil {
			return true, nil
		}
		if depth == maxExchangeDepth {
			return false, nil
		}
		p, err := h.tokens.Get(ctx, s.Parent.Kind, s.Parent.Signature)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if s, err = decodeSession(p.Data); err != nil {
			return false, err
		}
		t = &p
	}
}

// publicKeyer gives the public keys of a key set (issuer/keys.Manager, the
// Signer in production).
type publicKeyer interface {
	PublicKeys(ctx context.Context, sets ...string) (jwk.Set, error)
}

// idToken resolves an ID token issued by this server: signed with the ID
// token key set, iss this issuer, unexpired. ID tokens are not stored, so
// nothing links the new token to one: it just expires no later.
func (g *tokenExchangeGrant) idToken(ctx context.Context, token string) (*exchangedToken, error) {
	h := g.h
	pk, ok := h.signer.(publicKeyer)
	if !ok {
		return nil, apierr.InvalidRequest("ID tokens cannot be verified by this server")
	}
	set, err := pk.PublicKeys(ctx, IDTokenKeySet)
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	if len(token) > maxJWTLength {
		return nil, apierr.InvalidRequest("it is too long")
	}
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		return nil, apierr.InvalidRequest("it was not issued by this server or its signature is invalid")
	}
	var cl struct {
		Iss    string         `json:"iss"`
		Sub    string         `json:"sub"`
		Exp    *float64       `json:"exp"`
		Act    map[string]any `json:"act"`
		MayAct map[string]any `json:"may_act"`
	}
	if json.Unmarshal(payload, &cl) != nil || cl.Iss != h.opts.IssuerURL || cl.Sub == "" || cl.Exp == nil {
		return nil, apierr.InvalidRequest("it is not an ID token of this issuer")
	}
	exp := time.Unix(int64(*cl.Exp), 0)
	if !h.now().Before(exp) {
		return nil, apierr.InvalidRequest("it has expired")
	}
	return &exchangedToken{Subject: cl.Sub, Act: cl.Act, MayAct: cl.MayAct, Expires: exp}, nil
}

// external resolves a JWT of an issuer trusted through the jwt-bearer
// trust relationships, checked as an RFC 7523 assertion (jwt_bearer.go):
// a trusted key, iss, sub, aud naming this server, exp, nbf, iat. Its
// scope is what the trust relationship allows. Its jti is not used up: a
// subject token may be exchanged for several targets.
func (g *tokenExchangeGrant) external(ctx context.Context, token string) (*exchangedToken, error) {
	jb := &jwtBearerGrant{h: g.h}
	trust, claims, err := jb.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	exp, err := jb.checkClaims(trust, claims)
	if err != nil {
		return nil, err
	}
	// The signature is verified: the payload is the one verified.
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil {
		return nil, apierr.InvalidRequest("it is not a compact signed JWT")
	}
	var extra struct {
		Act    map[string]any `json:"act"`
		MayAct map[string]any `json:"may_act"`
	}
	_ = json.Unmarshal(msg.Payload(), &extra)
	return &exchangedToken{Subject: claims.Sub, Issuer: claims.Iss, Scope: trust.Scope,
		Act: extra.Act, MayAct: extra.MayAct, Expires: exp}, nil
}

// mayAct reports whether the actor is one of those a may_act claim names
// (RFC 8693 §4.4): every member of may_act that identifies a party (sub,
// iss) must match the actor's.
func mayAct(may map[string]any, actor *exchangedToken, localIssuer string) bool {
	sub, _ := may["sub"].(string)
	if sub == "" || sub != actor.Subject {
		return false
	}
	if iss, ok := may["iss"].(string); ok {
		actorIss := actor.Issuer
		if actorIss == "" {
			actorIss = localIssuer
		}
		return iss == actorIss
	}
	return true
}

// actDepth is the number of actors in an act chain.
func actDepth(act map[string]any) int {
	n := 0
	for act != nil {
		n++
		act, _ = act["act"].(map[string]any)
	}
	return n
}
