package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/server"
)

type serveFlags struct {
	configFile         string
	dev                bool
	dangerousForceHTTP bool
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [all|public|admin]",
		Short: "Serve the public API (default :4444), the admin API (default :4445) or both",
		Long: `Serve the issuer's HTTP APIs. "all" (the default) serves both the public API
(discovery, JWKS, authorize, token, revoke, userinfo, logout) and the admin API
(clients, keys, challenges, sessions, introspection) on their own listeners.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"all", "public", "admin"},
		RunE: func(cmd *cobra.Command, args []string) error {
			which := "all"
			if len(args) == 1 {
				which = args[0]
			}
			return runServe(cmd.Context(), f, which)
		},
	}
	addConfigFlag(cmd, &f.configFile)
	cmd.Flags().BoolVar(&f.dev, "dev", false, "development mode: allow http issuers, ephemeral system secret, text logs, listen on 127.0.0.1 unless SERVE_*_HOST is set")
	cmd.Flags().BoolVar(&f.dangerousForceHTTP, "dangerous-force-http", false, "allow an http:// issuer on a non-loopback host (behind a TLS-terminating proxy only)")
	cmd.Flags().Bool("sqa-opt-out", false, "accepted for Hydra compatibility; Gatehouse sends no telemetry")
	_ = cmd.Flags().MarkHidden("sqa-opt-out")
	return cmd
}

func addConfigFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "config", "c", "", "YAML configuration file (environment variables override it)")
}

// loadConfig reads the optional file and the environment and validates.
func loadConfig(file string, dev, forceHTTP bool) (*config.Config, []string, error) {
	var doc []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("reading configuration file: %w", err)
		}
		doc = b
	}
	c, warnings, err := config.Load(doc, os.Getenv)
	if err != nil {
		return nil, warnings, err
	}
	c.Dev, c.DangerousForceHTTP = dev, forceHTTP
	if dev && len(c.Secrets.System) == 0 {
		c.Secrets.System = []string{randomSecret()}
		warnings = append(warnings, "DEV MODE: SECRETS_SYSTEM is not set, an ephemeral system secret was generated. "+
			"Keys and data encrypted with it are unreadable after a restart. Never run like this in production.")
	}
	if err := c.Validate(); err != nil {
		return nil, warnings, err
	}
	return &c, warnings, nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newLogger logs to stderr. The text format colours the level only when
// stderr is a terminal: a file or a pipe gets no escape codes.
func newLogger(c *config.Config) (*zap.Logger, error) {
	var zc zap.Config
	if c.Log.Format == "text" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		if term.IsTerminal(int(os.Stderr.Fd())) {
			zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "time"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	lvl, err := zapcore.ParseLevel(c.Log.Level)
	if err != nil {
		return nil, err
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	return zc.Build()
}

func runServe(ctx context.Context, f serveFlags, which string) error {
	cfg, warnings, err := loadConfig(f.configFile, f.dev, f.dangerousForceHTTP)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	for _, w := range warnings {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	app, err := buildApp(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer app.Close()

	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: app.store, Logger: log, Version: version, Registry: app.registry,
		Handlers: app.handlers, Discovery: app.discovery, TracerProvider: app.tracer})
	if err != nil {
		return err
	}
	ls, err := srv.Listeners(which)
	if err != nil {
		return err
	}
	for i := range ls {
		ls[i].Handler = app.wrapCORS(ls[i].Name, ls[i].Handler)
	}
	// The revocation poller runs until the signal that starts the
	// shutdown, and then ends the event streams so the drain does not
	// wait for them.
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go app.revocations.Run(pollCtx)
	return server.Run(ctx, log, ls, 30*time.Second, func(addrs map[string]string) {
		printBanner(cfg, addrs)
		log.Info("gatehouse is serving", zap.Any("listeners", addrs), zap.String("issuer", cfg.URLs.Self.Issuer),
			zap.String("version", version))
	})
}

func printBanner(cfg *config.Config, addrs map[string]string) {
	var names []string
	for n := range addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("\n  Gatehouse " + version)
	if cfg.Dev {
		b.WriteString(" (dev mode: not for production)")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  issuer      %s\n", cfg.URLs.Self.Issuer)
	fmt.Fprintf(&b, "  discovery   %s/.well-known/openid-configuration\n", cfg.PublicURL())
	for _, n := range names {
		fmt.Fprintf(&b, "  %-11s %s\n", n+" API", addrs[n])
	}
	fmt.Fprintf(&b, "  database    %s\n", redactDSN(cfg.DSN))
	if cfg.URLs.Login != "" {
		fmt.Fprintf(&b, "  login app   %s\n", cfg.URLs.Login)
	}
	fmt.Fprintln(os.Stderr, b.String())
}

var errNotMigratedHint = errors.New("run `gatehouse migrate sql` against this database first")
