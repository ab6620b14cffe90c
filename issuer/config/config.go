// Package config is the issuer's typed configuration: a plain struct with
// Hydra's key names, defaults, and Validate. Loading from a YAML file and
// environment variables (Hydra's names: the key path upper-cased with
// underscores, e.g. serve.public.port -> SERVE_PUBLIC_PORT) is done by Load,
// which only the binary calls; library constructors never read the
// environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole issuer configuration. Struct tags: `yaml` is the key
// segment, `doc` the one-line meaning rendered into docs/configuration.md.
type Config struct {
	DSN        string     `yaml:"dsn" doc:"Database: memory, sqlite:///path/db.sqlite, postgres://..., cockroach://... (PostgreSQL dialect) or mysql://user:pass@tcp(host:3306)/db."`
	Serve      Serve      `yaml:"serve"`
	Secrets    Secrets    `yaml:"secrets"`
	URLs       URLs       `yaml:"urls"`
	Strategies Strategies `yaml:"strategies"`
	TTL        TTL        `yaml:"ttl"`
	OAuth2     OAuth2     `yaml:"oauth2"`
	OIDC       OIDC       `yaml:"oidc"`
	Clients    Clients    `yaml:"clients"`
	Keys       Keys       `yaml:"keys"`
	Log        Log        `yaml:"log"`
	Tracing    Tracing    `yaml:"tracing"`
	// RevocationEvents is the revocation event stream to the gateways
	// (docs/revocation-events.md).
	RevocationEvents RevocationEvents `yaml:"revocation_events"`

	// Dev and DangerousForceHTTP come from command-line flags only.
	Dev                bool `yaml:"-"`
	DangerousForceHTTP bool `yaml:"-"`
}

// RevocationEvents configures the revocation event log and its stream
// (GET /admin/revocations/events).
type RevocationEvents struct {
	Retention    time.Duration `yaml:"retention" doc:"How long revocation events are kept for the gateways' streams; the janitor deletes older ones, and a gateway away longer is told to reset its caches. At least 1m."`
	PollInterval time.Duration `yaml:"poll_interval" doc:"How often each issuer reads new revocation events from the database for its streams (events raised at other instances arrive within it). 10ms to 5s."`
}

type Serve struct {
	Public  Listener `yaml:"public"`
	Admin   Listener `yaml:"admin"`
	Cookies Cookies  `yaml:"cookies"`
	// TLS is Hydra's serve.tls: the certificate of both listeners unless
	// a listener sets its own.
	TLS TLSPair `yaml:"tls"`
}

type Listener struct {
	Host    string         `yaml:"host" doc:"Interface to listen on (empty: every interface, 127.0.0.1 with --dev), or unix:/path/to/socket for a UNIX socket."`
	Port    int            `yaml:"port" doc:"TCP port."`
	Socket  Socket         `yaml:"socket"`
	CORS    CORS           `yaml:"cors"`
	Timeout ServerTimeouts `yaml:"request_timeout"`
	TLS     ListenerTLS    `yaml:"tls"`
}

// TLSPair is a TLS certificate and its key, each from a PEM file or as
// base64-encoded PEM (Hydra's tls.cert.path / tls.cert.base64).
type TLSPair struct {
	Cert PEMSource `yaml:"cert"`
	Key  PEMSource `yaml:"key"`
}

// ListenerTLS is a listener's TLS: served when a certificate and key are
// set (here or in serve.tls).
type ListenerTLS struct {
	Cert PEMSource `yaml:"cert"`
	Key  PEMSource `yaml:"key"`
	// ClientAuth is the public listener's client certificate request
	// (RFC 8705 mutual TLS); Hydra has none.
	ClientAuth string `yaml:"client_auth" doc:"With TLS on: request asks clients for a certificate without requiring one (ordinary clients still connect; certificates are checked by the mutual-TLS client authentication methods), none never asks. The admin listener accepts none only."`
}

type PEMSource struct {
	Path   string `yaml:"path" doc:"Path of a PEM file."`
	Base64 string `yaml:"base64" doc:"The PEM, base64-encoded (instead of path)."`
}

// Set reports whether the PEM is given.
func (p PEMSource) Set() bool { return p.Path != "" || p.Base64 != "" }

// Effective returns the listener's certificate and key: its own when set,
// else serve.tls's.
func (t ListenerTLS) Effective(shared TLSPair) TLSPair {
	if t.Cert.Set() || t.Key.Set() {
		return TLSPair{Cert: t.Cert, Key: t.Key}
	}
	return shared
}

// Enabled reports whether the pair is configured.
func (p TLSPair) Enabled() bool { return p.Cert.Set() && p.Key.Set() }

type ServerTimeouts struct {
	Read  time.Duration `yaml:"read" doc:"Maximum time to read a whole request, headers and body."`
	Write time.Duration `yaml:"write" doc:"Maximum time to write a response."`
	Idle  time.Duration `yaml:"idle" doc:"Keep-alive connections idle longer than this are closed."`
}

type Socket struct {
	Owner string `yaml:"owner" doc:"Owner (user name or uid) of the UNIX socket."`
	Group string `yaml:"group" doc:"Group (name or gid) of the UNIX socket."`
	Mode  int    `yaml:"mode" doc:"File mode of the UNIX socket, e.g. 0660 (YAML octal) or 432."`
}

type CORS struct {
	Enabled          bool     `yaml:"enabled" doc:"Answer CORS requests on this listener."`
	AllowedOrigins   []string `yaml:"allowed_origins" doc:"Origins allowed (comma-separated in the environment); * allows any. Clients' allowed_cors_origins are added on the public listener."`
	AllowedMethods   []string `yaml:"allowed_methods" doc:"Methods allowed in CORS requests."`
	AllowedHeaders   []string `yaml:"allowed_headers" doc:"Request headers allowed in CORS requests."`
	ExposedHeaders   []string `yaml:"exposed_headers" doc:"Response headers exposed to CORS callers."`
	AllowCredentials bool     `yaml:"allow_credentials" doc:"Send Access-Control-Allow-Credentials: true."`
	MaxAge           int      `yaml:"max_age" doc:"Seconds a preflight answer may be cached."`
}

type Cookies struct {
	SameSiteMode string      `yaml:"same_site_mode" doc:"SameSite attribute of the issuer's cookies: Strict, Lax or None (None requires https)."`
	Domain       string      `yaml:"domain" doc:"Domain attribute of the issuer's cookies (empty: host-only)."`
	Secure       *bool       `yaml:"secure" doc:"Force the Secure attribute (default: true unless --dev on http)."`
	Names        CookieNames `yaml:"names"`
}

type CookieNames struct {
	LoginCSRF   string `yaml:"login_csrf" doc:"Name of the login CSRF cookie (prefix it to avoid clashes with a login app on the same host)."`
	ConsentCSRF string `yaml:"consent_csrf" doc:"Name of the consent CSRF cookie."`
	Session     string `yaml:"session" doc:"Name of the login session cookie."`
	DeviceCSRF  string `yaml:"device_csrf" doc:"Name of the device (user code entry) CSRF cookie."`
}

type Secrets struct {
	System []string `yaml:"system" doc:"System secrets, comma-separated, each at least 16 bytes: the first encrypts and signs, all decrypt and verify (rotation). Required unless --dev."`
	Cookie []string `yaml:"cookie" doc:"Cookie secrets, same rotation rule; defaults to the system secrets."`
}

type URLs struct {
	Self               SelfURLs `yaml:"self"`
	Login              string   `yaml:"login" doc:"URL of the login app (receives ?login_challenge=)."`
	Consent            string   `yaml:"consent" doc:"URL of the consent app (receives ?consent_challenge=)."`
	Logout             string   `yaml:"logout" doc:"URL of the logout app (receives ?logout_challenge=)."`
	Registration       string   `yaml:"registration" doc:"URL of the registration app: where prompt=registration sends the browser with ?login_challenge= (default: urls.login)."`
	Error              string   `yaml:"error" doc:"URL of the error page (receives ?error=&error_description=)."`
	PostLogoutRedirect string   `yaml:"post_logout_redirect" doc:"Where the browser goes after logout when the client named no post_logout_redirect_uri."`
	Introspection      string   `yaml:"introspection" doc:"When set, advertised as introspection_endpoint in discovery (e.g. the sidecar's /introspect)."`
	Device             Device   `yaml:"device"`
}

// Device are the operator's pages of the RFC 8628 device flow.
type Device struct {
	Verification string `yaml:"verification" doc:"URL of the user code entry page (receives ?device_challenge= and, when the device sent it, &user_code=)."`
	Success      string `yaml:"success" doc:"Where the browser goes once a device was authorized (default: the built-in page)."`
}

type SelfURLs struct {
	Issuer string `yaml:"issuer" doc:"Issuer identifier (iss claim, discovery), used exactly as written: a trailing slash stays in every iss. Required unless --dev (then http://127.0.0.1:<public port>)."`
	Public string `yaml:"public" doc:"Public base URL, when it differs from the issuer."`
	Admin  string `yaml:"admin" doc:"Admin base URL (used in Link headers and redirects of admin responses)."`
}

type Strategies struct {
	AccessToken string      `yaml:"access_token" doc:"Access token format: opaque or jwt."`
	Scope       string      `yaml:"scope" doc:"Scope matching: exact or wildcard (foo.* grants foo.bar)."`
	JWT         JWTStrategy `yaml:"jwt"`
}

type JWTStrategy struct {
	ScopeClaim string `yaml:"scope_claim" doc:"How JWT access tokens carry scopes: both (scope string and scp array), string (RFC 9068 scope) or list (Hydra's scp)."`
}

type TTL struct {
	AccessToken         time.Duration `yaml:"access_token" doc:"Access token lifetime (Go duration, e.g. 1h)."`
	RefreshToken        time.Duration `yaml:"refresh_token" doc:"Refresh token lifetime (-1 or 0: never expires is not allowed; use a long duration)."`
	IDToken             time.Duration `yaml:"id_token" doc:"ID token lifetime."`
	AuthCode            time.Duration `yaml:"auth_code" doc:"Authorization code lifetime."`
	LoginConsentRequest time.Duration `yaml:"login_consent_request" doc:"Lifetime of login, consent and logout challenges."`
	DeviceUserCode      time.Duration `yaml:"device_user_code" doc:"Lifetime of a device authorization: its device code and user code (RFC 8628 expires_in)."`
}

type OAuth2 struct {
	Hashers               Hashers  `yaml:"hashers"`
	PKCE                  PKCE     `yaml:"pkce"`
	Grant                 Grant    `yaml:"grant"`
	AllowedTopLevelClaims []string `yaml:"allowed_top_level_claims" doc:"Session claims copied to the top level of JWT access tokens (they are always under ext)."`
	MirrorTopLevelClaims  bool     `yaml:"mirror_top_level_claims" doc:"Keep allowed top-level claims under ext as well."`
	ClientIDInAudience    bool     `yaml:"client_id_in_audience" doc:"Add the client id to the aud of JWT access tokens (for gateways that match it)."`
	// DefaultAccessTokenAudience defaults to urls.self.issuer (Validate).
	DefaultAccessTokenAudience []string    `yaml:"default_access_token_audience" doc:"The aud of access tokens (JWT claim and introspection) granted no audience; RFC 9068 requires one. Default: urls.self.issuer exactly as configured."`
	SecretCache                SecretCache `yaml:"client_secret_cache"`
	Presigning                 Presigning  `yaml:"presigning"`
	// PushedAuthorizationRequests are Gatehouse additions (Hydra has no
	// PAR endpoint): RFC 9126.
	PushedAuthorizationRequests PushedAuthorizationRequests `yaml:"pushed_authorization_requests"`
	DPoP                        DPoP                        `yaml:"dpop"`
	FAPI                        FAPI                        `yaml:"fapi"`
	MTLS                        MTLS                        `yaml:"mtls"`
	TokenHook                   Hook                        `yaml:"token_hook" doc:"URL of the token hook, POSTed before every token endpoint response (see below); or the object form with url, auth and timeout."`
	RefreshTokenHook            Hook                        `yaml:"refresh_token_hook" doc:"URL of the legacy refresh token hook, POSTed before refresh_token grant responses only, with Hydra's older body; or the object form."`
	DeviceAuthorization         DeviceAuthorization         `yaml:"device_authorization"`
}

type PushedAuthorizationRequests struct {
	Required           bool          `yaml:"required" doc:"Refuse authorization requests that do not come through the PAR endpoint /oauth2/par (RFC 9126 require_pushed_authorization_requests; a client can also require it for itself)."`
	RequestURILifespan time.Duration `yaml:"request_uri_lifespan" doc:"How long a request_uri returned by /oauth2/par can be used (its expires_in); at most 10m."`
}

// DPoP are the RFC 9449 proof rules (Hydra has none; the names follow its
// style).
type DPoP struct {
	ProofMaxAge   time.Duration `yaml:"proof_max_age" doc:"How old (now minus iat) a DPoP proof may be (RFC 9449 §11.1); its jti is remembered, in the database shared by all instances, for as long."`
	ClockSkew     time.Duration `yaml:"clock_skew" doc:"How far in the future a DPoP proof's iat may be (clients' clocks run ahead)."`
	RequireNonce  bool          `yaml:"require_nonce" doc:"Require server nonces in DPoP proofs (RFC 9449 §8): a proof without a current one gets use_dpop_nonce and a DPoP-Nonce header. Nonces are MACs of a time window under the system secret, so every instance accepts every instance's."`
	NonceLifespan time.Duration `yaml:"nonce_lifespan" doc:"Length of a DPoP nonce's time window; the current and the previous window's nonces are accepted."`
}

// MTLS is mutual-TLS client authentication and certificate-bound access
// tokens (RFC 8705; Hydra has none, the names follow its style).
type MTLS struct {
	CABundle       string   `yaml:"ca_bundle" doc:"PEM file of the CAs that tls_client_auth client certificates must chain to (RFC 8705 §2.1); without it tls_client_auth always fails. self_signed_tls_client_auth needs none."`
	Header         string   `yaml:"client_certificate_header" doc:"Behind a TLS-terminating gateway: the request header carrying the client certificate, e.g. x-forwarded-client-cert (Envoy) or x-ssl-client-cert (nginx $ssl_client_escaped_cert). Off when empty; read only from trusted_proxies."`
	HeaderFormat   string   `yaml:"client_certificate_header_format" doc:"envoy (x-forwarded-client-cert with a Cert=\"...\" URL-encoded PEM field) or nginx (URL-encoded PEM)."`
	TrustedProxies []string `yaml:"trusted_proxies" doc:"Addresses (CIDR, comma-separated in the environment) the client certificate header is accepted from; from any other address it is ignored."`
	AliasURL       string   `yaml:"alias_url" doc:"Base URL of another address serving mutual TLS (e.g. https://mtls.auth.example.com): advertised as mtls_endpoint_aliases (RFC 8705 §5)."`
}

// Hook is a token hook (Hydra's webhook_config): a URL, or in YAML either
// the plain URL or {url, auth: {type: api_key, config: {in, name, value}}}.
// The environment sets the plain form with the key's own name
// (OAUTH2_TOKEN_HOOK) and each field with its path (OAUTH2_TOKEN_HOOK_URL).
type Hook struct {
	URL     string        `yaml:"url" doc:"URL the hook is POSTed to (http or https), through the outbound SSRF guard (clients.http.*)."`
	Auth    HookAuth      `yaml:"auth"`
	Timeout time.Duration `yaml:"timeout" doc:"Longest wait for the hook's answer; past it the token request fails with server_error (Gatehouse's addition)."`
}

type HookAuth struct {
	Type   string         `yaml:"type" doc:"Authentication of the hook call: api_key (or empty: none)."`
	Config HookAuthConfig `yaml:"config"`
}

type HookAuthConfig struct {
	In    string `yaml:"in" doc:"Where the API key goes: header or cookie."`
	Name  string `yaml:"name" doc:"Name of the header or cookie."`
	Value string `yaml:"value" doc:"The API key."`
}

// UnmarshalYAML accepts the plain URL or the object.
func (h *Hook) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&h.URL)
	}
	type plain Hook
	return n.Decode((*plain)(h))
}

// setScalar is the plain form from the environment.
func (h *Hook) setScalar(raw string) { h.URL = raw }

// validate checks a hook configured at path.
func (h *Hook) validate(path string, add func(*Error)) {
	if h.URL != "" {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(keyErr(path+".url", "must be an absolute http(s) URL, got %q", h.URL))
		}
	}
	a := h.Auth
	switch {
	case a.Type == "" && a.Config != (HookAuthConfig{}):
		add(keyErr(path+".auth.type", "must be api_key when auth.config is set"))
	case a.Type != "" && a.Type != "api_key":
		add(keyErr(path+".auth.type", "must be api_key, got %q", a.Type))
	case a.Type == "api_key" && a.Config.In != "header" && a.Config.In != "cookie":
		add(keyErr(path+".auth.config.in", "must be header or cookie, got %q", a.Config.In))
	case a.Type == "api_key" && a.Config.Name == "":
		add(keyErr(path+".auth.config.name", "must name the header or cookie"))
	}
	if h.Timeout <= 0 {
		add(keyErr(path+".timeout", "must be a positive duration, got %s", h.Timeout))
	}
}

// DeviceAuthorization is the RFC 8628 device authorization grant.
type DeviceAuthorization struct {
	TokenPollingInterval time.Duration `yaml:"token_polling_interval" doc:"Minimum time between two polls of the token endpoint with one device code (RFC 8628 interval; whole seconds, at least 1s); a faster poll gets slow_down and 5 s more."`
	UserCode             UserCode      `yaml:"user_code"`
}

// UserCode shapes the user codes of device authorizations.
type UserCode struct {
	EntropyPreset string `yaml:"entropy_preset" doc:"high (8 of BCDFGHJKLMNPQRSTVWXZ, 34.6 bits), medium (7 of them, 30.3 bits) or low (9 digits, 29.9 bits); length and character_set override it."`
	Length        int    `yaml:"length" doc:"Characters of a user code (with character_set: at least 6, at most 32, and at least 20 bits of entropy)."`
	CharacterSet  string `yaml:"character_set" doc:"Characters user codes are drawn from; compared case-insensitively, so letters count once whatever their case (no separators, at least 2 distinct characters)."`
}

type Presigning struct {
	Enabled bool `yaml:"enabled" doc:"Sign the access and ID token of an openid code exchange when the code is issued, on a spare core, instead of at the exchange (see flows.md). Turn off behind a load balancer without session affinity, where the exchange usually reaches another replica and the early signatures are wasted."`
}

type SecretCache struct {
	Enabled bool          `yaml:"enabled" doc:"Remember a successful client secret verification (keyed by a MAC of id and secret) so repeated requests skip the slow hash."`
	TTL     time.Duration `yaml:"ttl" doc:"How long a remembered verification lives; it is also dropped when the client changes."`
}

type Hashers struct {
	Algorithm string `yaml:"algorithm" doc:"Client secret hasher: pbkdf2 or bcrypt."`
	BCrypt    BCrypt `yaml:"bcrypt"`
	PBKDF2    PBKDF2 `yaml:"pbkdf2"`
}

type BCrypt struct {
	Cost int `yaml:"cost" doc:"bcrypt cost (4-31)."`
}

type PBKDF2 struct {
	Iterations int `yaml:"iterations" doc:"PBKDF2-HMAC-SHA256 iterations."`
}

// FAPI is the FAPI 2.0 Security Profile for every client (a Gatehouse
// addition; docs/fapi.md). A client opts in alone with its fapi_profile
// metadata.
type FAPI struct {
	Profile              string `yaml:"profile" doc:"\"2.0\" puts every client under the FAPI 2.0 Security Profile (docs/fapi.md): PAR, PKCE S256, response_type code, private_key_jwt or mTLS, sender-constrained tokens, 60 s codes; the server then refuses to start unless the ID token and access token keys use PS256, ES256 or EdDSA. Empty: only clients with fapi_profile \"2.0\"."`
	RefreshTokenRotation bool   `yaml:"refresh_token_rotation" doc:"Rotate the refresh tokens of confidential FAPI 2.0 clients too. FAPI 2.0 asks for no rotation, so by default a refresh returns the same refresh token to them; public and non-FAPI clients' are always rotated."`
}

type PKCE struct {
	Enforced                 bool `yaml:"enforced" doc:"Require PKCE for every authorization code flow."`
	EnforcedForPublicClients bool `yaml:"enforced_for_public_clients" doc:"Require PKCE for public clients (token_endpoint_auth_method none)."`
	AllowPlain               bool `yaml:"allow_plain" doc:"Accept code_challenge_method=plain (S256 is always accepted)."`
}

type Grant struct {
	RefreshToken RefreshTokenGrant `yaml:"refresh_token"`
	JWT          JWTGrant          `yaml:"jwt"`
}

type RefreshTokenGrant struct {
	RotationGracePeriod     time.Duration `yaml:"rotation_grace_period" doc:"A used refresh token may be reused within this period without revoking the chain (0: never; at most 5m)."`
	RotationGraceReuseCount int           `yaml:"rotation_grace_reuse_count" doc:"How many times a used refresh token may be reused within the grace period; the next reuse revokes the chain (0: no limit)."`
}

type JWTGrant struct {
	JTIOptional bool          `yaml:"jti_optional" doc:"Accept RFC 7523 assertions without jti (replay protection off)."`
	IATOptional bool          `yaml:"iat_optional" doc:"Accept RFC 7523 assertions without iat."`
	MaxTTL      time.Duration `yaml:"max_ttl" doc:"Longest accepted lifetime (exp minus now) of an RFC 7523 assertion."`
}

type OIDC struct {
	SubjectIdentifiers        SubjectIdentifiers  `yaml:"subject_identifiers"`
	DynamicClientRegistration DynamicRegistration `yaml:"dynamic_client_registration"`
}

type SubjectIdentifiers struct {
	SupportedTypes []string `yaml:"supported_types" doc:"Subject types offered: public, pairwise."`
	Pairwise       Pairwise `yaml:"pairwise"`
}

type Pairwise struct {
	Salt string `yaml:"salt" doc:"Salt of pairwise subject identifiers (required when pairwise is supported)."`
}

type DynamicRegistration struct {
	Enabled      bool     `yaml:"enabled" doc:"Serve RFC 7591/7592 dynamic client registration at /oauth2/register on the public port."`
	DefaultScope []string `yaml:"default_scope" doc:"Scope given to dynamically registered clients that ask for none."`
}

type Clients struct {
	HTTP ClientsHTTP `yaml:"http"`
}

type ClientsHTTP struct {
	DisallowPrivateIPRanges  bool     `yaml:"disallow_private_ip_ranges" doc:"Refuse outbound fetches (jwks_uri, sector_identifier_uri, back-channel logout) to private, loopback and link-local addresses (SSRF guard)."`
	PrivateIPPrefixAllowList []string `yaml:"private_ip_prefix_allow_list" doc:"CIDR prefixes exempt from the SSRF guard."`
}

type Keys struct {
	Algorithm  string        `yaml:"algorithm" doc:"Algorithm of generated signing keys: RS256 (default; APISIX verifies only RSA), PS256, ES256 or EdDSA."`
	RSABits    int           `yaml:"rsa_bits" doc:"RSA key size in bits (2048 to 8192)."`
	JWKSMaxAge time.Duration `yaml:"jwks_max_age" doc:"Cache-Control max-age of /.well-known/jwks.json, so gateways cache the keys (0 sends no-store, as Hydra does)."`
}

type Log struct {
	Level  string `yaml:"level" doc:"Log level: debug, info, warn, error."`
	Format string `yaml:"format" doc:"Log format: json or text (default json, text with --dev); text colours the level only when stderr is a terminal."`
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		Serve: Serve{
			Public: Listener{Host: "", Port: 4444, Timeout: ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second},
				TLS: ListenerTLS{ClientAuth: ClientAuthRequest},
				CORS: CORS{AllowedMethods: []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
					// DPoP proofs and nonces (RFC 9449 §7.1, §8) cross origins too.
					AllowedHeaders: []string{"Authorization", "Content-Type", "DPoP"},
					ExposedHeaders: []string{"Content-Type", "DPoP-Nonce", "WWW-Authenticate"}, MaxAge: 0}},
			Admin: Listener{Host: "", Port: 4445, Timeout: ServerTimeouts{Read: 30 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second},
				TLS: ListenerTLS{ClientAuth: ClientAuthNone},
				CORS: CORS{AllowedMethods: []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
					AllowedHeaders: []string{"Authorization", "Content-Type"}, ExposedHeaders: []string{"Content-Type"}}},
			Cookies: Cookies{SameSiteMode: "Lax", Names: CookieNames{
				LoginCSRF: "gatehouse_login_csrf", ConsentCSRF: "gatehouse_consent_csrf", Session: "gatehouse_session",
				DeviceCSRF: "gatehouse_device_csrf"}},
		},
		Strategies: Strategies{AccessToken: "opaque", Scope: "wildcard", JWT: JWTStrategy{ScopeClaim: "both"}},
		TTL: TTL{AccessToken: time.Hour, RefreshToken: 720 * time.Hour, IDToken: time.Hour,
			AuthCode: 10 * time.Minute, LoginConsentRequest: 30 * time.Minute, DeviceUserCode: 10 * time.Minute},
		OAuth2: OAuth2{
			Hashers:     Hashers{Algorithm: "pbkdf2", BCrypt: BCrypt{Cost: 10}, PBKDF2: PBKDF2{Iterations: 25000}},
			PKCE:        PKCE{EnforcedForPublicClients: true, AllowPlain: true},
			Grant:       Grant{JWT: JWTGrant{MaxTTL: 720 * time.Hour}},
			SecretCache: SecretCache{Enabled: true, TTL: 10 * time.Minute},
			Presigning:  Presigning{Enabled: true},

			// RFC 9126 §2.2's example lifetime.
			PushedAuthorizationRequests: PushedAuthorizationRequests{RequestURILifespan: time.Minute},
			DPoP:                        DPoP{ProofMaxAge: time.Minute, ClockSkew: 10 * time.Second, NonceLifespan: 5 * time.Minute},
			TokenHook:                   Hook{Timeout: 5 * time.Second},
			RefreshTokenHook:            Hook{Timeout: 5 * time.Second},
			DeviceAuthorization: DeviceAuthorization{TokenPollingInterval: 5 * time.Second,
				UserCode: UserCode{EntropyPreset: "high"}},
		},
		OIDC: OIDC{SubjectIdentifiers: SubjectIdentifiers{SupportedTypes: []string{"public"}},
			DynamicClientRegistration: DynamicRegistration{DefaultScope: []string{"openid", "offline_access", "offline"}}},
		Keys: Keys{Algorithm: "RS256", RSABits: 2048, JWKSMaxAge: 5 * time.Minute},
		Log:  Log{Level: "info"},
		// Tracing is off by default (empty provider).
		Tracing:          defaultTracing(),
		RevocationEvents: RevocationEvents{Retention: 24 * time.Hour, PollInterval: 150 * time.Millisecond},
	}
}

// Error is a validation error naming the offending key.
type Error struct {
	Key    string // environment variable name, e.g. TTL_ACCESS_TOKEN
	Path   string // YAML path, e.g. ttl.access_token
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("configuration key %s (%s): %s", e.Key, e.Path, e.Reason)
}

func keyErr(path, format string, args ...any) *Error {
	return &Error{Key: EnvName(path), Path: path, Reason: fmt.Sprintf(format, args...)}
}

// EnvName turns a YAML path into Hydra's environment variable name.
func EnvName(path string) string {
	return strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Validate checks every value and fills derived defaults (issuer in dev
// mode, log format, cookie secrets). It returns all problems joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(e *Error) { errs = append(errs, e) }

	if c.DSN == "" {
		add(keyErr("dsn", "must be set (use DSN=memory for a throwaway database)"))
	}
	for _, l := range []struct {
		name string
		l    *Listener
	}{{"serve.public", &c.Serve.Public}, {"serve.admin", &c.Serve.Admin}} {
		if !strings.HasPrefix(l.l.Host, "unix:") && (l.l.Port < 0 || l.l.Port > 65535) {
			add(keyErr(l.name+".port", "must be between 0 and 65535, got %d", l.l.Port))
		}
		if strings.HasPrefix(l.l.Host, "unix:") && strings.TrimPrefix(l.l.Host, "unix:") == "" {
			add(keyErr(l.name+".host", "unix: needs a socket path, e.g. unix:/run/gatehouse/admin.sock"))
		}
		if l.l.Socket.Mode < 0 || l.l.Socket.Mode > 0o777 {
			add(keyErr(l.name+".socket.mode", "must be a file mode between 0 and 0777"))
		}
	}
	c.validateTLS(add)
	if !slices.Contains([]string{"Strict", "Lax", "None"}, c.Serve.Cookies.SameSiteMode) {
		add(keyErr("serve.cookies.same_site_mode", "must be Strict, Lax or None, got %q", c.Serve.Cookies.SameSiteMode))
	}
	if len(c.Secrets.System) == 0 && !c.Dev {
		add(keyErr("secrets.system", "must be set in production (at least one secret of 16 bytes or more); --dev generates an ephemeral one"))
	}
	for i, s := range c.Secrets.System {
		if len(s) < 16 {
			add(keyErr("secrets.system", "secret #%d is %d bytes long, at least 16 are required", i+1, len(s)))
		}
	}
	for i, s := range c.Secrets.Cookie {
		if len(s) < 16 {
			add(keyErr("secrets.cookie", "secret #%d is %d bytes long, at least 16 are required", i+1, len(s)))
		}
	}
	if c.Dev {
		// A dev issuer has an http issuer, perhaps an ephemeral secret and an
		// admin API without authentication: unless a host is set, it listens
		// on loopback only (production keeps Hydra's every interface, which
		// containers need; see docs/security.md).
		for _, l := range []*Listener{&c.Serve.Public, &c.Serve.Admin} {
			if l.Host == "" {
				l.Host = "127.0.0.1"
			}
		}
	}
	if c.URLs.Self.Issuer == "" {
		if c.Dev {
			c.URLs.Self.Issuer = fmt.Sprintf("http://127.0.0.1:%d", c.Serve.Public.Port)
		} else {
			add(keyErr("urls.self.issuer", "must be set, e.g. https://auth.example.com"))
		}
	}
	if c.URLs.Self.Issuer != "" {
		if err := c.checkIssuer(); err != nil {
			add(err)
		}
	}
	for _, u := range []struct{ path, v string }{
		{"urls.self.public", c.URLs.Self.Public}, {"urls.self.admin", c.URLs.Self.Admin},
		{"urls.login", c.URLs.Login}, {"urls.consent", c.URLs.Consent}, {"urls.logout", c.URLs.Logout},
		{"urls.error", c.URLs.Error}, {"urls.post_logout_redirect", c.URLs.PostLogoutRedirect},
		{"urls.introspection", c.URLs.Introspection}, {"urls.registration", c.URLs.Registration},
		{"oauth2.mtls.alias_url", c.OAuth2.MTLS.AliasURL},
		{"urls.device.verification", c.URLs.Device.Verification}, {"urls.device.success", c.URLs.Device.Success},
	} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || !p.IsAbs() || p.Host == "" {
			add(keyErr(u.path, "must be an absolute URL, got %q", u.v))
		}
	}
	if len(c.OAuth2.DefaultAccessTokenAudience) == 0 && c.URLs.Self.Issuer != "" {
		c.OAuth2.DefaultAccessTokenAudience = []string{c.URLs.Self.Issuer}
	}
	for _, a := range c.OAuth2.DefaultAccessTokenAudience {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			add(keyErr("oauth2.default_access_token_audience", "audiences must be non-empty and without spaces, got %q", a))
		}
	}
	if !slices.Contains([]string{"opaque", "jwt"}, c.Strategies.AccessToken) {
		add(keyErr("strategies.access_token", "must be opaque or jwt, got %q", c.Strategies.AccessToken))
	}
	if !slices.Contains([]string{"exact", "wildcard"}, c.Strategies.Scope) {
		add(keyErr("strategies.scope", "must be exact or wildcard, got %q", c.Strategies.Scope))
	}
	if !slices.Contains([]string{"both", "string", "list"}, c.Strategies.JWT.ScopeClaim) {
		add(keyErr("strategies.jwt.scope_claim", "must be both, string or list, got %q", c.Strategies.JWT.ScopeClaim))
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"ttl.access_token", c.TTL.AccessToken}, {"ttl.refresh_token", c.TTL.RefreshToken}, {"ttl.id_token", c.TTL.IDToken},
		{"ttl.auth_code", c.TTL.AuthCode}, {"ttl.login_consent_request", c.TTL.LoginConsentRequest},
		{"oauth2.grant.jwt.max_ttl", c.OAuth2.Grant.JWT.MaxTTL},
		{"oauth2.dpop.proof_max_age", c.OAuth2.DPoP.ProofMaxAge}, {"oauth2.dpop.nonce_lifespan", c.OAuth2.DPoP.NonceLifespan},
		{"ttl.device_user_code", c.TTL.DeviceUserCode}} {
		if d.v <= 0 {
			add(keyErr(d.path, "must be a positive duration such as 30m or 1h, got %s", d.v))
		}
	}
	if c.OAuth2.Grant.RefreshToken.RotationGracePeriod < 0 || c.OAuth2.Grant.RefreshToken.RotationGracePeriod > 5*time.Minute {
		add(keyErr("oauth2.grant.refresh_token.rotation_grace_period", "must be between 0 and 5m"))
	}
	// RFC 9126 §2.2: "typically ... between 5 and 600 seconds".
	if l := c.OAuth2.PushedAuthorizationRequests.RequestURILifespan; l < time.Second || l > 10*time.Minute {
		add(keyErr("oauth2.pushed_authorization_requests.request_uri_lifespan", "must be between 1s and 10m, got %s", l))
	}
	if c.OAuth2.DPoP.ClockSkew < 0 || c.OAuth2.DPoP.ClockSkew > 5*time.Minute {
		add(keyErr("oauth2.dpop.clock_skew", "must be between 0 and 5m"))
	}
	c.OAuth2.TokenHook.validate("oauth2.token_hook", add)
	c.OAuth2.RefreshTokenHook.validate("oauth2.refresh_token_hook", add)
	if c.OAuth2.Grant.RefreshToken.RotationGraceReuseCount < 0 {
		add(keyErr("oauth2.grant.refresh_token.rotation_grace_reuse_count", "must not be negative"))
	}
	if err := c.OAuth2.DeviceAuthorization.validate(); err != nil {
		add(err)
	}
	if c.OAuth2.SecretCache.TTL < 0 {
		add(keyErr("oauth2.client_secret_cache.ttl", "must not be negative"))
	}
	switch c.OAuth2.Hashers.Algorithm {
	case "pbkdf2", "bcrypt":
	default:
		add(keyErr("oauth2.hashers.algorithm", "must be pbkdf2 or bcrypt, got %q", c.OAuth2.Hashers.Algorithm))
	}
	if c.OAuth2.Hashers.BCrypt.Cost < 4 || c.OAuth2.Hashers.BCrypt.Cost > 31 {
		add(keyErr("oauth2.hashers.bcrypt.cost", "must be between 4 and 31, got %d", c.OAuth2.Hashers.BCrypt.Cost))
	}
	if c.OAuth2.Hashers.PBKDF2.Iterations < 1 {
		add(keyErr("oauth2.hashers.pbkdf2.iterations", "must be at least 1, got %d", c.OAuth2.Hashers.PBKDF2.Iterations))
	}
	for _, t := range c.OIDC.SubjectIdentifiers.SupportedTypes {
		if t != "public" && t != "pairwise" {
			add(keyErr("oidc.subject_identifiers.supported_types", "unknown subject type %q (public, pairwise)", t))
		}
	}
	if slices.Contains(c.OIDC.SubjectIdentifiers.SupportedTypes, "pairwise") && len(c.OIDC.SubjectIdentifiers.Pairwise.Salt) < 8 {
		add(keyErr("oidc.subject_identifiers.pairwise.salt", "must be at least 8 bytes when pairwise subjects are supported"))
	}
	for _, p := range c.Clients.HTTP.PrivateIPPrefixAllowList {
		if _, _, err := net.ParseCIDR(p); err != nil {
			add(keyErr("clients.http.private_ip_prefix_allow_list", "%q is not a CIDR prefix", p))
		}
	}
	switch c.Keys.Algorithm {
	case "RS256", "PS256", "ES256", "EdDSA":
	default:
		add(keyErr("keys.algorithm", "must be RS256, PS256, ES256 or EdDSA, got %q", c.Keys.Algorithm))
	}
	c.validateFAPI(add)
	if c.Keys.JWKSMaxAge < 0 {
		add(keyErr("keys.jwks_max_age", "must not be negative"))
	}
	if c.Keys.RSABits < 2048 || c.Keys.RSABits > 8192 {
		add(keyErr("keys.rsa_bits", "must be between 2048 and 8192, got %d", c.Keys.RSABits))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add(keyErr("log.level", "must be debug, info, warn or error, got %q", c.Log.Level))
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
		if c.Dev {
			c.Log.Format = "text"
		}
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		add(keyErr("log.format", "must be json or text, got %q", c.Log.Format))
	}
	if c.RevocationEvents.Retention < time.Minute {
		add(keyErr("revocation_events.retention", "must be at least 1m, got %s", c.RevocationEvents.Retention))
	}
	if p := c.RevocationEvents.PollInterval; p < 10*time.Millisecond || p > 5*time.Second {
		add(keyErr("revocation_events.poll_interval", "must be between 10ms and 5s, got %s", p))
	}
	errs = append(errs, c.Tracing.validate()...)
	if len(c.Secrets.Cookie) == 0 {
		c.Secrets.Cookie = c.Secrets.System
	}
	return errors.Join(errs...)
}

// checkIssuer enforces an absolute issuer URL without query or fragment
// (OpenID Connect Discovery §3) and refuses plain http on a non-loopback host
// unless --dev or --dangerous-force-http.
func (c *Config) checkIssuer() *Error {
	u, err := url.Parse(c.URLs.Self.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return keyErr("urls.self.issuer", "must be an absolute URL, got %q", c.URLs.Self.Issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return keyErr("urls.self.issuer", "must not contain a query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.Dev && !c.DangerousForceHTTP && !IsLoopbackHost(u.Hostname()) {
			return keyErr("urls.self.issuer", "http:// on a non-loopback host is refused; use https, or --dangerous-force-http behind a TLS-terminating proxy")
		}
	default:
		return keyErr("urls.self.issuer", "scheme must be https (or http for loopback/dev), got %q", u.Scheme)
	}
	return nil
}

// IsLoopbackHost reports whether host names the local machine.
func IsLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IssuerURL returns the issuer without a trailing slash, for joining paths.
func (c *Config) IssuerURL() string { return strings.TrimRight(c.URLs.Self.Issuer, "/") }

// PublicURL returns the public base URL (defaults to the issuer).
func (c *Config) PublicURL() string {
	if c.URLs.Self.Public != "" {
		return strings.TrimRight(c.URLs.Self.Public, "/")
	}
	return c.IssuerURL()
}

// AdminURL returns the admin base URL.
func (c *Config) AdminURL() string {
	if c.URLs.Self.Admin != "" {
		return strings.TrimRight(c.URLs.Self.Admin, "/")
	}
	host := c.Serve.Admin.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(c.Serve.Admin.Port)))
}

// Addr returns the listen address of a listener: "unix" and the path, or
// "tcp" and host:port.
func (l Listener) Addr() (network, address string) {
	if p, ok := strings.CutPrefix(l.Host, "unix:"); ok {
		return "unix", p
	}
	return "tcp", net.JoinHostPort(l.Host, fmt.Sprint(l.Port))
}
