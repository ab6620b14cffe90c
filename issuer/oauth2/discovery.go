package oauth2

import (
	"context"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
)

var _ discovery.Contributor = (*Handler)(nil)

// Discovery advertises what MountPublic serves: the token, revocation and
// userinfo endpoints, the grant types of the token endpoint, client
// authentication at the token and revocation endpoints (Auth), the scopes
// this package gives a meaning (openid for ID tokens and userinfo,
// offline_access and Hydra's offline for refresh tokens) and the claims of
// its ID tokens, and the DPoP proof algorithms of the token and userinfo
// endpoints (RFC 9449 §5.1). Introspection is mounted on the admin listener only;
// introspection_endpoint is advertised when urls.introspection names a
// URL clients can reach (e.g. the sidecar's).
func (h *Handler) Discovery(context.Context) (discovery.Metadata, error) {
	pub := h.opts.PublicURL
	m := discovery.Metadata{
		TokenEndpoint:      pub + "/oauth2/token",
		RevocationEndpoint: pub + "/oauth2/revoke",
		// RFC 8628 §4.
		DeviceAuthorizationEndpoint: pub + DevicePath,
		UserinfoEndpoint:            pub + "/userinfo",
		IntrospectionEndpoint:       h.opts.IntrospectionURL,
		GrantTypesSupported:         h.GrantTypes(),
		ScopesSupported:             []string{"openid", "offline_access", "offline"},
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
			"at_hash", "c_hash"},
		TokenEndpointAuthMethodsSupported:               client.AuthMethods(),
		TokenEndpointAuthSigningAlgValuesSupported:      client.AssertionAlgs(),
		RevocationEndpointAuthMethodsSupported:          client.AuthMethods(),
		RevocationEndpointAuthSigningAlgValuesSupported: client.AssertionAlgs(),
		DPoPSigningAlgValuesSupported:                   slices.Clone(dpop.Algs),
	}
	h.mtlsDiscovery(&m)
	return m, nil
}
