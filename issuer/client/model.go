// Package client is the OAuth 2.0 client registry: the client model in
// Ory Hydra v2's JSON shape, validation with RFC 7591 errors, secret hashing,
// a cached manager over storage.ClientStore, the admin and dynamic
// registration APIs, and client authentication at the token endpoint.
package client

import (
	"encoding/json"
	"time"
)

// Client is an OAuth 2.0 client with Hydra v2's metadata names. The JSON
// form is what the admin API reads and writes; secrets never appear in it
// except client_secret on the create and rotate responses.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"` // plaintext, only on create/rotate responses and requests
	Name   string `json:"client_name"`
	Owner  string `json:"owner"`

	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	// TokenEndpointAuthSigningAlg restricts private_key_jwt assertions.
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`

	PostLogoutRedirectURIs            []string `json:"post_logout_redirect_uris"`
	FrontchannelLogoutURI             string   `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required"`
	BackchannelLogoutURI              string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool     `json:"backchannel_logout_session_required"`
	AllowedCORSOrigins                []string `json:"allowed_cors_origins"`

	ClientURI string   `json:"client_uri,omitempty"`
	LogoURI   string   `json:"logo_uri,omitempty"`
	PolicyURI string   `json:"policy_uri,omitempty"`
	TOSURI    string   `json:"tos_uri,omitempty"`
	Contacts  []string `json:"contacts"`

	SubjectType         string `json:"subject_type"`
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`

	UserinfoSignedResponseAlg string   `json:"userinfo_signed_response_alg,omitempty"`
	RequestObjectSigningAlg   string   `json:"request_object_signing_alg,omitempty"`
	RequestURIs               []string `json:"request_uris,omitempty"`
	// RequirePushedAuthorizationRequests refuses the client's authorization
	// requests that do not come through the PAR endpoint (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests,omitempty"`

	SkipConsent         bool            `json:"skip_consent"`
	SkipLogoutConsent   bool            `json:"skip_logout_consent"`
	AccessTokenStrategy string          `json:"access_token_strategy,omitempty"` // "", "opaque" or "jwt"
	Metadata            json.RawMessage `json:"metadata,omitempty"`

	// DPoPBoundAccessTokens is RFC 9449 §5.2's dpop_bound_access_tokens:
	// the client's token requests must carry a DPoP proof.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// FAPIProfile "2.0" puts the client under the FAPI 2.0 Security
	// Profile (fapi.go; a Gatehouse addition).
	FAPIProfile string `json:"fapi_profile,omitempty"`

	// TokenExchangeImpersonation lets the client exchange tokens without
	// an actor_token (RFC 8693 impersonation); default false: it may
	// only exchange with one (delegation).
	TokenExchangeImpersonation bool `json:"token_exchange_impersonation,omitempty"`

	// The certificate of tls_client_auth (RFC 8705 §2.1.2): exactly one
	// of them is set for that method.
	TLSClientAuthSubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  string `json:"tls_client_auth_san_email,omitempty"`
	// TLSClientCertificateBoundAccessTokens is RFC 8705 §3.4's
	// tls_client_certificate_bound_access_tokens: the client's token
	// requests must present a client certificate, which its access
	// tokens are bound to.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`

	// DefaultAccessTokenAudience is the aud of the client's access tokens
	// granted no audience (RFC 9068 §3 requires one); empty: the global
	// oauth2.default_access_token_audience. Each value is in Audience or in
	// that global default.
	DefaultAccessTokenAudience []string `json:"default_access_token_audience,omitempty"`

	Lifespans

	// RegistrationAccessToken and RegistrationClientURI are returned once by
	// dynamic client registration (RFC 7591 §3.2.1, RFC 7592).
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`

	// ClientSecretExpiresAt is 0: secrets do not expire (RFC 7591 §3.2.1).
	ClientSecretExpiresAt int64     `json:"client_secret_expires_at"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`

	// Stored, never serialised.
	SecretHash                  string   `json:"-"`
	RotatedSecretHashes         []string `json:"-"`
	RegistrationAccessTokenHash string   `json:"-"`
}

// Lifespans are Hydra's per-client, per-grant token lifespans. Nil means
// the global TTL applies.
type Lifespans struct {
	AuthorizationCodeGrantAccessTokenLifespan  *Duration `json:"authorization_code_grant_access_token_lifespan"`
	AuthorizationCodeGrantIDTokenLifespan      *Duration `json:"authorization_code_grant_id_token_lifespan"`
	AuthorizationCodeGrantRefreshTokenLifespan *Duration `json:"authorization_code_grant_refresh_token_lifespan"`
	ClientCredentialsGrantAccessTokenLifespan  *Duration `json:"client_credentials_grant_access_token_lifespan"`
	ImplicitGrantAccessTokenLifespan           *Duration `json:"implicit_grant_access_token_lifespan"`
	ImplicitGrantIDTokenLifespan               *Duration `json:"implicit_grant_id_token_lifespan"`
	JWTBearerGrantAccessTokenLifespan          *Duration `json:"jwt_bearer_grant_access_token_lifespan"`
	RefreshTokenGrantIDTokenLifespan           *Duration `json:"refresh_token_grant_id_token_lifespan"`
	RefreshTokenGrantAccessTokenLifespan       *Duration `json:"refresh_token_grant_access_token_lifespan"`
	RefreshTokenGrantRefreshTokenLifespan      *Duration `json:"refresh_token_grant_refresh_token_lifespan"`
	// The RFC 8628 device authorization grant's (Hydra v25 names).
	DeviceAuthorizationGrantAccessTokenLifespan  *Duration `json:"device_authorization_grant_access_token_lifespan"`
	DeviceAuthorizationGrantIDTokenLifespan      *Duration `json:"device_authorization_grant_id_token_lifespan"`
	DeviceAuthorizationGrantRefreshTokenLifespan *Duration `json:"device_authorization_grant_refresh_token_lifespan"`
}

// Duration is a time.Duration that reads and writes Go duration strings
// ("1h0m0s"), as Hydra's lifespans do.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Get returns the lifespan or def when unset.
func (d *Duration) Get(def time.Duration) time.Duration {
	if d == nil || *d <= 0 {
		return def
	}
	return time.Duration(*d)
}

// Auth methods (RFC 7591 §2, OpenID Connect Core §9).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none"
	// RFC 8705 §2.1.1 and §2.2.1.
	AuthTLSClient           = "tls_client_auth"
	AuthSelfSignedTLSClient = "self_signed_tls_client_auth"
)

// Grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantImplicit          = "implicit"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// GrantDeviceCode is RFC 8628 §3.4's device access token request.
	GrantDeviceCode    = "urn:ietf:params:oauth:grant-type:device_code"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// IsPublic reports whether the client cannot keep a secret.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthNone }

// HasGrantType reports whether the client may use grant type gt.
func (c *Client) HasGrantType(gt string) bool {
	for _, g := range c.GrantTypes {
		if g == gt {
			return true
		}
	}
	return false
}

// Scopes returns the client's allowed scopes.
func (c *Client) Scopes() []string { return splitScope(c.Scope) }

func splitScope(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out
}
