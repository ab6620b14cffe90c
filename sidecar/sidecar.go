package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/extauthz"
)

// AuthorizationService is the gRPC service name Envoy calls, also
// reported by the gRPC health service.
const AuthorizationService = "envoy.service.auth.v3.Authorization"

// Options are the process's injected dependencies.
type Options struct {
	Logger *zap.Logger
	// Version is reported in the metrics (gatehouse_sidecar_build_info).
	Version string
	// Now is the clock of token validation (default time.Now).
	Now func() time.Time
	// HTTPClient fetches discovery and JWKS and calls introspection
	// (default: NewHTTPClient()).
	HTTPClient *http.Client
	// Registry receives the metrics served at /metrics (default: a new
	// registry with the Go and process collectors).
	Registry *prometheus.Registry
	// OnListening, when set, is called once both listeners are bound with
	// their addresses (useful with port 0).
	OnListening func(grpcAddr, httpAddr string)
}

// Server is the sidecar process: the authorizer, the gRPC server and the
// HTTP server. Run serves until its context ends.
type Server struct {
	cfg      Config
	log      *zap.Logger
	a        *extauthz.Authorizer
	registry *prometheus.Registry
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	onListen func(string, string)
	draining atomic.Bool
	ran      atomic.Bool
}

// New builds the sidecar from a configuration (Defaults are applied,
// then it must Validate). Nothing listens or fetches until Run.
func New(cfg Config, opts Options) (*Server, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = NewHTTPClient()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	opts.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "sidecar", Name: "build_info",
		Help: "Always 1; the version label is the running build.", ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))

	a, err := extauthz.New(cfg.Config, extauthz.Options{Logger: opts.Logger, Now: opts.Now, HTTPClient: opts.HTTPClient, Registerer: opts.Registry})
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	s := &Server{cfg: cfg, log: opts.Logger, a: a, registry: opts.Registry, onListen: opts.OnListening}

	s.grpc = grpc.NewServer(
		// Envoy may ping idle connections (its grpc_service keepalive);
		// do not answer those pings with GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.recoverUnary),
		// Decode only the CheckRequest fields the decision needs
		// (with the headers CEL conditions read).
		grpc.ForceServerCodecV2(a.CheckCodec()),
		// A fixed pool of stream workers instead of a goroutine (and a
		// stack to grow) per call. grpc-go starts a new goroutine for a
		// stream when every worker is busy, so the pool covers the calls
		// Envoy keeps in flight (its workers multiplex many concurrent
		// streams over each connection), not just the cores.
		grpc.NumStreamWorkers(uint32(streamWorkers())),
	)
	// Cached responses are sent as marshaled once (needs the check codec).
	extauthz.NewCheckServer(a).Register(s.grpc)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(AuthorizationService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)

	s.http = &http.Server{
		Handler:           s.HTTPHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.With(zap.String("server", "http"))),
	}
	return s, nil
}

// streamWorkers is the size of the gRPC server's worker pool: 16 per
// core. An idle worker costs a goroutine's stack (a few KiB).
func streamWorkers() int { return 16 * runtime.GOMAXPROCS(0) }

// NewHTTPClient is the default client for the issuer: bounded dial and
// TLS handshake, a connection pool sized for concurrent introspection,
// and no redirects (a redirected JWKS or introspection call fails
// closed).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          128,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Authorizer returns the authorizer the servers use.
func (s *Server) Authorizer() *extauthz.Authorizer { return s.a }

// GRPCServer returns the gRPC server (Authorization and Health
// registered).
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Ready reports whether the sidecar can decide: keys loaded, not
// draining.
func (s *Server) Ready() bool { return s.a.IsReady() && !s.draining.Load() }

// HTTPHandler returns the HTTP API: /auth (forward-auth, any method),
// POST /introspect (RFC 7662), GET /health/alive, GET /health/ready and
// GET /metrics.
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	(&extauthz.ForwardAuth{A: s.a}).Mount(mux)
	(&extauthz.IntrospectionEndpoint{A: s.a}).Mount(mux)
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "Use POST."})
	})
	mux.HandleFunc("GET /health/alive", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "shutting down"})
		case !s.a.IsReady():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "signing keys not loaded yet"})
		default:
			// A revocation stream that is down degrades freshness, not
			// validity: the sidecar stays ready (cache TTLs apply, as
			// without the stream) and says so.
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "revocation_stream": s.a.RevocationStatus().State})
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	// No catch-all: the mux answers 404 for unknown paths and 405 (with
	// Allow) for a wrong method.
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// recoverUnary turns a panic in a handler into an INTERNAL error instead
// of a crashed process (which Envoy would see as every check failing).
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in gRPC handler", zap.String("method", info.FullMethod), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return h(ctx, req)
}

// Run listens on both addresses, loads the issuers' keys and serves
// until ctx ends; then it reports NOT_SERVING, stops accepting, lets
// in-flight requests finish (up to serve.drain_timeout) and returns nil.
// It returns an error when a listener cannot be bound, a server fails, or
// an issuer's discovery names another issuer (a configuration error).
// A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return errors.New("sidecar: Run called twice")
	}
	gl, err := net.Listen("tcp", s.cfg.Serve.GRPCListen)
	if err != nil {
		return fmt.Errorf("serve.grpc_listen: %w", err)
	}
	hl, err := net.Listen("tcp", s.cfg.Serve.HTTPListen)
	if err != nil {
		gl.Close()
		return fmt.Errorf("serve.http_listen: %w", err)
	}
	errc := make(chan error, 2)
	go func() {
		if err := s.grpc.Serve(gl); err != nil {
			errc <- fmt.Errorf("gRPC server: %w", err)
		}
	}()
	go func() {
		if err := s.http.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("HTTP server: %w", err)
		}
	}()
	s.log.Info("gatehouse-sidecar listening", zap.String("grpc", gl.Addr().String()), zap.String("http", hl.Addr().String()),
		zap.Strings("issuers", s.issuerNames()))
	if s.onListen != nil {
		s.onListen(gl.Addr().String(), hl.Addr().String())
	}

	// The first key load runs while the servers already answer (health
	// says not ready; checks get UNAVAILABLE until the keys are in).
	if err := s.a.Start(); err != nil {
		s.shutdown()
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-s.a.Ready():
			if !s.draining.Load() {
				s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				s.health.SetServingStatus(AuthorizationService, healthpb.HealthCheckResponse_SERVING)
				s.log.Info("signing keys loaded; ready")
			}
		case <-stopped:
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: draining in-flight requests", zap.Duration("drain_timeout", s.cfg.Serve.DrainTimeout))
	case runErr = <-errc:
		s.log.Error("server failed; shutting down", zap.Error(runErr))
	}
	close(stopped)
	wg.Wait()
	s.shutdown()
	s.a.Stop()
	s.log.Info("gatehouse-sidecar stopped")
	return runErr
}

// shutdown reports NOT_SERVING, then drains both servers concurrently,
// forcing them closed after the drain timeout.
func (s *Server) shutdown() {
	s.draining.Store(true)
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Serve.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("HTTP drain timed out; closing connections", zap.Error(err))
			_ = s.http.Close()
		}
	}()
	go func() {
		defer wg.Done()
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("gRPC drain timed out; closing connections")
			s.grpc.Stop()
			<-done
		}
	}()
	wg.Wait()
}

func (s *Server) issuerNames() []string {
	out := make([]string, 0, len(s.cfg.Issuers))
	for _, is := range s.cfg.Issuers {
		out = append(out, is.Issuer)
	}
	return out
}
