package flow

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// validateFAPI applies the FAPI 2.0 Security Profile's rules of the
// authorization endpoint (§5.3.2.2) to a client under the profile. The
// client's metadata was checked at registration (issuer/client/fapi.go);
// these rules hold for clients registered before the profile was turned
// on too.
func validateFAPI(a *authz) error {
	req := a.req
	// "shall reject authorization requests sent without [RFC 9126]".
	if !a.pushed {
		return apierr.InvalidRequest("FAPI 2.0 requires pushed authorization requests: push the request to %s first (RFC 9126)", PARPath)
	}
	// "shall require the value of response_type ... to be code".
	if len(req.ResponseTypes) != 1 || !req.Has("code") {
		return apierr.UnsupportedResponseType("FAPI 2.0 allows only response_type code, not %q", req.ResponseTypeString())
	}
	// "shall require PKCE [RFC 7636] with S256 as the code challenge method".
	if req.CodeChallenge == "" || req.CodeChallengeMethod != "S256" {
		return apierr.InvalidRequest("FAPI 2.0 requires PKCE with code_challenge_method S256 (RFC 7636)")
	}
	// "shall not allow redirect URIs that use the http scheme except for
	// native clients that use loopback interface redirection" (RFC 8252
	// §7.3). The redirect URI is registered, so the error may go to it.
	if !client.FAPIRedirectURI(a.redirectURI) {
		return apierr.InvalidRequest("FAPI 2.0 requires an https redirect URI")
	}
	return nil
}

// ProofChecker verifies the DPoP proof of a request to the PAR endpoint
// (issuer/oauth2.Handler.PARProof): it returns the proof's key thumbprint,
// "" when the request has none, or the error to answer (invalid_dpop_proof,
// use_dpop_nonce).
type ProofChecker interface {
	PARProof(ctx context.Context, r *http.Request) (jkt string, err error)
}

// bindPushedDPoP is RFC 9449 §10.1: a DPoP proof sent to the PAR endpoint
// binds the authorization code to its key as dpop_jkt does; "if both ...
// are provided, the authorization server MUST ... check that the
// dpop_jkt parameter value matches the JWK thumbprint of the proof key".
func (h *Handler) bindPushedDPoP(ctx context.Context, r *http.Request, a *authz) error {
	if h.dpop == nil {
		return nil
	}
	jkt, err := h.dpop.PARProof(ctx, r)
	if err != nil || jkt == "" {
		return err
	}
	switch a.req.DPoPJKT {
	case "":
		a.req.DPoPJKT = jkt
		a.params.Set("dpop_jkt", jkt)
	default:
		if subtle.ConstantTimeCompare([]byte(a.req.DPoPJKT), []byte(jkt)) != 1 {
			return &apierr.Error{Code: "invalid_dpop_proof", Status: http.StatusBadRequest,
				Description: "The dpop_jkt parameter does not match the key of the DPoP proof (RFC 9449 §10.1)"}
		}
	}
	return nil
}
