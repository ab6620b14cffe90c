package oauth2

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// revoke is POST /oauth2/revoke (RFC 7009 §2.1). The client authenticates
// as at the token endpoint; a token issued to that client is revoked. Any
// other token (unknown, malformed, expired, already revoked, or issued to
// another client) gets the same 200 (§2.2: "invalid tokens do not cause an
// error response"), so the endpoint reveals nothing about other clients'
// tokens. token_type_hint is optional and only a hint (§2.1): it is
// ignored, every supported kind is tried.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := httpx.ParseForm(w, r); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	token, err := httpx.SingleValue(r.PostForm, "token")
	if err == nil {
		_, err = httpx.SingleValue(r.PostForm, "token_type_hint")
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := h.auth.Authenticate(ctx, r, r.PostForm)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if token == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The token parameter is missing"))
		return
	}
	if err := h.revokeToken(ctx, c.ID, token); err != nil {
		// §2.2.1: the server could not revoke; the client may retry.
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// revokeToken deactivates token if it was issued to clientID.
func (h *Handler) revokeToken(ctx context.Context, clientID, token string) error {
	t, found, err := h.lookupToken(ctx, token)
	if err != nil || !found || t.ClientID != clientID || !t.Active {
		return err
	}
	// RFC 7009 §2.1: revoking a refresh token also revokes the access
	// tokens of its grant (the whole chain); an access token is revoked
	// on its own.
	// Either way the revoked access tokens are announced to the gateways
	// in the same transaction (issuer/revocation).
	if t.Kind == storage.KindRefreshToken {
		return h.tokens.RevokeRequest(ctx, t.ClientID, t.RequestID, h.tokenRevocation(t.ClientID))
	}
	err = h.tokens.Revoke(ctx, t.Kind, t.Signature, h.tokenRevocation(t.ClientID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil // flushed meanwhile
	}
	return err
}

// deleteClientTokens is DELETE /admin/oauth2/tokens?client_id= (Hydra v2's
// deleteOAuth2Token): every token issued to the client is revoked at once.
// Answers 204, also when the client has no tokens.
func (h *Handler) deleteClientTokens(w http.ResponseWriter, r *http.Request) {
	id, err := httpx.SingleValue(r.URL.Query(), "client_id")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if id == "" {
		httpx.WriteError(w, r, apierr.InvalidRequest("The client_id query parameter is required"))
		return
	}
	// One event for every token of the client: it selects them by
	// client and issue time rather than listing them.
	now := h.now()
	n, err := h.tokens.RevokeClient(r.Context(), id, func([]storage.Token) (*storage.RevocationEvent, error) {
		return revocation.NewEvent(revocation.KindToken, now, time.Time{},
			revocation.Selectors{ClientID: id, IssuedBefore: revocation.Before(now)}), nil
	})
	if err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	h.log.Info("revoked every token of a client", zap.String("client_id", id), zap.Int64("tokens", n))
	w.WriteHeader(http.StatusNoContent)
}
