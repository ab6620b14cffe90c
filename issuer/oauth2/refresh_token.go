package oauth2

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// refreshTokenGrant is RFC 6749 §6 with rotation (OAuth 2.0 Security BCP
// §4.14.2): every use returns a new refresh token and retires the old one;
// presenting a retired one again means it leaked, and the whole chain
// (every access and refresh token of the grant) is revoked. Within
// Options.RefreshTokenRotationGracePeriod of its first use a
// retired token is accepted again (for clients that retry a lost
// response), up to Options.RefreshTokenRotationGraceReuseCount times,
// without revoking anything.
type refreshTokenGrant struct{ h *Handler }

// graceReusable reports whether the rotated refresh token of session s
// may be used again at now: within the grace period of its first use and
// below the reuse count. Introspection asks the same question, so that a
// token introspects active exactly while the token endpoint accepts it.
func (h *Handler) graceReusable(s *session, now time.Time) bool {
	grace := h.opts.RefreshTokenRotationGracePeriod
	if grace <= 0 || !s.Used || !now.Before(s.UsedAt.Add(grace)) {
		return false
	}
	n := h.opts.RefreshTokenRotationGraceReuseCount
	return n <= 0 || s.Reuses < n
}

var _ grantHandler = (*refreshTokenGrant)(nil)

func (g *refreshTokenGrant) handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error) {
	h := g.h
	c := req.Client
	sig, err := h.grantSignature(opaqueRefreshToken, req.RefreshToken, "refresh_token", "refresh token")
	if err != nil {
		return nil, err
	}
	t, err := h.storedGrant(ctx, opaqueRefreshToken, sig, "refresh token")
	if err != nil {
		return nil, err
	}
	// RFC 6749 §6: the refresh token was issued to this client.
	if t.ClientID != c.ID {
		return nil, apierr.InvalidGrant("The refresh token was issued to another client")
	}
	s, err := decodeSession(t.Data)
	if err != nil || s.Grant == nil {
		return nil, apierr.ServerError(fmt.Errorf("oauth2: refresh token session: %v", err))
	}
	if !h.now().Before(t.ExpiresAt) {
		return nil, apierr.InvalidGrant("The refresh token has expired")
	}
	// RFC 9449 §5: a bound refresh token (a public client's) is used only
	// with a proof of the same key. The RFC names no error code; the
	// refresh token is the grant, so invalid_grant.
	if s.JKT != "" && req.jkt() == "" {
		return nil, apierr.InvalidGrant("The refresh token is bound to a DPoP key: the token request must carry a DPoP proof made with it")
	}
	if s.JKT != "" && subtle.ConstantTimeCompare([]byte(s.JKT), []byte(req.jkt())) != 1 {
		return nil, apierr.InvalidGrant("The DPoP proof's key is not the one the refresh token is bound to")
	}
	// RFC 8705 §4: a public client's certificate-bound refresh token is
	// used only over mutual TLS with the same certificate.
	if s.X5T != "" && subtle.ConstantTimeCompare([]byte(s.X5T), []byte(req.X5T)) != 1 {
		return nil, apierr.InvalidGrant("The refresh token is bound to a client certificate: the token request must be made with it (mutual TLS)")
	}
	grant := s.Grant
	// RFC 6749 §6: "The requested scope MUST NOT include any scope not
	// originally granted by the resource owner, and if omitted is treated
	// as equal to the scope originally granted".
	scope := grant.GrantedScope
	if len(req.Scope) > 0 {
		for _, sc := range req.Scope {
			if !slices.Contains(grant.GrantedScope, sc) {
				return nil, apierr.InvalidScope("The scope %q was not originally granted", truncate(sc))
			}
		}
		scope = req.Scope
	}
	// RFC 8707 §2.2: the resources may narrow what was originally granted
	// (none: everything granted); the refresh token stays "bound to the full
	// original grant", so a later refresh may ask for all of it again.
	aud, err := narrowTargets(grant.GrantedAudience, req.Resource)
	if err != nil {
		return nil, err
	}
	grace := h.opts.RefreshTokenRotationGracePeriod
	// Without a grace period the access tokens issued before this refresh
	// are retired with it (as Hydra does), in the transaction that records
	// the new ones. With a grace period the used refresh token must stay
	// active (it is refused by its UsedAt once the period is over), so the
	// chain is left alone and the old access tokens simply expire.
	revoke := ""
	if grace <= 0 {
		revoke = t.RequestID
	}
	keep := !h.rotatesRefreshTokens(c)
	if keep {
		// The refresh token stays as it is, and so do the access tokens
		// issued before: they expire.
		revoke = ""
	}
	httpx.Info(ctx).Subject = grant.Subject
	return h.issueGrantTokens(ctx, &grantTokens{
		GrantType: client.GrantRefreshToken, Client: c, Grant: grant, Scope: scope, Audience: aud, RequestID: t.RequestID, JKT: req.jkt(), X5T: req.X5T,
		AccessLifespan:   c.RefreshTokenGrantAccessTokenLifespan.Get(h.opts.AccessTokenLifespan),
		IDLifespan:       c.RefreshTokenGrantIDTokenLifespan.Get(h.opts.IDTokenLifespan),
		RefreshLifespan:  c.RefreshTokenGrantRefreshTokenLifespan.Get(h.opts.RefreshTokenLifespan),
		KeepRefreshToken: keepToken(keep, req.RefreshToken),
	}, func(issue []storage.Token) error {
		use := func(t *storage.Token) error {
			cur, err := decodeSession(t.Data)
			if err != nil {
				return err
			}
			if keep && !cur.Used {
				if !t.Active {
					return errRevoked
				}
				return nil // not rotated: left as it is
			}
			if cur.Used {
				if !t.Active || !h.graceReusable(cur, h.now()) {
					return errAlreadyUsed
				}
				// Reused within the grace period: rotate again.
				cur.Reuses++
				t.Data, err = json.Marshal(cur)
				return err
			}
			if !t.Active {
				return errRevoked
			}
			cur.Used, cur.UsedAt = true, h.now().UTC()
			if grace <= 0 {
				t.Active = false
			}
			t.Data, err = json.Marshal(cur)
			return err
		}
		_, err := h.tokens.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: sig,
			Read: &t, Update: use, RevokeRequest: revoke, Issue: issue})
		switch {
		case errors.Is(err, errAlreadyUsed):
			if err := h.tokens.RevokeRequest(ctx, t.ClientID, t.RequestID, h.tokenRevocation(t.ClientID)); err != nil {
				return apierr.ServerError(err)
			}
			h.log.Warn("a rotated refresh token was used again; the whole token chain was revoked",
				zap.String("client_id", t.ClientID))
			return apierr.InvalidGrant("The refresh token has already been used; every token of its grant was revoked")
		case errors.Is(err, errRevoked):
			return apierr.InvalidGrant("The refresh token was revoked")
		case errors.Is(err, storage.ErrNotFound):
			return apierr.InvalidGrant("The refresh token is unknown, expired or was revoked")
		case err != nil:
			return apierr.ServerError(err)
		}
		return nil
	})
}
