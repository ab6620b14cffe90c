package oauth2

import (
	"context"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// Limits on token request parameters.
const (
	maxScopes        = 100
	maxAudiences     = 100
	maxScopeToken    = 256
	maxAudienceValue = 2048
	maxAssertion     = 64 << 10
)

// grantHandler handles one grant type at the token endpoint. The request
// has been parsed and the client authenticated and checked to be allowed
// the grant type.
type grantHandler interface {
	handle(ctx context.Context, req *tokenRequest) (*tokenResponse, error)
}

// tokenRequest is a token endpoint request, parsed once (RFC 6749 §3.2,
// §4.1.3, §4.4.2, §6; RFC 7523 §2.1).
type tokenRequest struct {
	GrantType string
	// Scope is the requested scope (RFC 6749 §3.3), deduplicated, in order.
	Scope []string
	// Audience is the requested audience (Hydra's audience parameter: repeated
	// and/or space-separated), deduplicated, in order.
	Audience []string
	// Resource is the requested resource (RFC 8707 §2: repeated, one
	// absolute URI each), deduplicated, in order.
	Resource []string

	// Assertion is the RFC 7523 §2.1 JWT of the jwt-bearer grant.
	Assertion string
	// Code, RedirectURI and CodeVerifier belong to the authorization_code
	// grant (RFC 6749 §4.1.3, RFC 7636 §4.5), RefreshToken to the
	// refresh_token grant (RFC 6749 §6).
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	// DeviceCode belongs to the device_code grant (RFC 8628 §3.4).
	DeviceCode string

	// Client is the authenticated client.
	Client *client.Client
	// Form is the request body, for parameters only one grant reads
	// (token_exchange.go).
	Form url.Values
	// DPoP is the request's checked DPoP proof (RFC 9449 §5), or nil.
	DPoP *dpop.Proof
	// X5T is the x5t#S256 of the client certificate the access token is
	// bound to (RFC 8705 §3), or "".
	X5T string
}

// jkt is the thumbprint of the request's DPoP key, or "".
func (r *tokenRequest) jkt() string {
	if r.DPoP == nil {
		return ""
	}
	return r.DPoP.JKT
}

// singleParams are the token request parameters that must appear at most
// once (RFC 6749 §3.2: "Request and response parameters MUST NOT be
// included more than once"). audience is Hydra's multi-valued extension.
var singleParams = []string{"grant_type", "scope", "assertion", "code", "redirect_uri", "code_verifier", "refresh_token", "device_code"}

// parseTokenRequest parses the body parameters of a token request. It never
// panics on hostile input and returns *apierr.Error values.
func parseTokenRequest(form url.Values) (*tokenRequest, error) {
	var v [8]string
	for i, name := range singleParams {
		s, err := httpx.SingleValue(form, name)
		if err != nil {
			return nil, err
		}
		v[i] = s
	}
	req := &tokenRequest{Form: form, GrantType: v[0], Assertion: v[2], Code: v[3], RedirectURI: v[4], CodeVerifier: v[5], RefreshToken: v[6], DeviceCode: v[7]}
	if req.GrantType == "" {
		return nil, apierr.InvalidRequest("The grant_type parameter is missing")
	}
	scope, err := parseScope(v[1])
	if err != nil {
		return nil, err
	}
	req.Scope = scope
	aud, err := parseAudience(form["audience"])
	if err != nil {
		return nil, err
	}
	req.Audience = aud
	if req.Resource, err = ParseResources(form["resource"]); err != nil {
		return nil, err
	}
	if len(req.Assertion) > maxAssertion {
		return nil, apierr.InvalidRequest("The assertion parameter is longer than %d bytes", maxAssertion)
	}
	return req, nil
}

// parseScope splits a scope parameter (RFC 6749 §3.3: scope tokens
// separated by spaces; extra spaces are tolerated) and checks every token's
// characters: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func parseScope(s string) ([]string, error) {
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if !ValidScopeToken(tok) {
			return nil, apierr.InvalidScope("The scope %q contains a character not allowed by RFC 6749 §3.3", truncate(tok))
		}
		if len(tok) > maxScopeToken {
			return nil, apierr.InvalidScope("A scope is longer than %d characters", maxScopeToken)
		}
		if !contains(out, tok) {
			if len(out) == maxScopes {
				return nil, apierr.InvalidScope("At most %d scopes may be requested", maxScopes)
			}
			out = append(out, tok)
		}
	}
	return out, nil
}

// ValidScopeToken reports whether tok is a scope-token of RFC 6749 §3.3:
// one or more of %x21 / %x23-5B / %x5D-7E.
func ValidScopeToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		b := tok[i]
		if b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
			return false
		}
	}
	return true
}

// parseAudience reads Hydra's audience parameter: it may be repeated, and
// each value may hold several space-separated audiences.
func parseAudience(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for a := range strings.SplitSeq(v, " ") {
			if a == "" {
				continue
			}
			if len(a) > maxAudienceValue {
				return nil, apierr.InvalidRequest("An audience is longer than %d characters", maxAudienceValue)
			}
			if !contains(out, a) {
				if len(out) == maxAudiences {
					return nil, apierr.InvalidRequest("At most %d audiences may be requested", maxAudiences)
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tokenResponse is the RFC 6749 §5.1 successful response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	// TokenType is "bearer" (RFC 6750), written in lower case as Hydra does.
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	// Scope is always present, as in Hydra (RFC 6749 §5.1 makes it
	// optional only when identical to the requested scope).
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// IssuedTokenType is RFC 8693 §2.2.1's, in token exchange responses.
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}
