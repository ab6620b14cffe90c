package client

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// The FAPI 2.0 Security Profile (final) for the authorization server:
// a client opts in with the metadata fapi_profile "2.0" (a Gatehouse
// addition), or the operator turns it on for every client
// (oauth2.fapi.profile). The rules on metadata are here; the flow and
// token endpoints enforce the rest at the point each applies
// (docs/fapi.md lists them all).

// FAPI2 is the value of fapi_profile (and of oauth2.fapi.profile) that
// selects the FAPI 2.0 Security Profile.
const FAPI2 = "2.0"

// Client authentication methods of RFC 8705 §2. They are accepted by
// name in the FAPI rule so that FAPI clients may use them wherever the
// methods themselves are supported.
const (
	AuthTLSClientAuth           = "tls_client_auth"
	AuthSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// FAPIMaxClockSkew is how far in the future the iat or nbf of a JWT a
// FAPI client sends (client assertion, request object, DPoP proof) may be:
// FAPI 2.0 Security Profile §5.3.2.1 ("shall accept JWTs with an iat or
// nbf timestamp between 0 and 10 seconds in the future").
const FAPIMaxClockSkew = 10 * time.Second

// FAPIMaxCodeLifespan bounds the authorization codes of FAPI clients
// (FAPI 2.0 Security Profile §5.3.2.1: "shall issue authorization codes
// with a maximum lifetime of 60 seconds").
const FAPIMaxCodeLifespan = time.Minute

var (
	// FAPIAuthMethods are the client authentication methods FAPI 2.0
	// allows (§5.3.2.1: "shall only support confidential clients" and
	// "shall authenticate clients using" mTLS or private_key_jwt).
	FAPIAuthMethods = []string{AuthPrivateKeyJWT, AuthTLSClientAuth, AuthSelfSignedTLSClientAuth}
	// FAPISigningAlgs are the JWS algorithms FAPI 2.0 allows (§5.4.1:
	// PS256, ES256 or EdDSA with the Ed25519 curve).
	FAPISigningAlgs = []string{"PS256", "ES256", "EdDSA"}
)

// FAPI reports whether the FAPI 2.0 profile applies to c: globally on, or
// requested by the client's fapi_profile.
func (c *Client) FAPI(global bool) bool {
	return global || c.FAPIProfile == FAPI2
}

// checkFAPI refuses the metadata a FAPI 2.0 client cannot have.
func checkFAPI(c *Client) error {
	if !slices.Contains(FAPIAuthMethods, c.TokenEndpointAuthMethod) {
		return metaErr("FAPI 2.0 clients must be confidential and authenticate with %s, not %q", strings.Join(FAPIAuthMethods, ", "), c.TokenEndpointAuthMethod)
	}
	if alg := c.TokenEndpointAuthSigningAlg; alg != "" && !slices.Contains(FAPISigningAlgs, alg) {
		return metaErr("FAPI 2.0 clients must sign with %s, not %q (token_endpoint_auth_signing_alg)", strings.Join(FAPISigningAlgs, ", "), alg)
	}
	if alg := c.RequestObjectSigningAlg; alg != "" && !slices.Contains(FAPISigningAlgs, alg) {
		return metaErr("FAPI 2.0 clients must sign with %s, not %q (request_object_signing_alg)", strings.Join(FAPISigningAlgs, ", "), alg)
	}
	// §5.3.2.2: "shall require the value of response_type ... to be
	// code".
	for _, rt := range c.ResponseTypes {
		if rt != "code" {
			return metaErr("FAPI 2.0 clients may only use response_type code, not %q", rt)
		}
	}
	if c.HasGrantType(GrantImplicit) {
		return metaErr("FAPI 2.0 clients must not use the implicit grant")
	}
	// §5.3.2.2: redirect URIs use https; RFC 8252 §7.3 loopback
	// redirects of native apps stay allowed.
	for _, u := range c.RedirectURIs {
		if !FAPIRedirectURI(u) {
			return redirectErr("redirect_uris: %q: FAPI 2.0 clients must use https redirect URIs (plain http only on a loopback host)", truncate(u))
		}
	}
	return nil
}

// FAPIRedirectURI reports whether a redirect URI is allowed for a FAPI
// client: https, or http on a loopback host (a native app, RFC 8252 §7.3).
func FAPIRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return isLoopbackHost(u.Hostname())
	}
	return false
}

// checkFAPIProfile checks the fapi_profile value and, when the profile
// applies, the FAPI rules.
func (o *ValidationOptions) checkFAPIProfile(c *Client) error {
	if c.FAPIProfile != "" && c.FAPIProfile != FAPI2 {
		return metaErr("fapi_profile must be %q or empty, got %q", FAPI2, truncate(c.FAPIProfile))
	}
	if c.FAPI(o.FAPI) {
		return checkFAPI(c)
	}
	return nil
}
