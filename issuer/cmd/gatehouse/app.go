package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/cors"
	"github.com/gatehouse-dev/gatehouse/issuer/discovery"
	"github.com/gatehouse-dev/gatehouse/issuer/flow"
	"github.com/gatehouse-dev/gatehouse/issuer/keys"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/revocation"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/server"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// app is the issuer's wired dependencies.
type app struct {
	cfg     *config.Config
	store   storage.Storage // wrapped in a span per call when tracing is on
	keyring *secrets.Keyring
	keys    *keys.Manager
	clients *client.Manager
	auth    *client.Authenticator
	tokens  *oauth2.Handler
	// revocations streams the revocation events; its poller runs while
	// the issuer serves (runServe).
	revocations *revocation.Handler
	// handlers are what the server mounts; their contributions and
	// discovery (the issuer as configured) make the discovery document.
	handlers  []server.Mounter
	discovery discovery.Options

	// tracer is nil when tracing is off; tracerShutdown flushes its spans.
	tracer         trace.TracerProvider
	tracerShutdown func()
	// registry holds the handlers' own metrics; the server adds its own.
	registry *prometheus.Registry
}

// The handlers the server mounts.
var (
	_ server.Mounter = (*keys.Handler)(nil)
	_ server.Mounter = (*client.Handler)(nil)
	_ server.Mounter = (*oauth2.Handler)(nil)
	_ server.Mounter = (*flow.Handler)(nil)
	_ server.Mounter = (*revocation.Handler)(nil)
)

func (a *app) Close() {
	if a.auth != nil {
		a.auth.Close()
	}
	if a.clients != nil {
		a.clients.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.tracerShutdown != nil {
		a.tracerShutdown()
	}
}

func openStore(ctx context.Context, dsn string, log *zap.Logger) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", redactDSN(dsn), err)
	}
	return st, nil
}

func redactDSN(dsn string) string { return sqlstore.RedactDSN(dsn) }

// buildApp opens the database (migrating SQLite automatically, refusing an
// unmigrated PostgreSQL/MySQL database), loads the secrets and signing keys
// and creates every handler.
func buildApp(ctx context.Context, cfg *config.Config, log *zap.Logger, serving bool) (*app, error) {
	st, err := openStore(ctx, cfg.DSN, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, store: st, discovery: discovery.Options{Issuer: cfg.URLs.Self.Issuer},
		registry: prometheus.NewRegistry()}
	fail := func(err error) (*app, error) { a.Close(); return nil, err }

	if st.Dialect() == sqlstore.DialectSQLite {
		if err := st.Migrate(ctx); err != nil {
			return fail(fmt.Errorf("migrating the SQLite database: %w", err))
		}
	} else if err := st.CheckMigrated(ctx); err != nil {
		if errors.Is(err, sqlstore.ErrNotMigrated) {
			return fail(fmt.Errorf("%w: %w", err, errNotMigratedHint))
		}
		return fail(err)
	}
	if a.tracer, a.tracerShutdown, err = startTracing(ctx, cfg.Tracing, log); err != nil {
		return fail(err)
	}
	a.store = traceStore(st, a.tracer, string(st.Dialect()))

	a.keyring, err = secrets.NewKeyring(cfg.Secrets.System)
	if err != nil {
		return fail(fmt.Errorf("SECRETS_SYSTEM: %w", err))
	}
	a.keys, err = keys.New(keys.Deps{Store: a.store.Keys(), Keyring: a.keyring, Logger: log}, keysOptions(cfg))
	if err != nil {
		return fail(err)
	}
	if err := a.keys.EnsureSets(ctx, keys.SetIDToken, keys.SetAccessToken); err != nil {
		return fail(fmt.Errorf("signing keys: %w", err))
	}
	if err := checkFAPIKeys(ctx, cfg, a.keys); err != nil {
		return fail(err)
	}
	a.handlers = append(a.handlers, keys.NewHandler(a.keys, cfg.PublicURL()))
	if err := a.wireOAuth2(cfg, log); err != nil {
		return fail(err)
	}
	if err := a.wireFlows(cfg, log); err != nil {
		return fail(err)
	}
	a.revocations, err = revocation.New(revocation.Deps{Events: a.store.RevocationEvents(), Logger: log, Registerer: a.registry},
		revocation.Options{Retention: cfg.RevocationEvents.Retention, PollInterval: cfg.RevocationEvents.PollInterval})
	if err != nil {
		return fail(err)
	}
	a.handlers = append(a.handlers, a.revocations)
	var _ storage.Storage = st
	return a, nil
}

// wireOAuth2 creates the client registry, client authentication and the
// token endpoints.
func (a *app) wireOAuth2(cfg *config.Config, log *zap.Logger) error {
	outbound, err := safehttp.New(safehttp.Options{
		DisallowPrivateIPRanges: cfg.Clients.HTTP.DisallowPrivateIPRanges,
		AllowedPrefixes:         cfg.Clients.HTTP.PrivateIPPrefixAllowList,
		UserAgent:               "gatehouse/" + version,
		TracerProvider:          a.tracer,
	})
	if err != nil {
		return fmt.Errorf("CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST: %w", err)
	}
	hasher, err := client.NewHasher(client.HasherOptions{Algorithm: cfg.OAuth2.Hashers.Algorithm,
		PBKDF2Iterations: cfg.OAuth2.Hashers.PBKDF2.Iterations, BCryptCost: cfg.OAuth2.Hashers.BCrypt.Cost})
	if err != nil {
		return fmt.Errorf("OAUTH2_HASHERS: %w", err)
	}
	a.clients, err = client.NewManager(client.ManagerOptions{Store: a.store.Clients(), Hasher: hasher, Logger: log,
		Validation: client.ValidationOptions{SupportedSubjectTypes: cfg.OIDC.SubjectIdentifiers.SupportedTypes, HTTP: outbound,
			FAPI: fapiEverywhere(cfg), DefaultAccessTokenAudience: cfg.OAuth2.DefaultAccessTokenAudience}})
	if err != nil {
		return err
	}
	issuer := strings.TrimRight(cfg.IssuerURL(), "/")
	secretTTL := cfg.OAuth2.SecretCache.TTL
	if !cfg.OAuth2.SecretCache.Enabled {
		secretTTL = -1
	}
	mtlsOpts, clientCAs, err := mtlsOptions(cfg)
	if err != nil {
		return err
	}
	audiences := []string{cfg.PublicURL() + "/oauth2/revoke", issuer + "/oauth2/token", cfg.PublicURL() + flow.PARPath}
	if mtlsOpts.AliasURL != "" {
		audiences = append(audiences, mtlsOpts.AliasURL+"/oauth2/token", mtlsOpts.AliasURL+"/oauth2/revoke")
	}
	a.auth, err = client.NewAuthenticator(client.AuthenticatorOptions{Manager: a.clients, Nonces: a.store.Nonces(),
		HTTP: outbound, Logger: log, TokenEndpoint: cfg.PublicURL() + "/oauth2/token", Issuer: issuer,
		// RFC 9126 §2: the PAR endpoint's URL identifies the issuer too.
		ExtraAudiences: audiences, Certs: mtlsOpts.Certs, ClientCAs: clientCAs,
		SecretCacheTTL: secretTTL, MaxAssertionLifetime: cfg.OAuth2.Grant.JWT.MaxTTL, FAPI: fapiEverywhere(cfg)})
	if err != nil {
		return err
	}
	hooks, err := tokenHooks(cfg, a.registry, a.tracer)
	if err != nil {
		return err
	}
	tokenOpts := oauth2Options(cfg)
	tokenOpts.MTLS = mtlsOpts
	tokens, err := oauth2.New(oauth2.Deps{Clients: a.clients, Auth: a.auth, Tokens: a.store.Tokens(), Trust: a.store.Trust(),
		Nonces: a.store.Nonces(), Signer: a.keys, MAC: a.keyring, TokenHooks: hooks, Logger: log}, tokenOpts)
	if err != nil {
		return err
	}
	clients, err := client.New(client.Deps{Manager: a.clients}, client.Options{Registration: client.RegistrationOptions{
		Enabled:      cfg.OIDC.DynamicClientRegistration.Enabled,
		DefaultScope: cfg.OIDC.DynamicClientRegistration.DefaultScope,
		PublicURL:    cfg.PublicURL(),
	}})
	if err != nil {
		return err
	}
	a.handlers = append(a.handlers, clients, tokens)
	a.tokens = tokens
	return nil
}

// wireFlows creates the authorization endpoint, the login/consent/logout
// challenges and sessions.
func (a *app) wireFlows(cfg *config.Config, log *zap.Logger) error {
	cookieKeys, err := secrets.NewKeyring(cfg.Secrets.Cookie)
	if err != nil {
		return fmt.Errorf("SECRETS_COOKIE: %w", err)
	}
	// Back-channel logout tokens go out through the SSRF guard, without
	// following redirects, each attempt bounded (Back-Channel Logout §2.5).
	backchannel, err := safehttp.New(safehttp.Options{
		DisallowPrivateIPRanges: cfg.Clients.HTTP.DisallowPrivateIPRanges,
		AllowedPrefixes:         cfg.Clients.HTTP.PrivateIPPrefixAllowList,
		Timeout:                 5 * time.Second, MaxRedirects: -1,
		UserAgent: "gatehouse/" + version, TracerProvider: a.tracer,
	})
	if err != nil {
		return fmt.Errorf("CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST: %w", err)
	}
	flows, err := flow.New(flow.Deps{Clients: a.clients, Flows: a.store.Flows(), LoginSessions: a.store.LoginSessions(),
		ConsentSessions: a.store.ConsentSessions(), Tokens: a.tokens, Devices: a.tokens, Keys: a.keys, CookieCipher: cookieKeys,
		HTTP: backchannel, Auth: a.auth, DPoP: a.tokens, Logger: log}, flowOptions(cfg))
	if err != nil {
		return err
	}
	a.handlers = append(a.handlers, flows)
	return nil
}

// keysOptions maps the keys section to keys.Options: a jwks_max_age of 0
// means no-store, which keys.Options spells as a negative value.
func keysOptions(cfg *config.Config) keys.Options {
	o := keys.Options{DefaultAlg: cfg.Keys.Algorithm, RSABits: cfg.Keys.RSABits, JWKSMaxAge: cfg.Keys.JWKSMaxAge}
	if o.JWKSMaxAge == 0 {
		o.JWKSMaxAge = -1
	}
	return o
}

// oauth2Options maps the configuration to oauth2.Options. The issuer is
// the configured string exactly, trailing slash included, as in discovery
// (OpenID Connect Discovery §4.3, RFC 9068 §4).
func oauth2Options(cfg *config.Config) oauth2.Options {
	o := oauth2.Options{
		IssuerURL:                       cfg.URLs.Self.Issuer,
		PublicURL:                       cfg.PublicURL(),
		IntrospectionURL:                cfg.URLs.Introspection,
		AccessTokenLifespan:             cfg.TTL.AccessToken,
		IDTokenLifespan:                 cfg.TTL.IDToken,
		RefreshTokenLifespan:            cfg.TTL.RefreshToken,
		AuthorizationCodeLifespan:       cfg.TTL.AuthCode,
		AccessTokenStrategy:             cfg.Strategies.AccessToken,
		ScopeStrategy:                   cfg.Strategies.Scope,
		JWTScopeClaim:                   cfg.Strategies.JWT.ScopeClaim,
		AllowedTopLevelClaims:           cfg.OAuth2.AllowedTopLevelClaims,
		MirrorTopLevelClaims:            cfg.OAuth2.MirrorTopLevelClaims,
		ClientIDInAudience:              cfg.OAuth2.ClientIDInAudience,
		DefaultAccessTokenAudience:      cfg.OAuth2.DefaultAccessTokenAudience,
		Presigning:                      cfg.OAuth2.Presigning.Enabled,
		RefreshTokenRotationGracePeriod: cfg.OAuth2.Grant.RefreshToken.RotationGracePeriod,
		JWTBearer: oauth2.JWTBearerOptions{
			JTIOptional: cfg.OAuth2.Grant.JWT.JTIOptional,
			IATOptional: cfg.OAuth2.Grant.JWT.IATOptional,
			MaxLifetime: cfg.OAuth2.Grant.JWT.MaxTTL,
		},
		DPoP: oauth2.DPoPOptions{
			ProofMaxAge:   cfg.OAuth2.DPoP.ProofMaxAge,
			ClockSkew:     cfg.OAuth2.DPoP.ClockSkew,
			RequireNonce:  cfg.OAuth2.DPoP.RequireNonce,
			NonceLifespan: cfg.OAuth2.DPoP.NonceLifespan,
		},
		Device:                   deviceOptions(cfg),
		FAPI:                     fapiEverywhere(cfg),
		FAPIRefreshTokenRotation: cfg.OAuth2.FAPI.RefreshTokenRotation,
	}
	o.RefreshTokenRotationGraceReuseCount = cfg.OAuth2.Grant.RefreshToken.RotationGraceReuseCount
	return o
}

// deviceOptions maps the device authorization settings (RFC 8628).
func deviceOptions(cfg *config.Config) oauth2.DeviceOptions {
	n, alphabet := cfg.OAuth2.DeviceAuthorization.UserCode.UserCodeShape()
	return oauth2.DeviceOptions{Lifespan: cfg.TTL.DeviceUserCode, Interval: cfg.OAuth2.DeviceAuthorization.TokenPollingInterval,
		UserCodeLength: n, UserCodeAlphabet: alphabet}
}

// The token side serves the flow's device authorizations.
var _ flow.DeviceGrants = (*oauth2.Handler)(nil)

// wrapCORS puts CORS handling (serve.{public,admin}.cors) in front of a
// listener; on the public one the clients' allowed_cors_origins count too.
func (a *app) wrapCORS(listener string, h http.Handler) http.Handler {
	if listener == "public" {
		return (&cors.Handler{Config: a.cfg.Serve.Public.CORS, Clients: a.clients}).Wrap(h)
	}
	return (&cors.Handler{Config: a.cfg.Serve.Admin.CORS}).Wrap(h)
}
