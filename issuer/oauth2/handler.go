// Package oauth2 is the issuer's token side: the token endpoint with one
// file per grant (authorization_code, refresh_token, client_credentials,
// RFC 7523 jwt-bearer, RFC 8693 token exchange), the code and tokens of a granted authorization
// request (authorize.go), opaque and RFC 9068 JWT access tokens, ID tokens,
// userinfo, RFC 7662 introspection, RFC 7009 revocation, bulk revocation
// and flushing of expired tokens, and Hydra's trust API for jwt-bearer
// issuers.
//
// Routes (Hydra v2 paths):
//
//	public  POST   /oauth2/token
//	public  POST   /oauth2/revoke
//	public  GET    /userinfo (and POST)
//	public  POST   /oauth2/device/auth
//	admin   POST   /admin/oauth2/introspect
//	admin   DELETE /admin/oauth2/tokens?client_id=
//	admin   POST   /admin/oauth2/flush
//	admin   POST   /admin/trust/grants/jwt-bearer/issuers
//	admin   GET    /admin/trust/grants/jwt-bearer/issuers
//	admin   GET    /admin/trust/grants/jwt-bearer/issuers/{id}
//	admin   DELETE /admin/trust/grants/jwt-bearer/issuers/{id}
package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// AccessTokenKeySet is the key set JWT access tokens are signed with
// (Hydra's name).
const AccessTokenKeySet = "hydra.jwt.access-token"

// Signer signs JWT access tokens: a compact JWS over payload with the newest
// key of set, the header carrying alg, kid and typ (issuer/keys.Manager).
type Signer interface {
	Sign(ctx context.Context, set, typ string, payload []byte) (string, error)
}

// MACer computes and checks the MACs of opaque tokens under keys derived
// from the system secrets (issuer/secrets.Keyring): MAC uses the first
// secret, VerifyMAC accepts any (secret rotation).
type MACer interface {
	MAC(purpose string, data []byte) []byte
	VerifyMAC(purpose string, data, mac []byte) bool
}

// Deps are what the Handler works with.
type Deps struct {
	// Clients resolves the client of a token at introspection: tokens of a
	// deleted client are inactive.
	Clients *client.Manager
	// Auth authenticates clients at the token and revocation endpoints.
	Auth   *client.Authenticator
	Tokens storage.TokenStore
	// Trust holds the RFC 7523 jwt-bearer issuers.
	Trust storage.TrustStore
	// Nonces remembers the jti of jwt-bearer assertions (replay).
	Nonces storage.NonceStore
	// Signer signs JWT access tokens with the AccessTokenKeySet.
	Signer Signer
	// MAC signs opaque tokens.
	MAC MACer
	// TokenHooks are called in order before every token endpoint
	// response (tokenhook.go); none: no hook.
	TokenHooks []TokenHook
	// Logger defaults to a no-op logger, Now to time.Now.
	Logger *zap.Logger
	Now    func() time.Time
}

// Options are the token side's settings.
type Options struct {
	// IssuerURL is the iss of tokens and introspection, used exactly as
	// given (a trailing slash stays). Required.
	IssuerURL string
	// PublicURL is the base URL of the public endpoints, without a
	// trailing slash; default IssuerURL without its trailing slash.
	PublicURL string
	// IntrospectionURL is advertised as introspection_endpoint when set:
	// introspection itself is on the admin listener only, so this names a
	// URL clients can reach (e.g. the sidecar's).
	IntrospectionURL string

	// The lifespans of what the grants issue, unless the client sets its
	// own for the grant. Each must be positive.
	AccessTokenLifespan       time.Duration
	IDTokenLifespan           time.Duration
	RefreshTokenLifespan      time.Duration
	AuthorizationCodeLifespan time.Duration

	// AccessTokenStrategy is the format of access tokens of clients that
	// set none: "opaque" (default) or "jwt".
	AccessTokenStrategy string
	// ScopeStrategy is how a requested scope is matched against the
	// allowed ones: "wildcard" (default) or "exact" (ScopeStrategyFor).
	ScopeStrategy string
	// JWTScopeClaim is how JWT access tokens carry scopes: "both"
	// (default: scope and scp), "string" (RFC 9068 scope) or "list"
	// (Hydra's scp).
	JWTScopeClaim string
	// AllowedTopLevelClaims are the session claims copied to the top level
	// of JWT access tokens (they are always under ext);
	// MirrorTopLevelClaims keeps them under ext as well.
	AllowedTopLevelClaims []string
	MirrorTopLevelClaims  bool
	// ClientIDInAudience adds the client id to the aud of JWT access
	// tokens.
	ClientIDInAudience bool
	// DefaultAccessTokenAudience is the audience of access tokens granted
	// none (RFC 9068 requires one); default [IssuerURL].
	DefaultAccessTokenAudience []string
	// Presigning signs the tokens of an openid code exchange when the
	// code is issued (presign.go).
	Presigning bool
	// RefreshTokenRotationGracePeriod is how long a used refresh token may
	// be used again without revoking its chain (0: never).
	RefreshTokenRotationGracePeriod time.Duration
	// RefreshTokenRotationGraceReuseCount bounds how many times a used
	// refresh token may be used again within the grace period (0: no
	// bound); the reuse after the last allowed one revokes the chain.
	RefreshTokenRotationGraceReuseCount int
	// JWTBearer are the RFC 7523 assertion rules.
	JWTBearer JWTBearerOptions
	// DPoP are the RFC 9449 proof rules (dpop.go).
	DPoP DPoPOptions
	// Device is the RFC 8628 device authorization grant (device.go).
	Device DeviceOptions
	// FAPI applies the FAPI 2.0 profile (fapi.go) to every client, not
	// only to those with fapi_profile "2.0".
	FAPI bool
	// FAPIRefreshTokenRotation rotates the refresh tokens of confidential
	// FAPI clients too (fapi.go: by default they are kept).
	FAPIRefreshTokenRotation bool
	// MTLS is where client certificates come from, and the mutual-TLS
	// endpoint alias base URL (mtls.go).
	MTLS MTLSOptions
}

// JWTBearerOptions are the rules for RFC 7523 assertions.
type JWTBearerOptions struct {
	// JTIOptional accepts assertions without jti (no replay protection),
	// IATOptional without iat.
	JTIOptional bool
	IATOptional bool
	// MaxLifetime bounds exp minus now; it must be positive.
	MaxLifetime time.Duration
}

// Handler serves the token, revocation, userinfo, introspection, token
// admin and trust routes. Build it with New.
type Handler struct {
	clients *client.Manager
	auth    *client.Authenticator
	tokens  storage.TokenStore
	trust   storage.TrustStore
	nonces  storage.NonceStore
	signer  Signer
	mac     MACer
	log     *zap.Logger
	now     func() time.Time
	opts    Options

	grants map[string]grantHandler
	scopes ScopeStrategy
	// assertionAudiences are the accepted aud values of RFC 7523
	// assertions: the token endpoint URLs and the issuer.
	assertionAudiences []string
	// presign mints the code exchanges' tokens ahead (presign.go), or
	// nothing when Options.Presigning is off.
	presign presigner
	// hooks are Deps.TokenHooks.
	hooks []TokenHook
}

var _ interface {
	MountPublic(*http.ServeMux)
	MountAdmin(*http.ServeMux)
} = (*Handler)(nil)

// New checks the dependencies and options and returns the Handler.
func New(d Deps, o Options) (*Handler, error) {
	var missing []string
	for name, isNil := range map[string]bool{
		"Clients": d.Clients == nil, "Auth": d.Auth == nil, "Tokens": d.Tokens == nil,
		"Trust": d.Trust == nil, "Nonces": d.Nonces == nil, "Signer": d.Signer == nil, "MAC": d.MAC == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("oauth2: Deps is missing %v", missing)
	}
	if o.IssuerURL == "" {
		return nil, errors.New("oauth2: Options.IssuerURL is required")
	}
	for name, d := range map[string]time.Duration{
		"AccessTokenLifespan": o.AccessTokenLifespan, "IDTokenLifespan": o.IDTokenLifespan,
		"RefreshTokenLifespan": o.RefreshTokenLifespan, "AuthorizationCodeLifespan": o.AuthorizationCodeLifespan,
		"JWTBearer.MaxLifetime": o.JWTBearer.MaxLifetime,
	} {
		if d <= 0 {
			return nil, fmt.Errorf("oauth2: Options.%s must be positive, got %s", name, d)
		}
	}
	if o.DPoP.ProofMaxAge <= 0 {
		o.DPoP.ProofMaxAge = defaultDPoPProofMaxAge
	}
	if o.DPoP.NonceLifespan <= 0 {
		o.DPoP.NonceLifespan = defaultDPoPNonceLifespan
	}
	if err := o.Device.defaults(); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	iss := trimSlash(o.IssuerURL)
	if o.PublicURL == "" {
		o.PublicURL = iss
	}
	if len(o.DefaultAccessTokenAudience) == 0 {
		o.DefaultAccessTokenAudience = []string{o.IssuerURL}
	}
	h := &Handler{
		clients: d.Clients, auth: d.Auth, tokens: d.Tokens, trust: d.Trust, nonces: d.Nonces,
		signer: d.Signer, mac: d.MAC, log: d.Logger, now: d.Now, opts: o,
		scopes: ScopeStrategyFor(o.ScopeStrategy),
		assertionAudiences: uniq([]string{
			trimSlash(o.PublicURL) + "/oauth2/token", iss + "/oauth2/token", iss, iss + "/",
		}),
		presign: noPresigner{},
		hooks:   d.TokenHooks,
	}
	// With a hook no exchange uses what was signed ahead, so nothing is.
	if o.Presigning && (presignCase{Hooked: len(h.hooks) > 0}).usesPresigned() {
		h.presign = newCodePresigner(h)
	}
	// One entry per grant type, each implemented in its own file.
	h.grants = map[string]grantHandler{
		client.GrantClientCredentials: &clientCredentialsGrant{h: h},
		client.GrantJWTBearer:         &jwtBearerGrant{h: h},
		client.GrantAuthorizationCode: &authorizationCodeGrant{h: h},
		client.GrantRefreshToken:      &refreshTokenGrant{h: h},
		client.GrantDeviceCode:        &deviceCodeGrant{h: h},
		client.GrantTokenExchange:     &tokenExchangeGrant{h: h},
	}
	return h, nil
}

// GrantTypes returns the grant types the token endpoint implements, for
// discovery's grant_types_supported.
func (h *Handler) GrantTypes() []string {
	out := make([]string, 0, len(h.grants))
	for g := range h.grants {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// MountPublic mounts the token, revocation and userinfo endpoints.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth2/token", h.token)
	mux.HandleFunc("/oauth2/token", methodNotAllowed(http.MethodPost))
	mux.HandleFunc("POST /oauth2/revoke", h.revoke)
	mux.HandleFunc("/oauth2/revoke", methodNotAllowed(http.MethodPost))
	mux.HandleFunc("GET /userinfo", h.userinfo)
	mux.HandleFunc("POST /userinfo", h.userinfo)
	mux.HandleFunc("/userinfo", methodNotAllowed(http.MethodGet, http.MethodPost))
	mux.HandleFunc("POST /oauth2/device/auth", h.deviceAuthorization) // DevicePath
	mux.HandleFunc("/oauth2/device/auth", methodNotAllowed(http.MethodPost))
}

// MountAdmin mounts introspection, token administration and the trust API.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/oauth2/introspect", h.introspect)
	mux.HandleFunc("/admin/oauth2/introspect", methodNotAllowed(http.MethodPost))
	mux.HandleFunc("DELETE /admin/oauth2/tokens", httpx.Identifiers(h.deleteClientTokens, "client_id"))
	mux.HandleFunc("/admin/oauth2/tokens", methodNotAllowed(http.MethodDelete))
	mux.HandleFunc("POST /admin/oauth2/flush", h.flush)
	mux.HandleFunc("/admin/oauth2/flush", methodNotAllowed(http.MethodPost))

	mux.HandleFunc("POST "+trustPath, h.trustCreate)
	mux.HandleFunc("GET "+trustPath, httpx.Identifiers(h.trustList, "issuer"))
	mux.HandleFunc(trustPath, methodNotAllowed(http.MethodGet, http.MethodPost))
	mux.HandleFunc("GET "+trustPath+"/{id}", httpx.Identifiers(h.trustGet))
	mux.HandleFunc("DELETE "+trustPath+"/{id}", httpx.Identifiers(h.trustDelete))
	mux.HandleFunc(trustPath+"/{id}", methodNotAllowed(http.MethodGet, http.MethodDelete))
}

// methodNotAllowed answers any other method with a JSON 405 and Allow.
func methodNotAllowed(allow ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		httpx.MethodNotAllowed(w, r, allow...)
	}
}

// token is the token endpoint (RFC 6749 §3.2). The request is parsed once;
// the grant type is looked up before the (deliberately slow) client
// authentication; the grant handler then decides.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	resp, err := h.handleToken(ctx, w, r)
	h.setDPoPNonce(w)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// RFC 6749 §5.1: Cache-Control: no-store and Pragma: no-cache (set by
	// WriteJSON on every API response).
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (h *Handler) handleToken(ctx context.Context, w http.ResponseWriter, r *http.Request) (*tokenResponse, error) {
	if err := httpx.ParseForm(w, r); err != nil {
		return nil, err
	}
	// RFC 6749 §3.2: parameters are sent in the request body; the query
	// is ignored (credentials must never travel in a URL).
	req, err := parseTokenRequest(r.PostForm)
	if err != nil {
		return nil, err
	}
	g, ok := h.grants[req.GrantType]
	if !ok {
		return nil, apierr.UnsupportedGrantType("The authorization grant type %q is not supported by this server", truncate(req.GrantType))
	}
	c, err := h.auth.Authenticate(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	req.Client = c
	// RFC 6749 §5.2 unauthorized_client: the client is not allowed this grant type.
	if !c.HasGrantType(req.GrantType) {
		return nil, apierr.UnauthorizedClient("The OAuth 2.0 Client is not allowed to use the authorization grant %q", req.GrantType)
	}
	// RFC 9449 §5: a DPoP proof is accepted with every grant.
	if req.DPoP, err = h.tokenProof(ctx, r, c.DPoPBoundAccessTokens); err != nil {
		return nil, err
	}
	if req.X5T, err = h.certBinding(r, c); err != nil {
		return nil, err
	}
	if c.FAPI(h.opts.FAPI) {
		if err := h.checkFAPI(req); err != nil {
			return nil, err
		}
	}
	return g.handle(h.withHookedRequest(ctx, req, r.PostForm), req)
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

func uniq(in []string) []string {
	out := in[:0:0]
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
