// Package flow is the browser side of the issuer: the authorization
// endpoint (RFC 6749 §3.1, OpenID Connect Core §3), Hydra v2's headless
// login, consent and logout challenges with their admin API, the issuer's
// own cookies (login session, CSRF), RP-initiated logout with front- and
// back-channel logout, the session admin API and the fallback pages.
//
// Routes (Hydra v2 paths):
//
//	public GET|POST /oauth2/auth
//	public POST     /oauth2/par (with Deps.Auth)
//	public GET|POST /oauth2/sessions/logout
//	public GET      /oauth2/fallbacks/{error,login,consent,logout,logout/callback}
//	admin  GET      /admin/oauth2/auth/requests/{login,consent,logout}?{kind}_challenge=
//	admin  PUT      /admin/oauth2/auth/requests/{login,consent,logout}/{accept,reject}
//	admin  GET|DELETE /admin/oauth2/auth/sessions/consent
//	admin  DELETE   /admin/oauth2/auth/sessions/login
//
// The same challenge routes are served under /admin/oauth2/requests/...
// (the short form some integration guides use); the server adds the
// unprefixed v1 aliases (/oauth2/auth/requests/...) itself.
//
// Files by job. The authorization endpoint: authorize.go (dispatch, client
// and redirect URI), request.go (parsing), validate.go (the rules against
// the client, PKCE), request_object.go (request and request_uri),
// par.go (pushed authorization requests), response.go (response modes,
// the issuer in responses, error pages). The challenges: login.go and
// consent.go (each step, from its challenge to its verifier), verifier.go
// (checking and consuming a decided challenge), challenge.go (storing
// challenges and decisions), admin.go (the challenge admin API, one table
// entry per kind), subject.go (public and pairwise subject identifiers),
// id_token_hint.go. Sessions and logout: sessions.go, logout.go. Shared:
// cookies.go, recent.go, model.go (Hydra's JSON shapes, the stored state).
package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Issuer issues the authorization response's code and tokens
// (issuer/oauth2.Handler).
type Issuer interface {
	Authorize(ctx context.Context, a *oauth2.Authorization) (url.Values, error)
}

// Clients looks up registered clients (issuer/client.Manager).
type Clients interface {
	Get(ctx context.Context, id string) (*client.Client, error)
}

// Keys signs logout tokens and verifies id_token_hint against the ID token
// key set (issuer/keys.Manager).
type Keys interface {
	Sign(ctx context.Context, set, typ string, payload []byte) (string, error)
	PublicKeys(ctx context.Context, sets ...string) (jwk.Set, error)
}

// Deps are the handler's collaborators.
type Deps struct {
	Clients         Clients
	Flows           storage.FlowStore
	LoginSessions   storage.LoginSessionStore
	ConsentSessions storage.ConsentSessionStore
	Tokens          Issuer
	Keys            Keys
	// Devices are the RFC 8628 device authorizations; nil leaves the
	// device verification page and its admin API unmounted.
	Devices DeviceGrants
	// CookieCipher encrypts the issuer's cookies (a secrets.Keyring over
	// SECRETS_COOKIE).
	CookieCipher Cipher
	// HTTP fetches request_uri and jwks_uri and posts back-channel logout
	// tokens; nil disables all three.
	HTTP *safehttp.Client
	// Auth authenticates clients at the PAR endpoint (par.go); nil leaves
	// the endpoint out.
	Auth ClientAuthenticator
	// DPoP checks a DPoP proof sent to the PAR endpoint (RFC 9449 §10.1);
	// nil ignores the header.
	DPoP ProofChecker
	// Logger defaults to a no-op logger, Now to time.Now.
	Logger *zap.Logger
	Now    func() time.Time
}

// Options are the flow's settings.
type Options struct {
	// IssuerURL is the issuer identifier as configured: the iss of
	// id_token_hint and logout tokens, an aud of request objects.
	// PublicURL is the base URL of the public endpoints.
	IssuerURL string
	PublicURL string
	// The operator's login, consent, logout and error apps and the page
	// shown after logout; empty selects the built-in fallback page.
	LoginURL              string
	ConsentURL            string
	LogoutURL             string
	ErrorURL              string
	PostLogoutRedirectURL string
	// RegistrationURL is where prompt=registration sends the browser with
	// the login challenge; empty means LoginURL (Hydra's urls.registration).
	RegistrationURL string
	// The device flow's user code page and the page after a device was
	// authorized (device.go); empty selects the built-in page.
	DeviceVerificationURL string
	DeviceSuccessURL      string
	// ChallengeLifespan bounds login, consent and logout challenges and
	// their CSRF cookies.
	ChallengeLifespan time.Duration
	// UnrememberedLifespan is how long a login session without a
	// remember_for, and a consent that is not remembered, are kept (for
	// logout, sid and listing): as long as their tokens may live.
	UnrememberedLifespan time.Duration
	// Scopes decides whether a client's scopes allow a requested one
	// (default oauth2.WildcardScopeStrategy).
	Scopes oauth2.ScopeStrategy
	PKCE   PKCE
	// PairwiseSalt is mixed into pairwise subject identifiers;
	// SubjectTypes are the subject identifier types advertised.
	PairwiseSalt string
	SubjectTypes []string
	Cookies      CookieOptions
	// BackchannelAttempts and BackchannelTimeout bound the delivery of one
	// logout token (defaults 3 and 5s per attempt; 10s for all of them).
	BackchannelAttempts int
	BackchannelTimeout  time.Duration
	// PAR are the pushed authorization requests' settings (par.go).
	PAR PAR
	// FAPI applies the FAPI 2.0 profile (fapi.go) to every client, not
	// only to those with fapi_profile "2.0".
	FAPI bool
}

// PKCE is the enforcement of RFC 7636 at the authorization endpoint.
type PKCE struct {
	// Enforced requires a code_challenge for every authorization code
	// flow, EnforcedForPublicClients for public clients only.
	Enforced                 bool
	EnforcedForPublicClients bool
	// AllowPlain accepts code_challenge_method plain (S256 always is).
	AllowPlain bool
}

// CookieOptions are the attributes and names of the issuer's cookies.
type CookieOptions struct {
	// Session is the login session cookie; LoginCSRF and ConsentCSRF are
	// the bases of the per-client CSRF cookie names.
	Session     string
	LoginCSRF   string
	ConsentCSRF string
	// DeviceCSRF is the device challenge's CSRF cookie (default
	// gatehouse_device_csrf).
	DeviceCSRF string
	// Domain is empty for host-only cookies.
	Domain string
	Secure bool
	// SameSite defaults to Lax; None implies Secure (browsers drop
	// SameSite=None cookies without it).
	SameSite http.SameSite
}

// Handler serves the authorization endpoint, the challenges and sessions.
type Handler struct {
	clients         Clients
	flows           storage.FlowStore
	loginSessions   storage.LoginSessionStore
	consentSessions storage.ConsentSessionStore
	tokens          Issuer
	keys            Keys
	devices         DeviceGrants
	outbound        *safehttp.Client
	auth            ClientAuthenticator
	dpop            ProofChecker
	logger          *zap.Logger
	now             func() time.Time
	opts            Options

	// recent are the flows this process wrote last (recent.go).
	recent recentFlows
	jar    *cookieJar
}

var _ interface {
	MountPublic(*http.ServeMux)
	MountAdmin(*http.ServeMux)
} = (*Handler)(nil)

// New returns a Handler; every dependency but HTTP, Logger and Now is
// required.
func New(deps Deps, opts Options) (*Handler, error) {
	var missing []string
	for name, isNil := range map[string]bool{
		"Clients": deps.Clients == nil, "Flows": deps.Flows == nil,
		"LoginSessions": deps.LoginSessions == nil, "ConsentSessions": deps.ConsentSessions == nil,
		"Tokens": deps.Tokens == nil, "Keys": deps.Keys == nil, "CookieCipher": deps.CookieCipher == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("flow: Deps is missing %v", missing)
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if opts.Scopes == nil {
		opts.Scopes = oauth2.WildcardScopeStrategy
	}
	if opts.BackchannelAttempts <= 0 {
		opts.BackchannelAttempts = 3
	}
	if opts.BackchannelTimeout <= 0 {
		opts.BackchannelTimeout = 5 * time.Second
	}
	if opts.PAR.Lifespan == 0 {
		opts.PAR.Lifespan = DefaultRequestURILifespan
	}
	if opts.PAR.Lifespan < time.Second || opts.PAR.Lifespan > MaxRequestURILifespan {
		return nil, fmt.Errorf("flow: Options.PAR.Lifespan must be between 1s and %s, got %s", MaxRequestURILifespan, opts.PAR.Lifespan)
	}
	if opts.PAR.Required && deps.Auth == nil {
		return nil, errors.New("flow: Options.PAR.Required needs Deps.Auth (the PAR endpoint)")
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if opts.Cookies.DeviceCSRF == "" {
		opts.Cookies.DeviceCSRF = "gatehouse_device_csrf"
	}
	ck := opts.Cookies
	jar := &cookieJar{cipher: deps.CookieCipher, domain: ck.Domain, path: "/", secure: ck.Secure, sameSite: ck.SameSite, now: deps.Now}
	switch ck.SameSite {
	case http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		jar.secure = true
	default:
		jar.sameSite = http.SameSiteLaxMode
	}
	return &Handler{clients: deps.Clients, flows: deps.Flows, loginSessions: deps.LoginSessions,
		consentSessions: deps.ConsentSessions, tokens: deps.Tokens, keys: deps.Keys, devices: deps.Devices, outbound: deps.HTTP, auth: deps.Auth, dpop: deps.DPoP,
		logger: deps.Logger, now: deps.Now, opts: opts, jar: jar}, nil
}

// MountPublic mounts the authorization, logout and fallback endpoints.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauth2/auth", h.authorize)
	mux.HandleFunc("POST /oauth2/auth", h.authorize)
	mux.HandleFunc("/oauth2/auth", methodNotAllowed(http.MethodGet, http.MethodPost))
	if h.auth != nil {
		mux.HandleFunc("POST "+PARPath, h.pushAuthorizationRequest)
		mux.HandleFunc(PARPath, methodNotAllowed(http.MethodPost))
	}
	mux.HandleFunc("GET /oauth2/sessions/logout", h.logout)
	mux.HandleFunc("POST /oauth2/sessions/logout", h.logout)
	mux.HandleFunc("/oauth2/sessions/logout", methodNotAllowed(http.MethodGet, http.MethodPost))
	mux.HandleFunc("GET /oauth2/fallbacks/error", h.fallbackError)
	mux.HandleFunc("GET /oauth2/fallbacks/login", h.fallbackPage("login", "URLS_LOGIN"))
	mux.HandleFunc("GET /oauth2/fallbacks/consent", h.fallbackPage("consent", "URLS_CONSENT"))
	mux.HandleFunc("GET /oauth2/fallbacks/logout", h.fallbackPage("logout", "URLS_LOGOUT"))
	mux.HandleFunc("GET /oauth2/fallbacks/logout/callback", h.fallbackLoggedOut)
	if h.devices != nil {
		mux.HandleFunc("GET /oauth2/device/verify", h.deviceVerify) // oauth2.DeviceVerifyPath
		mux.HandleFunc("/oauth2/device/verify", methodNotAllowed(http.MethodGet))
		mux.HandleFunc("GET /oauth2/fallbacks/device", h.fallbackPage("device verification", "URLS_DEVICE_VERIFICATION"))
		mux.HandleFunc("GET /oauth2/fallbacks/device/done", h.fallbackDeviceDone)
	}
}

// MountAdmin mounts the challenge and session admin API.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	for _, base := range []string{"/admin/oauth2/auth/requests", "/admin/oauth2/requests"} {
		// Spelled out, not ranged over challengeKinds, so that the route
		// check of docs/apitest can read the patterns.
		for _, kind := range []string{"login", "consent", "logout"} {
			k := challengeKinds[storage.FlowKind(kind)]
			p := base + "/" + kind
			mux.HandleFunc("GET "+p, h.getChallenge(k))
			mux.HandleFunc("PUT "+p+"/accept", h.decideChallenge(k, k.accept))
			mux.HandleFunc("PUT "+p+"/reject", h.decideChallenge(k, k.reject))
			mux.HandleFunc(p, methodNotAllowed(http.MethodGet))
			mux.HandleFunc(p+"/accept", methodNotAllowed(http.MethodPut))
			mux.HandleFunc(p+"/reject", methodNotAllowed(http.MethodPut))
		}
	}
	if h.devices != nil {
		// Hydra v25: the device challenge has no reject; the login and
		// consent apps reject the request.
		dk := challengeKinds[storage.FlowDevice]
		get, accept := h.getChallenge(dk), h.decideChallenge(dk, dk.accept)
		mux.HandleFunc("GET /admin/oauth2/auth/requests/device", get)
		mux.HandleFunc("PUT /admin/oauth2/auth/requests/device/accept", accept)
		mux.HandleFunc("GET /admin/oauth2/requests/device", get)
		mux.HandleFunc("PUT /admin/oauth2/requests/device/accept", accept)
		mux.HandleFunc("/admin/oauth2/auth/requests/device", methodNotAllowed(http.MethodGet))
		mux.HandleFunc("/admin/oauth2/auth/requests/device/accept", methodNotAllowed(http.MethodPut))
		mux.HandleFunc("/admin/oauth2/requests/device", methodNotAllowed(http.MethodGet))
		mux.HandleFunc("/admin/oauth2/requests/device/accept", methodNotAllowed(http.MethodPut))
	}
	sessionIDs := []string{"subject", "client", "sid", "login_session_id"}
	mux.HandleFunc("GET /admin/oauth2/auth/sessions/consent", httpx.Identifiers(h.listConsentSessions, sessionIDs...))
	mux.HandleFunc("DELETE /admin/oauth2/auth/sessions/consent", httpx.Identifiers(h.revokeConsentSessions, sessionIDs...))
	mux.HandleFunc("/admin/oauth2/auth/sessions/consent", methodNotAllowed(http.MethodGet, http.MethodDelete))
	mux.HandleFunc("DELETE /admin/oauth2/auth/sessions/login", httpx.Identifiers(h.revokeLoginSessions, sessionIDs...))
	mux.HandleFunc("/admin/oauth2/auth/sessions/login", methodNotAllowed(http.MethodDelete))
}

func methodNotAllowed(allow ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { httpx.MethodNotAllowed(w, r, allow...) }
}

// The operator's apps, or the built-in fallbacks.
func (h *Handler) loginURL() string {
	return h.orFallback(h.opts.LoginURL, "/oauth2/fallbacks/login")
}
func (h *Handler) registrationURL() string {
	if h.opts.RegistrationURL != "" {
		return h.opts.RegistrationURL
	}
	return h.loginURL()
}
func (h *Handler) consentURL() string {
	return h.orFallback(h.opts.ConsentURL, "/oauth2/fallbacks/consent")
}
func (h *Handler) logoutURL() string {
	return h.orFallback(h.opts.LogoutURL, "/oauth2/fallbacks/logout")
}
func (h *Handler) errorURL() string {
	return h.orFallback(h.opts.ErrorURL, "/oauth2/fallbacks/error")
}
func (h *Handler) postLogoutURL() string {
	return h.orFallback(h.opts.PostLogoutRedirectURL, "/oauth2/fallbacks/logout/callback")
}

func (h *Handler) orFallback(configured, path string) string {
	if configured != "" {
		return configured
	}
	return h.opts.PublicURL + path
}

// withQuery returns base with the parameters added to its query.
func withQuery(base string, params url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// isNotFound reports a storage miss.
func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// logFlowError logs a failure that only the operator can fix.
func (h *Handler) logFlowError(msg string, err error) {
	h.logger.Warn(msg, zap.Error(err))
}
