package client

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// Pagination of GET /admin/clients (Hydra v2: page_size and page_token).
const (
	DefaultPageSize = 250
	MaxPageSize     = 500
)

// Handler serves the admin client API (MountAdmin, Hydra v2 wire format)
// and, when Options.Registration.Enabled, RFC 7591/7592 dynamic client
// registration on the public listener (MountPublic).
type Handler struct {
	manager *Manager
	reg     RegistrationOptions
}

// Deps are the Handler's collaborators.
type Deps struct {
	Manager *Manager
}

// Options configure the Handler.
type Options struct {
	// Registration configures dynamic client registration.
	Registration RegistrationOptions
}

// RegistrationOptions configure dynamic client registration
// (oidc.dynamic_client_registration).
type RegistrationOptions struct {
	// Enabled mounts /oauth2/register on the public listener.
	Enabled bool
	// DefaultScope is given to clients that request no scope.
	DefaultScope []string
	// PublicURL is the public base URL (urls.self.public, else the
	// issuer); registration_client_uri is PublicURL/oauth2/register/{id}.
	PublicURL string
}

// registrationPath is the RFC 7591 client registration endpoint.
const registrationPath = "/oauth2/register"

// New returns the Handler; registration needs the public URL.
func New(d Deps, o Options) (*Handler, error) {
	if d.Manager == nil {
		return nil, errors.New("client: Handler needs a Manager")
	}
	if o.Registration.Enabled && o.Registration.PublicURL == "" {
		return nil, errors.New("client: dynamic client registration needs the public URL")
	}
	return &Handler{manager: d.Manager, reg: o.Registration}, nil
}

// MountAdmin mounts the admin client routes.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/clients", h.create)
	mux.HandleFunc("GET /admin/clients", httpx.Identifiers(h.list, "client_name", "owner"))
	mux.HandleFunc("GET /admin/clients/{id}", httpx.Identifiers(h.get))
	mux.HandleFunc("PUT /admin/clients/{id}", httpx.Identifiers(h.put))
	mux.HandleFunc("PATCH /admin/clients/{id}", httpx.Identifiers(h.patch))
	mux.HandleFunc("DELETE /admin/clients/{id}", httpx.Identifiers(h.delete))
	mux.HandleFunc("PUT /admin/clients/{id}/lifespans", httpx.Identifiers(h.lifespans))
	mux.HandleFunc("POST /admin/clients/{id}/secrets/rotate", httpx.Identifiers(h.rotate))
	mux.HandleFunc("DELETE /admin/clients/{id}/secrets/rotate", httpx.Identifiers(h.finalizeRotation))
}

// MountPublic mounts dynamic client registration when enabled.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	if !h.reg.Enabled {
		return
	}
	mux.HandleFunc("POST "+registrationPath, h.register)
	mux.HandleFunc("GET "+registrationPath+"/{id}", httpx.Identifiers(h.registrationGet))
	mux.HandleFunc("PUT "+registrationPath+"/{id}", httpx.Identifiers(h.registrationPut))
	mux.HandleFunc("DELETE "+registrationPath+"/{id}", httpx.Identifiers(h.registrationDelete))
}

// view is a client as the APIs render it: never a hash, and the plaintext
// secret only when withSecret (create and rotate responses).
func view(c *Client, withSecret bool) *Client {
	v := c.publicView()
	if withSecret {
		v.Secret = c.Secret
	}
	return v
}

// decodeClient reads a client document from the request body.
func decodeClient(r *http.Request) (*Client, error) {
	var c Client
	if err := httpx.DecodeJSON(r, &c); err != nil {
		return nil, err
	}
	c.SecretHash, c.RotatedSecretHashes, c.RegistrationAccessTokenHash = "", nil, ""
	c.RegistrationAccessToken, c.RegistrationClientURI = "", ""
	c.normalize()
	return &c, nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	in, err := decodeClient(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := h.manager.Create(r.Context(), in)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, view(c, true))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.manager.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, view(c, false))
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	in, err := decodeClient(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if in.ID != "" && in.ID != id {
		httpx.WriteError(w, r, apierr.InvalidRequest("client_id in the body (%q) does not match the URL", truncate(in.ID)))
		return
	}
	in.ID = id
	c, err := h.manager.Update(r.Context(), in)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// Secret is set only when the server had to generate one.
	httpx.WriteJSON(w, http.StatusOK, view(c, c.Secret != ""))
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/json-patch+json") {
		httpx.WriteError(w, r, apierr.InvalidRequest("Content-Type must be application/json-patch+json or application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBodyBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			httpx.WriteError(w, r, apierr.RequestTooLarge("The request body exceeds %d bytes", httpx.MaxBodyBytes))
			return
		}
		httpx.WriteError(w, r, apierr.InvalidRequest("The request body could not be read").WithCause(err))
		return
	}
	c, err := h.manager.Patch(r.Context(), r.PathValue("id"), body)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, view(c, c.Secret != ""))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.manager.Delete(r.Context(), r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) lifespans(w http.ResponseWriter, r *http.Request) {
	var l Lifespans
	if err := httpx.DecodeJSON(r, &l); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := h.manager.SetLifespans(r.Context(), r.PathValue("id"), l)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, view(c, false))
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	c, err := h.manager.RotateSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, view(c, true))
}

func (h *Handler) finalizeRotation(w http.ResponseWriter, r *http.Request) {
	if _, err := h.manager.FinalizeSecretRotation(r.Context(), r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := DefaultPageSize
	if s := q.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			httpx.WriteError(w, r, apierr.InvalidRequest("page_size must be a positive integer"))
			return
		}
		size = min(n, MaxPageSize)
	}
	after, err := httpx.PageToken(q)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	clients, more, err := h.manager.List(r.Context(), ListOptions{
		Name: q.Get("client_name"), Owner: q.Get("owner"), After: after, Limit: size,
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]*Client, 0, len(clients))
	for _, c := range clients {
		out = append(out, view(c, false))
	}
	link := func(token, rel string) string {
		v := url.Values{}
		v.Set("page_size", strconv.Itoa(size))
		if token != "" {
			v.Set("page_token", token)
		}
		for _, f := range []string{"client_name", "owner"} {
			if s := q.Get(f); s != "" {
				v.Set(f, s)
			}
		}
		return "<" + r.URL.Path + "?" + v.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link("", "first")}
	if more && len(clients) > 0 {
		links = append(links, link(httpx.NextPageToken(clients[len(clients)-1].ID), "next"))
	}
	w.Header().Set("Link", strings.Join(links, ","))
	httpx.WriteJSON(w, http.StatusOK, out)
}

// ---------------------------------------------------------------- dynamic registration

// registrationURI is the RFC 7592 client configuration endpoint of id.
func (h *Handler) registrationURI(id string) string {
	return strings.TrimSuffix(h.reg.PublicURL, "/") + registrationPath + "/" + url.PathEscape(id)
}

// adminOnly lists the fields a registrant may not set (Hydra refuses them
// too): they bypass consent, change the token format or carry the
// operator's own data. The values in base are those already stored (zero
// on registration); a registrant may echo them back unchanged.
func adminOnly(c, base *Client) error {
	switch {
	case len(c.Metadata) > 0 && !jsonEqual(c.Metadata, base.Metadata):
		return metaErr("metadata cannot be set through dynamic client registration")
	case c.SkipConsent && !base.SkipConsent:
		return metaErr("skip_consent cannot be set through dynamic client registration")
	case c.SkipLogoutConsent && !base.SkipLogoutConsent:
		return metaErr("skip_logout_consent cannot be set through dynamic client registration")
	case c.AccessTokenStrategy != "" && c.AccessTokenStrategy != base.AccessTokenStrategy:
		return metaErr("access_token_strategy cannot be set through dynamic client registration")
	case !reflect.DeepEqual(c.Lifespans, Lifespans{}) && !reflect.DeepEqual(c.Lifespans, base.Lifespans):
		return metaErr("token lifespans cannot be set through dynamic client registration")
	case c.TokenExchangeImpersonation && !base.TokenExchangeImpersonation:
		// Impersonating users is an administrator's decision.
		return metaErr("token_exchange_impersonation cannot be set through dynamic client registration")
	}
	return nil
}

func jsonEqual(a, b []byte) bool {
	return strings.TrimSpace(string(a)) == strings.TrimSpace(string(b))
}

// keepAdminFields copies the admin-only fields of old into c.
func keepAdminFields(c, old *Client) {
	c.Metadata = old.Metadata
	c.SkipConsent = old.SkipConsent
	c.SkipLogoutConsent = old.SkipLogoutConsent
	c.AccessTokenStrategy = old.AccessTokenStrategy
	c.Lifespans = *cloneLifespans(&old.Lifespans)
	c.TokenExchangeImpersonation = old.TokenExchangeImpersonation
}

// register is RFC 7591 §3.1: POST /oauth2/register.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	in, err := decodeClient(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if in.ID != "" {
		httpx.WriteError(w, r, metaErr("client_id is assigned by the server and cannot be chosen"))
		return
	}
	if in.Secret != "" {
		httpx.WriteError(w, r, metaErr("client_secret is generated by the server and cannot be chosen"))
		return
	}
	if err := adminOnly(in, &Client{}); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if in.Scope == "" && len(h.reg.DefaultScope) > 0 {
		in.Scope = strings.Join(h.reg.DefaultScope, " ")
	}
	token, hash, err := newRegistrationToken()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	in.RegistrationAccessTokenHash = hash
	c, err := h.manager.Create(r.Context(), in)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := view(c, true)
	out.RegistrationAccessToken = token
	out.RegistrationClientURI = h.registrationURI(c.ID)
	httpx.WriteJSON(w, http.StatusCreated, out)
}

// registrationAuth checks the RFC 7592 registration access token. Unknown
// clients and wrong tokens look the same: 401 invalid_token (RFC 7592 §2.1,
// §2.2, §2.3).
func (h *Handler) registrationAuth(r *http.Request) (*Client, string, error) {
	authz := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(strings.TrimSpace(authz), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, "", apierr.InvalidToken("The registration access token is missing: send Authorization: Bearer <registration_access_token>").
			WithHeader("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	bad := apierr.InvalidToken("The registration access token is not valid for this client").
		WithHeader("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
	c, err := h.manager.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Code == "not_found" {
			return nil, "", bad.WithCause(err)
		}
		return nil, "", err
	}
	if !c.matchRegistrationToken(token) {
		return nil, "", bad
	}
	httpx.Info(r.Context()).ClientID = c.ID
	return c, c.RegistrationAccessTokenHash, nil
}

// registrationGet is RFC 7592 §2.1. The secret is stored hashed and cannot
// be returned.
func (h *Handler) registrationGet(w http.ResponseWriter, r *http.Request) {
	c, _, err := h.registrationAuth(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := view(c, false)
	out.RegistrationClientURI = h.registrationURI(c.ID)
	httpx.WriteJSON(w, http.StatusOK, out)
}

// registrationPut is RFC 7592 §2.2. The registration access token is
// rotated: the response carries a new one and the old one stops working.
func (h *Handler) registrationPut(w http.ResponseWriter, r *http.Request) {
	old, tokenHash, err := h.registrationAuth(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	in, err := decodeClient(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if in.ID != "" && in.ID != old.ID {
		httpx.WriteError(w, r, metaErr("client_id must be the client's current client_id"))
		return
	}
	in.ID = old.ID
	if in.Secret != "" {
		// RFC 7592 §2.2: a client_secret in the request must match the
		// current one; it cannot be changed here.
		if VerifySecret(old.SecretHash, in.Secret) != nil {
			httpx.WriteError(w, r, metaErr("client_secret does not match the current secret; it cannot be changed through this endpoint"))
			return
		}
		in.Secret = ""
	}
	if err := adminOnly(in, old); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	keepAdminFields(in, old)
	if in.Scope == "" && len(h.reg.DefaultScope) > 0 {
		in.Scope = strings.Join(h.reg.DefaultScope, " ")
	}
	token, newHash, err := newRegistrationToken()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := h.manager.replace(r.Context(), in, updateOptions{
		newRegistrationTokenHash: newHash,
		check: func(stored *Client) error {
			if stored.RegistrationAccessTokenHash != tokenHash {
				return apierr.InvalidToken("The registration access token is not valid for this client").
					WithHeader("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			}
			return nil
		},
	})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := view(c, c.Secret != "")
	out.RegistrationAccessToken = token
	out.RegistrationClientURI = h.registrationURI(c.ID)
	httpx.WriteJSON(w, http.StatusOK, out)
}

// registrationDelete is RFC 7592 §2.3.
func (h *Handler) registrationDelete(w http.ResponseWriter, r *http.Request) {
	c, _, err := h.registrationAuth(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := h.manager.Delete(r.Context(), c.ID); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
