package oauth2

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Introspection is the RFC 7662 §2.2 response, with Hydra's token_use and
// ext. An inactive token is {"active": false} and nothing else.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	NotBefore int64  `json:"nbf,omitempty"`
	// JTI identifies an access token (RFC 7519 §4.1.7): a JWT's jti, an
	// opaque token's derived id (AccessTokenID); SID is the login session
	// of its grant. The revocation events select tokens by them
	// (docs/revocation-events.md).
	JTI       string         `json:"jti,omitempty"`
	SID       string         `json:"sid,omitempty"`
	Audience  []string       `json:"aud,omitempty"`
	Issuer    string         `json:"iss,omitempty"`
	TokenType string         `json:"token_type,omitempty"`
	TokenUse  string         `json:"token_use,omitempty"`
	Ext       map[string]any `json:"ext,omitempty"`
	// Cnf is the token's binding: the DPoP key of RFC 9449 §6.2
	// ({"jkt": thumbprint}) or the client certificate of RFC 8705 §3.2
	// ({"x5t#S256": thumbprint}).
	Cnf *Confirmation `json:"cnf,omitempty"`
	// Act is the actor chain of an exchanged token (RFC 8693 §4.1).
	Act map[string]any `json:"act,omitempty"`
}

// Confirmation is RFC 7800's cnf with RFC 9449 §6.1's jkt and RFC 8705
// §3.1's x5t#S256 members.
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
	X5T string `json:"x5t#S256,omitempty"`
}

// confirmation is the session's cnf, or nil for a bearer token.
func (s *session) confirmation() *Confirmation {
	if s.JKT == "" && s.X5T == "" {
		return nil
	}
	return &Confirmation{JKT: s.JKT, X5T: s.X5T}
}

// Introspect answers RFC 7662 for a presented access token, opaque or JWT,
// or a refresh token (as Hydra does: token_use tells them apart, and
// token_type, RFC 6749 §7.1's access token type, is left out for refresh
// tokens; resource servers must accept only token_use "access_token", as
// gatehouse-sidecar does). The token is inactive when it is malformed, forged, unknown, expired,
// revoked, belongs to a deleted client, or lacks one of requiredScope
// (checked with the configured scope strategy). err is only a storage
// failure: an answer is never guessed.
func (h *Handler) Introspect(ctx context.Context, token string, requiredScope ...string) (*Introspection, error) {
	inactive := &Introspection{Active: false}
	t, found, err := h.lookupToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if !found || !t.Active || !h.now().Before(t.ExpiresAt) {
		return inactive, nil
	}
	s, err := decodeSession(t.Data)
	if err != nil {
		return nil, err
	}
	// An exchanged token dies with the token it was exchanged from.
	if s.Parent != nil {
		if alive, err := h.tokenActive(ctx, &t, s); err != nil || !alive {
			return inactive, err
		}
	}
	tokenType := "Bearer"
	switch s.TokenUse {
	case useAccess:
	case useRefresh:
		// A rotated refresh token kept active for the grace period is
		// inactive as soon as the token endpoint would refuse it.
		if s.Used && !h.graceReusable(s, h.now()) {
			return inactive, nil
		}
		tokenType = ""
	default:
		return inactive, nil
	}
	cnf := s.confirmation()
	if s.JKT != "" {
		if tokenType != "" {
			// RFC 9449 §6.2: "If the token_type member is included in
			// the introspection response, it MUST contain the value DPoP."
			tokenType = dpop.TokenType
		}
	}
	for _, req := range requiredScope {
		if !h.scopes(s.Scope, req) {
			return inactive, nil
		}
	}
	// Tokens die with their client, whether or not the store cascades.
	if _, err := h.clients.Get(ctx, t.ClientID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return inactive, nil
		}
		return nil, err
	}
	return &Introspection{
		Active:    true,
		Scope:     strings.Join(s.Scope, " "),
		ClientID:  t.ClientID,
		Subject:   t.Subject,
		ExpiresAt: t.ExpiresAt.Unix(),
		IssuedAt:  t.IssuedAt.Unix(),
		NotBefore: t.IssuedAt.Unix(),
		JTI:       AccessTokenID(&t),
		SID:       s.sid(),
		Audience:  nonNil(s.Audience),
		Issuer:    h.opts.IssuerURL,
		TokenType: tokenType,
		TokenUse:  s.TokenUse,
		Ext:       s.Ext,
		Cnf:       cnf,
		Act:       s.Act,
	}, nil
}

// introspect is POST /admin/oauth2/introspect (RFC 7662 §2.1): form
// parameters token (required) and scope (optional, space-separated, all
// required). The admin listener is the trust boundary: no client
// authentication, as in Hydra v2.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	token, err := httpx.SingleValue(r.PostForm, "token")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if token == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The token parameter is missing"))
		return
	}
	scope, err := httpx.SingleValue(r.PostForm, "scope")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	res, err := h.Introspect(r.Context(), token, strings.Fields(scope)...)
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}
