package extauthz

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Options are the authorizer's injected dependencies.
type Options struct {
	Logger *zap.Logger
	// Now is the clock used for token validity and cache expiry.
	Now func() time.Time
	// HTTPClient fetches discovery and JWKS and calls introspection.
	HTTPClient *http.Client
	// Registerer receives the Prometheus metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Authorizer validates tokens and decides requests. It is safe for
// concurrent use. Start it before use; Stop it when done.
type Authorizer struct {
	cfg          Config
	log          *zap.Logger
	now          func() time.Time
	client       *http.Client
	m            *metrics
	algs         map[string]jwa.SignatureAlgorithm
	issuers      []*issuerState
	issuerByName map[string]*issuerState
	anyTypJWT    bool // some issuer accepts typ JWT access tokens
	rules        []*rule
	defaultRule  *rule
	claimPaths   []string
	jwtClaims    map[string]bool // the unregistered top-level claims buildIdentity may read
	headers      headerPlan
	deny         denials
	dpop         *dpopChecker
	mtls         *mtlsChecker
	cel          *celPlan // nil without CEL conditions or headers
	cache        *decisionCache
	exchange     *exchanger // internal tokens (exchange.go); nil when no rule has one
	introSF      singleflight.Group
	ready        chan struct{}
	// revoked and revStream: the revocation deny-set and the stream
	// that fills it; nil when revocations.events_url is "off".
	revoked   *denySet
	revStream *revocationStream
}

type issuerState struct {
	cfg  IssuerConfig
	keys *KeyStore
	// typJWT: its access tokens may have typ "JWT" or none.
	typJWT bool
}

// New builds an authorizer from a configuration; cfg.Defaults() is
// applied and cfg must then pass Validate.
func New(cfg Config, opts Options) (*Authorizer, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	a := &Authorizer{cfg: cfg, log: opts.Logger, now: opts.Now, client: opts.HTTPClient,
		m: newMetrics(opts.Registerer), issuerByName: map[string]*issuerState{}, ready: make(chan struct{})}
	var algList []jwa.SignatureAlgorithm
	a.algs, algList = algorithmSet(cfg.JWT.Algorithms)
	a.deny = newDenials(cfg.Realm, a.m)
	var err error
	if a.dpop, err = newDPoPChecker(cfg.Binding.DPoP, cfg.Realm, a.m); err != nil {
		return nil, fmt.Errorf("binding.dpop: %w", err)
	}
	a.mtls = newMTLSChecker(cfg.Binding.MTLS, cfg.Realm, a.m)
	for name, path := range cfg.Headers.Identity {
		a.headers.identity = append(a.headers.identity, headerSpec{name, path})
		a.headers.names = append(a.headers.names, name)
	}
	sort.Slice(a.headers.identity, func(i, j int) bool { return a.headers.identity[i].name < a.headers.identity[j].name })
	if cfg.Headers.ClaimsHeader != "" {
		a.headers.claimsHeader = cfg.Headers.ClaimsHeader
		a.headers.names = append(a.headers.names, cfg.Headers.ClaimsHeader)
	}
	if a.cel, err = compileCELPlan(cfg); err != nil {
		return nil, err
	}
	if a.cel != nil {
		for _, h := range a.cel.headers {
			a.headers.names = append(a.headers.names, h.name)
		}
	}
	sort.Strings(a.headers.names)
	a.compileRules(cfg.Rules)
	if a.cel != nil {
		a.cel.attach(a)
	}
	a.jwtClaims = a.claimsRead()

	c, err := newDecisionCache(cfg.Cache.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	a.cache = c
	for _, ic := range cfg.Issuers {
		is := &issuerState{cfg: ic, typJWT: cfg.acceptsTypJWT(ic)}
		a.anyTypJWT = a.anyTypJWT || is.typJWT
		is.keys = newKeyStore(ic, cfg.JWKS, algList, a.client, a.log, a.m, a.keysChanged)
		a.issuers = append(a.issuers, is)
		a.issuerByName[ic.Issuer] = is
	}
	if cfg.Revocations.EventsURL != RevocationsEventsOff {
		a.revoked = newDenySet(cfg.Issuers[0].Issuer, cfg.Revocations.MaxEntries)
		rs := &revocationStream{url: a.revocationsURL, client: streamClient(a.client),
			log: a.log.With(zap.String("component", "revocations")), now: a.now, skew: cfg.JWT.ClockSkew,
			set: a.revoked, onReset: func(string) { a.cache.clear() },
			minBackoff: 250 * time.Millisecond, maxBackoff: cfg.Revocations.MaxBackoff, idleTimeout: streamIdleTimeout}
		rs.m = newRevMetrics(opts.Registerer, func() float64 { return float64(a.revoked.size()) },
			func() float64 { return float64(rs.position.Load()) })
		a.revStream = rs
	}
	if cfg.usesInternalTokens() {
		if a.exchange, err = newExchanger(a, opts.Registerer); err != nil {
			return nil, fmt.Errorf("internal_tokens: %w", err)
		}
	}
	return a, nil
}

// revocationsURL is where the revocation events are read: the configured
// URL, else the origin of issuers[0]'s introspection endpoint (the
// issuer's admin API) plus /admin/revocations/events; "" while none is
// known.
func (a *Authorizer) revocationsURL() string {
	if u := a.cfg.Revocations.EventsURL; u != "" {
		return u
	}
	intro := a.issuers[0].keys.IntrospectionURL()
	if intro == "" {
		return ""
	}
	u, err := url.Parse(intro)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/admin/revocations/events"
}

// RevocationStatus reports the revocation stream's state: off (turned
// off, or no introspection endpoint to derive it from), connected, or
// degraded (not connected: revocations take effect after the cache TTLs,
// as without the stream).
func (a *Authorizer) RevocationStatus() RevocationStatus {
	if a.revStream == nil {
		return RevocationStatus{State: RevocationsOff}
	}
	st := a.revStream.status()
	if st.State == RevocationsDegraded && a.IsReady() && a.revocationsURL() == "" {
		st.State = RevocationsOff
	}
	return st
}

// keysChanged drops cached JWT decisions when a key disappeared from a
// JWKS, so that tokens signed by a removed key stop working at once.
func (a *Authorizer) keysChanged(removed bool) {
	if removed {
		a.log.Info("a signing key was removed from the JWKS; clearing the decision cache")
		a.cache.clear()
	}
}

// Start loads every issuer's keys and keeps them fresh. It fails only on
// a configuration error found at the issuer (discovery names another
// issuer); an unreachable issuer is retried in the background and the
// authorizer is not Ready until it answers.
func (a *Authorizer) Start() error {
	for i, is := range a.issuers {
		if err := is.keys.Start(); err != nil {
			for _, started := range a.issuers[:i] {
				started.keys.Stop()
			}
			return fmt.Errorf("issuers[%d].issuer: %w", i, err)
		}
	}
	go func() {
		for _, is := range a.issuers {
			<-is.keys.Ready()
		}
		close(a.ready)
	}()
	if a.revStream != nil {
		a.revStream.start()
	}
	return nil
}

// Stop stops the key refreshes and the revocation stream and releases
// the cache.
func (a *Authorizer) Stop() {
	if a.revStream != nil {
		a.revStream.stop()
	}
	for _, is := range a.issuers {
		is.keys.Stop()
	}
	a.cache.close()
	if a.exchange != nil {
		a.exchange.close()
	}
}

// Ready is closed once every issuer's signing keys are loaded.
func (a *Authorizer) Ready() <-chan struct{} { return a.ready }

// IsReady reports whether Ready is closed.
func (a *Authorizer) IsReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// IdentityHeaderNames returns every configured identity header name
// (including the claims header), sorted. Upstream requests must never
// carry a client-sent value under these names.
func (a *Authorizer) IdentityHeaderNames() []string { return a.headers.names }

// DynamicMetadata reports whether claims go to Envoy dynamic metadata.
func (a *Authorizer) DynamicMetadata() bool { return a.cfg.Headers.DynamicMetadata }

// Decision is the outcome of Decide.
type Decision struct {
	// Identity is the validated caller, nil for an anonymous request.
	Identity *Identity
	// Denial is set when the request is refused.
	Denial *Denial
	// Err is set when no decision could be made (issuer unreachable and
	// nothing usable cached): the gateway's failure mode applies.
	Err error
	// Rule is the name of the matching rule ("default" when none).
	Rule string
	// internal is the route's internal token for the upstream (exchange.go).
	internal *internalToken
}

// Allowed reports whether the request may proceed.
func (d Decision) Allowed() bool { return d.Err == nil && d.Denial == nil }

// Decide authorizes a request: extract the token, match the rule,
// validate (cached), apply the rule's requirements.
func (a *Authorizer) Decide(ctx context.Context, r *Request) Decision {
	ru := a.match(NormalizeHost(r.Host), r.Method, NormalizePath(r.Path))
	tok, dpopScheme, xerr := a.credential(r)
	var res result
	var err error
	switch {
	case xerr != nil:
		res.deny = a.deny.malformed
		if errors.Is(xerr, errTokenTooLong) {
			res.deny = a.deny.tooLarge
		}
	case tok == "":
		res.deny = a.deny.missing
	default:
		res, err = a.authenticate(ctx, tok)
	}
	if err == nil && res.id != nil && res.deny == nil {
		// The binding is checked on every request, the token's
		// validation coming from the cache or not.
		res.deny = a.checkBinding(r, ru, tok, dpopScheme, res.id)
	}
	if ru.anonymous {
		// Public route: a valid token (of an accepted issuer and type,
		// used as its binding requires) still identifies the caller;
		// anything else is anonymous.
		if err == nil && res.id != nil && res.deny == nil && ru.check(res.id) == nil {
			a.m.allowToken.Inc()
			return Decision{Identity: res.id, Rule: ru.name}
		}
		a.m.allowAnonymous.Inc()
		return Decision{Rule: ru.name}
	}
	if err != nil {
		a.m.errUnavailable.Inc()
		a.log.Warn("no decision: issuer unavailable", zap.String("rule", ru.name), zap.Error(err))
		return Decision{Err: err, Rule: ru.name}
	}
	deny := res.deny
	if deny == nil {
		deny = ru.check(res.id)
	}
	if deny == nil && len(ru.conds) > 0 {
		deny = a.checkConditions(ru, r, res.id)
	}
	if deny != nil {
		deny.counter.Inc()
		if ce := a.log.Check(zap.DebugLevel, "denied"); ce != nil {
			ce.Write(zap.String("rule", ru.name), zap.String("reason", deny.Reason), zap.String("token_sha256", tokenFingerprint(tok)))
		}
		return Decision{Denial: deny, Rule: ru.name}
	}
	if ru.internal != nil {
		return a.withInternalToken(ctx, ru, res, tok)
	}
	a.m.allowToken.Inc()
	return Decision{Identity: res.id, Rule: ru.name}
}

// Authenticate validates a token without any rule: the identity if the
// token is valid, else the denial; an error when no decision can be made.
func (a *Authorizer) Authenticate(ctx context.Context, tok string) (*Identity, *Denial, error) {
	if len(tok) > a.cfg.Token.MaxBytes {
		return nil, a.deny.tooLarge, nil
	}
	if !isB64Token(tok) {
		return nil, a.deny.malformed, nil
	}
	res, err := a.authenticate(ctx, tok)
	return res.id, res.deny, err
}

// authenticate looks the token up in the decision cache and validates it
// on a miss.
func (a *Authorizer) authenticate(ctx context.Context, tok string) (result, error) {
	key := hashToken(tok)
	now := a.now()
	if e, ok := a.cache.get(key, now); ok {
		a.m.cacheHit.Inc()
		if e.id != nil && a.isRevoked(e.id) {
			// Revoked since it was cached: the entry goes.
			a.cache.del(key)
			return result{deny: a.deny.revoked}, nil
		}
		return result{id: e.id, deny: e.deny, key: key}, nil
	}
	a.m.cacheMiss.Inc()
	var res result
	var err error
	jwt := looksLikeJWT(tok)
	if jwt {
		res, err = a.verifyJWT(ctx, tok)
	} else {
		res, err = a.introspectOpaque(ctx, key, tok)
	}
	if err != nil {
		return result{}, err
	}
	if res.id != nil && a.isRevoked(res.id) {
		res = result{deny: a.deny.revoked, ttl: a.cfg.Cache.NegativeTTL}
	}
	res.key = key
	if jwt && !a.cache.admit(key) {
		// A JWT's decision is cached from its second miss on: verifying
		// it again costs less than caching every token sent only once.
		// An introspection answer is always cached (a call to the issuer).
		return res, nil
	}
	cost := int64(256)
	if res.id != nil {
		cost = res.id.cost()
	}
	a.cache.set(key, &cacheEntry{id: res.id, deny: res.deny, expires: now.Add(res.ttl)}, cost, res.ttl)
	return res, nil
}

// isRevoked reports whether a revocation event names the token: one
// atomic load while the deny-set is empty.
func (a *Authorizer) isRevoked(id *Identity) bool {
	return a.revoked != nil && a.revoked.match(id)
}

// tokenFingerprint identifies a token in logs without revealing it.
func tokenFingerprint(tok string) string {
	if tok == "" {
		return ""
	}
	h := hashToken(tok)
	return hex.EncodeToString([]byte(h[:6]))
}

// claimsRead names the top-level claims besides the registered ones
// (fastClaims reads those) that a JWT decision may read: for every claim
// path of a rule or identity header each name lookupClaim may try (the
// path itself and each prefix ending before a dot).
func (a *Authorizer) claimsRead() map[string]bool {
	m := map[string]bool{}
	paths := slices.Clone(a.claimPaths)
	for _, h := range a.headers.identity {
		paths = append(paths, h.path)
	}
	for _, p := range paths {
		m[p] = true
		for i := range len(p) {
			if p[i] == '.' {
				m[p[:i]] = true
			}
		}
	}
	m["cnf"] = true // every decision reads the binding
	for _, c := range registeredClaims {
		delete(m, c)
	}
	return m
}
