package extauthz

import (
	"encoding/json"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Error codes of RFC 6750 §3.1.
const (
	ErrInvalidToken      = "invalid_token"
	ErrInsufficientScope = "insufficient_scope"
)

// Denial reasons (the "reason" label of the decisions metric).
const (
	ReasonMissingToken   = "missing_token"
	ReasonMalformed      = "malformed_token"
	ReasonTooLarge       = "token_too_large"
	ReasonExpired        = "expired"
	ReasonNotYetValid    = "not_yet_valid"
	ReasonWrongIssuer    = "wrong_issuer"
	ReasonBadSignature   = "bad_signature"
	ReasonUnknownKey     = "unknown_key"
	ReasonAlgorithm      = "algorithm_not_accepted"
	ReasonType           = "wrong_token_type"
	ReasonCritical       = "unsupported_critical_header"
	ReasonInvalidClaims  = "invalid_claims"
	ReasonInactive       = "inactive"
	ReasonRevoked        = "revoked"
	ReasonNoOpaque       = "opaque_not_accepted"
	ReasonRouteIssuer    = "issuer_not_accepted"
	ReasonRouteTokenType = "token_type_not_accepted"
	ReasonAudience       = "wrong_audience"
	ReasonScope          = "missing_scope"
	ReasonClaim          = "claim_mismatch"
)

// Denial is a rejected request: the HTTP status, RFC 6750 error and the
// rendered WWW-Authenticate value and JSON body. Denials are built once
// (per authorizer or per rule) and shared read-only.
type Denial struct {
	Status      int    // 401 or 403
	Error       string // "" (no token sent), invalid_token or insufficient_scope
	Description string
	Scope       string // required scopes, for insufficient_scope
	Reason      string

	WWWAuthenticate string
	// Headers are further response headers (DPoP-Nonce, RFC 9449 §9).
	Headers []Header
	Body    []byte

	counter prometheus.Counter
	envoy   atomic.Pointer[encodedResponse]
}

// newDenial renders a denial. description must be RFC 6750 §3-safe (no
// quote or backslash); descriptions are fixed strings in this package.
func newDenial(realm string, status int, code, reason, description, scope string, m *metrics) *Denial {
	d := &Denial{Status: status, Error: code, Description: description, Scope: scope, Reason: reason}
	d.WWWAuthenticate = wwwAuthenticate(realm, code, description, scope)
	bodyCode := code
	if bodyCode == "" {
		bodyCode = "unauthorized"
	}
	d.Body, _ = json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{bodyCode, description})
	if m != nil {
		d.counter = m.denyCounter(reason)
	}
	return d
}

// wwwAuthenticate renders a Bearer challenge (RFC 6750 §3). Without an
// error code (no token was sent, §3.1) only the realm is given.
func wwwAuthenticate(realm, code, description, scope string) string {
	return challenge("Bearer", realm, code, description, scope, "")
}

// challenge renders a challenge of scheme with RFC 6750 §3's attributes
// and, for the DPoP scheme, algs (RFC 9449 §7.1).
func challenge(scheme, realm, code, description, scope, algs string) string {
	var b strings.Builder
	b.WriteString(scheme)
	sep := " "
	attr := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(quotedStringSafe(v))
		b.WriteString(`"`)
		sep = ", "
	}
	if realm != "" {
		attr("realm", realm)
	}
	if code != "" {
		attr("error", code)
		if description != "" {
			attr("error_description", description)
		}
		if scope != "" {
			attr("scope", scope)
		}
	}
	if algs != "" {
		attr("algs", algs)
	}
	return b.String()
}

// quotedStringSafe drops characters RFC 6750 §3 does not allow in
// attribute values (%x20-21 / %x23-5B / %x5D-7E).
func quotedStringSafe(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// denials are an authorizer's token-level denials, rendered with its realm.
type denials struct {
	missing, malformed, tooLarge, expired, notYetValid, wrongIssuer,
	badSignature, unknownKey, algorithm, tokenType, critical, invalidClaims,
	inactive, revoked, noOpaque *Denial
}

func newDenials(realm string, m *metrics) denials {
	inv := func(reason, desc string) *Denial {
		return newDenial(realm, 401, ErrInvalidToken, reason, desc, "", m)
	}
	return denials{
		missing:       newDenial(realm, 401, "", ReasonMissingToken, "The request has no bearer token.", "", m),
		malformed:     inv(ReasonMalformed, "The access token is malformed."),
		tooLarge:      inv(ReasonTooLarge, "The access token is too large."),
		expired:       inv(ReasonExpired, "The access token expired."),
		notYetValid:   inv(ReasonNotYetValid, "The access token is not valid yet."),
		wrongIssuer:   inv(ReasonWrongIssuer, "The access token was not issued by a trusted issuer."),
		badSignature:  inv(ReasonBadSignature, "The access token signature is invalid."),
		unknownKey:    inv(ReasonUnknownKey, "The access token is signed with an unknown key."),
		algorithm:     inv(ReasonAlgorithm, "The access token signing algorithm is not accepted."),
		tokenType:     inv(ReasonType, "The token is not an access token."),
		critical:      inv(ReasonCritical, "The access token has an unsupported critical header."),
		invalidClaims: inv(ReasonInvalidClaims, "The access token claims are invalid."),
		inactive:      inv(ReasonInactive, "The access token is not active."),
		// A revocation event denies the token as introspection denies a
		// revoked one (the same RFC 6750 answer); only the metric's reason
		// tells them apart.
		revoked:  inv(ReasonRevoked, "The access token is not active."),
		noOpaque: inv(ReasonNoOpaque, "Opaque access tokens are not accepted."),
	}
}
