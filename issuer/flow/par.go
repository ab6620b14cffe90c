package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Pushed authorization requests (RFC 9126): the PAR endpoint stores a
// validated authorization request and answers a request_uri that the
// authorization endpoint then takes in its place, once.

// PARPath is the pushed authorization request endpoint.
const PARPath = "/oauth2/par"

// RequestURIPrefix starts every request_uri the PAR endpoint issues
// (RFC 9126 §2.2 uses the URN namespace of RFC 9101 §8.1's registry).
// Such a request_uri is looked up in storage, never fetched.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Bounds of Options.PAR.Lifespan.
const (
	// DefaultRequestURILifespan is RFC 9126 §2.2's example expires_in.
	DefaultRequestURILifespan = time.Minute
	// MaxRequestURILifespan: §2.2, "typically ... between 5 and 600
	// seconds".
	MaxRequestURILifespan = 10 * time.Minute
)

// requestURIRandomBytes is the entropy of a request_uri: 256 bits, so it
// cannot be guessed within its lifetime (RFC 9126 §7.1, RFC 6819
// §5.1.4.2.2).
const requestURIRandomBytes = 32

// PAR are the settings of pushed authorization requests.
type PAR struct {
	// Required refuses every authorization request that does not come
	// through the PAR endpoint (RFC 9126 §5
	// require_pushed_authorization_requests); a client can require it for
	// itself (§6).
	Required bool
	// Lifespan is how long a request_uri can be used; default
	// DefaultRequestURILifespan, at most MaxRequestURILifespan.
	Lifespan time.Duration
}

// ClientAuthenticator authenticates the client of a direct request as the
// token endpoint does (issuer/client.Authenticator).
type ClientAuthenticator interface {
	Authenticate(ctx context.Context, r *http.Request, form url.Values) (*client.Client, error)
}

// clientAuthParams serve only client authentication (RFC 9126 §2.1: "they
// are relied upon only for client authentication and are not germane to
// the authorization request itself"), so they are never stored.
var clientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

// pushedRequest is a stored pushed request (storage.Flow.Data).
type pushedRequest struct {
	// Params are the authorization request's parameters as the PAR
	// endpoint resolved them: the form without client authentication,
	// with a request object's members in place. Every parameter is kept,
	// those this package does not know included.
	Params url.Values `json:"params"`
}

// parResponse is RFC 9126 §2.2's answer.
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// pushAuthorizationRequest is the PAR endpoint (RFC 9126 §2). Errors are
// the token endpoint's JSON errors (§2.3).
func (h *Handler) pushAuthorizationRequest(w http.ResponseWriter, r *http.Request) {
	resp, err := h.push(r.Context(), w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, resp)
}

func (h *Handler) push(ctx context.Context, w http.ResponseWriter, r *http.Request) (*parResponse, error) {
	// §2.1: the parameters are in the POST body; a body that is too large
	// is a 413 (§2.3).
	if err := httpx.ParseForm(w, r); err != nil {
		return nil, err
	}
	form := r.PostForm
	// §2: "require client authentication for confidential clients (or
	// any client that has credentials)", with the token endpoint's rules
	// and methods (§2.1); a public client sends its client_id.
	c, err := h.auth.Authenticate(ctx, r, form)
	if err != nil {
		return nil, err
	}
	// §2.1: "The request_uri authorization request parameter is one
	// exception, and it MUST NOT be provided."
	if _, ok := form["request_uri"]; ok {
		return nil, apierr.InvalidRequest("The request_uri parameter must not be sent to the pushed authorization request endpoint (RFC 9126 §2.1)")
	}
	params := url.Values{}
	for k, vs := range form {
		if !slices.Contains(clientAuthParams, k) {
			params[k] = slices.Clone(vs)
		}
	}
	// The authenticator checked that a client_id in the body names the
	// authenticated client; without one (HTTP Basic, an assertion) the
	// authenticated client is the request's.
	if params.Get("client_id") == "" {
		params.Set("client_id", c.ID)
	}
	// §2: "validate the pushed request as it would an authorization
	// request sent to the authorization endpoint". Where the
	// authorization endpoint would show its error page, the client gets
	// the error here (§2.3: invalid_request for a bad redirect URI).
	a, err := h.resolve(ctx, params)
	if err != nil {
		return nil, err
	}
	if a.client.ID != c.ID {
		return nil, apierr.InvalidRequest("The client_id of the request does not name the authenticated client")
	}
	a.pushed = true
	if err := h.validate(a); err != nil {
		return nil, err
	}
	if err := h.bindPushedDPoP(ctx, r, a); err != nil {
		return nil, err
	}
	random := randomToken(requestURIRandomBytes)
	now := h.now().UTC()
	data, err := json.Marshal(pushedRequest{Params: a.params})
	if err != nil {
		return nil, apierr.ServerError(err)
	}
	f := storage.Flow{Kind: storage.FlowPushedRequest, ID: hashOf(random), ClientID: c.ID, Status: statusPending,
		CreatedAt: now, ExpiresAt: now.Add(h.opts.PAR.Lifespan), Data: data}
	if err := h.flows.Create(ctx, f); err != nil {
		return nil, apierr.ServerError(fmt.Errorf("flow: storing a pushed authorization request: %w", err))
	}
	return &parResponse{RequestURI: RequestURIPrefix + random, ExpiresIn: int64(h.opts.PAR.Lifespan / time.Second)}, nil
}

// isPushedRequestURI reports whether an authorization request names a
// pushed request.
func isPushedRequestURI(form url.Values) bool {
	return strings.HasPrefix(form.Get("request_uri"), RequestURIPrefix)
}

func invalidRequestURI(format string, args ...any) pageError {
	return pageError{&apierr.Error{Code: "invalid_request_uri", Status: http.StatusBadRequest,
		Description: fmt.Sprintf(format, args...)}}
}

// usePushed returns the parameters of the pushed request that form's
// request_uri names and consumes it (RFC 9126 §4). The authorization
// request is then the pushed one: RFC 9126 §4 builds it "as defined in
// [RFC9101]", whose §5 has the authorization server "only use the
// parameters in the Request Object even if the same parameter is provided
// in the query parameter", so every parameter besides client_id and
// request_uri is ignored. Errors are for the error page: until the pushed
// request is read there is no redirect URI to trust.
func (h *Handler) usePushed(ctx context.Context, form url.Values) (url.Values, error) {
	for _, name := range []string{"client_id", "request_uri"} {
		if len(form[name]) > 1 {
			return nil, pageError{apierr.InvalidRequest("The parameter %q must not be included more than once", name)}
		}
	}
	clientID := form.Get("client_id")
	// RFC 9101 §5: client_id is REQUIRED beside request_uri.
	if clientID == "" {
		return nil, pageError{apierr.InvalidRequest("The client_id parameter is missing")}
	}
	random := strings.TrimPrefix(form.Get("request_uri"), RequestURIPrefix)
	if len(random) != b64.EncodedLen(requestURIRandomBytes) {
		return nil, invalidRequestURI("The request_uri was not issued by this server")
	}
	id := hashOf(random)
	f, err := h.flows.Get(ctx, storage.FlowPushedRequest, id)
	if isNotFound(err) {
		return nil, invalidRequestURI("The request_uri is unknown or has already been used")
	}
	if err != nil {
		return nil, pageError{apierr.ServerError(err)}
	}
	// RFC 9101 §6.3 and RFC 9126 §4: the request is the client's own.
	// Another client's request_uri is refused and left for its owner.
	if f.ClientID != clientID {
		return nil, invalidRequestURI("The request_uri was pushed by another client")
	}
	// RFC 9126 §4: "An expired request_uri MUST be rejected as invalid."
	if !h.now().Before(f.ExpiresAt) {
		return nil, invalidRequestURI("The request_uri has expired")
	}
	// §4: "Authorization servers SHOULD treat request_uri values as
	// one-time use": whoever deletes it first uses it.
	err = h.flows.Delete(ctx, storage.FlowPushedRequest, id)
	if isNotFound(err) {
		return nil, invalidRequestURI("The request_uri is unknown or has already been used")
	}
	if err != nil {
		return nil, pageError{apierr.ServerError(err)}
	}
	var p pushedRequest
	if err := json.Unmarshal(f.Data, &p); err != nil || p.Params.Get("client_id") != clientID {
		return nil, pageError{apierr.ServerError(errors.Join(errors.New("flow: a stored pushed authorization request is unreadable"), err))}
	}
	return p.Params, nil
}
