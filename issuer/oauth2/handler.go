// Package oauth2 is the issuer's token side: the token endpoint with one
// file per grant (client_credentials, RFC 7523 jwt-bearer; authorization_code
// and refresh_token plug in the same way), opaque and RFC 9068 JWT access
// tokens, RFC 7662 introspection, RFC 7009 revocation, bulk revocation and
// flushing of expired tokens, and Hydra's trust API for jwt-bearer issuers.
//
// Routes (Hydra v2 paths):
//
//	public  POST   /oauth2/token
//	public  POST   /oauth2/revoke
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
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
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

// Handler serves the token, revocation, introspection, token admin and
// trust routes. Set the fields, then call Init (MountPublic and MountAdmin
// call it too and panic on a missing dependency, a programming error).
type Handler struct {
	Config *config.Config
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
	MAC    MACer
	Logger *zap.Logger
	Now    func() time.Time
	// IssuerURL is the iss of tokens and introspection; default
	// Config.URLs.Self.Issuer as configured.
	IssuerURL string

	once    sync.Once
	initErr error
	grants  map[string]grantHandler
	scopes  ScopeStrategy
	// assertionAudiences are the accepted aud values of RFC 7523
	// assertions: the token endpoint URLs and the issuer.
	assertionAudiences []string
	// defaultAudience is the audience of access tokens granted none:
	// oauth2.default_access_token_audience, else IssuerURL.
	defaultAudience []string
	// presign mints the code exchanges' tokens ahead (presign.go), or
	// nothing when oauth2.presigning.enabled is off.
	presign presigner
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
		"Config": h.Config == nil, "Clients": h.Clients == nil, "Auth": h.Auth == nil,
		"Tokens": h.Tokens == nil, "Trust": h.Trust == nil, "Nonces": h.Nonces == nil,
		"Signer": h.Signer == nil, "MAC": h.MAC == nil,
	} {
		if isNil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return fmt.Errorf("oauth2: Handler is missing %v", missing)
	}
	if h.Logger == nil {
		h.Logger = zap.NewNop()
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.IssuerURL == "" {
		h.IssuerURL = h.Config.URLs.Self.Issuer
	}
	if h.IssuerURL == "" {
		return errors.New("oauth2: IssuerURL (urls.self.issuer) is required")
	}
	h.defaultAudience = h.Config.OAuth2.DefaultAccessTokenAudience
	if len(h.defaultAudience) == 0 {
		h.defaultAudience = []string{h.IssuerURL}
	}
	h.scopes = ScopeStrategyFor(h.Config.Strategies.Scope)
	h.presign = noPresigner{}
	if h.Config.OAuth2.Presigning.Enabled {
		h.presign = newCodePresigner(h)
	}
	iss := trimSlash(h.IssuerURL)
	h.assertionAudiences = uniq([]string{
		h.Config.PublicURL() + "/oauth2/token", iss + "/oauth2/token", iss, iss + "/",
	})
	// One entry per grant type; authorization_code and refresh_token are
	// added here by their own files.
	h.grants = map[string]grantHandler{
		client.GrantClientCredentials: &clientCredentialsGrant{h: h},
		client.GrantJWTBearer:         &jwtBearerGrant{h: h},
		client.GrantAuthorizationCode: &authorizationCodeGrant{h: h},
		client.GrantRefreshToken:      &refreshTokenGrant{h: h},
	}
	return nil
}

// GrantTypes returns the grant types the token endpoint implements, for
// discovery's grant_types_supported.
func (h *Handler) GrantTypes() []string {
	if err := h.Init(); err != nil {
		return nil
	}
	out := make([]string, 0, len(h.grants))
	for g := range h.grants {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (h *Handler) mustInit() {
	if err := h.Init(); err != nil {
		panic(err)
	}
}

// MountPublic mounts the token and revocation endpoints.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	h.mustInit()
	mux.HandleFunc("POST /oauth2/token", h.token)
	mux.HandleFunc("/oauth2/token", methodNotAllowed(http.MethodPost))
	mux.HandleFunc("POST /oauth2/revoke", h.revoke)
	mux.HandleFunc("/oauth2/revoke", methodNotAllowed(http.MethodPost))
	mux.HandleFunc("GET /userinfo", h.userinfo)
	mux.HandleFunc("POST /userinfo", h.userinfo)
	mux.HandleFunc("/userinfo", methodNotAllowed(http.MethodGet, http.MethodPost))
}

// MountAdmin mounts introspection, token administration and the trust API.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	h.mustInit()
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
	c, err := h.Auth.Authenticate(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	req.Client = c
	// RFC 6749 §5.2 unauthorized_client: the client is not allowed this grant type.
	if !c.HasGrantType(req.GrantType) {
		return nil, apierr.UnauthorizedClient("The OAuth 2.0 Client is not allowed to use the authorization grant %q", req.GrantType)
	}
	return g.handle(ctx, req)
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
