package oauth2

import (
	"context"
	"net/url"
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/tokenhook"
)

// Token hooks (Hydra's oauth2.token_hook and oauth2.refresh_token_hook,
// issuer/tokenhook).
//
// The token endpoint puts the parsed request in the context of the grant
// (handleToken, only when hooks are configured); the two places where
// every grant mints its response, issueAccessToken (client_credentials,
// jwt-bearer) and issueGrantTokens (authorization_code, refresh_token and
// any grant on a user's grant), call the hooks there, after the grant's
// checks and before anything is signed or recorded, as Hydra does: a hook
// that refuses or fails leaves nothing issued. What a hook answers replaces
// the extra claims of the access token (ext of JWTs and introspection, the
// allowed top-level claims) and of the ID token; for a user's grant the
// replacement is kept in the grant the new refresh token carries, as Hydra
// keeps the session. Authorization endpoint responses (implicit, hybrid) are
// not token endpoint responses and call no hook, as in Hydra.
//
// Presigning (presign.go) is off while hooks are configured (New): the
// exchange's tokens depend on the hook's answer at the exchange.

// TokenHook is a hook consulted before a token response
// (issuer/tokenhook.Hook). It returns nil to leave the claims unchanged.
type TokenHook interface {
	Call(ctx context.Context, in *tokenhook.Input) (*tokenhook.Result, error)
}

// hookedRequest is the token request the hooks are shown.
type hookedRequest struct {
	req  *tokenRequest
	form url.Values
}

type hookedRequestKey struct{}

// withHookedRequest returns ctx carrying the token request for the hooks,
// or ctx itself when no hook is configured.
func (h *Handler) withHookedRequest(ctx context.Context, req *tokenRequest, form url.Values) context.Context {
	if len(h.hooks) == 0 {
		return ctx
	}
	return context.WithValue(ctx, hookedRequestKey{}, &hookedRequest{req: req, form: form})
}

// runTokenHooks calls the hooks in order, each seeing the claims the
// previous one set. It returns the claims to use and whether any hook
// replaced them. Outside the token endpoint it does nothing.
func (h *Handler) runTokenHooks(ctx context.Context, in *tokenhook.Input) (at, id map[string]any, changed bool, err error) {
	hr, _ := ctx.Value(hookedRequestKey{}).(*hookedRequest)
	at, id = in.AccessTokenClaims, in.IDTokenClaims
	if hr == nil {
		return at, id, false, nil
	}
	in.ClientID, in.Form = hr.req.Client.ID, hr.form
	// requested_scopes: the token request's scope; a code exchange or a
	// refresh without one asks for what was granted (the authorization
	// request's own list is not kept).
	in.RequestedScopes = in.GrantedScopes
	if len(hr.req.Scope) > 0 {
		in.RequestedScopes = hr.req.Scope
	}
	in.Now = h.now().UTC()
	in.Issuer = h.opts.IssuerURL
	in.AllowedTopLevelClaims, in.MirrorTopLevelClaims = h.opts.AllowedTopLevelClaims, h.opts.MirrorTopLevelClaims
	for _, hook := range h.hooks {
		res, err := hook.Call(ctx, in)
		if err != nil {
			return nil, nil, false, err
		}
		if res != nil {
			at, id, changed = res.AccessToken, res.IDToken, true
			in.AccessTokenClaims, in.IDTokenClaims = at, id
		}
	}
	return at, id, changed, nil
}

// hookAccessGrant runs the hooks for an access token without a user's
// grant (client_credentials, jwt-bearer) and applies their answer to g.
func (h *Handler) hookAccessGrant(ctx context.Context, g *accessGrant) error {
	at, _, changed, err := h.runTokenHooks(ctx, &tokenhook.Input{
		GrantType: g.GrantType, Subject: g.Subject,
		GrantedScopes: g.Scope, GrantedAudience: g.Audience, AccessTokenClaims: g.Ext,
	})
	if changed {
		g.Ext = at
	}
	return err
}

// hookGrantTokens runs the hooks for the tokens of a user's grant and
// applies their answer to a copy of gt's grant.
func (h *Handler) hookGrantTokens(ctx context.Context, gt *grantTokens) error {
	g := gt.Grant
	at, id, changed, err := h.runTokenHooks(ctx, &tokenhook.Input{
		GrantType: gt.GrantType, Subject: g.Subject,
		GrantedScopes: gt.Scope, GrantedAudience: gt.Audience,
		AccessTokenClaims: g.AccessTokenClaims, IDTokenClaims: g.IDTokenClaims,
		IDSubject: g.idSubject(), Nonce: gt.Nonce, AuthTime: g.AuthTime, RequestedAt: g.RequestedAt,
		ACR: g.ACR, AMR: slices.Clone(g.AMR), ConsentChallenge: gt.RequestID,
	})
	if changed {
		c := *g
		c.AccessTokenClaims, c.IDTokenClaims = at, id
		gt.Grant = &c
	}
	return err
}
