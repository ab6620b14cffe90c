// Package extauthz is the authorization library behind gatehouse-sidecar:
// it validates bearer tokens (JWT access tokens locally against the
// issuer's cached JWKS, opaque tokens through the issuer's RFC 7662
// introspection endpoint), applies per-route rules and renders the
// decision for Envoy's ext_authz gRPC API and for HTTP forward-auth.
//
// The package never imports the issuer: the contract with any OpenID
// provider is HTTP (OpenID Connect Discovery, JWKS, RFC 7662).
package extauthz

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the authorization configuration. The zero value plus one
// issuer is valid; Validate fills nothing in, Defaults does.
type Config struct {
	// Issuers whose tokens are accepted. The first is the default one.
	Issuers []IssuerConfig `yaml:"issuers"`
	// Rules are evaluated in order, the first match wins. A request no
	// rule matches needs a valid token from any configured issuer.
	Rules []Rule `yaml:"rules"`
	// Token says where the bearer token is read from.
	Token TokenConfig `yaml:"token"`
	// JWT validation settings.
	JWT JWTConfig `yaml:"jwt"`
	// JWKS caching.
	JWKS JWKSConfig `yaml:"jwks"`
	// Introspection of opaque tokens at the issuer.
	Introspection IntrospectionConfig `yaml:"introspection"`
	// Cache is the decision cache shared by JWT and opaque tokens.
	Cache CacheConfig `yaml:"cache"`
	// Headers passed to upstreams.
	Headers HeadersConfig `yaml:"headers"`
	// IntrospectionEndpoint protects the sidecar's own RFC 7662 endpoint.
	IntrospectionEndpoint IntrospectionEndpointConfig `yaml:"introspection_endpoint"`
	// Realm, when set, is sent as the realm attribute of WWW-Authenticate.
	Realm string `yaml:"realm"`
	// Binding configures the checks of DPoP- and certificate-bound
	// tokens (bindconfig.go).
	Binding BindingConfig `yaml:"binding"`
	// Revocations is the subscription to the first issuer's revocation
	// event stream (docs/revocation-events.md).
	Revocations RevocationsConfig `yaml:"revocations"`

	// InternalTokens configures the token exchange behind routes with an
	// internal_token (exchangeconfig.go).
	InternalTokens InternalTokensConfig `yaml:"internal_tokens"`

	// CEL bounds the evaluation of rule conditions and CEL identity
	// headers (cel.go).
	CEL CELConfig `yaml:"cel"`
}

// RevocationsEventsOff turns the revocation stream off.
const RevocationsEventsOff = "off"

// RevocationsConfig configures the revocation event stream: revoked
// tokens, sessions, consents, clients and keys of issuers[0] are denied
// as soon as the issuer says so instead of after the cache TTLs.
type RevocationsConfig struct {
	// EventsURL is the issuer's GET /admin/revocations/events. Empty: the
	// origin of issuers[0]'s introspection endpoint (introspection_url,
	// else discovery's) plus /admin/revocations/events; none when no
	// introspection endpoint is known. "off": no stream.
	EventsURL string `yaml:"events_url"`
	// MaxEntries bounds the deny-set: one entry per revoked jti, one per
	// other event, each kept until its tokens have expired. When full,
	// the entries expiring first are evicted and every cached decision is
	// dropped (at most every 10 s). Default 100000 (about 31 MiB of heap:
	// docs/benchmarks.md).
	MaxEntries int `yaml:"max_entries"`
	// MaxBackoff bounds the wait between two reconnection attempts.
	// Default 10s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// DefaultRevocationsMaxEntries is revocations.max_entries' default.
const DefaultRevocationsMaxEntries = 100000

// IssuerConfig describes one trusted issuer.
type IssuerConfig struct {
	// Issuer is the exact `iss` value; discovery is fetched from
	// <issuer>/.well-known/openid-configuration unless DiscoveryURL is set.
	Issuer string `yaml:"issuer"`
	// DiscoveryURL overrides where the discovery document is fetched (e.g.
	// the issuer's address on the private network). Its `issuer` must
	// still equal Issuer exactly.
	DiscoveryURL string `yaml:"discovery_url"`
	// JWKSURL overrides discovery's jwks_uri.
	JWKSURL string `yaml:"jwks_url"`
	// IntrospectionURL is the RFC 7662 endpoint used for opaque tokens.
	// Empty: discovery's introspection_endpoint, else none. For
	// Gatehouse and Hydra it is the admin API's /admin/oauth2/introspect.
	IntrospectionURL string `yaml:"introspection_url"`
	// IntrospectionClientID and IntrospectionClientSecret, when set, are
	// sent as HTTP Basic credentials (RFC 6749 §2.3.1) to IntrospectionURL.
	IntrospectionClientID     string `yaml:"introspection_client_id"`
	IntrospectionClientSecret string `yaml:"introspection_client_secret"`
	// AcceptTypJWT accepts this issuer's JWT access tokens with header
	// typ "JWT" or no typ (Ory Hydra signs them so), besides "at+jwt". Such
	// a token must still look like an access token and not like an ID
	// token (see accessTokenClaims). Default false: only typ "at+jwt".
	AcceptTypJWT bool `yaml:"accept_typ_jwt"`
}

// TokenConfig says where tokens are read from.
type TokenConfig struct {
	// Cookie is the name of a cookie that carries the access token when
	// there is no Authorization header (Envoy's oauth2 filter sets
	// "BearerToken"). Empty: cookies are ignored.
	Cookie string `yaml:"cookie"`
	// MaxBytes bounds the token length; longer tokens are rejected
	// without being parsed. Default 8192.
	MaxBytes int `yaml:"max_bytes"`
}

// JWTConfig holds JWT validation settings.
type JWTConfig struct {
	// ClockSkew tolerated on exp, nbf and iat. Default 30s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RequireATJWTType requires the RFC 9068 header typ "at+jwt" (or
	// "application/at+jwt") of every issuer's JWT access tokens. nil
	// means true. false is IssuerConfig.AcceptTypJWT for every issuer.
	RequireATJWTType *bool `yaml:"require_at_jwt_typ"`
	// Algorithms accepted at all. Default: RS256 RS384 RS512 PS256 PS384
	// PS512 ES256 ES384 ES512 EdDSA. The algorithm used for a token is
	// still decided by its JWKS key.
	Algorithms []string `yaml:"algorithms"`
}

// JWKSConfig holds key-set caching settings.
type JWKSConfig struct {
	// RefreshInterval is used when the JWKS response has no usable
	// Cache-Control max-age. Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MinRefreshInterval and MaxRefreshInterval clamp Cache-Control
	// max-age. Defaults 30s and 15m.
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	MaxRefreshInterval time.Duration `yaml:"max_refresh_interval"`
	// UnknownKIDInterval is the minimum time between two re-fetches
	// caused by a token naming an unknown kid. Default 2s.
	UnknownKIDInterval time.Duration `yaml:"unknown_kid_interval"`
	// FetchTimeout bounds one discovery or JWKS request. Default 5s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
}

// IntrospectionConfig holds settings for introspecting opaque tokens.
type IntrospectionConfig struct {
	// CacheTTL is how long an active introspection result is reused,
	// bounded by the token's exp. It is the longest a revoked opaque
	// token keeps working. Default 30s.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// Timeout bounds one introspection request. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
}

// CacheConfig bounds the decision cache.
type CacheConfig struct {
	// MaxBytes is the approximate memory the cache may use. Default 32MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxTTL bounds how long a validated token is cached. Default 5m.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// NegativeTTL is how long a rejected token is remembered. Default 5s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// HeadersConfig says what is passed to upstreams.
type HeadersConfig struct {
	// Identity maps a request header name to a claim path (dots walk
	// into objects, e.g. "ext.email"). nil: the defaults x-user-id ← sub,
	// x-client-id ← client_id, x-user-scopes ← scope. The path "scope"
	// resolves to the token's scopes (space-separated scope string or scp
	// array) joined by spaces.
	Identity map[string]string `yaml:"identity"`
	// IdentityCEL maps a request header name to a CEL expression over the
	// token (claims, token.*) whose string value it carries (cel.go).
	IdentityCEL map[string]string `yaml:"identity_cel"`
	// ClaimsHeader, when set, carries all validated claims as base64url
	// (no padding) JSON.
	ClaimsHeader string `yaml:"claims_header"`
	// DynamicMetadata emits the claims as Envoy dynamic metadata under the
	// key "claims" (namespace envoy.filters.http.ext_authz).
	DynamicMetadata bool `yaml:"dynamic_metadata"`
}

// IntrospectionEndpointConfig protects the sidecar's /introspect.
type IntrospectionEndpointConfig struct {
	// Clients allowed to call /introspect. None: the endpoint answers 401.
	Clients []EndpointClient `yaml:"clients"`
}

// EndpointClient is one client of the /introspect endpoint.
type EndpointClient struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
}

// Rule is one route rule.
type Rule struct {
	// Name appears in logs.
	Name  string `yaml:"name"`
	Match Match  `yaml:"match"`
	// AllowAnonymous lets requests without a valid token through (with
	// the identity headers removed); a valid token still yields headers.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// Audiences: the token's aud must contain at least one of them.
	Audiences []string `yaml:"audiences"`
	// Scopes: the token must carry all of them.
	Scopes []string `yaml:"scopes"`
	// Issuers: the token must come from one of them (default: any
	// configured issuer).
	Issuers []string `yaml:"issuers"`
	// TokenTypes: "jwt", "opaque" or both (default both).
	TokenTypes []string `yaml:"token_types"`
	// Claims: claim path → accepted values; the claim (or, for an array
	// claim, one of its elements) must equal one of them.
	Claims map[string]StringList `yaml:"claims"`
	// ExternalBaseURL is the scheme, host and path prefix clients call
	// this route at, when a proxy in front of the gateway rewrites them:
	// a DPoP proof's htu is checked against it plus the request's path.
	ExternalBaseURL string `yaml:"external_base_url"`
	// InternalToken, when set, replaces the caller's token upstream with
	// one exchanged for this route's audience (exchangeconfig.go).
	InternalToken *InternalTokenRule `yaml:"internal_token"`

	// Conditions are CEL expressions that must all be true (cel.go).
	Conditions []Condition `yaml:"conditions"`
}

// Match says which requests a rule applies to. Empty fields match all.
type Match struct {
	// Hosts: exact host names or "*.example.com"; the port is ignored.
	Hosts []string `yaml:"hosts"`
	// PathPrefix matches the normalized path by segment: "/api" matches
	// "/api" and "/api/x" but not "/apix"; a prefix ending in "/" is a
	// plain string prefix.
	PathPrefix string `yaml:"path_prefix"`
	// Path matches the normalized path exactly.
	Path string `yaml:"path"`
	// Methods, case-insensitive.
	Methods []string `yaml:"methods"`
}

// StringList is a YAML scalar or sequence of strings.
type StringList []string

// UnmarshalYAML accepts a single scalar as a one-element list.
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = StringList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// Token types.
const (
	TokenTypeJWT    = "jwt"
	TokenTypeOpaque = "opaque"
)

// DefaultIdentityHeaders is the claim → header mapping used when
// Headers.Identity is nil.
func DefaultIdentityHeaders() map[string]string {
	return map[string]string{"x-user-id": "sub", "x-client-id": "client_id", "x-user-scopes": "scope"}
}

var defaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Defaults returns c with every unset setting at its default.
func (c Config) Defaults() Config {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Token.MaxBytes == 0 {
		c.Token.MaxBytes = 8192
	}
	setDur(&c.JWT.ClockSkew, 30*time.Second)
	if len(c.JWT.Algorithms) == 0 {
		c.JWT.Algorithms = slices.Clone(defaultAlgorithms)
	}
	setDur(&c.JWKS.RefreshInterval, 5*time.Minute)
	setDur(&c.JWKS.MinRefreshInterval, 30*time.Second)
	setDur(&c.JWKS.MaxRefreshInterval, 15*time.Minute)
	setDur(&c.JWKS.UnknownKIDInterval, 2*time.Second)
	setDur(&c.JWKS.FetchTimeout, 5*time.Second)
	setDur(&c.Introspection.CacheTTL, 30*time.Second)
	setDur(&c.Introspection.Timeout, 2*time.Second)
	if c.Cache.MaxBytes == 0 {
		c.Cache.MaxBytes = 32 << 20
	}
	setDur(&c.Cache.MaxTTL, 5*time.Minute)
	setDur(&c.Cache.NegativeTTL, 5*time.Second)
	if c.Headers.Identity == nil {
		c.Headers.Identity = DefaultIdentityHeaders()
	}
	c.Binding = c.Binding.defaults()
	if c.Revocations.MaxEntries == 0 {
		c.Revocations.MaxEntries = DefaultRevocationsMaxEntries
	}
	setDur(&c.Revocations.MaxBackoff, 10*time.Second)

	c.InternalTokens = c.InternalTokens.defaults(c.Issuers)

	c.CEL = c.CEL.defaults()
	return c
}

// acceptsTypJWT reports whether is's JWT access tokens may have typ
// "JWT" or no typ: its own accept_typ_jwt, or jwt.require_at_jwt_typ
// set to false.
func (c Config) acceptsTypJWT(is IssuerConfig) bool {
	return is.AcceptTypJWT || (c.JWT.RequireATJWTType != nil && !*c.JWT.RequireATJWTType)
}

// headerNameRE is an RFC 9110 token in lower case (Envoy and HTTP/2 use
// lower-case names).
var headerNameRE = regexp.MustCompile(`^[a-z0-9!#$%&'*+.^_` + "`" + `|~-]+$`)

// claimPathRE is a dot-separated claim path.
var claimPathRE = regexp.MustCompile(`^[^.\s]+(\.[^.\s]+)*$`)

// reservedHeaders may not carry identity: the gateway or HTTP itself
// owns them.
var reservedHeaders = map[string]bool{
	"host": true, "authorization": true, "cookie": true, "content-length": true, "content-type": true,
	"transfer-encoding": true, "connection": true, "te": true, "upgrade": true, "keep-alive": true,
	"proxy-authorization": true, "proxy-connection": true, "trailer": true,
}

// Validate checks c (after Defaults) and returns every problem, each
// naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.Issuers) == 0 {
		bad("issuers", "at least one issuer is required (--issuer)")
	}
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		k := fmt.Sprintf("issuers[%d]", i)
		if err := checkURL(is.Issuer, true); err != nil {
			bad(k+".issuer", "%v", err)
		} else if seen[is.Issuer] {
			bad(k+".issuer", "duplicate issuer %q", is.Issuer)
		}
		seen[is.Issuer] = true
		for _, u := range []struct{ key, v string }{{"discovery_url", is.DiscoveryURL}, {"jwks_url", is.JWKSURL}, {"introspection_url", is.IntrospectionURL}} {
			if u.v != "" {
				if err := checkURL(u.v, false); err != nil {
					bad(k+"."+u.key, "%v", err)
				}
			}
		}
		if (is.IntrospectionClientID == "") != (is.IntrospectionClientSecret == "") {
			bad(k+".introspection_client_secret", "introspection_client_id and introspection_client_secret must be set together")
		}
		if is.AcceptTypJWT && c.JWT.RequireATJWTType != nil && *c.JWT.RequireATJWTType {
			bad(k+".accept_typ_jwt", "contradicts jwt.require_at_jwt_typ: true (remove one of them)")
		}
	}
	if c.Token.MaxBytes < 64 || c.Token.MaxBytes > 1<<20 {
		bad("token.max_bytes", "must be between 64 and 1048576, got %d", c.Token.MaxBytes)
	}
	if c.Token.Cookie != "" && !cookieNameOK(c.Token.Cookie) {
		bad("token.cookie", "%q is not a valid cookie name", c.Token.Cookie)
	}
	if c.JWT.ClockSkew < 0 || c.JWT.ClockSkew > 10*time.Minute {
		bad("jwt.clock_skew", "must be between 0s and 10m, got %s", c.JWT.ClockSkew)
	}
	for i, a := range c.JWT.Algorithms {
		if !slices.Contains(defaultAlgorithms, a) {
			bad(fmt.Sprintf("jwt.algorithms[%d]", i), "%q is not an accepted asymmetric signature algorithm (one of %s)", a, strings.Join(defaultAlgorithms, " "))
		}
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	positive("jwks.refresh_interval", c.JWKS.RefreshInterval)
	positive("jwks.min_refresh_interval", c.JWKS.MinRefreshInterval)
	positive("jwks.max_refresh_interval", c.JWKS.MaxRefreshInterval)
	positive("jwks.unknown_kid_interval", c.JWKS.UnknownKIDInterval)
	positive("jwks.fetch_timeout", c.JWKS.FetchTimeout)
	if c.JWKS.MinRefreshInterval > c.JWKS.MaxRefreshInterval {
		bad("jwks.min_refresh_interval", "must not exceed jwks.max_refresh_interval (%s > %s)", c.JWKS.MinRefreshInterval, c.JWKS.MaxRefreshInterval)
	}
	positive("introspection.cache_ttl", c.Introspection.CacheTTL)
	positive("introspection.timeout", c.Introspection.Timeout)
	if c.Cache.MaxBytes < 1<<20 {
		bad("cache.max_bytes", "must be at least 1048576 (1 MiB), got %d", c.Cache.MaxBytes)
	}
	positive("cache.max_ttl", c.Cache.MaxTTL)
	positive("cache.negative_ttl", c.Cache.NegativeTTL)

	names := make([]string, 0, len(c.Headers.Identity))
	for name := range c.Headers.Identity {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := c.Headers.Identity[name]
		k := "headers.identity." + name
		if err := checkHeaderName(name); err != nil {
			bad(k, "%v", err)
		}
		if !claimPathRE.MatchString(path) {
			bad(k, "%q is not a claim path (names separated by dots)", path)
		}
	}
	if c.Headers.ClaimsHeader != "" {
		if err := checkHeaderName(c.Headers.ClaimsHeader); err != nil {
			bad("headers.claims_header", "%v", err)
		} else if _, dup := c.Headers.Identity[c.Headers.ClaimsHeader]; dup {
			bad("headers.claims_header", "%q is also an identity header", c.Headers.ClaimsHeader)
		}
	}
	for i, cl := range c.IntrospectionEndpoint.Clients {
		k := fmt.Sprintf("introspection_endpoint.clients[%d]", i)
		if cl.ClientID == "" || strings.ContainsAny(cl.ClientID, ":") {
			bad(k+".client_id", "must be set and contain no ':'")
		}
		if len(cl.ClientSecret) < 16 {
			bad(k+".client_secret", "must be at least 16 characters")
		}
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		bad("realm", "must not contain quotes, backslashes or line breaks")
	}
	for i, r := range c.Rules {
		errs = append(errs, r.validate(fmt.Sprintf("rules[%d]", i), seen)...)
	}
	errs = append(errs, c.Binding.validate()...)
	if u := c.Revocations.EventsURL; u != "" && u != RevocationsEventsOff {
		if err := checkURL(u, false); err != nil {
			bad("revocations.events_url", "%v (or %q)", err, RevocationsEventsOff)
		}
	}
	if n := c.Revocations.MaxEntries; n < 1 || n > 100_000_000 {
		bad("revocations.max_entries", "must be between 1 and 100000000, got %d", n)
	}
	if d := c.Revocations.MaxBackoff; d < 100*time.Millisecond || d > 10*time.Minute {
		bad("revocations.max_backoff", "must be between 100ms and 10m, got %s", d)
	}

	errs = append(errs, c.InternalTokens.validate(c.Issuers, c.usesInternalTokens())...)

	_, celErrs := compileCEL(c)
	errs = append(errs, celErrs...)
	return errors.Join(errs...)
}

func (r Rule) validate(k string, issuers map[string]bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", k, key, fmt.Sprintf(format, args...)))
	}
	if r.Match.Path != "" && r.Match.PathPrefix != "" {
		bad("match.path", "path and path_prefix are mutually exclusive")
	}
	if r.Match.Path != "" && !strings.HasPrefix(r.Match.Path, "/") {
		bad("match.path", "must start with /")
	}
	if r.Match.PathPrefix != "" && !strings.HasPrefix(r.Match.PathPrefix, "/") {
		bad("match.path_prefix", "must start with /")
	}
	for i, h := range r.Match.Hosts {
		if h == "" || strings.ContainsAny(h, "/ :") || (strings.Contains(h, "*") && !(strings.HasPrefix(h, "*.") && strings.Count(h, "*") == 1)) {
			bad(fmt.Sprintf("match.hosts[%d]", i), "%q is not a host name or *.domain wildcard", h)
		}
	}
	for i, m := range r.Match.Methods {
		if m == "" || !headerNameRE.MatchString(strings.ToLower(m)) {
			bad(fmt.Sprintf("match.methods[%d]", i), "%q is not an HTTP method", m)
		}
	}
	if r.AllowAnonymous && (len(r.Audiences) > 0 || len(r.Scopes) > 0 || len(r.Claims) > 0) {
		bad("allow_anonymous", "cannot be combined with audiences, scopes or claims (they could never be enforced)")
	}
	for i, s := range r.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			bad(fmt.Sprintf("scopes[%d]", i), "%q is not a scope token (RFC 6749 §3.3)", s)
		}
	}
	for i, a := range r.Audiences {
		if a == "" {
			bad(fmt.Sprintf("audiences[%d]", i), "must not be empty")
		}
	}
	for i, is := range r.Issuers {
		if !issuers[is] {
			bad(fmt.Sprintf("issuers[%d]", i), "%q is not one of the configured issuers", is)
		}
	}
	for i, t := range r.TokenTypes {
		if t != TokenTypeJWT && t != TokenTypeOpaque {
			bad(fmt.Sprintf("token_types[%d]", i), "%q must be %q or %q", t, TokenTypeJWT, TokenTypeOpaque)
		}
	}
	paths := make([]string, 0, len(r.Claims))
	for p := range r.Claims {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !claimPathRE.MatchString(p) {
			bad("claims."+p, "%q is not a claim path", p)
		}
		if len(r.Claims[p]) == 0 {
			bad("claims."+p, "needs at least one accepted value")
		}
	}
	if r.ExternalBaseURL != "" {
		if err := checkExternalBaseURL(r.ExternalBaseURL); err != nil {
			bad("external_base_url", "%v", err)
		}
	}
	if r.InternalToken != nil {
		errs = append(errs, r.InternalToken.validate(k, r.AllowAnonymous)...)
	}
	return errs
}

func checkHeaderName(name string) error {
	switch {
	case !headerNameRE.MatchString(name):
		return fmt.Errorf("%q is not a lower-case HTTP header name", name)
	case reservedHeaders[name]:
		return fmt.Errorf("%q is reserved and cannot carry identity", name)
	}
	return nil
}

func checkURL(s string, issuer bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	// OpenID Connect Discovery §4.3 / RFC 8414 §2: the issuer has no query
	// or fragment.
	if issuer && (u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#")) {
		return fmt.Errorf("%q: an issuer has no query or fragment", s)
	}
	return nil
}

func cookieNameOK(n string) bool {
	for i := 0; i < len(n); i++ {
		if !isTokenChar(n[i]) {
			return false
		}
	}
	return n != ""
}

// isTokenChar reports whether b is an RFC 9110 tchar.
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
