package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Token uses recorded in a token's session besides useAccess.
const (
	useRefresh = "refresh_token"
	useCode    = "authorization_code"
)

// GrantSession is what a user granted a client at the authorization
// endpoint: who logged in, how and when, and what the consent granted. It
// travels from the flow package into the authorization code, and from there
// into every access, refresh and ID token of the chain.
type GrantSession struct {
	// Subject is the local subject (access tokens, introspection).
	Subject string `json:"sub"`
	// IDTokenSubject is the sub of ID tokens and userinfo: the pairwise
	// identifier or force_subject_identifier; empty means Subject.
	IDTokenSubject string    `json:"id_sub,omitempty"`
	SessionID      string    `json:"sid,omitempty"`
	AuthTime       time.Time `json:"auth_time"`
	RequestedAt    time.Time `json:"requested_at"`
	ACR            string    `json:"acr,omitempty"`
	AMR            []string  `json:"amr,omitempty"`
	// GrantedScope and GrantedAudience are what the consent granted; a
	// refresh may only narrow them (RFC 6749 §6).
	GrantedScope    []string `json:"granted_scope"`
	GrantedAudience []string `json:"granted_audience"`
	// AccessTokenClaims and IDTokenClaims are the consent's
	// session.access_token and session.id_token.
	AccessTokenClaims map[string]any `json:"at_claims,omitempty"`
	IDTokenClaims     map[string]any `json:"id_claims,omitempty"`
	// IDTokenOmit and UserinfoOmit name claims of IDTokenClaims left out
	// of ID tokens or of userinfo: an OpenID Connect Core §5.5 claims
	// request asked for them at the other place only.
	IDTokenOmit  []string `json:"id_omit,omitempty"`
	UserinfoOmit []string `json:"ui_omit,omitempty"`
}

// idSubject returns the sub of ID tokens and userinfo.
func (g *GrantSession) idSubject() string {
	if g.IDTokenSubject != "" {
		return g.IDTokenSubject
	}
	return g.Subject
}

// HasScope reports whether scope s was granted.
func (g *GrantSession) HasScope(s string) bool { return slices.Contains(g.GrantedScope, s) }

// offline reports whether a refresh token may be issued: offline_access
// (OpenID Connect Core §11) or Hydra's offline was granted.
func (g *GrantSession) offline() bool { return g.HasScope("offline_access") || g.HasScope("offline") }

// codeParams are the authorization request parameters the token endpoint
// checks when the code is redeemed.
type codeParams struct {
	// RedirectURI is the redirect URI used; RedirectURISent tells
	// whether the request carried it (RFC 6749 §4.1.3).
	RedirectURI         string `json:"redirect_uri"`
	RedirectURISent     bool   `json:"redirect_uri_sent"`
	Nonce               string `json:"nonce,omitempty"`
	CodeChallenge       string `json:"code_challenge,omitempty"`
	CodeChallengeMethod string `json:"code_challenge_method,omitempty"`
	// DPoPJKT is the dpop_jkt of the request (RFC 9449 §10).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// Authorization is a granted authorization request, handed over by the
// flow package once login and consent are done.
type Authorization struct {
	Client *client.Client
	// ResponseTypes is the response_type, split (code, token, id_token).
	ResponseTypes []string
	// RedirectURI is the redirect URI the response goes to;
	// RedirectURISent whether the request carried it.
	RedirectURI     string
	RedirectURISent bool
	Nonce           string
	// CodeChallenge and CodeChallengeMethod are PKCE's (RFC 7636 §4.3),
	// already checked by the caller.
	CodeChallenge       string
	CodeChallengeMethod string
	// DPoPJKT is the dpop_jkt parameter (RFC 9449 §10), already checked
	// to be a thumbprint: the code is exchanged only with that key.
	DPoPJKT string
	// RequestID ties together every token of this grant (the consent
	// challenge), so that revoking the consent revokes them all.
	RequestID string
	Grant     GrantSession
	// Record, when set, stores the tokens Authorize issues (the code, the
	// implicit/hybrid access token) instead of Authorize writing them one
	// by one: the consent step records them in the transaction that uses
	// the consent challenge. Its error is returned as it is.
	Record func(ctx context.Context, toks []storage.Token) error
}

// Authorize issues what the response types of a granted authorization
// request ask for: an authorization code (ory_ac_...), an access token
// and/or an ID token, and returns the response parameters (without state,
// which the caller adds).
func (h *Handler) Authorize(ctx context.Context, a *Authorization) (url.Values, error) {
	c := a.Client
	out := url.Values{}
	has := func(rt string) bool { return slices.Contains(a.ResponseTypes, rt) }
	now := h.now().UTC().Truncate(time.Second)
	var code, codeSig, accessToken string
	var rows []storage.Token
	if has("code") {
		var err error
		code, codeSig, err = newOpaque(h.mac, opaqueAuthorizeCode, h.now())
		if err != nil {
			return nil, apierr.ServerError(err)
		}
		g := a.Grant
		data, err := json.Marshal(session{
			Scope: nonNil(g.GrantedScope), Audience: nonNil(g.GrantedAudience), TokenUse: useCode,
			GrantType: client.GrantAuthorizationCode, Format: formatOpaque, Grant: &g,
			Code: &codeParams{RedirectURI: a.RedirectURI, RedirectURISent: a.RedirectURISent, Nonce: a.Nonce,
				CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod, DPoPJKT: a.DPoPJKT},
		})
		if err != nil {
			return nil, apierr.ServerError(err)
		}
		rows = append(rows, storage.Token{Kind: storage.KindAuthorizationCode, Signature: codeSig,
			RequestID: a.RequestID, ClientID: c.ID, Subject: g.Subject, Active: true, IssuedAt: now,
			ExpiresAt: now.Add(h.codeLifespan(c)), Data: data})
		out.Set("code", code)
	}
	if has("token") {
		// RFC 6749 §4.2.2 (implicit) and OAuth 2.0 Multiple Response
		// Types §3 (hybrid): the access token comes with the response.
		g := a.Grant
		resp, row, err := h.newAccessToken(ctx, &accessGrant{
			GrantType: client.GrantImplicit, Client: c, Subject: g.Subject,
			Scope: g.GrantedScope, Audience: g.GrantedAudience, Ext: g.AccessTokenClaims, Grant: &g,
			Lifespan:  c.ImplicitGrantAccessTokenLifespan.Get(h.opts.AccessTokenLifespan),
			RequestID: a.RequestID,
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
		accessToken = resp.AccessToken
		out.Set("access_token", resp.AccessToken)
		out.Set("token_type", resp.TokenType)
		out.Set("expires_in", strconv.FormatInt(resp.ExpiresIn, 10))
		out.Set("scope", resp.Scope)
	}
	if has("id_token") {
		// OpenID Connect Core §3.2.2.10 and §3.3.2.11: at_hash when an
		// access token is returned with it, c_hash (hybrid) when a code is.
		lifespan := c.ImplicitGrantIDTokenLifespan.Get(h.opts.IDTokenLifespan)
		tok, err := h.signIDToken(ctx, c, &a.Grant, a.Nonce, accessToken, code, lifespan)
		if err != nil {
			return nil, err
		}
		out.Set("id_token", tok)
	}
	if !has("token") && has("code") && len(a.Grant.GrantedScope) > 0 {
		out.Set("scope", strings.Join(a.Grant.GrantedScope, " "))
	}
	// Nothing is handed out before it is recorded.
	if a.Record != nil {
		if err := a.Record(ctx, rows); err != nil {
			return nil, err
		}
	} else {
		for _, row := range rows {
			if err := h.tokens.Create(ctx, row); err != nil {
				return nil, apierr.ServerError(fmt.Errorf("oauth2: recording the %s: %w", row.Kind, err))
			}
		}
	}
	if code != "" {
		g := a.Grant
		gt := h.codeGrantTokens(c, &g, a.RequestID, a.Nonce)
		// A code bound to a DPoP key (RFC 9449 §10) is exchanged with a
		// proof of that key only: its tokens can be bound ahead.
		gt.JKT = a.DPoPJKT
		h.presign.codeIssued(ctx, rows[0], gt)
	}
	return out, nil
}

// RevokeRequest deactivates every token of a grant (its code, access,
// refresh and rotated tokens), e.g. when its consent is revoked.
func (h *Handler) RevokeRequest(ctx context.Context, clientID, requestID string) error {
	if err := h.tokens.RevokeRequest(ctx, clientID, requestID, h.tokenRevocation(clientID)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}
