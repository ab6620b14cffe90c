package oauth2

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// The FAPI 2.0 Security Profile at the token endpoint, for clients under
// it (client.Client.FAPI): the rules the client's metadata cannot settle
// on its own. docs/fapi.md lists every rule with its test.

// checkFAPI applies the profile to an authenticated token request.
func (h *Handler) checkFAPI(req *tokenRequest) error {
	c := req.Client
	// §5.3.2.1: confidential clients only, authenticated with mTLS or
	// private_key_jwt (a client registered before the profile was turned
	// on may still have another method).
	if !slices.Contains(client.FAPIAuthMethods, c.TokenEndpointAuthMethod) {
		return apierr.InvalidClient("FAPI 2.0 requires client authentication with %s", strings.Join(client.FAPIAuthMethods, ", "))
	}
	// §5.3.2.1: "shall only issue sender-constrained access tokens",
	// with DPoP (RFC 9449) or mutual TLS (RFC 8705).
	if req.DPoP == nil && req.X5T == "" {
		return dpopError(dpop.CodeInvalidProof, "FAPI 2.0 requires sender-constrained tokens: the token request must carry a DPoP proof (or come over mutual TLS)")
	}
	// §5.3.2.1: a JWT may be at most 10 seconds ahead of the server's
	// clock, whatever oauth2.dpop.clock_skew allows other clients.
	if req.DPoP != nil && req.DPoP.IssuedAt.After(h.now().Add(client.FAPIMaxClockSkew)) {
		return dpopError(dpop.CodeInvalidProof, "The DPoP proof was issued in the future (iat)")
	}
	return nil
}

// codeLifespan is the lifespan of c's authorization codes: at most
// client.FAPIMaxCodeLifespan under the FAPI profile (§5.3.2.1).
func (h *Handler) codeLifespan(c *client.Client) time.Duration {
	if c.FAPI(h.opts.FAPI) {
		return min(h.opts.AuthorizationCodeLifespan, client.FAPIMaxCodeLifespan)
	}
	return h.opts.AuthorizationCodeLifespan
}

// PARProof checks the DPoP proof of a request to the PAR endpoint (RFC
// 9449 §10.1: htu is the PAR endpoint's URL) with the token endpoint's
// rules and replay store, for issuer/flow. It returns the proof key's
// thumbprint, "" without a proof.
func (h *Handler) PARProof(ctx context.Context, r *http.Request) (string, error) {
	p, err := h.checkProof(ctx, r, "/oauth2/par", "")
	if de, ok := err.(*dpop.Error); ok {
		e := dpopError(de.Code, de.Description)
		if h.opts.DPoP.RequireNonce {
			// §8: the error carries the nonce to retry with.
			e = e.WithHeader(dpop.NonceHeader, h.dpopNonce(h.now()))
		}
		return "", e
	}
	if err != nil || p == nil {
		return "", err
	}
	return p.JKT, nil
}

// rotatesRefreshTokens reports whether a refresh of c's refresh token
// returns a new one. FAPI 2.0 Security Profile §5.3.2.1: the
// authorization server "shall not use refresh token rotation except in
// extraordinary circumstances", so a confidential FAPI client keeps its
// refresh token unless Options.FAPIRefreshTokenRotation; every other
// client's is rotated (OAuth 2.0 Security BCP §4.14.2, as Hydra does).
func (h *Handler) rotatesRefreshTokens(c *client.Client) bool {
	return !c.FAPI(h.opts.FAPI) || c.IsPublic() || h.opts.FAPIRefreshTokenRotation
}

func keepToken(keep bool, token string) string {
	if keep {
		return token
	}
	return ""
}
