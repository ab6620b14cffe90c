package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
)

// Limits on client metadata.
const (
	MaxIDLength         = 255
	MaxNameLength       = 255
	MaxOwnerLength      = 255
	MinSecretLength     = 6 // as Hydra: "at least 6 characters"
	MaxSecretLength     = 512
	maxURILength        = 2048
	maxListLength       = 100 // redirect_uris, audience, contacts, ...
	maxScopeLength      = 4096
	maxJWKSKeys         = 50
	maxMetadataBytes    = 64 << 10
	DefaultScope        = "offline_access offline openid"
	DefaultSubjectType  = "public"
	AccessTokenOpaque   = "opaque"
	AccessTokenJWT      = "jwt"
	SubjectTypePublic   = "public"
	SubjectTypePairwise = "pairwise"
)

var (
	allowedGrantTypes  = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantImplicit, GrantJWTBearer, GrantDeviceCode, GrantTokenExchange}
	baseAuthMethods    = []string{AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, AuthNone}
	mtlsAuthMethods    = []string{AuthTLSClient, AuthSelfSignedTLSClient}
	allowedAuthMethods = slices.Concat(baseAuthMethods, mtlsAuthMethods)
	// Asymmetric JWS algorithms a client may declare for its own signatures.
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
	// Schemes that could run code or read local files in a browser or app.
	forbiddenSchemes = []string{"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"}
)

// ValidationOptions tune the metadata rules.
type ValidationOptions struct {
	// SupportedSubjectTypes are the accepted subject_type values
	// (oidc.subject_identifiers.supported_types); default ["public"].
	SupportedSubjectTypes []string
	// AllowInsecureRedirectURIs accepts plain http redirect URIs on any
	// host; by default http is only accepted for loopback hosts
	// (RFC 8252 §7.3, §8.3).
	AllowInsecureRedirectURIs bool
	// HTTP, when set, is used to fetch sector_identifier_uri and check that
	// it lists every redirect URI (OpenID Connect Registration §5). When
	// nil, sector_identifier_uri is only checked to be an https URL.
	HTTP *safehttp.Client
	// FAPI applies the FAPI 2.0 rules (fapi.go) to every client, not only
	// to those with fapi_profile "2.0" (oauth2.fapi.profile).
	FAPI bool
	// DefaultAccessTokenAudience is oauth2.default_access_token_audience:
	// a client's default_access_token_audience may name these values
	// besides its own audience.
	DefaultAccessTokenAudience []string
}

// ApplyDefaults fills Hydra's default values: grant_types
// ["authorization_code"], response_types ["code"], scope "offline_access
// offline openid", token_endpoint_auth_method "client_secret_basic",
// subject_type "public", and empty arrays instead of null.
func (c *Client) ApplyDefaults() {
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantAuthorizationCode}
	}
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = []string{"code"}
	}
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = AuthClientSecretBasic
	}
	if c.SubjectType == "" {
		c.SubjectType = DefaultSubjectType
	}
	c.normalize()
}

// normalize turns null arrays into empty ones and JSON null documents into
// absent ones, so that the wire form is stable.
func (c *Client) normalize() {
	for _, p := range []*[]string{&c.RedirectURIs, &c.GrantTypes, &c.ResponseTypes, &c.Audience,
		&c.PostLogoutRedirectURIs, &c.AllowedCORSOrigins, &c.Contacts} {
		if *p == nil {
			*p = []string{}
		}
	}
	if isJSONNull(c.JWKS) {
		c.JWKS = nil
	}
	if isJSONNull(c.Metadata) {
		c.Metadata = nil
	}
}

func isJSONNull(b json.RawMessage) bool {
	t := bytes.TrimSpace(b)
	return len(t) == 0 || string(t) == "null"
}

func metaErr(format string, args ...any) *apierr.Error {
	return apierr.InvalidClientMetadata(format, args...)
}

func redirectErr(format string, args ...any) *apierr.Error {
	return apierr.InvalidRedirectURI(format, args...)
}

// Validate checks c (after ApplyDefaults) and returns the first problem as
// an RFC 7591 §3.2.2 error: invalid_redirect_uri for redirect URIs,
// invalid_client_metadata for everything else. ctx is used only to fetch
// sector_identifier_uri when o.HTTP is set.
func (o *ValidationOptions) Validate(ctx context.Context, c *Client) error {
	if err := checkText("client_id", c.ID, MaxIDLength); err != nil {
		return err
	}
	if c.ID == "" {
		return metaErr("client_id must not be empty")
	}
	if err := checkText("client_name", c.Name, MaxNameLength); err != nil {
		return err
	}
	if err := checkText("owner", c.Owner, MaxOwnerLength); err != nil {
		return err
	}

	// Token endpoint authentication.
	if !slices.Contains(allowedAuthMethods, c.TokenEndpointAuthMethod) {
		return metaErr("token_endpoint_auth_method %q is not supported (one of %s)", c.TokenEndpointAuthMethod, strings.Join(allowedAuthMethods, ", "))
	}
	if c.Secret != "" {
		if c.TokenEndpointAuthMethod == AuthNone {
			return metaErr("client_secret must not be set when token_endpoint_auth_method is none (public client)")
		}
		if len(c.Secret) < MinSecretLength {
			return metaErr("client_secret must be at least %d characters long", MinSecretLength)
		}
		if len(c.Secret) > MaxSecretLength {
			return metaErr("client_secret must be at most %d characters long", MaxSecretLength)
		}
	}
	if c.TokenEndpointAuthSigningAlg != "" && !slices.Contains(asymmetricAlgs, c.TokenEndpointAuthSigningAlg) {
		return metaErr("token_endpoint_auth_signing_alg %q is not supported (an asymmetric algorithm such as RS256 or ES256)", c.TokenEndpointAuthSigningAlg)
	}
	if len(c.JWKS) > 0 && c.JWKSURI != "" {
		// RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present".
		return metaErr("jwks and jwks_uri must not both be set")
	}
	if c.TokenEndpointAuthMethod == AuthPrivateKeyJWT && len(c.JWKS) == 0 && c.JWKSURI == "" {
		return metaErr("token_endpoint_auth_method private_key_jwt requires jwks or jwks_uri")
	}
	if err := validateMTLS(c); err != nil {
		return err
	}
	if len(c.JWKS) > 0 {
		if _, err := ParsePublicJWKS(c.JWKS); err != nil {
			return metaErr("jwks: %s", err.Error())
		}
	}
	if c.JWKSURI != "" {
		if err := checkURL(c.JWKSURI, true, o.AllowInsecureRedirectURIs); err != nil {
			return metaErr("jwks_uri %s", err.Error())
		}
	}

	// Grant and response types.
	for _, g := range c.GrantTypes {
		if !slices.Contains(allowedGrantTypes, g) {
			return metaErr("grant_types: %q is not supported (one of %s)", g, strings.Join(allowedGrantTypes, ", "))
		}
	}
	if dup := firstDuplicate(c.GrantTypes); dup != "" {
		return metaErr("grant_types: %q is listed twice", dup)
	}
	if c.HasGrantType(GrantClientCredentials) && c.TokenEndpointAuthMethod == AuthNone {
		// RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential clients."
		return metaErr("grant type client_credentials requires a confidential client: token_endpoint_auth_method must not be none")
	}
	for _, rt := range c.ResponseTypes {
		if err := checkResponseType(rt); err != nil {
			return err
		}
	}
	if dup := firstDuplicate(c.ResponseTypes); dup != "" {
		return metaErr("response_types: %q is listed twice", dup)
	}
	// RFC 9449 §5.2: such a client's access tokens are all DPoP-bound,
	// which those returned by the authorization endpoint cannot be.
	if c.DPoPBoundAccessTokens && (c.HasGrantType(GrantImplicit) || slices.ContainsFunc(c.ResponseTypes, func(rt string) bool {
		return slices.Contains(strings.Fields(rt), "token")
	})) {
		return metaErr("dpop_bound_access_tokens cannot be combined with the implicit grant or a response type returning an access token")
	}
	if err := o.checkFAPIProfile(c); err != nil {
		return err
	}
	if c.AccessTokenStrategy != "" && c.AccessTokenStrategy != AccessTokenOpaque && c.AccessTokenStrategy != AccessTokenJWT {
		return metaErr("access_token_strategy must be opaque or jwt, got %q", c.AccessTokenStrategy)
	}

	// Scope and audience.
	if len(c.Scope) > maxScopeLength {
		return metaErr("scope must be at most %d characters long", maxScopeLength)
	}
	if err := checkScope(c.Scope); err != nil {
		return err
	}
	if err := checkList("audience", c.Audience, func(s string) error {
		if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
			return fmt.Errorf("must not be empty or contain spaces")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := checkList("default_access_token_audience", c.DefaultAccessTokenAudience, func(s string) error {
		if !slices.Contains(c.Audience, s) && !slices.Contains(o.DefaultAccessTokenAudience, s) {
			return fmt.Errorf("must be one of the client's audience or of the default access token audience")
		}
		return nil
	}); err != nil {
		return err
	}

	// Redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7).
	if len(c.RedirectURIs) > maxListLength {
		return redirectErr("redirect_uris must have at most %d entries", maxListLength)
	}
	for _, u := range c.RedirectURIs {
		if err := o.checkRedirectURI(u); err != nil {
			return redirectErr("redirect_uris: %q %s", truncate(u), err.Error())
		}
	}
	if err := checkList("post_logout_redirect_uris", c.PostLogoutRedirectURIs, o.checkRedirectURI); err != nil {
		return err
	}
	if err := checkList("allowed_cors_origins", c.AllowedCORSOrigins, checkOrigin); err != nil {
		return err
	}
	if err := checkList("request_uris", c.RequestURIs, func(s string) error { return checkURL(s, false, true) }); err != nil {
		return err
	}
	if err := checkList("contacts", c.Contacts, func(s string) error { return checkText("contact", s, 320) }); err != nil {
		return err
	}

	// Logout (OpenID Connect Front-Channel Logout §2, Back-Channel Logout §2.2).
	for _, f := range []struct{ name, v string }{
		{"frontchannel_logout_uri", c.FrontchannelLogoutURI}, {"backchannel_logout_uri", c.BackchannelLogoutURI},
		{"client_uri", c.ClientURI}, {"logo_uri", c.LogoURI}, {"policy_uri", c.PolicyURI}, {"tos_uri", c.TOSURI},
	} {
		if f.v == "" {
			continue
		}
		if err := checkURL(f.v, false, true); err != nil {
			return metaErr("%s %s", f.name, err.Error())
		}
	}

	// Subject type (OpenID Connect Core §8).
	supported := o.SupportedSubjectTypes
	if len(supported) == 0 {
		supported = []string{SubjectTypePublic}
	}
	if !slices.Contains(supported, c.SubjectType) {
		return metaErr("subject_type %q is not supported (one of %s)", c.SubjectType, strings.Join(supported, ", "))
	}
	if c.SectorIdentifierURI != "" {
		if err := checkURL(c.SectorIdentifierURI, true, false); err != nil {
			return metaErr("sector_identifier_uri %s", err.Error())
		}
	}
	if c.SubjectType == SubjectTypePairwise && c.SectorIdentifierURI == "" && distinctHosts(c.RedirectURIs) > 1 {
		// OpenID Connect Core §8.1: with redirect URIs on several hosts the
		// sector identifier must be given explicitly.
		return metaErr("subject_type pairwise with redirect_uris on several hosts requires sector_identifier_uri")
	}
	if c.SectorIdentifierURI != "" && o.HTTP != nil {
		if err := o.checkSectorIdentifier(ctx, c); err != nil {
			return err
		}
	}

	// Signing algorithms the client asks of us or uses for request objects.
	for _, f := range []struct{ name, v string }{
		{"userinfo_signed_response_alg", c.UserinfoSignedResponseAlg},
		{"request_object_signing_alg", c.RequestObjectSigningAlg},
	} {
		if f.v != "" && f.v != "none" && !slices.Contains(asymmetricAlgs, f.v) {
			return metaErr("%s %q is not supported (none or an asymmetric algorithm)", f.name, f.v)
		}
	}

	if len(c.Metadata) > 0 {
		if len(c.Metadata) > maxMetadataBytes {
			return metaErr("metadata must be at most %d bytes", maxMetadataBytes)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c.Metadata, &obj); err != nil {
			return metaErr("metadata must be a JSON object")
		}
	}
	if err := c.Lifespans.check(); err != nil {
		return err
	}
	return nil
}

func (l *Lifespans) check() error {
	for _, f := range []struct {
		name string
		d    *Duration
	}{
		{"authorization_code_grant_access_token_lifespan", l.AuthorizationCodeGrantAccessTokenLifespan},
		{"authorization_code_grant_id_token_lifespan", l.AuthorizationCodeGrantIDTokenLifespan},
		{"authorization_code_grant_refresh_token_lifespan", l.AuthorizationCodeGrantRefreshTokenLifespan},
		{"client_credentials_grant_access_token_lifespan", l.ClientCredentialsGrantAccessTokenLifespan},
		{"implicit_grant_access_token_lifespan", l.ImplicitGrantAccessTokenLifespan},
		{"implicit_grant_id_token_lifespan", l.ImplicitGrantIDTokenLifespan},
		{"jwt_bearer_grant_access_token_lifespan", l.JWTBearerGrantAccessTokenLifespan},
		{"refresh_token_grant_id_token_lifespan", l.RefreshTokenGrantIDTokenLifespan},
		{"refresh_token_grant_access_token_lifespan", l.RefreshTokenGrantAccessTokenLifespan},
		{"refresh_token_grant_refresh_token_lifespan", l.RefreshTokenGrantRefreshTokenLifespan},
		{"device_authorization_grant_access_token_lifespan", l.DeviceAuthorizationGrantAccessTokenLifespan},
		{"device_authorization_grant_id_token_lifespan", l.DeviceAuthorizationGrantIDTokenLifespan},
		{"device_authorization_grant_refresh_token_lifespan", l.DeviceAuthorizationGrantRefreshTokenLifespan},
	} {
		if f.d != nil && *f.d < 0 {
			return metaErr("%s must not be negative", f.name)
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return metaErr("%s must be at most %d bytes long", field, max)
	}
	if !utf8.ValidString(s) {
		return metaErr("%s must be valid UTF-8", field)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return metaErr("%s must not contain control characters", field)
	}
	return nil
}

func checkList(field string, vs []string, check func(string) error) error {
	if len(vs) > maxListLength {
		return metaErr("%s must have at most %d entries", field, maxListLength)
	}
	for _, v := range vs {
		if err := check(v); err != nil {
			var ae *apierr.Error
			if asAPIErr(err, &ae) {
				return ae
			}
			return metaErr("%s: %q %s", field, truncate(v), err.Error())
		}
	}
	return nil
}

func asAPIErr(err error, target **apierr.Error) bool {
	e, ok := err.(*apierr.Error)
	if ok {
		*target = e
	}
	return ok
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func firstDuplicate(vs []string) string {
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

// checkResponseType accepts code, token, id_token and their combinations
// (OAuth 2.0 Multiple Response Type Encoding Practices §3, §5).
func checkResponseType(rt string) error {
	parts := strings.Split(rt, " ")
	seen := map[string]bool{}
	for _, p := range parts {
		switch p {
		case "code", "token", "id_token":
		default:
			return metaErr("response_types: %q is not supported (code, token, id_token or a space-separated combination)", truncate(rt))
		}
		if seen[p] {
			return metaErr("response_types: %q repeats %q", truncate(rt), p)
		}
		seen[p] = true
	}
	return nil
}

// checkScope enforces RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ),
// separated by single spaces.
func checkScope(scope string) error {
	if scope == "" {
		return nil
	}
	for _, tok := range strings.Split(scope, " ") {
		if tok == "" {
			return metaErr("scope must be scope tokens separated by single spaces")
		}
		for i := 0; i < len(tok); i++ {
			b := tok[i]
			if b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
				return metaErr("scope token %q contains a character not allowed by RFC 6749 §3.3", truncate(tok))
			}
		}
	}
	return nil
}

// checkRedirectURI implements RFC 6749 §3.1.2 (absolute, no fragment) and
// RFC 8252 §7: private-use URI schemes for native apps (§7.1), https
// (§7.2), and plain http only on loopback hosts (§7.3) unless insecure
// redirect URIs are allowed.
func (o *ValidationOptions) checkRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxURILength {
		return fmt.Errorf("must be a non-empty URI of at most %d characters", maxURILength)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("must not contain spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URI")
	}
	if !u.IsAbs() {
		return fmt.Errorf("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	scheme := strings.ToLower(u.Scheme)
	if slices.Contains(forbiddenSchemes, scheme) {
		return fmt.Errorf("uses the forbidden scheme %q", scheme)
	}
	switch scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("must have a host")
		}
	case "http":
		if u.Host == "" {
			return fmt.Errorf("must have a host")
		}
		if !o.AllowInsecureRedirectURIs && !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("must use https; plain http is only allowed for loopback hosts (RFC 8252 §7.3)")
		}
	default:
		// Private-use scheme of a native app (RFC 8252 §7.1).
	}
	return nil
}

// isLoopbackHost accepts 127.0.0.0/8, ::1 and localhost (RFC 8252 §7.3, §8.3).
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkURL requires an absolute http(s) URL with a host and no fragment;
// with httpsOnly, plain http is accepted only for loopback hosts when
// allowLoopbackHTTP is set.
func checkURL(raw string, httpsOnly, allowLoopbackHTTP bool) error {
	if len(raw) > maxURILength {
		return fmt.Errorf("must be at most %d characters", maxURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if httpsOnly && !(allowLoopbackHTTP && isLoopbackHost(u.Hostname())) {
			return fmt.Errorf("must use https")
		}
	default:
		return fmt.Errorf("must use http or https")
	}
	return nil
}

// checkOrigin requires a Web origin: scheme://host[:port] with no path,
// query, fragment or user info.
func checkOrigin(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an origin such as https://app.example.com")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Contains(raw, "#") {
		return fmt.Errorf("must be an origin (scheme://host[:port]) without path, query or fragment")
	}
	return nil
}

func distinctHosts(uris []string) int {
	hosts := map[string]bool{}
	for _, r := range uris {
		if u, err := url.Parse(r); err == nil {
			hosts[u.Host] = true
		}
	}
	return len(hosts)
}

// checkSectorIdentifier fetches the sector identifier document, a JSON
// array of redirect URIs, and requires every registered redirect URI in it
// (OpenID Connect Registration §5).
func (o *ValidationOptions) checkSectorIdentifier(ctx context.Context, c *Client) error {
	body, err := o.HTTP.GetBody(ctx, c.SectorIdentifierURI, "application/json")
	if err != nil {
		return metaErr("sector_identifier_uri could not be fetched").WithCause(err)
	}
	var listed []string
	if err := json.Unmarshal(body, &listed); err != nil {
		return metaErr("sector_identifier_uri must return a JSON array of redirect URIs")
	}
	for _, r := range c.RedirectURIs {
		if !slices.Contains(listed, r) {
			return metaErr("redirect URI %q is not listed in the sector_identifier_uri document", truncate(r))
		}
	}
	return nil
}

// ParsePublicJWKS parses a JWK Set (RFC 7517 §5) that may only hold public
// signature keys: RSA, EC or OKP, never private or symmetric keys.
func ParsePublicJWKS(raw []byte) (jwk.Set, error) {
	var probe struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil || probe.Keys == nil {
		return nil, fmt.Errorf("must be a JWK Set: a JSON object with a \"keys\" array")
	}
	if len(probe.Keys) == 0 {
		return nil, fmt.Errorf("the key set is empty")
	}
	if len(probe.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("at most %d keys are accepted", maxJWKSKeys)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the key set could not be parsed")
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if jwk.IsUnsupportedKey(k) {
			return nil, fmt.Errorf("key #%d has an unsupported key type", i+1)
		}
		switch k.KeyType() {
		case jwa.RSA(), jwa.EC(), jwa.OKP():
		default:
			return nil, fmt.Errorf("key #%d must be an RSA, EC or OKP public key (symmetric keys are not accepted)", i+1)
		}
		if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
			return nil, fmt.Errorf("key #%d is a private key; register only public keys", i+1)
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			return nil, fmt.Errorf("key #%d has use %q, only sig keys are accepted", i+1, use)
		}
		if alg, ok := k.Algorithm(); ok {
			if sa, ok := jwa.LookupSignatureAlgorithm(alg.String()); !ok || sa.IsSymmetric() || sa == jwa.NoSignature() {
				return nil, fmt.Errorf("key #%d has alg %q, an asymmetric signature algorithm is required", i+1, alg.String())
			}
		}
	}
	return set, nil
}
