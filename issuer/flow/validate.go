package flow

import (
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// validate checks everything else about the request; its errors are
// redirected to the client (RFC 6749 §4.1.2.1, §4.2.2.1).
func (h *Handler) validate(a *authz) error {
	req, c := a.req, a.client
	// RFC 9126 §4: where PAR is required, globally (§5) or for the client
	// (§6), the authorization server "will refuse, using the
	// invalid_request error code, to process any request to the
	// authorization endpoint that does not have a request_uri parameter
	// with a value obtained from the PAR endpoint".
	if !a.pushed && (h.opts.PAR.Required || c.RequirePushedAuthorizationRequests) {
		return apierr.InvalidRequest("Authorization requests of this client must be pushed to %s first (RFC 9126)", PARPath)
	}
	if err := req.Err(); err != nil {
		return err
	}
	if c.FAPI(h.opts.FAPI) {
		if err := validateFAPI(a); err != nil {
			return err
		}
	}
	switch req.ResponseMode {
	case "", "query", "fragment", "form_post":
	default:
		return apierr.InvalidRequest("The response_mode %q is not supported (query, fragment, form_post)", truncate(req.ResponseMode))
	}
	// OAuth 2.0 Multiple Response Type Encoding Practices §5: tokens
	// must never be returned in the query.
	if req.ResponseMode == "query" && req.DefaultResponseMode() == "fragment" {
		return apierr.InvalidRequest("The response_mode query cannot be used with a response_type that returns tokens")
	}
	if !slices.ContainsFunc(c.ResponseTypes, func(rt string) bool { return sameResponseType(rt, req.ResponseTypes) }) {
		return apierr.UnsupportedResponseType("The client is not allowed to request response_type %q", req.ResponseTypeString())
	}
	if req.Has("code") && !c.HasGrantType(client.GrantAuthorizationCode) {
		return apierr.UnauthorizedClient("The client is not allowed to use the authorization_code grant")
	}
	if (req.Has("token") || req.Has("id_token")) && !c.HasGrantType(client.GrantImplicit) {
		return apierr.UnauthorizedClient("The client is not allowed to use the implicit grant (needed for response_type %q)", req.ResponseTypeString())
	}
	for _, s := range req.Scope {
		if !h.opts.Scopes(c.Scopes(), s) {
			return apierr.InvalidScope("The client is not allowed to request scope %q", truncate(s))
		}
	}
	// RFC 8707 §2: a target the client may not name is invalid_target.
	if _, err := oauth2.AllowedTargets(c, req.Audience); err != nil {
		return err
	}
	if req.Has("id_token") && !req.HasScope("openid") {
		return apierr.InvalidScope("The response_type id_token requires the openid scope")
	}
	// OpenID Connect Core §3.2.2.1 and §3.3.2.11: nonce is REQUIRED in
	// the implicit and hybrid flows.
	if req.HasScope("openid") && (req.Has("id_token") || req.Has("token")) && req.Nonce == "" {
		return apierr.InvalidRequest("The nonce parameter is required for the implicit and hybrid flows (OpenID Connect Core §3.2.2.1)")
	}
	return h.validatePKCE(a)
}

// validatePKCE is RFC 7636 §4.3/§4.4.1 with Hydra's enforcement options.
func (h *Handler) validatePKCE(a *authz) error {
	req, pk := a.req, h.opts.PKCE
	if req.CodeChallenge == "" {
		if req.CodeChallengeMethod != "" {
			return apierr.InvalidRequest("The code_challenge_method was sent without a code_challenge")
		}
		if req.Has("code") && (pk.Enforced || (pk.EnforcedForPublicClients && a.client.IsPublic())) {
			return apierr.InvalidRequest("Clients must include a code_challenge when performing the authorize code flow (PKCE, RFC 7636)")
		}
		return nil
	}
	if !req.Has("code") {
		return nil // no code, nothing to bind the challenge to
	}
	// §4.3: "defaults to plain if not present in the request".
	if req.CodeChallengeMethod == "" {
		req.CodeChallengeMethod = "plain"
	}
	switch req.CodeChallengeMethod {
	case "S256":
	case "plain":
		if !pk.AllowPlain {
			return apierr.InvalidRequest("The code_challenge_method plain is disabled; use S256")
		}
	default:
		return apierr.InvalidRequest("The code_challenge_method %q is not supported (S256, plain)", truncate(req.CodeChallengeMethod))
	}
	// §4.2: the challenge has the verifier's alphabet and length (a S256
	// challenge is 43 characters).
	if l := len(req.CodeChallenge); l < 43 || l > 128 || !oauth2.IsPKCEChars(req.CodeChallenge) {
		return apierr.InvalidRequest("The code_challenge must be 43 to 128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.2)")
	}
	return nil
}
