package flow

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/dpop"
	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// Limits on authorization request parameters.
const (
	maxParamLength = 4096
	maxScopes      = 100
	maxListValues  = 100
)

// AuthorizeRequest is an authorization request (RFC 6749 §4.1.1, §4.2.1;
// OpenID Connect Core §3.1.2.1), parsed once. It is stored with the login
// and consent challenges, so its JSON form is part of the flow's state.
type AuthorizeRequest struct {
	ClientID string `json:"client_id"`
	// RedirectURI is the redirect_uri parameter as sent (empty when
	// omitted); the flow stores the resolved one separately.
	RedirectURI   string   `json:"redirect_uri,omitempty"`
	ResponseTypes []string `json:"response_types"`
	// ResponseMode is the response_mode parameter as sent (may be empty).
	ResponseMode        string   `json:"response_mode,omitempty"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Scope               []string `json:"scope"`
	Audience            []string `json:"audience"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              int64    `json:"max_age"` // -1: absent
	IDTokenHint         string   `json:"id_token_hint,omitempty"`
	LoginHint           string   `json:"login_hint,omitempty"`
	ACRValues           []string `json:"acr_values"`
	UILocales           []string `json:"ui_locales"`
	ClaimsLocales       []string `json:"claims_locales,omitempty"`
	Display             string   `json:"display,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// Claims is the OpenID Connect Core §5.5 claims request, nil when
	// absent.
	Claims *ClaimsRequest `json:"claims,omitempty"`
	// Request and RequestURI are the JAR parameters (OIDC Core §6).
	Request    string `json:"-"`
	RequestURI string `json:"-"`

	// err is the first syntax problem found after client_id and
	// redirect_uri; it is reported to the client by redirect.
	err *apierr.Error
}

// singleAuthParams must not be repeated (RFC 6749 §3.1: "Request and
// response parameters MUST NOT be included more than once").
var singleAuthParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "state", "nonce",
	"scope", "prompt", "max_age", "id_token_hint", "login_hint", "acr_values", "ui_locales", "claims_locales",
	"display", "code_challenge", "code_challenge_method", "request", "request_uri", "dpop_jkt", "claims"}

// pageError is an error shown on the error page, never redirected: the
// client or its redirect URI cannot be trusted (RFC 6749 §4.1.2.1: "the
// authorization server ... MUST NOT automatically redirect the user-agent
// to the invalid redirection URI").
type pageError struct{ e *apierr.Error }

func (p pageError) Error() string { return p.e.Error() }
func (p pageError) Unwrap() error { return p.e }

// ParseAuthorizeRequest reads the parameters of an authorization request.
// A missing or repeated client_id or redirect_uri is a pageError; every
// other problem is recorded for redirection to the client once the client
// and redirect URI are known to be valid (Err). Unknown parameters are
// ignored (RFC 6749 §3.1). It never panics on hostile input.
func ParseAuthorizeRequest(form url.Values) (*AuthorizeRequest, error) {
	r := &AuthorizeRequest{MaxAge: -1}
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(form[name]) > 1 {
			return nil, pageError{apierr.InvalidRequest("The parameter %q must not be included more than once", name)}
		}
	}
	r.ClientID, r.RedirectURI = form.Get("client_id"), form.Get("redirect_uri")
	if r.ClientID == "" {
		return nil, pageError{apierr.InvalidRequest("The client_id parameter is missing")}
	}
	if len(r.ClientID) > maxParamLength || len(r.RedirectURI) > maxParamLength {
		return nil, pageError{apierr.InvalidRequest("The client_id or redirect_uri parameter is too long")}
	}
	if err := httpx.CheckIdentifier("client_id", r.ClientID); err != nil {
		return nil, pageError{err}
	}
	fail := func(e *apierr.Error) {
		if r.err == nil {
			r.err = e
		}
	}
	v := map[string]string{}
	for _, name := range singleAuthParams {
		vs := form[name]
		if len(vs) > 1 {
			fail(apierr.InvalidRequest("The parameter %q must not be included more than once", name))
		}
		if len(vs) > 0 {
			if len(vs[0]) > maxParamLength {
				fail(apierr.InvalidRequest("The parameter %q is longer than %d bytes", name, maxParamLength))
				continue
			}
			v[name] = vs[0]
		}
	}
	r.ResponseMode, r.State, r.Nonce = v["response_mode"], v["state"], v["nonce"]
	r.IDTokenHint, r.LoginHint, r.Display = v["id_token_hint"], v["login_hint"], v["display"]
	r.CodeChallenge, r.CodeChallengeMethod = v["code_challenge"], v["code_challenge_method"]
	r.Request, r.RequestURI = v["request"], v["request_uri"]
	// RFC 9449 §10: dpop_jkt is the JWK SHA-256 thumbprint of §6.1.
	if r.DPoPJKT = v["dpop_jkt"]; r.DPoPJKT != "" && !dpop.ValidJKT(r.DPoPJKT) {
		fail(apierr.InvalidRequest("The dpop_jkt parameter must be a base64url SHA-256 JWK thumbprint (RFC 9449 §10)"))
	}

	rt, err := parseResponseType(v["response_type"])
	if err != nil {
		fail(err)
	}
	r.ResponseTypes = rt
	r.Scope = fields(v["scope"], maxScopes)
	for _, s := range r.Scope {
		if !oauth2.ValidScopeToken(s) {
			fail(apierr.InvalidScope("The scope %q contains a character not allowed by RFC 6749 §3.3", truncate(s)))
			break
		}
	}
	if len(r.Scope) > maxScopes {
		fail(apierr.InvalidScope("At most %d scopes may be requested", maxScopes))
	}
	// RFC 8707 §2.1: resource (repeated, one absolute URI each) names the
	// targets of the access tokens; Hydra's audience (repeated and/or
	// space-separated) means the same. Both become the requested audience.
	resources, rerr := oauth2.ParseResources(form["resource"])
	if rerr != nil {
		fail(apierr.From(rerr))
	}
	r.Audience = resources
	for _, a := range form["audience"] {
		for _, s := range fields(a, maxListValues) {
			if !slices.Contains(r.Audience, s) {
				r.Audience = append(r.Audience, s)
			}
		}
	}
	if len(r.Audience) > maxListValues {
		fail(apierr.InvalidRequest("At most %d audiences may be requested", maxListValues))
	}
	r.ACRValues = fields(v["acr_values"], maxListValues)
	r.UILocales = fields(v["ui_locales"], maxListValues)
	r.ClaimsLocales = fields(v["claims_locales"], maxListValues)
	r.Prompt = fields(v["prompt"], maxListValues)
	for _, p := range r.Prompt {
		switch p {
		case "none", "login", "consent", "select_account", "registration":
		default:
			fail(apierr.InvalidRequest("The prompt value %q is not supported (none, login, consent, select_account, registration)", truncate(p)))
		}
	}
	// OpenID Connect Core §3.1.2.1: "If this parameter contains none with
	// any other value, an error is returned."
	if slices.Contains(r.Prompt, "none") && len(r.Prompt) > 1 {
		fail(apierr.InvalidRequest("The prompt value none must not be combined with another value"))
	}
	if s := v["claims"]; s != "" {
		cr, err := ParseClaimsRequest(s)
		if err != nil {
			fail(err)
		}
		r.Claims = cr
	}
	if s, ok := v["max_age"]; ok && s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			fail(apierr.InvalidRequest("The max_age parameter must be a non-negative integer number of seconds"))
		} else {
			r.MaxAge = n
		}
	}
	if r.Scope == nil {
		r.Scope = []string{}
	}
	if r.Audience == nil {
		r.Audience = []string{}
	}
	return r, nil
}

// Err returns the first problem found while parsing, or nil.
func (r *AuthorizeRequest) Err() error {
	if r.err == nil {
		return nil
	}
	return r.err
}

// Has reports whether the response type includes rt.
func (r *AuthorizeRequest) Has(rt string) bool { return slices.Contains(r.ResponseTypes, rt) }

// HasScope reports whether scope s was requested.
func (r *AuthorizeRequest) HasScope(s string) bool { return slices.Contains(r.Scope, s) }

// HasPrompt reports whether prompt p was requested.
func (r *AuthorizeRequest) HasPrompt(p string) bool { return slices.Contains(r.Prompt, p) }

// ResponseTypeString is the response type in canonical order.
func (r *AuthorizeRequest) ResponseTypeString() string { return strings.Join(r.ResponseTypes, " ") }

// DefaultResponseMode is OAuth 2.0 Multiple Response Type Encoding
// Practices §2.1 and §5: query for code, fragment as soon as a token or ID
// token is returned from the authorization endpoint.
func (r *AuthorizeRequest) DefaultResponseMode() string {
	if r.Has("token") || r.Has("id_token") {
		return "fragment"
	}
	return "query"
}

// EffectiveResponseMode is the response_mode when valid, else the default.
func (r *AuthorizeRequest) EffectiveResponseMode() string {
	switch r.ResponseMode {
	case "query":
		if r.DefaultResponseMode() == "fragment" {
			return "fragment"
		}
		return "query"
	case "fragment", "form_post":
		return r.ResponseMode
	}
	return r.DefaultResponseMode()
}

// parseResponseType splits a response_type into its values, in the
// canonical order code, id_token, token (order does not matter on the wire:
// RFC 6749 §3.1.1).
func parseResponseType(s string) ([]string, *apierr.Error) {
	if s == "" {
		return nil, apierr.InvalidRequest("The response_type parameter is missing")
	}
	var seen [3]bool
	for part := range strings.SplitSeq(s, " ") {
		switch part {
		case "":
			continue
		case "code":
			seen[0] = true
		case "id_token":
			seen[1] = true
		case "token":
			seen[2] = true
		default:
			return nil, apierr.UnsupportedResponseType("The response_type %q is not supported", truncate(s))
		}
	}
	var out []string
	for i, name := range []string{"code", "id_token", "token"} {
		if seen[i] {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, apierr.InvalidRequest("The response_type parameter is missing")
	}
	return out, nil
}

// sameResponseType compares a registered response type with a requested
// one as sets of values.
func sameResponseType(registered string, requested []string) bool {
	rt, err := parseResponseType(registered)
	return err == nil && slices.Equal(rt, requested)
}

// fields splits on spaces, drops empty and repeated values, and stops
// after max+1 values (so that callers can report "too many").
func fields(s string, max int) []string {
	var out []string
	for f := range strings.SplitSeq(s, " ") {
		if f == "" || slices.Contains(out, f) {
			continue
		}
		out = append(out, f)
		if len(out) > max {
			break
		}
	}
	return out
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// MatchRedirectURI resolves the redirect URI of an authorization request
// against a client's registered ones (RFC 6749 §3.1.2.3): an exact string
// match, or, when requested is empty, the client's only registered URI.
// RFC 8252 §7.3: for a registered http URI on a loopback IP literal
// (127.0.0.1, [::1]) the port is not compared ("the authorization server
// MUST allow any port to be specified at the time of the request for
// loopback IP redirect URIs"); everything else must still be identical.
// "localhost" gets no such exception (RFC 8252 §8.3 advises against it).
// It returns the redirect URI to use.
func MatchRedirectURI(requested string, registered []string) (string, bool) {
	if requested == "" {
		if len(registered) == 1 {
			return registered[0], true
		}
		return "", false
	}
	if slices.Contains(registered, requested) {
		return requested, true
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || req.Fragment != "" || strings.Contains(requested, "#") ||
		req.User != nil || req.Opaque != "" || !isLoopbackIP(req.Hostname()) {
		return "", false
	}
	if p := req.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", false
		}
	}
	for _, reg := range registered {
		u, err := url.Parse(reg)
		if err != nil || u.Scheme != "http" || u.User != nil || !isLoopbackIP(u.Hostname()) {
			continue
		}
		if u.Hostname() == req.Hostname() && u.EscapedPath() == req.EscapedPath() && u.RawQuery == req.RawQuery &&
			u.ForceQuery == req.ForceQuery {
			return requested, true
		}
	}
	return "", false
}

// isLoopbackIP reports whether host is an IP literal of the loopback
// interface (RFC 8252 §7.3).
func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
