package keys

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
)

// Handler serves the JSON Web Key admin API in Hydra v2's shape
// (MountAdmin) and the public JWKS document (MountPublic).
//
// One deliberate difference from Hydra: GET /admin/keys/... never returns
// private keys, not even to the admin API. A private key is shown exactly
// once, in the answer to the POST that generated it.
type Handler struct {
	m *Manager
	// publicURL is the public base URL, for jwks_uri in discovery.
	publicURL string
}

// NewHandler returns the Handler over m; the sets it publishes are m's
// Options.JWKSSets, and publicURL is the public base URL of jwks_uri.
func NewHandler(m *Manager, publicURL string) *Handler { return &Handler{m: m, publicURL: publicURL} }

// MountAdmin mounts /admin/keys/{set} and /admin/keys/{set}/{kid}.
func (h *Handler) MountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/keys/{set}", httpx.Identifiers(h.create))
	mux.HandleFunc("GET /admin/keys/{set}", httpx.Identifiers(h.getSet))
	mux.HandleFunc("PUT /admin/keys/{set}", httpx.Identifiers(h.putSet))
	mux.HandleFunc("DELETE /admin/keys/{set}", httpx.Identifiers(h.deleteSet))
	mux.HandleFunc("GET /admin/keys/{set}/{kid}", httpx.Identifiers(h.getKey))
	mux.HandleFunc("PUT /admin/keys/{set}/{kid}", httpx.Identifiers(h.putKey))
	mux.HandleFunc("DELETE /admin/keys/{set}/{kid}", httpx.Identifiers(h.deleteKey))
}

// JWKSPath is where the public keys are published.
const JWKSPath = "/.well-known/jwks.json"

// MountPublic mounts JWKSPath.
func (h *Handler) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET "+JWKSPath, h.jwks)
}

// jwkSet is the JSON Web Key Set document (RFC 7517 §5).
type jwkSet struct {
	Keys *[]json.RawMessage `json:"keys"`
}

// writeKeySet answers with status and a set holding the one key k.
func writeKeySet(w http.ResponseWriter, r *http.Request, status int, k jwk.Key) {
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		httpx.WriteError(w, r, apierr.ServerError(err))
		return
	}
	httpx.WriteJSON(w, status, set)
}

// jwks serves the public keys of the signing sets. Deliberately unlike
// Hydra, which sends Cache-Control: no-store, the document is cacheable
// (public, max-age=Options.JWKSMaxAge, default 300s): gateways and sidecars
// fetch it on every cold start, and verifiers refetch when they meet an
// unknown kid (as the sidecar does), so a new signing key is picked up
// without waiting for the cache to expire.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	doc, etag, err := h.m.PublicJWKS(r.Context(), h.m.jwksSets...)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	cache := "no-store"
	if age := h.m.JWKSMaxAge(); age > 0 {
		cache = "public, max-age=" + strconv.Itoa(int(age.Seconds()))
	}
	httpx.ServeDocument(w, r, doc, etag, cache)
}

// create generates a key: 201 with the set holding the new key including
// its private part (Hydra's POST /admin/keys/{set}).
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var p GenerateParams
	if err := httpx.DecodeJSON(r, &p); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	key, err := h.m.Generate(r.Context(), r.PathValue("set"), p)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeKeySet(w, r, http.StatusCreated, key)
}

func (h *Handler) getSet(w http.ResponseWriter, r *http.Request) {
	set, err := h.m.GetSet(r.Context(), r.PathValue("set"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, set)
}

func (h *Handler) putSet(w http.ResponseWriter, r *http.Request) {
	var body jwkSet
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if body.Keys == nil {
		httpx.WriteError(w, r, apierr.InvalidRequest("The request body must be a JSON Web Key Set with the member \"keys\""))
		return
	}
	set, err := h.m.ReplaceSet(r.Context(), r.PathValue("set"), *body.Keys)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, set)
}

func (h *Handler) deleteSet(w http.ResponseWriter, r *http.Request) {
	if err := h.m.DeleteSet(r.Context(), r.PathValue("set")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getKey answers with a set holding the one key, as Hydra does.
func (h *Handler) getKey(w http.ResponseWriter, r *http.Request) {
	key, err := h.m.GetKey(r.Context(), r.PathValue("set"), r.PathValue("kid"))
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeKeySet(w, r, http.StatusOK, key)
}

// putKey answers with the key itself, as Hydra does.
func (h *Handler) putKey(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	key, err := h.m.PutKey(r.Context(), r.PathValue("set"), r.PathValue("kid"), body)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, key)
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request) {
	if err := h.m.DeleteKey(r.Context(), r.PathValue("set"), r.PathValue("kid")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
