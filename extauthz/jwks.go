package extauthz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Errors of the key store.
var (
	// ErrUnavailable means no decision could be made: the issuer could not
	// be reached and nothing usable is cached.
	ErrUnavailable = errors.New("issuer unavailable")
	// ErrIssuerMismatch means discovery answered for another issuer
	// (OpenID Connect Discovery §4.3): a configuration error.
	ErrIssuerMismatch = errors.New("discovery issuer does not match")
	errUnknownKID     = errors.New("unknown key id")
	errStopped        = errors.New("key store stopped")
)

const maxDocumentBytes = 1 << 20

// verifyKey is one usable signature-verification key.
type verifyKey struct {
	kid  string
	key  any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []jwa.SignatureAlgorithm
}

// keySet is an immutable snapshot of an issuer's keys.
type keySet struct {
	byKID map[string]*verifyKey
	all   []*verifyKey
}

// find returns the key a token header's kid names. A token without kid
// is only accepted when the issuer publishes exactly one key.
func (s *keySet) find(kid string) *verifyKey {
	if kid == "" {
		if len(s.all) == 1 {
			return s.all[0]
		}
		return nil
	}
	return s.byKID[kid]
}

// KeyStore caches one issuer's discovery document and JWKS. It is a
// service: Start loads the keys and refreshes them in the background
// (honouring Cache-Control), Key re-fetches at once when a token names an
// unknown kid (single-flight, at most once per UnknownKIDInterval), and
// the last good set is kept while the issuer is unreachable.
type KeyStore struct {
	cfg      IssuerConfig
	jcfg     JWKSConfig
	algs     []jwa.SignatureAlgorithm
	client   *http.Client
	log      *zap.Logger
	m        *metrics
	onSwap   func(removedKeys bool)
	set      atomic.Pointer[keySet]
	gen      atomic.Uint64 // counts key set swaps: which set a caller saw
	jwksURL  atomic.Pointer[string]
	introURL atomic.Pointer[string]
	tokenURL atomic.Pointer[string] // discovery's token_endpoint

	sf         singleflight.Group
	mu         sync.Mutex
	lastForced time.Time // real time: rate limiting is operational, not validation

	ready     chan struct{}
	readyOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
}

// newKeyStore builds an issuer's key store; Start runs it.
func newKeyStore(cfg IssuerConfig, jcfg JWKSConfig, algs []jwa.SignatureAlgorithm, client *http.Client, log *zap.Logger, m *metrics, onSwap func(bool)) *KeyStore {
	k := &KeyStore{cfg: cfg, jcfg: jcfg, algs: algs, client: client, log: log.With(zap.String("issuer", cfg.Issuer)),
		m: m, onSwap: onSwap, ready: make(chan struct{}), done: make(chan struct{})}
	if cfg.JWKSURL != "" {
		u := cfg.JWKSURL
		k.jwksURL.Store(&u)
	}
	if cfg.IntrospectionURL != "" {
		u := cfg.IntrospectionURL
		k.introURL.Store(&u)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k
}

// Start loads the keys once and then refreshes them in the background
// until Stop. It fails only when discovery names another issuer; an
// unreachable issuer is retried with backoff while the store is not ready.
func (k *KeyStore) Start() error {
	next, err := k.refresh("scheduled")
	if errors.Is(err, ErrIssuerMismatch) {
		k.cancel()
		close(k.done)
		return err
	}
	go k.run(next, err)
	return nil
}

// Stop ends the background refresh and waits for it.
func (k *KeyStore) Stop() {
	k.cancel()
	<-k.done
}

// Ready is closed once a key set has been loaded.
func (k *KeyStore) Ready() <-chan struct{} { return k.ready }

// IntrospectionURL is the configured or discovered introspection
// endpoint, "" if none is known.
func (k *KeyStore) IntrospectionURL() string {
	if p := k.introURL.Load(); p != nil {
		return *p
	}
	return ""
}

// TokenEndpoint is the discovered token endpoint, "" if none is known.
func (k *KeyStore) TokenEndpoint() string {
	if p := k.tokenURL.Load(); p != nil {
		return *p
	}
	return ""
}

func (k *KeyStore) run(next time.Duration, err error) {
	defer close(k.done)
	backoff := time.Second
	for {
		wait := next
		if err != nil {
			wait = backoff
			backoff = min(2*backoff, 30*time.Second)
			if k.set.Load() != nil {
				k.log.Warn("jwks refresh failed; keeping the last good key set", zap.Error(err))
			} else {
				k.log.Warn("jwks not loaded yet; retrying", zap.Error(err), zap.Duration("retry_in", wait))
			}
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next, err = k.refresh("scheduled")
	}
}

// refresh fetches (discovery and) the JWKS once, shared by concurrent
// callers, and returns when to refresh next.
func (k *KeyStore) refresh(trigger string) (time.Duration, error) {
	v, err, _ := k.sf.Do("fetch", func() (any, error) { return k.fetch(trigger) })
	if err != nil {
		return 0, err
	}
	return v.(time.Duration), nil
}

// key returns the key for kid, re-fetching the JWKS when kid is unknown.
// It returns ErrUnavailable (wrapped) when no key set could ever be
// loaded, and errUnknownKID when the set is loaded but lacks kid.
func (k *KeyStore) key(ctx context.Context, kid string) (*verifyKey, error) {
	// gen before the set: a swap in between makes gen stale, never the set.
	gen, set := k.gen.Load(), k.set.Load()
	for tries := 0; ; tries++ {
		if set != nil {
			if vk := set.find(kid); vk != nil {
				return vk, nil
			}
			if kid == "" || tries == 3 {
				return nil, errUnknownKID
			}
		}
		ferr := k.forceRefresh(ctx, gen, set == nil)
		gen, set = k.gen.Load(), k.set.Load()
		if errors.Is(ferr, errSetChanged) {
			continue // look the kid up in the newer set first
		}
		if set == nil {
			return nil, fmt.Errorf("%w: %s: no signing keys loaded: %v", ErrUnavailable, k.cfg.Issuer, ferr)
		}
		if vk := set.find(kid); vk != nil {
			return vk, nil
		}
		if ferr != nil && ctx.Err() != nil {
			// The caller gave up while the re-fetch was pending: no decision.
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
		return nil, errUnknownKID
	}
}

// errSetChanged: the key set was replaced after the caller looked.
var errSetChanged = errors.New("key set changed")

// forceRefresh re-fetches the JWKS because a token named an unknown kid.
// Re-fetches are single-flight and at most one per UnknownKIDInterval: a
// caller arriving inside the interval waits for the next allowed fetch
// (bounded by its context) so that a token signed by a key the issuer
// has just published is never refused; a flood of random kids costs the
// issuer one request per interval. Without any key set yet, callers do
// not wait: the background loop is already retrying.
//
// gen is the key set generation the caller looked the kid up in. Flights
// are per generation: a caller that looked at a set which has since been
// replaced returns at once to look again, instead of waiting out the
// interval for a fetch the replacement may have made unnecessary
// (errSetChanged).
func (k *KeyStore) forceRefresh(ctx context.Context, gen uint64, noKeys bool) error {
	k.mu.Lock()
	wait := time.Until(k.lastForced.Add(k.jcfg.UnknownKIDInterval))
	k.mu.Unlock()
	if wait > 0 && noKeys {
		return errors.New("unknown-kid re-fetch rate limited")
	}
	ch := k.sf.DoChan("forced:"+strconv.FormatUint(gen, 10), func() (any, error) {
		if k.gen.Load() != gen {
			return nil, errSetChanged
		}
		k.mu.Lock()
		wait := time.Until(k.lastForced.Add(k.jcfg.UnknownKIDInterval))
		k.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-k.ctx.Done():
				return nil, errStopped
			}
		}
		k.mu.Lock()
		k.lastForced = time.Now()
		k.mu.Unlock()
		_, err := k.refresh("unknown_kid")
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type discoveryDoc struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// fetch runs discovery (on scheduled refreshes, unless jwks_url is
// configured) and loads the JWKS.
func (k *KeyStore) fetch(trigger string) (next time.Duration, err error) {
	ctx, cancel := context.WithTimeout(k.ctx, k.jcfg.FetchTimeout)
	defer cancel()
	defer func() {
		result := "success"
		if err != nil {
			result = "failure"
		}
		k.m.jwksFetches.WithLabelValues(k.cfg.Issuer, trigger, result).Inc()
	}()
	if k.cfg.JWKSURL == "" && (trigger == "scheduled" || k.jwksURL.Load() == nil) {
		if err := k.discover(ctx); err != nil {
			if k.jwksURL.Load() == nil || errors.Is(err, ErrIssuerMismatch) {
				return 0, err
			}
			// Discovery failed but the JWKS location is known: go on.
			k.log.Warn("discovery refresh failed", zap.Error(err))
		}
	}
	u := *k.jwksURL.Load()
	body, hdr, err := k.get(ctx, u)
	if err != nil {
		return 0, fmt.Errorf("jwks %s: %w", u, err)
	}
	set, err := k.parseSet(body)
	if err != nil {
		return 0, fmt.Errorf("jwks %s: %w", u, err)
	}
	old := k.set.Swap(set)
	k.gen.Add(1)
	k.m.jwksKeys.WithLabelValues(k.cfg.Issuer).Set(float64(len(set.all)))
	if old == nil {
		k.log.Info("jwks loaded", zap.Int("keys", len(set.all)))
	}
	if k.onSwap != nil {
		k.onSwap(old != nil && removedKeys(old, set))
	}
	k.readyOnce.Do(func() { close(k.ready) })
	return k.interval(hdr.Get("Cache-Control")), nil
}

func (k *KeyStore) discover(ctx context.Context) error {
	u := k.cfg.DiscoveryURL
	if u == "" {
		u = strings.TrimSuffix(k.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	}
	body, _, err := k.get(ctx, u)
	if err != nil {
		return fmt.Errorf("discovery %s: %w", u, err)
	}
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("discovery %s: %w", u, err)
	}
	// OpenID Connect Discovery §4.3: the issuer must be identical.
	if d.Issuer != k.cfg.Issuer {
		return fmt.Errorf("%w: %s says issuer %q, configured %q", ErrIssuerMismatch, u, d.Issuer, k.cfg.Issuer)
	}
	if k.cfg.JWKSURL == "" {
		if err := checkURL(d.JWKSURI, false); err != nil {
			return fmt.Errorf("discovery %s: jwks_uri: %w", u, err)
		}
		k.jwksURL.Store(&d.JWKSURI)
	}
	if k.cfg.IntrospectionURL == "" && d.IntrospectionEndpoint != "" {
		if checkURL(d.IntrospectionEndpoint, false) == nil {
			k.introURL.Store(&d.IntrospectionEndpoint)
		}
	}
	if d.TokenEndpoint != "" && checkURL(d.TokenEndpoint, false) == nil {
		k.tokenURL.Store(&d.TokenEndpoint)
	}
	return nil
}

func (k *KeyStore) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(body) > maxDocumentBytes {
		return nil, nil, errors.New("document larger than 1 MiB")
	}
	return body, resp.Header, nil
}

// parseSet keeps the keys usable for verifying signatures: asymmetric,
// `use` absent or "sig", `key_ops` absent or containing "verify", RSA of
// at least 2048 bits. The algorithms a key accepts are its `alg` or,
// without one, those its type allows; either way only configured ones.
func (k *KeyStore) parseSet(body []byte) (*keySet, error) {
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, err
	}
	ks := &keySet{byKID: map[string]*verifyKey{}}
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		kid, _ := key.KeyID()
		skip := func(why string) { k.log.Debug("jwks key skipped", zap.String("kid", kid), zap.String("reason", why)) }
		if _, unsupported := key.(jwk.UnsupportedKey); unsupported {
			skip("unsupported key type")
			continue
		}
		if use, ok := key.KeyUsage(); ok && use != "sig" {
			skip("use is not sig")
			continue
		}
		if ops, ok := key.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
			skip("key_ops lacks verify")
			continue
		}
		if key.KeyType() == jwa.OctetSeq() {
			skip("symmetric key")
			continue
		}
		pub, err := key.PublicKey()
		if err != nil {
			skip(err.Error())
			continue
		}
		var raw any
		if err := jwk.Export(pub, &raw); err != nil {
			skip(err.Error())
			continue
		}
		if rk, ok := raw.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			skip("RSA key shorter than 2048 bits")
			continue
		}
		var algs []jwa.SignatureAlgorithm
		if a, ok := key.Algorithm(); ok {
			sa, ok := jwa.LookupSignatureAlgorithm(a.String())
			if !ok || !slices.Contains(k.algs, sa) {
				skip("alg " + a.String() + " not accepted")
				continue
			}
			algs = []jwa.SignatureAlgorithm{sa}
		} else {
			cands, err := algsForKey(raw)
			if err != nil {
				skip(err.Error())
				continue
			}
			for _, c := range cands {
				if slices.Contains(k.algs, c) {
					algs = append(algs, c)
				}
			}
			if len(algs) == 0 {
				skip("no accepted algorithm for the key type")
				continue
			}
		}
		vk := &verifyKey{kid: kid, key: raw, algs: algs}
		if kid != "" {
			if _, dup := ks.byKID[kid]; dup {
				skip("duplicate kid")
				continue
			}
			ks.byKID[kid] = vk
		}
		ks.all = append(ks.all, vk)
	}
	if len(ks.all) == 0 {
		return nil, errors.New("no usable signing key")
	}
	return ks, nil
}

// interval turns a Cache-Control header into the delay before the next
// scheduled refresh: the freshness lifetime clamped to
// [MinRefreshInterval, MaxRefreshInterval]; no lifetime means
// RefreshInterval.
func (k *KeyStore) interval(cacheControl string) time.Duration {
	d := k.jcfg.RefreshInterval
	if age, ok := FreshnessLifetime(cacheControl); ok {
		d = age
	}
	return min(max(d, k.jcfg.MinRefreshInterval), k.jcfg.MaxRefreshInterval)
}

// FreshnessLifetime reads a Cache-Control response header as a shared
// cache would (RFC 9111 §4.2.1, §5.2.2): s-maxage wins over max-age;
// no-store and no-cache mean zero. ok is false when the header says
// nothing usable. Unknown or malformed directives are ignored.
func FreshnessLifetime(cacheControl string) (age time.Duration, ok bool) {
	var maxAge, sMaxAge int64 = -1, -1
	for _, dir := range strings.Split(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(dir), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.Trim(strings.TrimSpace(value), `"`)
		switch name {
		case "no-store", "no-cache":
			return 0, true
		case "max-age", "s-maxage":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				continue
			}
			n = min(n, int64(math.MaxInt64/time.Second))
			if name == "max-age" {
				maxAge = n
			} else {
				sMaxAge = n
			}
		}
	}
	switch {
	case sMaxAge >= 0:
		return time.Duration(sMaxAge) * time.Second, true
	case maxAge >= 0:
		return time.Duration(maxAge) * time.Second, true
	}
	return 0, false
}

func removedKeys(old, cur *keySet) bool {
	for _, o := range old.all {
		found := false
		for _, c := range cur.all {
			if o.kid == c.kid && keysEqual(o.key, c.key) {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

func keysEqual(a, b any) bool {
	if e, ok := a.(interface{ Equal(x crypto.PublicKey) bool }); ok {
		return e.Equal(b)
	}
	return false
}

// algsForKey lists the JWS algorithms (RFC 7518 §3) a public key without an
// "alg" member can verify, by key type and curve.
func algsForKey(raw any) ([]jwa.SignatureAlgorithm, error) {
	switch k := raw.(type) {
	case *rsa.PublicKey:
		return []jwa.SignatureAlgorithm{jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512()}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []jwa.SignatureAlgorithm{jwa.ES256()}, nil
		case elliptic.P384():
			return []jwa.SignatureAlgorithm{jwa.ES384()}, nil
		case elliptic.P521():
			return []jwa.SignatureAlgorithm{jwa.ES512()}, nil
		}
		return nil, fmt.Errorf("unsupported elliptic curve")
	case ed25519.PublicKey:
		return []jwa.SignatureAlgorithm{jwa.EdDSA()}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", raw)
}
