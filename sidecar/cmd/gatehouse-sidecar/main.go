// Command gatehouse-sidecar validates access tokens at the gateway: an
// Envoy ext_authz gRPC service and an HTTP forward-auth and RFC 7662
// introspection endpoint for APISIX, nginx, Traefik and Caddy. This is
// the only package of the sidecar that reads files and the environment.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapgrpc"
	"google.golang.org/grpc/grpclog"

	"github.com/gatehouse-dev/gatehouse/sidecar"
	"github.com/gatehouse-dev/gatehouse/sidecar/envoyconfig"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// serveFlags are the command-line settings of `serve`.
type serveFlags struct {
	config string
	sidecar.Overrides
}

func newRootCmd() *cobra.Command {
	var rootFlags serveFlags
	root := &cobra.Command{
		Use:   "gatehouse-sidecar",
		Short: "Validate OAuth2 access tokens for Envoy (ext_authz), APISIX, nginx and Traefik",
		Long: `gatehouse-sidecar validates bearer tokens next to a gateway: JWT access tokens
locally against the issuer's cached JWKS, opaque tokens through the issuer's
private introspection endpoint, then passes identity headers to upstreams.

Run without a command, it serves (same as "gatehouse-sidecar serve").`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd.Flags(), rootFlags)
		},
	}
	addServeFlags(root.Flags(), &rootFlags)
	root.AddCommand(newServeCmd(), newVersionCmd(), envoyconfig.NewCommand())
	return root
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Envoy ext_authz over gRPC and forward-auth, introspection, health and metrics over HTTP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), cmd.Flags(), f)
		},
	}
	addServeFlags(cmd.Flags(), &f)
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version)
		},
	}
}

// addServeFlags declares the essentials. Flags override the environment
// (GATEHOUSE_SIDECAR_*), which overrides the configuration file.
func addServeFlags(fs *pflag.FlagSet, f *serveFlags) {
	fs.StringVarP(&f.config, "config", "c", "", "YAML configuration file (env GATEHOUSE_SIDECAR_CONFIG)")
	fs.StringVar(&f.Issuer, "issuer", "", "issuer URL, exactly as in the tokens' iss; discovery at <issuer>/.well-known/openid-configuration (sets issuers[0].issuer; env GATEHOUSE_SIDECAR_ISSUER)")
	fs.StringVar(&f.IntrospectionURL, "introspection-url", "", "RFC 7662 endpoint for opaque tokens, e.g. http://gatehouse-admin:4445/admin/oauth2/introspect (default: discovery's introspection_endpoint; env GATEHOUSE_SIDECAR_INTROSPECTION_URL)")
	fs.StringVar(&f.IntrospectionClientID, "introspection-client-id", "", "client id sent with HTTP Basic to the introspection endpoint (env GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_ID)")
	fs.StringVar(&f.IntrospectionClientSecret, "introspection-client-secret", "", "its secret; prefer the env GATEHOUSE_SIDECAR_INTROSPECTION_CLIENT_SECRET (flags are visible in ps)")
	fs.StringVar(&f.RevocationEventsURL, "revocation-events-url", "", "the issuer's revocation event stream, or \"off\" (default: --introspection-url's origin + /admin/revocations/events; sets revocations.events_url; env GATEHOUSE_SIDECAR_REVOCATION_EVENTS_URL)")
	fs.StringVar(&f.InternalTokensClientID, "internal-tokens-client-id", "", "the sidecar's client for token exchange on routes with internal_token (sets internal_tokens.client_id; env GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID; its secret only from the env GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET or the file)")
	fs.StringVar(&f.GRPCListen, "grpc-listen", "", "ext_authz gRPC listen address (default "+sidecar.DefaultGRPCListen+"; env GATEHOUSE_SIDECAR_GRPC_LISTEN)")
	fs.StringVar(&f.HTTPListen, "http-listen", "", "HTTP listen address for /auth, /introspect, /health, /metrics (default "+sidecar.DefaultHTTPListen+"; env GATEHOUSE_SIDECAR_HTTP_LISTEN)")
	fs.StringVar(&f.LogLevel, "log-level", "", "debug, info, warn or error (default info; env GATEHOUSE_SIDECAR_LOG_LEVEL)")
	fs.StringVar(&f.LogFormat, "log-format", "", "json or text (default json; env GATEHOUSE_SIDECAR_LOG_FORMAT)")
}

// loadConfig reads the file and the environment and applies the flags.
func loadConfig(fs *pflag.FlagSet, f serveFlags) (sidecar.Config, error) {
	file := f.config
	if !fs.Changed("config") {
		file = os.Getenv("GATEHOUSE_SIDECAR_CONFIG")
	}
	var doc []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return sidecar.Config{}, fmt.Errorf("reading the configuration file: %w", err)
		}
		doc = b
	}
	return sidecar.LoadConfig(doc, sidecar.EnvOverrides(os.Getenv).Over(f.Overrides))
}

func runServe(ctx context.Context, fs *pflag.FlagSet, f serveFlags) error {
	cfg, err := loadConfig(fs, f)
	if err != nil {
		return err
	}
	log, err := sidecar.NewLogger(cfg.Log, os.Stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// gRPC's own messages go through zap, warnings and errors only.
	grpclog.SetLoggerV2(zapgrpc.NewLogger(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel)).With(zap.String("component", "grpc"))))

	sidecar.ApplyGCDefaults(cfg, os.Getenv)

	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := sidecar.New(cfg, sidecar.Options{Logger: log, Version: version})
	if err != nil {
		return err
	}
	log.Info("gatehouse-sidecar starting", zap.String("version", version), zap.Int("rules", len(cfg.Rules)))
	return srv.Run(ctx)
}
