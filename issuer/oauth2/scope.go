package oauth2

import (
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// ScopeStrategy reports whether the scopes in allowed (a client's or a
// trust grant's) permit the requested scope.
type ScopeStrategy func(allowed []string, requested string) bool

// ScopeStrategyFor returns the strategy by name:
// "exact" or "wildcard" (the default, as in Hydra).
func ScopeStrategyFor(name string) ScopeStrategy {
	if name == "exact" {
		return ExactScopeStrategy
	}
	return WildcardScopeStrategy
}

// ExactScopeStrategy permits a scope only when it is listed as is.
func ExactScopeStrategy(allowed []string, requested string) bool {
	return contains(allowed, requested)
}

// WildcardScopeStrategy is Hydra's (fosite's) wildcard strategy: scopes
// are dot-separated, and "*" in an allowed scope matches one non-empty part,
// or any number of trailing parts when it is the last part: "foo.*" permits
// "foo.bar" and "foo.bar.baz" but not "foo"; "foo.*.baz" permits
// "foo.bar.baz"; "*" permits every scope. Without a "*" the match is exact.
func WildcardScopeStrategy(allowed []string, requested string) bool {
	if requested == "" {
		return false
	}
	need := strings.Split(requested, ".")
	for _, a := range allowed {
		if a == requested {
			return true
		}
		if !strings.Contains(a, "*") {
			continue
		}
		if wildcardMatch(strings.Split(a, "."), need) {
			return true
		}
	}
	return false
}

func wildcardMatch(pat, need []string) bool {
	if len(pat) > len(need) {
		return false
	}
	for i, p := range pat {
		last := i == len(pat)-1
		if last && len(pat) != len(need) {
			// A shorter pattern only matches when it ends in "*",
			// which then covers the remaining parts.
			if p != "*" {
				return false
			}
			for _, n := range need[i:] {
				if n == "" {
					return false
				}
			}
			return true
		}
		if p == "*" {
			if need[i] == "" {
				return false
			}
			continue
		}
		if p != need[i] {
			return false
		}
	}
	return true
}

// checkScopes fails with invalid_scope (RFC 6749 §5.2) unless every
// requested scope is permitted by allowed. what names the party whose
// scopes are checked, for the description.
func checkScopes(strategy ScopeStrategy, allowed, requested []string, what string) error {
	for _, s := range requested {
		if !strategy(allowed, s) {
			return apierr.InvalidScope("%s is not allowed to request scope %q", what, truncate(s))
		}
	}
	return nil
}
