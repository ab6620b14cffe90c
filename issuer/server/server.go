// Package server assembles the issuer's two HTTP servers from handler
// structs: each handler mounts its own routes on the public and the admin
// mux and describes them for discovery; the server wires them, serves the
// discovery document the handlers' descriptions make, adds the middleware
// chain and runs the listeners. The admin API is never mounted on the
// public mux.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
	"github.com/gatehouse-dev/gatehouse/issuer/httpx"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// PublicMounter is a handler that serves routes on the public listener.
type PublicMounter interface{ MountPublic(mux *http.ServeMux) }

// AdminMounter is a handler that serves routes on the admin listener.
type AdminMounter interface{ MountAdmin(mux *http.ServeMux) }

// Mounter is a handler of the issuer: it mounts its routes on both
// listeners (either may get none) and contributes to discovery the
// metadata of what it serves.
type Mounter interface {
	PublicMounter
	AdminMounter
	discovery.Contributor
}

// Deps are the server's dependencies.
type Deps struct {
	Config   *config.Config
	Store    storage.Storage
	Logger   *zap.Logger
	Registry *prometheus.Registry // nil: a new registry
	Version  string
	Now      func() time.Time
	// Handlers mount their routes and make the discovery document.
	Handlers []Mounter
	// Discovery configures the discovery document; the handlers'
	// contributions are added to Discovery.Contributions.
	Discovery discovery.Options
	// TracerProvider, when set, traces every request on both listeners
	// (httpx.Middleware); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Server holds the assembled public and admin handlers.
type Server struct {
	cfg      *config.Config
	log      *zap.Logger
	store    storage.Storage
	registry *prometheus.Registry
	public   http.Handler
	admin    http.Handler
}

// New assembles both routers.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Config == nil || d.Store == nil {
		return nil, errors.New("server: Config and Store are required")
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{cfg: d.Config, log: d.Logger, store: d.Store, registry: d.Registry}
	d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newPoolCollector(d.Store))
	metrics := httpx.NewMetrics(d.Registry)

	health := &healthHandler{store: d.Store, version: d.Version}
	pub := http.NewServeMux()
	adm := http.NewServeMux()
	health.MountPublic(pub)
	health.MountAdmin(adm)
	adm.Handle("GET /admin/metrics/prometheus", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	opts := d.Discovery
	opts.Contributions = slices.Clone(opts.Contributions)
	for _, h := range d.Handlers {
		h.MountPublic(pub)
		h.MountAdmin(adm)
		m, err := h.Discovery(ctx)
		if err != nil {
			return nil, err
		}
		opts.Contributions = append(opts.Contributions, m)
	}
	disco, err := discovery.New(discovery.Deps{Logger: d.Logger}, opts)
	if err != nil {
		return nil, err
	}
	disco.MountPublic(pub)
	// No catch-all route: the middleware turns the mux's own 404 and 405
	// answers into JSON errors, so a wrong method stays a 405.
	s.public = (&httpx.Middleware{Server: "public", Logger: d.Logger, Metrics: metrics, Now: d.Now,
		TracerProvider: d.TracerProvider}).Wrap(pub)
	s.admin = (&httpx.Middleware{Server: "admin", Logger: d.Logger, Metrics: metrics, Now: d.Now,
		TracerProvider: d.TracerProvider}).Wrap(adminAliases(adm))
	return s, nil
}

// Public returns the public API handler.
func (s *Server) Public() http.Handler { return s.public }

// Admin returns the admin API handler.
func (s *Server) Admin() http.Handler { return s.admin }

// adminAliases serves the unprefixed admin paths of Hydra v1 and older
// guides (/clients, /keys, /oauth2/introspect, /metrics/prometheus, ...) as
// aliases of /admin/...; /health/* is served as is.
func adminAliases(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if !strings.HasPrefix(p, "/admin/") && p != "/admin" && !strings.HasPrefix(p, "/health/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/admin" + p
			if r.URL.RawPath != "" {
				r2.URL.RawPath = "/admin" + r.URL.RawPath
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

type healthHandler struct {
	store   storage.Storage
	version string
}

func (h *healthHandler) MountPublic(mux *http.ServeMux) {
	mux.HandleFunc("GET /health/alive", h.alive)
	mux.HandleFunc("GET /health/ready", h.ready)
}

func (h *healthHandler) MountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /health/alive", h.alive)
	mux.HandleFunc("GET /health/ready", h.ready)
	mux.HandleFunc("GET /admin/health/alive", h.alive)
	mux.HandleFunc("GET /admin/health/ready", h.ready)
	mux.HandleFunc("GET /admin/version", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"version": h.version})
	})
}

func (h *healthHandler) alive(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *healthHandler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		httpx.WriteError(w, r, apierr.Unavailable("The database is not reachable").WithCause(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// poolCollector exports the database pool statistics.
type poolCollector struct {
	store                             storage.Storage
	open, inUse, idle, waits, waitDur *prometheus.Desc
}

func newPoolCollector(s storage.Storage) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("gatehouse_db_"+name, help, nil, nil)
	}
	return &poolCollector{store: s,
		open:    d("open_connections", "Open database connections."),
		inUse:   d("in_use_connections", "Database connections in use."),
		idle:    d("idle_connections", "Idle database connections."),
		waits:   d("wait_count_total", "Times a request waited for a database connection."),
		waitDur: d("wait_duration_seconds_total", "Time spent waiting for database connections."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.inUse, c.idle, c.waits, c.waitDur} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Stats()
	if st == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.OpenConnections))
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(st.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(st.Idle))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitDur, prometheus.CounterValue, st.WaitDuration.Seconds())
}

// Listener is one of the two APIs to serve.
type Listener struct {
	Name    string // "public" or "admin"
	Config  config.Listener
	Handler http.Handler
	// TLS, when set, is served on the listener (serve.*.tls).
	TLS *tls.Config
}

// Listeners returns the listeners for `serve all|public|admin`.
func (s *Server) Listeners(which string) ([]Listener, error) {
	pub := Listener{Name: "public", Config: s.cfg.Serve.Public, Handler: s.public}
	adm := Listener{Name: "admin", Config: s.cfg.Serve.Admin, Handler: s.admin}
	var err error
	if pub.TLS, err = TLSConfig(s.cfg.Serve.Public, s.cfg.Serve.TLS); err != nil {
		return nil, fmt.Errorf("serve.public.tls: %w", err)
	}
	if adm.TLS, err = TLSConfig(s.cfg.Serve.Admin, s.cfg.Serve.TLS); err != nil {
		return nil, fmt.Errorf("serve.admin.tls: %w", err)
	}
	switch which {
	case "all":
		return []Listener{pub, adm}, nil
	case "public":
		return []Listener{pub}, nil
	case "admin":
		return []Listener{adm}, nil
	}
	return nil, fmt.Errorf("unknown server %q: use all, public or admin", which)
}

// Run listens on every listener and serves until ctx is cancelled, then
// drains in-flight requests for up to drain before returning. ready, when
// non-nil, is called with the bound addresses once every listener is up.
func Run(ctx context.Context, log *zap.Logger, ls []Listener, drain time.Duration, ready func(map[string]string)) error {
	type bound struct {
		l   Listener
		ln  net.Listener
		srv *http.Server
	}
	var bs []bound
	closeAll := func() {
		for _, b := range bs {
			_ = b.ln.Close()
		}
	}
	addrs := map[string]string{}
	for _, l := range ls {
		ln, err := listen(l.Config)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s API: %w", l.Name, err)
		}
		t := l.Config.Timeout
		srv := &http.Server{
			Handler:           l.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(log.With(zap.String("server", l.Name))),
			TLSConfig:         l.TLS,
		}
		bs = append(bs, bound{l, ln, srv})
		addrs[l.Name] = ln.Addr().Network() + "://" + ln.Addr().String()
	}
	errc := make(chan error, len(bs))
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve := b.srv.Serve
			if b.l.TLS != nil {
				// ServeTLS sets up HTTP/2 over TLS (ALPN) too.
				serve = func(ln net.Listener) error { return b.srv.ServeTLS(ln, "", "") }
			}
			if err := serve(b.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s API: %w", b.l.Name, err)
			}
		}()
	}
	if ready != nil {
		ready(addrs)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down, draining in-flight requests", zap.Duration("timeout", drain))
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	for _, b := range bs {
		if err := b.srv.Shutdown(sctx); err != nil && runErr == nil {
			runErr = err
		}
	}
	wg.Wait()
	return runErr
}

func listen(c config.Listener) (net.Listener, error) {
	network, addr := c.Addr()
	if network == "unix" {
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket %s: %w", addr, err)
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := socketPermissions(addr, c.Socket); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

func socketPermissions(path string, s config.Socket) error {
	if s.Mode != 0 {
		if err := os.Chmod(path, os.FileMode(s.Mode)); err != nil {
			return fmt.Errorf("socket mode: %w", err)
		}
	}
	uid, gid := -1, -1
	if s.Owner != "" {
		id, err := lookupID(s.Owner, func(n string) (string, error) {
			u, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return fmt.Errorf("socket owner %q: %w", s.Owner, err)
		}
		uid = id
	}
	if s.Group != "" {
		id, err := lookupID(s.Group, func(n string) (string, error) {
			g, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return fmt.Errorf("socket group %q: %w", s.Group, err)
		}
		gid = id
	}
	if uid != -1 || gid != -1 {
		return os.Chown(path, uid, gid)
	}
	return nil
}

func lookupID(name string, lookup func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	s, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}
