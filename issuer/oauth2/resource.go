package oauth2

import (
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
)

// Resource indicators (RFC 8707) and the targets of an access token.
//
// A client may ask for access tokens meant for the targets listed in its
// registered audience (Hydra's audience model), named with RFC 8707's
// resource parameter or Hydra's audience parameter; both mean the same and
// may be combined (their union is requested). The granted targets are the
// access token's aud; with none, the client's default_access_token_audience,
// else oauth2.default_access_token_audience (RFC 9068 §3 requires aud).

// ParseResources reads the resource parameter values (RFC 8707 §2: the
// parameter may be repeated, one URI per value), deduplicated, in order.
// A malformed one is invalid_target: "The value of the resource parameter
// MUST be an absolute URI, as specified by Section 4.3 of [RFC3986], which
// MAY include a query component, but MUST NOT include a fragment component."
func ParseResources(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		if err := CheckResource(v); err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			if len(out) == maxAudiences {
				return nil, apierr.InvalidTarget("At most %d resources may be requested", maxAudiences)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// CheckResource fails with invalid_target unless s is an absolute URI
// without a fragment (RFC 8707 §2, RFC 3986 §4.3: absolute-URI = scheme ":"
// hier-part [ "?" query ]). URNs are absolute URIs too.
func CheckResource(s string) error {
	if len(s) > maxAudienceValue {
		return apierr.InvalidTarget("A resource is longer than %d characters", maxAudienceValue)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return apierr.InvalidTarget("The resource %q must be an absolute URI without spaces or control characters (RFC 8707 §2)", truncate(s))
	}
	if strings.Contains(s, "#") {
		return apierr.InvalidTarget("The resource %q must not include a fragment (RFC 8707 §2)", truncate(s))
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Opaque == "" && u.Host == "" && u.Path == "") {
		return apierr.InvalidTarget("The resource %q must be an absolute URI (RFC 8707 §2)", truncate(s))
	}
	return nil
}

// Targets is the union of the requested resources and audiences, in that
// order, deduplicated (never nil).
func Targets(resources, audiences []string) []string {
	out := make([]string, 0, len(resources)+len(audiences))
	for _, t := range slices.Concat(resources, audiences) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// AllowedTargets is the rule for every target a client names (resource or
// audience, at the authorization, PAR and token endpoints, and for token
// exchange): each must be listed, exactly, in the client's registered
// audience. It returns the requested targets (deduplicated, never nil), or
// invalid_target (RFC 8707 §2: "the requested resource is invalid,
// missing, unknown, or malformed"; RFC 8693 §2.2.2 for token exchange).
func AllowedTargets(c *client.Client, requested []string) ([]string, error) {
	out := make([]string, 0, len(requested))
	for _, t := range requested {
		if !slices.Contains(c.Audience, t) {
			return nil, apierr.InvalidTarget("The requested resource or audience %q is not in the OAuth 2.0 Client's audience", truncate(t))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// narrowTargets is RFC 8707 §2.2 for the code and refresh grants: "such
// policy may limit the acceptable resources to those that were originally
// granted by the resource owner or a subset thereof ... the authorization
// server will issue an access token based on that subset of requested
// resources, whereas any refresh token that is returned is bound to the
// full original grant". None requested keeps everything granted; a
// resource outside the grant is invalid_target.
func narrowTargets(granted, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return nonNil(granted), nil
	}
	for _, t := range requested {
		if !slices.Contains(granted, t) {
			return nil, apierr.InvalidTarget("The resource %q was not granted", truncate(t))
		}
	}
	return slices.Clone(requested), nil
}

// accessTokenAudience is the aud of an access token for c granted the
// targets granted, or the default one when none was granted: the client's
// default_access_token_audience, else Options.DefaultAccessTokenAudience.
// RFC 9068 §3: "If the request does not include a resource parameter, the
// authorization server MUST use a default resource indicator in the aud
// claim" (never an empty array).
func (h *Handler) accessTokenAudience(c *client.Client, granted []string) []string {
	switch {
	case len(granted) > 0:
		return slices.Clone(granted)
	case len(c.DefaultAccessTokenAudience) > 0:
		return slices.Clone(c.DefaultAccessTokenAudience)
	}
	return slices.Clone(h.opts.DefaultAccessTokenAudience)
}
