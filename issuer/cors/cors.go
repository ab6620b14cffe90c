// Package cors answers cross-origin requests (the Fetch standard's CORS
// protocol) on the issuer's listeners, configured like Hydra's
// serve.{public,admin}.cors.* (SERVE_PUBLIC_CORS_*). On the public listener
// the origins of the clients' allowed_cors_origins are allowed as well.
package cors

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

// Clients is what the CORS handler needs of the client registry.
type Clients interface {
	Get(ctx context.Context, id string) (*client.Client, error)
	List(ctx context.Context, o client.ListOptions) ([]*client.Client, bool, error)
}

// Handler wraps a listener's router. With Enabled false in Config it does
// nothing. Clients is nil on the admin listener.
type Handler struct {
	Config  config.CORS
	Clients Clients
	Logger  *zap.Logger
	Now     func() time.Time
	// RefreshEvery bounds how stale the cached set of all clients'
	// origins may be (default 30s).
	RefreshEvery time.Duration

	mu      sync.Mutex
	origins map[string]bool
	loaded  time.Time
}

// Wrap returns next with CORS handling in front of it.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	if !h.Config.Enabled {
		return next
	}
	if h.Logger == nil {
		h.Logger = zap.NewNop()
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.RefreshEvery <= 0 {
		h.RefreshEvery = 30 * time.Second
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !h.allowed(r, origin) {
			if preflight {
				// Answered without CORS headers: the browser blocks the call.
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		if h.Config.AllowCredentials {
			hd.Set("Access-Control-Allow-Credentials", "true")
		}
		if preflight {
			hd.Add("Vary", "Access-Control-Request-Method")
			hd.Add("Vary", "Access-Control-Request-Headers")
			method := r.Header.Get("Access-Control-Request-Method")
			if !slices.ContainsFunc(h.Config.AllowedMethods, func(m string) bool { return strings.EqualFold(m, method) }) {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			hd.Set("Access-Control-Allow-Methods", strings.Join(h.Config.AllowedMethods, ", "))
			if reqHeaders := r.Header.Get("Access-Control-Request-Headers"); reqHeaders != "" {
				for _, rh := range strings.Split(reqHeaders, ",") {
					rh = strings.TrimSpace(rh)
					if rh != "" && !slices.ContainsFunc(h.Config.AllowedHeaders, func(a string) bool { return strings.EqualFold(a, rh) }) {
						w.WriteHeader(http.StatusNoContent)
						return
					}
				}
				hd.Set("Access-Control-Allow-Headers", reqHeaders)
			}
			if h.Config.MaxAge > 0 {
				hd.Set("Access-Control-Max-Age", strconv.Itoa(h.Config.MaxAge))
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if len(h.Config.ExposedHeaders) > 0 {
			hd.Set("Access-Control-Expose-Headers", strings.Join(h.Config.ExposedHeaders, ", "))
		}
		next.ServeHTTP(w, r)
	})
}

// allowed: the origin is in the configured list (or it is "*"), or, on
// the public listener, registered in allowed_cors_origins by the client
// the request authenticates as (HTTP Basic), or, when the request names no
// client (preflights never carry credentials), by any client.
func (h *Handler) allowed(r *http.Request, origin string) bool {
	for _, o := range h.Config.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	if h.Clients == nil {
		return false
	}
	if id, _, ok := r.BasicAuth(); ok && id != "" {
		// RFC 6749 §2.3.1: the client id is form-encoded in Basic auth.
		if dec, err := url.QueryUnescape(id); err == nil {
			id = dec
		}
		c, err := h.Clients.Get(r.Context(), id)
		return err == nil && slices.Contains(c.AllowedCORSOrigins, origin)
	}
	return h.anyClient(r.Context(), origin)
}

// anyClient reports whether some client allows origin, from a cached set
// refreshed every RefreshEvery.
func (h *Handler) anyClient(ctx context.Context, origin string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.origins == nil || h.Now().Sub(h.loaded) > h.RefreshEvery {
		set, err := h.load(ctx)
		if err != nil {
			h.Logger.Warn("cors: loading the clients' allowed origins", zap.Error(err))
		} else {
			h.origins, h.loaded = set, h.Now()
		}
	}
	return h.origins[origin]
}

func (h *Handler) load(ctx context.Context) (map[string]bool, error) {
	set := map[string]bool{}
	after := ""
	for range 1000 {
		page, more, err := h.Clients.List(ctx, client.ListOptions{After: after, Limit: 500})
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			for _, o := range c.AllowedCORSOrigins {
				set[o] = true
			}
			after = c.ID
		}
		if !more || len(page) == 0 {
			break
		}
	}
	return set, nil
}
