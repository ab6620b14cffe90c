package flow

import (
	"context"
	"slices"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
)

var _ discovery.Contributor = (*Handler)(nil)

// Discovery advertises what MountPublic serves: the authorization
// endpoint with its response types and modes (the token-returning ones
// are the implicit grant), request objects, PKCE methods and subject
// types as configured, the PAR endpoint when Auth is set, the iss of
// authorization responses (RFC 9207), and RP-initiated logout with
// front-channel logout and, when HTTP is set, back-channel logout.
func (h *Handler) Discovery(context.Context) (discovery.Metadata, error) {
	pkce := []string{"S256"}
	if h.opts.PKCE.AllowPlain {
		pkce = append(pkce, "plain")
	}
	backchannel := h.outbound != nil
	var par string
	if h.auth != nil {
		par = h.opts.PublicURL + PARPath
	}
	return discovery.Metadata{
		AuthorizationEndpoint: h.opts.PublicURL + "/oauth2/auth",
		EndSessionEndpoint:    h.opts.PublicURL + "/oauth2/sessions/logout",
		ResponseTypesSupported: []string{"code", "id_token", "id_token token", "code id_token", "code token",
			"code id_token token", "token"},
		ResponseModesSupported:                 []string{"query", "fragment", "form_post"},
		GrantTypesSupported:                    []string{client.GrantImplicit},
		SubjectTypesSupported:                  slices.Clone(h.opts.SubjectTypes),
		CodeChallengeMethodsSupported:          pkce,
		RequestParameterSupported:              true,
		ClaimsParameterSupported:               true,
		RequestURIParameterSupported:           true,
		RequestObjectSigningAlgValuesSupported: slices.Clone(RequestObjectAlgs),
		FrontchannelLogoutSupported:            true,
		FrontchannelLogoutSessionSupported:     true,
		BackchannelLogoutSupported:             backchannel,
		BackchannelLogoutSessionSupported:      backchannel,

		// RFC 9126 §5, RFC 9207 §3.
		PushedAuthorizationRequestEndpoint:         par,
		RequirePushedAuthorizationRequests:         h.opts.PAR.Required || h.opts.FAPI, // fapi.go
		AuthorizationResponseISSParameterSupported: true,
	}, nil
}
