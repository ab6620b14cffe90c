package extauthz

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// ForwardAuth serves the HTTP forward-auth endpoint /auth for gateways
// that ask an HTTP service before proxying (nginx auth_request, APISIX
// forward-auth, Traefik forwardAuth, Caddy forward_auth).
type ForwardAuth struct {
	A *Authorizer
}

// Mount registers /auth (any method).
func (f *ForwardAuth) Mount(mux *http.ServeMux) {
	mux.Handle("/auth", f)
}

var _ http.Handler = (*ForwardAuth)(nil)

// ServeHTTP answers 200 with the identity headers (every configured one,
// empty when this identity has no value, so that a gateway copying them
// overwrites whatever the client sent), or 401/403 with the RFC 6750
// challenge, or 503 when no decision can be made.
func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := ForwardedRequest(r)
	req.CertHeader = r.Header.Get(f.A.cfg.Binding.MTLS.ClientCertHeader)
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.HeaderSource = ap.Addr()
	}
	d := f.A.Decide(r.Context(), req)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch {
	case d.Err != nil:
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The authorization service cannot reach the issuer.")
	case d.Denial != nil:
		writeDenial(w, d.Denial)
	default:
		for _, name := range f.A.IdentityHeaderNames() {
			h[http.CanonicalHeaderKey(name)] = []string{""}
		}
		if d.Identity != nil {
			for _, hv := range d.Identity.headers {
				h[http.CanonicalHeaderKey(hv.Name)] = []string{hv.Value}
			}
		}
		if v := d.UpstreamAuthorization(); v != "" {
			// The route's internal token: the gateway copies this header
			// to the upstream request in place of the caller's.
			h["Authorization"] = []string{v}
		}
		w.WriteHeader(http.StatusOK)
	}
}

// ForwardedRequest describes the original request from the headers a
// gateway sends to a forward-auth endpoint: X-Forwarded-Method (or
// X-Original-Method), X-Forwarded-Uri, X-Original-URI or X-Original-URL,
// X-Forwarded-Host; the auth request's own method and Host otherwise.
// The token comes from the Authorization and Cookie headers the gateway
// passes on; query parameters are never read.
func ForwardedRequest(r *http.Request) *Request {
	h := r.Header
	req := &Request{
		Method:        firstNonEmpty(h.Get("X-Forwarded-Method"), h.Get("X-Original-Method"), r.Method),
		Host:          firstNonEmpty(h.Get("X-Forwarded-Host"), r.Host),
		Authorization: strings.Join(h.Values("Authorization"), ","),
		Cookie:        strings.Join(h.Values("Cookie"), "; "),
		Scheme:        h.Get("X-Forwarded-Proto"),
		DPoP:          h.Values("DPoP"),
		headers:       httpHeaders(h),
		source:        forwardedSource(r),
	}
	req.Method = strings.ToUpper(req.Method)
	switch {
	case h.Get("X-Forwarded-Uri") != "":
		req.Path = h.Get("X-Forwarded-Uri")
	case h.Get("X-Original-Uri") != "":
		req.Path = h.Get("X-Original-Uri")
	case h.Get("X-Original-Url") != "":
		if u, err := url.Parse(h.Get("X-Original-Url")); err == nil {
			req.Path = u.EscapedPath()
			if h.Get("X-Forwarded-Host") == "" && u.Host != "" {
				req.Host = u.Host
			}
		}
	default:
		req.Path = "/"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	return req
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func writeDenial(w http.ResponseWriter, d *Denial) {
	h := w.Header()
	h.Set("WWW-Authenticate", d.WWWAuthenticate)
	for _, x := range d.Headers {
		h.Set(x.Name, x.Value)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(d.Status)
	_, _ = w.Write(d.Body)
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// IntrospectionEndpoint is an RFC 7662 endpoint for gateways that speak
// introspection (APISIX openid-connect with introspection_endpoint): JWTs
// are answered locally, opaque tokens through the issuer's private
// introspection, both cached. Callers authenticate with the client
// credentials listed in the configuration (client_secret_basic or
// client_secret_post), so the gateway never needs the issuer's admin API.
type IntrospectionEndpoint struct {
	A *Authorizer
}

// Mount registers POST /introspect.
func (e *IntrospectionEndpoint) Mount(mux *http.ServeMux) {
	mux.Handle("POST /introspect", e)
}

var _ http.Handler = (*IntrospectionEndpoint)(nil)

const maxIntrospectionForm = 64 << 10

func (e *IntrospectionEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxIntrospectionForm)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return
	}
	if !e.clientAuthenticated(r) {
		// RFC 6749 §5.2: invalid_client with 401 and a Basic challenge.
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The token parameter is required.")
		return
	}
	id, _, err := e.A.Authenticate(r.Context(), tok)
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The token cannot be checked right now.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if id == nil {
		// RFC 7662 §2.2: an invalid token is simply not active.
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_, _ = w.Write(id.IntrospectionResponse())
}

// clientAuthenticated checks client_secret_basic (RFC 6749 §2.3.1, with
// form-urlencoded id and secret) or client_secret_post credentials.
func (e *IntrospectionEndpoint) clientAuthenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" {
		return false
	}
	ok := false
	for _, c := range e.A.cfg.IntrospectionEndpoint.Clients {
		// Compare digests in constant time; keep looping to not reveal
		// which client matched.
		a, b := sha256.Sum256([]byte(id+"\x00"+secret)), sha256.Sum256([]byte(c.ClientID+"\x00"+c.ClientSecret))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			ok = true
		}
	}
	return ok
}
