package extauthz

import (
	"net/http"
	"slices"
	"strings"
)

// rule is a compiled Rule.
type rule struct {
	name         string
	hosts        []string // exact, lower case
	wildcards    []string // ".example.com" for "*.example.com"
	path         string
	prefix       string
	methods      []string // upper case
	anonymous    bool
	audiences    []string
	scopes       []string
	issuers      []string
	tokenTypes   []string
	claims       []claimRequirement
	externalBase string        // Rule.ExternalBaseURL without a trailing "/"
	internal     *internalRule // Rule.InternalToken (exchange.go)

	conds []*condition // CEL conditions (cel.go)

	denyIssuer, denyTokenType, denyAudience, denyScope, denyClaim *Denial
}

type claimRequirement struct {
	index  int // into Authorizer.claimPaths
	values []string
}

// compileRules compiles the configured rules plus the default rule (a
// valid token from any issuer) and collects the claim paths they use.
func (a *Authorizer) compileRules(rs []Rule) {
	pathIndex := map[string]int{}
	for _, r := range rs {
		cr := &rule{name: r.Name, path: r.Match.Path, prefix: r.Match.PathPrefix, anonymous: r.AllowAnonymous,
			audiences: r.Audiences, scopes: r.Scopes, issuers: r.Issuers, tokenTypes: r.TokenTypes,
			externalBase: strings.TrimSuffix(r.ExternalBaseURL, "/")}
		for _, h := range r.Match.Hosts {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if strings.HasPrefix(h, "*.") {
				cr.wildcards = append(cr.wildcards, h[1:])
			} else {
				cr.hosts = append(cr.hosts, h)
			}
		}
		for _, m := range r.Match.Methods {
			cr.methods = append(cr.methods, strings.ToUpper(m))
		}
		paths := make([]string, 0, len(r.Claims))
		for p := range r.Claims {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			i, ok := pathIndex[p]
			if !ok {
				i = len(a.claimPaths)
				pathIndex[p] = i
				a.claimPaths = append(a.claimPaths, p)
			}
			cr.claims = append(cr.claims, claimRequirement{index: i, values: r.Claims[p]})
		}
		a.compileDenials(cr)
		cr.internal = a.compileInternal(r.InternalToken)
		a.rules = append(a.rules, cr)
	}
	a.defaultRule = &rule{name: "default"}
	a.compileDenials(a.defaultRule)
}

func (a *Authorizer) compileDenials(r *rule) {
	realm := a.cfg.Realm
	scope := strings.Join(r.scopes, " ")
	r.denyIssuer = newDenial(realm, http.StatusUnauthorized, ErrInvalidToken, ReasonRouteIssuer, "The access token issuer is not accepted for this resource.", "", a.m)
	r.denyTokenType = newDenial(realm, http.StatusUnauthorized, ErrInvalidToken, ReasonRouteTokenType, "This kind of access token is not accepted for this resource.", "", a.m)
	r.denyAudience = newDenial(realm, http.StatusForbidden, ErrInsufficientScope, ReasonAudience, "The access token is not intended for this resource.", scope, a.m)
	r.denyScope = newDenial(realm, http.StatusForbidden, ErrInsufficientScope, ReasonScope, "The access token lacks a required scope.", scope, a.m)
	r.denyClaim = newDenial(realm, http.StatusForbidden, ErrInsufficientScope, ReasonClaim, "The access token does not grant access to this resource.", scope, a.m)
}

// match returns the first rule matching the request, else the default.
func (a *Authorizer) match(host, method, path string) *rule {
	for _, r := range a.rules {
		if r.matches(host, method, path) {
			return r
		}
	}
	return a.defaultRule
}

func (r *rule) matches(host, method, path string) bool {
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	if r.path != "" && path != r.path {
		return false
	}
	if r.prefix != "" && !pathHasPrefix(path, r.prefix) {
		return false
	}
	if len(r.hosts)+len(r.wildcards) > 0 {
		if !slices.Contains(r.hosts, host) && !slices.ContainsFunc(r.wildcards, func(w string) bool {
			return strings.HasSuffix(host, w) && len(host) > len(w)
		}) {
			return false
		}
	}
	return true
}

// pathHasPrefix matches by segment unless the prefix ends in "/".
func pathHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || len(path) == len(prefix) || path[len(prefix)] == '/'
}

// check applies the rule's token requirements to a validated identity.
func (r *rule) check(id *Identity) *Denial {
	if len(r.issuers) > 0 && !slices.Contains(r.issuers, id.Issuer) {
		return r.denyIssuer
	}
	if len(r.tokenTypes) > 0 && !slices.Contains(r.tokenTypes, id.TokenType) {
		return r.denyTokenType
	}
	if len(r.audiences) > 0 && !slices.ContainsFunc(r.audiences, func(a string) bool { return slices.Contains(id.Audience, a) }) {
		return r.denyAudience
	}
	for _, s := range r.scopes {
		if !slices.Contains(id.Scopes, s) {
			return r.denyScope
		}
	}
	for _, c := range r.claims {
		var have []string
		if c.index < len(id.claimValues) {
			have = id.claimValues[c.index]
		}
		if !slices.ContainsFunc(c.values, func(v string) bool { return slices.Contains(have, v) }) {
			return r.denyClaim
		}
	}
	return nil
}
