package extauthz

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// InternalTokensConfig says how the sidecar obtains internal tokens for
// upstreams (phantom tokens): RFC 8693 token exchange at one issuer's
// token endpoint with the sidecar's own client credentials. Routes ask
// for one with Rule.InternalToken (InternalTokenRule).
type InternalTokensConfig struct {
	// Issuer is the configured issuer whose token endpoint exchanges the
	// tokens. Default: the first issuer.
	Issuer string `yaml:"issuer"`
	// TokenEndpoint overrides the issuer's discovered token_endpoint
	// (e.g. its address on the private network).
	TokenEndpoint string `yaml:"token_endpoint"`
	// ClientID and ClientSecret are the sidecar's own client at the
	// issuer, sent as HTTP Basic (RFC 6749 §2.3.1). The client needs the
	// token exchange grant and the routes' audiences; with Actor, also
	// client_credentials; without, it must be allowed to impersonate
	// (Gatehouse: token_exchange_impersonation).
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Actor sends the sidecar's own access token (client_credentials) as
	// the exchange's actor_token, so that the internal token's act claim
	// names the gateway (RFC 8693 §4.1): delegation, not impersonation.
	Actor bool `yaml:"actor"`
	// ExpiryMargin: an internal token is reused until this long before it
	// expires (at most half its lifetime), so that upstreams never get one
	// about to expire. Default 1m.
	ExpiryMargin time.Duration `yaml:"expiry_margin"`
	// Timeout bounds one call to the token endpoint. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// CacheMaxBytes bounds the memory of the internal-token cache.
	// Default 16 MiB.
	CacheMaxBytes int64 `yaml:"cache_max_bytes"`
}

// InternalTokenRule makes a route send its upstream an internal token
// instead of the caller's: the caller's token exchanged for one whose
// aud is Audience, sent upstream as Authorization: Bearer.
type InternalTokenRule struct {
	// Audience is the upstream's name: the RFC 8693 audience parameter,
	// the aud of the internal token.
	Audience string `yaml:"audience"`
	// Scopes, when set, narrow the internal token's scope (the exchange's
	// scope parameter); none: the issuer's default (Gatehouse: the
	// caller's scopes the sidecar's client may have).
	Scopes []string `yaml:"scopes"`
}

func (c InternalTokensConfig) defaults(issuers []IssuerConfig) InternalTokensConfig {
	if c.Issuer == "" && len(issuers) > 0 {
		c.Issuer = issuers[0].Issuer
	}
	if c.ExpiryMargin == 0 {
		c.ExpiryMargin = time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.CacheMaxBytes == 0 {
		c.CacheMaxBytes = 16 << 20
	}
	return c
}

// validate checks the section; used says whether some route asks for
// internal tokens (the credentials are then required).
func (c InternalTokensConfig) validate(issuers []IssuerConfig, used bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("internal_tokens.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	i := slices.IndexFunc(issuers, func(is IssuerConfig) bool { return is.Issuer == c.Issuer })
	switch {
	case c.Issuer != "" && i < 0:
		bad("issuer", "%q is not one of the configured issuers", c.Issuer)
	case used && i >= 0 && issuers[i].JWKSURL != "" && c.TokenEndpoint == "":
		// With jwks_url the issuer's discovery is never fetched.
		bad("token_endpoint", "required when the issuer's jwks_url is set (discovery, which names the token endpoint, is not fetched)")
	}
	if c.TokenEndpoint != "" {
		if err := checkURL(c.TokenEndpoint, false); err != nil {
			bad("token_endpoint", "%v", err)
		}
	}
	if used && (c.ClientID == "" || c.ClientSecret == "") {
		bad("client_id", "client_id and client_secret are required when a rule has internal_token (env GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID, GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET)")
	} else if (c.ClientID == "") != (c.ClientSecret == "") {
		bad("client_secret", "client_id and client_secret must be set together")
	}
	if c.ExpiryMargin < 0 || c.ExpiryMargin > time.Hour {
		bad("expiry_margin", "must be between 0s and 1h, got %s", c.ExpiryMargin)
	}
	if c.Timeout <= 0 || c.Timeout > time.Minute {
		bad("timeout", "must be between 0s (excluded) and 1m, got %s", c.Timeout)
	}
	if c.CacheMaxBytes < 1<<20 {
		bad("cache_max_bytes", "must be at least 1048576 (1 MiB), got %d", c.CacheMaxBytes)
	}
	return errs
}

// validate checks a rule's internal_token (k is the rule's key).
func (r *InternalTokenRule) validate(k string, anonymous bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.internal_token.%s: %s", k, key, fmt.Sprintf(format, args...)))
	}
	if r.Audience == "" || strings.TrimSpace(r.Audience) != r.Audience || strings.ContainsFunc(r.Audience, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		bad("audience", "the upstream's audience is required (no control characters, no surrounding spaces), got %q", r.Audience)
	}
	for i, s := range r.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			bad(fmt.Sprintf("scopes[%d]", i), "%q is not a scope token (RFC 6749 §3.3)", s)
		}
	}
	if anonymous {
		bad("audience", "cannot be combined with allow_anonymous (an anonymous request has no token to exchange)")
	}
	return errs
}

// usesInternalTokens reports whether some rule asks for internal tokens.
func (c Config) usesInternalTokens() bool {
	for _, r := range c.Rules {
		if r.InternalToken != nil {
			return true
		}
	}
	return false
}
