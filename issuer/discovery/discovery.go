// Package discovery serves the issuer's metadata: OpenID Connect Discovery
// 1.0 at /.well-known/openid-configuration and RFC 8414 at
// /.well-known/oauth-authorization-server, the same document at both.
//
// The document is assembled from what the mounted handlers contribute
// (Contributor): each describes the endpoints, grant types, response types
// and modes, authentication methods, algorithms and features it serves.
// A handler that is not built, or a feature of it that is switched off,
// therefore advertises nothing, and nothing else writes the document.
package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// DefaultMaxAge is how long clients and gateways may cache the document.
const DefaultMaxAge = 5 * time.Minute

// Paths of the metadata documents.
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	OAuthServerPath         = "/.well-known/oauth-authorization-server"
)

// Metadata is the advertised metadata (OpenID Connect Discovery 1.0 §3,
// RFC 8414 §2, RFC 7009, RFC 7662, RFC 7636, OpenID Connect Front- and
// Back-Channel Logout, RP-Initiated Logout). Empty strings and lists are
// left out of the document, except the members both specifications make
// REQUIRED, which are always written (an empty list meaning "none yet").
// Booleans whose specified default differs from false are always written.
type Metadata struct {
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
	DeviceAuthorizationEndpoint        string `json:"device_authorization_endpoint,omitempty"`

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
	DPoPSigningAlgValuesSupported                   []string `json:"dpop_signing_alg_values_supported,omitempty"` // RFC 9449 §5.1

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
	// RequirePushedAuthorizationRequests (RFC 9126 §5) and
	// AuthorizationResponseISSParameterSupported (RFC 9207 §3) default to
	// false when omitted.
	RequirePushedAuthorizationRequests         bool `json:"require_pushed_authorization_requests,omitempty"`
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// TLSClientCertificateBoundAccessTokens is RFC 8705 §3.3's (default
	// false when omitted).
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`

	// Extra members, for extensions; they cannot replace a member above.
	Extra map[string]any `json:"-"`
}

// Contributor is a handler that serves part of what the document
// advertises.
type Contributor interface {
	// Discovery returns the members describing what the handler serves
	// as configured; members it does not serve stay empty. It is called
	// once, when the document is assembled.
	Discovery(ctx context.Context) (Metadata, error)
}

// Merge returns the document of issuer made of the contributions: a
// string member may be given by several contributions only with the same
// value, a boolean is true when any contribution sets it, and a list holds
// every value once. A list that one contribution gives keeps that
// contribution's order; a list several contributions give (grant types
// come from the token and the authorization endpoints) is sorted, so that
// the document does not depend on the order of the contributions.
func Merge(issuer string, contributions ...Metadata) (Metadata, error) {
	m := Metadata{Issuer: issuer}
	dst := reflect.ValueOf(&m).Elem()
	typ := dst.Type()
	givers := make([]int, typ.NumField())
	for _, c := range contributions {
		src := reflect.ValueOf(c)
		for i := range typ.NumField() {
			from, to := src.Field(i), dst.Field(i)
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			switch v := from.Interface().(type) {
			case string:
				switch {
				case v == "" || v == to.String():
				case to.String() == "":
					to.SetString(v)
				default:
					return Metadata{}, fmt.Errorf("discovery: %s is contributed twice, as %q and %q", name, to.String(), v)
				}
			case bool:
				to.SetBool(to.Bool() || v)
			case []string:
				if len(v) > 0 {
					givers[i]++
				}
				for _, s := range v {
					if cur := to.Interface().([]string); !slices.Contains(cur, s) {
						to.Set(reflect.ValueOf(append(cur, s)))
					}
				}
			case map[string]any:
				for k, x := range v {
					if _, taken := m.Extra[k]; taken {
						return Metadata{}, fmt.Errorf("discovery: the extra member %s is contributed twice", k)
					}
					if m.Extra == nil {
						m.Extra = map[string]any{}
					}
					m.Extra[k] = x
				}
			default:
				return Metadata{}, fmt.Errorf("discovery: cannot merge member %s of type %T", typ.Field(i).Name, v)
			}
		}
	}
	for i, n := range givers {
		if n > 1 {
			slices.Sort(dst.Field(i).Interface().([]string))
		}
	}
	return m, nil
}

// Validate checks that the issuer is an https URL (http on loopback)
// without query or fragment (OIDC Discovery §3, RFC 8414 §2) and that every
// endpoint is an absolute URL.
func (md *Metadata) Validate() error {
	u, err := url.Parse(md.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("discovery: issuer %q must be an absolute http(s) URL without query or fragment", md.Issuer)
	}
	for name, v := range map[string]string{
		"authorization_endpoint": md.AuthorizationEndpoint, "token_endpoint": md.TokenEndpoint, "jwks_uri": md.JWKSURI,
		"userinfo_endpoint": md.UserinfoEndpoint, "registration_endpoint": md.RegistrationEndpoint,
		"revocation_endpoint": md.RevocationEndpoint, "introspection_endpoint": md.IntrospectionEndpoint,
		"end_session_endpoint": md.EndSessionEndpoint, "pushed_authorization_request_endpoint": md.PushedAuthorizationRequestEndpoint,
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
func (md *Metadata) Document() ([]byte, error) {
	c := *md
	for _, p := range []*[]string{&c.ResponseTypesSupported, &c.SubjectTypesSupported, &c.IDTokenSigningAlgValuesSupported,
		&c.IDTokenSignedResponseAlg, &c.UserinfoSignedResponseAlg} {
		if *p == nil {
			*p = []string{}
		}
	}
	b, err := json.Marshal(&c)
	if err != nil || len(md.Extra) == 0 {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range md.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// Deps are the Handler's collaborators.
type Deps struct {
	Logger *zap.Logger
}

// Options configure the Handler.
type Options struct {
	// Issuer is the issuer member, exactly as configured (urls.self.issuer).
	Issuer string
	// MaxAge is sent as Cache-Control: public, max-age; default 5 minutes.
	MaxAge time.Duration
	// Contributions are the members the handlers contribute (Merge).
	Contributions []Metadata
}

// Handler serves the document on the public listener.
type Handler struct {
	issuer string
	doc    []byte
	etag   string
	cache  string
}

var _ interface{ MountPublic(*http.ServeMux) } = (*Handler)(nil)

// New merges the contributions, validates the result and encodes the
// document once.
func New(d Deps, o Options) (*Handler, error) {
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	m, err := Merge(o.Issuer, o.Contributions...)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	doc, err := m.Document()
	if err != nil {
		return nil, fmt.Errorf("discovery: encoding the document: %w", err)
	}
	d.Logger.Debug("discovery document assembled", zap.Int("contributions", len(o.Contributions)),
		zap.Strings("grant_types_supported", m.GrantTypesSupported))
	return &Handler{issuer: o.Issuer, doc: doc, etag: httpx.ETag(doc),
		cache: "public, max-age=" + strconv.Itoa(int(o.MaxAge/time.Second))}, nil
}

// MountPublic mounts both well-known documents; for an issuer with a path
// (https://host/tenant) also RFC 8414 §3.1's path-suffixed form
// /.well-known/oauth-authorization-server/tenant.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	paths := []string{OpenIDConfigurationPath, OAuthServerPath}
	if u, _ := url.Parse(h.issuer); u != nil && strings.Trim(u.Path, "/") != "" {
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
