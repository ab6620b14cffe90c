// Package flow is the browser side of the issuer: the authorization
// endpoint (RFC 6749 §3.1, OpenID Connect Core §3), Hydra v2's headless
// login, consent and logout challenges with their admin API, the issuer's
// own cookies (login session, CSRF), RP-initiated logout with front- and
// back-channel logout, the session admin API and the fallback pages.
//
// Routes (Hydra v2 paths):
//
//	public GET|POST /oauth2/auth
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
package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Issuer issues the authorization response's code and tokens and revokes
// the tokens of a grant (issuer/oauth2.Handler).
type Issuer interface {
	Authorize(ctx context.Context, a *oauth2.Authorization) (url.Values, error)
	RevokeRequest(ctx context.Context, clientID, requestID string) error
}

// Keys signs logout tokens and verifies id_token_hint against the ID token
// key set (issuer/keys.Manager).
type Keys interface {
	Sign(ctx context.Context, set, typ string, payload []byte) (string, error)
	PublicKeys(ctx context.Context, sets ...string) (jwk.Set, error)
}

// Handler serves the authorization endpoint, the challenges and sessions.
// Set the fields, then call Init (the Mount methods call it and panic on a
// missing dependency, a programming error).
type Handler struct {
	Config          *config.Config
	Clients         *client.Manager
	Flows           storage.FlowStore
	LoginSessions   storage.LoginSessionStore
	ConsentSessions storage.ConsentSessionStore
	Tokens          Issuer
	Keys            Keys
	// Cookies encrypts the issuer's cookies (a secrets.Keyring over
	// SECRETS_COOKIE).
	Cookies Cipher
	// HTTP posts back-channel logout tokens; nil disables back-channel
	// logout (then it is not advertised either).
	HTTP *safehttp.Client
	// BackchannelAttempts and BackchannelTimeout bound the delivery of one
	// logout token (defaults 3 and 5s per attempt; 10s for all of them).
	BackchannelAttempts int
	BackchannelTimeout  time.Duration
	Logger              *zap.Logger
	Now                 func() time.Time

	once    sync.Once
	initErr error
	// recent are the flows this process wrote last (recent.go).
	recent recentFlows
	jar    *cookieJar
	scopes oauth2.ScopeStrategy
	issuer string
	public string
}

var _ interface {
	MountPublic(*http.ServeMux)
	MountAdmin(*http.ServeMux)
} = (*Handler)(nil)

// Init checks the dependencies and fills defaults. It is idempotent.
func (h *Handler) Init() error {
	h.once.Do(func() { h.initErr = h.init() })
	return h.initErr
}

func (h *Handler) init() error {
	var missing []string
	for name, isNil := range map[string]bool{
		"Config": h.Config == nil, "Clients": h.Clients == nil, "Flows": h.Flows == nil,
		"LoginSessions": h.LoginSessions == nil, "ConsentSessions": h.ConsentSessions == nil,
		"Tokens": h.Tokens == nil, "Keys": h.Keys == nil, "Cookies": h.Cookies == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return fmt.Errorf("flow: Handler is missing %v", missing)
	}
	if h.Logger == nil {
		h.Logger = zap.NewNop()
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.BackchannelAttempts <= 0 {
		h.BackchannelAttempts = 3
	}
	if h.BackchannelTimeout <= 0 {
		h.BackchannelTimeout = 5 * time.Second
	}
	h.issuer = h.Config.URLs.Self.Issuer
	h.public = h.Config.PublicURL()
	h.scopes = oauth2.ScopeStrategyFor(h.Config.Strategies.Scope)
	ck := h.Config.Serve.Cookies
	h.jar = &cookieJar{cipher: h.Cookies, domain: ck.Domain, path: "/", secure: h.secureCookies()}
	switch ck.SameSiteMode {
	case "Strict":
		h.jar.sameSite = http.SameSiteStrictMode
	case "None":
		h.jar.sameSite = http.SameSiteNoneMode
		// Browsers drop SameSite=None cookies without Secure.
		h.jar.secure = true
	default:
		h.jar.sameSite = http.SameSiteLaxMode
	}
	return nil
}

// secureCookies decides the Secure attribute: serve.cookies.secure when
// set; else on, except for --dev with a plain-http issuer (where a Secure
// cookie could not come back from a non-loopback host). Browsers (and
// Go's cookie jar) treat loopback hosts as secure origins, so Secure
// cookies work on http://127.0.0.1 too.
func (h *Handler) secureCookies() bool {
	if s := h.Config.Serve.Cookies.Secure; s != nil {
		return *s
	}
	u, err := url.Parse(h.issuer)
	if err == nil && u.Scheme == "http" && h.Config.Dev {
		return false
	}
	return true
}

func (h *Handler) mustInit() {
	if err := h.Init(); err != nil {
		panic(err)
	}
}

// MountPublic mounts the authorization, logout and fallback endpoints.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	h.mustInit()
	mux.HandleFunc("GET /oauth2/auth", h.authorize)
	mux.HandleFunc("POST /oauth2/auth", h.authorize)
	mux.HandleFunc("/oauth2/auth", methodNotAllowed(http.MethodGet, http.MethodPost))
	mux.HandleFunc("GET /oauth2/sessions/logout", h.logout)
	mux.HandleFunc("POST /oauth2/sessions/logout", h.logout)
	mux.HandleFunc("/oauth2/sessions/logout", methodNotAllowed(http.MethodGet, http.MethodPost))
	mux.HandleFunc("GET /oauth2/fallbacks/error", h.fallbackError)
	mux.HandleFunc("GET /oauth2/fallbacks/login", h.fallbackPage("login", "URLS_LOGIN"))
	mux.HandleFunc("GET /oauth2/fallbacks/consent", h.fallbackPage("consent", "URLS_CONSENT"))
	mux.HandleFunc("GET /oauth2/fallbacks/logout", h.fallbackPage("logout", "URLS_LOGOUT"))
	mux.HandleFunc("GET /oauth2/fallbacks/logout/callback", h.fallbackLoggedOut)
}

// MountAdmin mounts the challenge and session admin API.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	h.mustInit()
	for _, base := range []string{"/admin/oauth2/auth/requests", "/admin/oauth2/requests"} {
		mux.HandleFunc("GET "+base+"/login", h.getLogin)
		mux.HandleFunc("PUT "+base+"/login/accept", h.acceptLogin)
		mux.HandleFunc("PUT "+base+"/login/reject", h.rejectLogin)
		mux.HandleFunc("GET "+base+"/consent", h.getConsent)
		mux.HandleFunc("PUT "+base+"/consent/accept", h.acceptConsent)
		mux.HandleFunc("PUT "+base+"/consent/reject", h.rejectConsent)
		mux.HandleFunc("GET "+base+"/logout", h.getLogout)
		mux.HandleFunc("PUT "+base+"/logout/accept", h.acceptLogout)
		mux.HandleFunc("PUT "+base+"/logout/reject", h.rejectLogout)
		for _, p := range []string{"/login", "/consent", "/logout"} {
			mux.HandleFunc(base+p, methodNotAllowed(http.MethodGet))
			mux.HandleFunc(base+p+"/accept", methodNotAllowed(http.MethodPut))
			mux.HandleFunc(base+p+"/reject", methodNotAllowed(http.MethodPut))
		}
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
	return h.orFallback(h.Config.URLs.Login, "/oauth2/fallbacks/login")
}
func (h *Handler) consentURL() string {
	return h.orFallback(h.Config.URLs.Consent, "/oauth2/fallbacks/consent")
}
func (h *Handler) logoutURL() string {
	return h.orFallback(h.Config.URLs.Logout, "/oauth2/fallbacks/logout")
}
func (h *Handler) errorURL() string {
	return h.orFallback(h.Config.URLs.Error, "/oauth2/fallbacks/error")
}
func (h *Handler) postLogoutURL() string {
	return h.orFallback(h.Config.URLs.PostLogoutRedirect, "/oauth2/fallbacks/logout/callback")
}

func (h *Handler) orFallback(configured, path string) string {
	if configured != "" {
		return configured
	}
	return h.public + path
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
