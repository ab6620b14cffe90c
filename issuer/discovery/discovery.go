// Package discovery serves the issuer's metadata: OpenID Connect Discovery
// 1.0 at /.well-known/openid-configuration and RFC 8414 at
// /.well-known/oauth-authorization-server, the same document at both.
// The document advertises exactly what the caller puts in Options, so that
// it lists only what is implemented and mounted; FromConfig fills what
// follows from the configuration and the token endpoint.
package discovery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// DefaultMaxAge is how long clients and gateways may cache the document.
const DefaultMaxAge = 5 * time.Minute

// Paths of the metadata documents.
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	OAuthServerPath         = "/.well-known/oauth-authorization-server"
)

// Options is the advertised metadata (OpenID Connect Discovery 1.0 §3,
// RFC 8414 §2, RFC 7009, RFC 7662, RFC 7636, OpenID Connect Front- and
// Back-Channel Logout, RP-Initiated Logout). Empty strings and lists are
// left out of the document, except the members both specifications make
// REQUIRED, which are always written (an empty list meaning "none yet").
// Booleans whose specified default differs from false are always written.
type Options struct {
	Issuer                             string `json:"issuer"`
	AuthorizationEndpoint              string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                      string `json:"token_endpoint,omitempty"`
	JWKSURI                            string `json:"jwks_uri,omitempty"`
	UserinfoEndpoint                   string `json:"userinfo_endpoint,omitempty"`
	RegistrationEndpoint               string `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                 string `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint              string `json:"introspection_endpoint,omitempty"`
	EndSessionEndpoint                 string `json:"end_session_endpoint,omitempty"`
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`

	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported is REQUIRED (OIDC Discovery §3, RFC 8414 §2).
	ResponseTypesSupported []string `json:"response_types_supported"`
	ResponseModesSupported []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported    []string `json:"grant_types_supported,omitempty"`
	// SubjectTypesSupported and IDTokenSigningAlgValuesSupported are
	// REQUIRED by OIDC Discovery §3.
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	UserinfoSigningAlgValuesSupported      []string `json:"userinfo_signing_alg_values_supported,omitempty"`
	RequestObjectSigningAlgValuesSupported []string `json:"request_object_signing_alg_values_supported,omitempty"`
	// IDTokenSignedResponseAlg and UserinfoSignedResponseAlg belong to no
	// discovery specification (they are client metadata names, OpenID
	// Connect Dynamic Client Registration §2), but Hydra's document
	// carries both as lists of the ID token signing algorithm and Ory's
	// SDKs refuse a document without them, so they are always written.
	IDTokenSignedResponseAlg  []string `json:"id_token_signed_response_alg"`
	UserinfoSignedResponseAlg []string `json:"userinfo_signed_response_alg"`

	TokenEndpointAuthMethodsSupported               []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported          []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthSigningAlgValuesSupported []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported       []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported                   []string `json:"code_challenge_methods_supported,omitempty"`
	ClaimsSupported                                 []string `json:"claims_supported,omitempty"`

	ClaimsParameterSupported  bool `json:"claims_parameter_supported"`
	RequestParameterSupported bool `json:"request_parameter_supported"`
	// RequestURIParameterSupported defaults to true when omitted (OIDC
	// Discovery §3), so it is always written.
	RequestURIParameterSupported       bool `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration      bool `json:"require_request_uri_registration"`
	FrontchannelLogoutSupported        bool `json:"frontchannel_logout_supported,omitempty"`
	FrontchannelLogoutSessionSupported bool `json:"frontchannel_logout_session_supported,omitempty"`
	BackchannelLogoutSupported         bool `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported  bool `json:"backchannel_logout_session_supported,omitempty"`

	// Extra members, for extensions; they cannot replace a member above.
	Extra map[string]any `json:"-"`
}

// Client authentication as implemented by issuer/client.Authenticator.
var (
	clientAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	// clientAuthAlgs are the JWS algorithms accepted for private_key_jwt.
	clientAuthAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// FromConfig returns the metadata that follows from cfg and from what the
// token side implements: issuer (urls.self.issuer as configured),
// token_endpoint, jwks_uri and revocation_endpoint under the public URL,
// introspection_endpoint only when urls.introspection is set,
// registration_endpoint only when dynamic client registration is enabled,
// grantTypes (the caller passes what its token endpoint implements, e.g.
// oauth2.Handler.GrantTypes), the client authentication methods and
// algorithms, and the configured subject types. The caller adds the
// authorization, userinfo and logout members when it mounts those
// endpoints.
func FromConfig(cfg *config.Config, grantTypes []string) Options {
	pub := cfg.PublicURL()
	o := Options{
		Issuer:                            cfg.URLs.Self.Issuer,
		TokenEndpoint:                     pub + "/oauth2/token",
		JWKSURI:                           pub + "/.well-known/jwks.json",
		RevocationEndpoint:                pub + "/oauth2/revoke",
		IntrospectionEndpoint:             cfg.URLs.Introspection,
		GrantTypesSupported:               append([]string(nil), grantTypes...),
		SubjectTypesSupported:             append([]string(nil), cfg.OIDC.SubjectIdentifiers.SupportedTypes...),
		TokenEndpointAuthMethodsSupported: append([]string(nil), clientAuthMethods...),
		TokenEndpointAuthSigningAlgValuesSupported:      append([]string(nil), clientAuthAlgs...),
		RevocationEndpointAuthMethodsSupported:          append([]string(nil), clientAuthMethods...),
		RevocationEndpointAuthSigningAlgValuesSupported: append([]string(nil), clientAuthAlgs...),
	}
	if cfg.OIDC.DynamicClientRegistration.Enabled {
		o.RegistrationEndpoint = pub + "/oauth2/register"
	}
	return o
}

// Validate checks that the issuer is an https URL (http on loopback)
// without query or fragment (OIDC Discovery §3, RFC 8414 §2) and that every
// endpoint is an absolute URL.
func (o *Options) Validate() error {
	u, err := url.Parse(o.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("discovery: issuer %q must be an absolute http(s) URL without query or fragment", o.Issuer)
	}
	for name, v := range map[string]string{
		"authorization_endpoint": o.AuthorizationEndpoint, "token_endpoint": o.TokenEndpoint, "jwks_uri": o.JWKSURI,
		"userinfo_endpoint": o.UserinfoEndpoint, "registration_endpoint": o.RegistrationEndpoint,
		"revocation_endpoint": o.RevocationEndpoint, "introspection_endpoint": o.IntrospectionEndpoint,
		"end_session_endpoint": o.EndSessionEndpoint, "pushed_authorization_request_endpoint": o.PushedAuthorizationRequestEndpoint,
	} {
		if v == "" {
			continue
		}
		if p, err := url.Parse(v); err != nil || !p.IsAbs() || p.Host == "" {
			return fmt.Errorf("discovery: %s %q must be an absolute URL", name, v)
		}
	}
	return nil
}

// Document returns the JSON document.
func (o *Options) Document() ([]byte, error) {
	c := *o
	for _, p := range []*[]string{&c.ResponseTypesSupported, &c.SubjectTypesSupported, &c.IDTokenSigningAlgValuesSupported,
		&c.IDTokenSignedResponseAlg, &c.UserinfoSignedResponseAlg} {
		if *p == nil {
			*p = []string{}
		}
	}
	b, err := json.Marshal(&c)
	if err != nil || len(o.Extra) == 0 {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range o.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// Handler serves the metadata on the public listener. The document is
// encoded once, on the first mount.
type Handler struct {
	Options Options
	Logger  *zap.Logger
	// MaxAge is sent as Cache-Control: public, max-age; default 5 minutes.
	MaxAge time.Duration

	once  sync.Once
	err   error
	doc   []byte
	etag  string
	cache string
}

var _ interface{ MountPublic(*http.ServeMux) } = (*Handler)(nil)

// Init validates the options and encodes the document. It is idempotent.
func (h *Handler) Init() error {
	h.once.Do(func() {
		if h.Logger == nil {
			h.Logger = zap.NewNop()
		}
		if h.MaxAge <= 0 {
			h.MaxAge = DefaultMaxAge
		}
		if err := h.Options.Validate(); err != nil {
			h.err = err
			return
		}
		doc, err := h.Options.Document()
		if err != nil {
			h.err = fmt.Errorf("discovery: encoding the document: %w", err)
			return
		}
		h.doc = doc
		h.etag = httpx.ETag(doc)
		h.cache = "public, max-age=" + strconv.Itoa(int(h.MaxAge/time.Second))
	})
	return h.err
}

// MountPublic mounts both well-known documents; for an issuer with a path
// (https://host/tenant) also RFC 8414 §3.1's path-suffixed form
// /.well-known/oauth-authorization-server/tenant. It panics when the
// options are invalid (a configuration error at startup).
func (h *Handler) MountPublic(mux *http.ServeMux) {
	if err := h.Init(); err != nil {
		panic(err)
	}
	paths := []string{OpenIDConfigurationPath, OAuthServerPath}
	if u, _ := url.Parse(h.Options.Issuer); u != nil && strings.Trim(u.Path, "/") != "" {
		paths = append(paths, OAuthServerPath+"/"+strings.Trim(u.Path, "/"))
	}
	for _, p := range paths {
		mux.HandleFunc("GET "+p, h.serve)
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			httpx.MethodNotAllowed(w, r, http.MethodGet, http.MethodHead)
		})
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	httpx.ServeDocument(w, r, h.doc, h.etag, h.cache)
}
