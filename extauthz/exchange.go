package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Internal tokens for upstreams (phantom tokens): on a route with an
// internal_token, an allowed request's token is exchanged (RFC 8693) at
// the issuer for a short-lived JWT whose aud is the route's upstream, and
// that token replaces the caller's upstream. Exchanges are cached per
// (token, audience) until shortly before the internal token expires, so
// a warm route costs one cache lookup; concurrent misses for one key share
// one exchange; while the issuer is down, cached internal tokens keep
// being handed out and misses fail closed (no decision: 503).

// RFC 8693 identifiers.
const (
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	reasonExchangeRefused  = "exchange_refused"
	reasonExchangeScope    = "exchange_scope"
	maxTokenResponseBytes  = 64 << 10
	internalTokenEntryCost = 1024 // the entry, its key and its rendered answers, beyond the token itself
)

// internalRule is a compiled InternalTokenRule.
type internalRule struct {
	audience string
	scope    string // space-separated, "" for none
	// suffix is appended to the token's hash to make the cache key: the
	// audience and scope, which together decide the internal token.
	suffix    string
	denyScope *Denial
}

func (a *Authorizer) compileInternal(r *InternalTokenRule) *internalRule {
	if r == nil {
		return nil
	}
	ir := &internalRule{audience: r.Audience, scope: strings.Join(r.Scopes, " ")}
	ir.suffix = "\x00" + ir.audience + "\x00" + ir.scope
	ir.denyScope = newDenial(a.cfg.Realm, http.StatusForbidden, ErrInsufficientScope, reasonExchangeScope,
		"The access token does not cover the scope of the upstream's token.", ir.scope, a.m)
	return ir
}

// internalToken is one cached exchange: the internal token to send (or
// the issuer's refusal), until when it is handed out, and the answers
// rendered with it.
type internalToken struct {
	key           string // token hash + internalRule.suffix
	authorization string // "Bearer <internal token>"
	until         time.Time
	deny          *Denial
	envoyOK       atomic.Pointer[encodedResponse]
}

// internalTokenUntil is until when an internal token issued for a
// request sent at sent, valid for expiresIn (the token response's
// expires_in, RFC 6749 §5.1), is handed out: margin before it expires,
// the margin at most half its lifetime (so that a short-lived token is
// still reused), and never past the caller's token's expiry (zero: none
// known). ok is false when it must not be reused at all.
func internalTokenUntil(sent time.Time, expiresIn time.Duration, callerExpiry time.Time, margin time.Duration) (time.Time, bool) {
	if expiresIn <= 0 {
		return time.Time{}, false
	}
	until := sent.Add(expiresIn - min(margin, expiresIn/2))
	if !callerExpiry.IsZero() && callerExpiry.Before(until) {
		until = callerExpiry
	}
	return until, until.After(sent)
}

// exchanger obtains internal tokens from one issuer's token endpoint.
type exchanger struct {
	cfg    InternalTokensConfig
	is     *issuerState
	client *http.Client
	log    *zap.Logger
	now    func() time.Time
	negTTL time.Duration
	cache  *ristretto.Cache[string, *internalToken]
	sf     singleflight.Group
	actor  atomic.Pointer[internalToken] // the sidecar's own token (Actor), in authorization
	refuse *Denial

	hit, exchanged, refused, failed prometheus.Counter
}

func newExchanger(a *Authorizer, reg prometheus.Registerer) (*exchanger, error) {
	cfg := a.cfg.InternalTokens
	x := &exchanger{cfg: cfg, is: a.issuerByName[cfg.Issuer], client: a.client, log: a.log.With(zap.String("component", "internal_tokens")),
		now: a.now, negTTL: a.cfg.Cache.NegativeTTL}
	x.refuse = newDenial(a.cfg.Realm, http.StatusUnauthorized, ErrInvalidToken, reasonExchangeRefused,
		"The access token cannot be exchanged for the upstream's token.", "", a.m)
	items := max(cfg.CacheMaxBytes/internalTokenEntryCost, 1024)
	seed1, seed2 := maphash.MakeSeed(), maphash.MakeSeed()
	c, err := ristretto.NewCache(&ristretto.Config[string, *internalToken]{
		NumCounters: 10 * items,
		MaxCost:     cfg.CacheMaxBytes,
		BufferItems: 64,
		// The key holds a SHA-256 digest and the audience; entries check
		// their full key as well (get).
		KeyToHash: func(k string) (uint64, uint64) { return maphash.String(seed1, k), maphash.String(seed2, k) },
	})
	if err != nil {
		return nil, err
	}
	x.cache = c
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sidecar", Name: "internal_tokens_total",
		Help: "Internal tokens for upstreams by result: hit (from the cache), exchanged (at the issuer), refused (the issuer refused the caller's token), error (no answer).",
	}, []string{"result"})
	x.hit, x.exchanged, x.refused, x.failed = v.WithLabelValues("hit"), v.WithLabelValues("exchanged"), v.WithLabelValues("refused"), v.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(v)
	}
	return x, nil
}

func (x *exchanger) close() { x.cache.Close() }

// withInternalToken completes an allowed decision on a route with an
// internal token: the cached exchange, else a new one.
func (a *Authorizer) withInternalToken(ctx context.Context, ru *rule, res result, tok string) Decision {
	it, err := a.exchange.get(ctx, ru.internal, res.key, tok, res.id)
	switch {
	case err != nil:
		a.m.errUnavailable.Inc()
		a.log.Warn("no decision: no internal token", zap.String("rule", ru.name), zap.Error(err))
		return Decision{Err: err, Rule: ru.name}
	case it.deny != nil:
		it.deny.counter.Inc()
		if ce := a.log.Check(zap.DebugLevel, "denied"); ce != nil {
			ce.Write(zap.String("rule", ru.name), zap.String("reason", it.deny.Reason), zap.String("token_sha256", tokenFingerprint(tok)))
		}
		return Decision{Denial: it.deny, Rule: ru.name}
	}
	a.m.allowToken.Inc()
	return Decision{Identity: res.id, Rule: ru.name, internal: it}
}

// get returns the internal token for (key, ir): from the cache, else
// from one exchange shared by every concurrent request for it. An error
// means no decision.
func (x *exchanger) get(ctx context.Context, ir *internalRule, key tokenKey, tok string, id *Identity) (*internalToken, error) {
	ck := key + ir.suffix
	if it, ok := x.cached(ck); ok {
		x.hit.Inc()
		return it, nil
	}
	ch := x.sf.DoChan(ck, func() (any, error) {
		if it, ok := x.cached(ck); ok { // a flight that just ended
			return it, nil
		}
		// Detached from the first caller: its cancellation must not fail
		// the others. The call has its own timeout.
		return x.exchange(context.WithoutCancel(ctx), ir, ck, tok, id)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			x.failed.Inc()
			return nil, r.Err
		}
		return r.Val.(*internalToken), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

func (x *exchanger) cached(ck string) (*internalToken, bool) {
	it, ok := x.cache.Get(ck)
	if !ok || it.key != ck || !x.now().Before(it.until) {
		return nil, false
	}
	return it, true
}

// exchange asks the issuer for an internal token (RFC 8693 §2.1) and
// caches the answer: the token until internalTokenUntil, a refusal of
// the caller's token for cache.negative_ttl.
func (x *exchanger) exchange(ctx context.Context, ir *internalRule, ck, tok string, id *Identity) (*internalToken, error) {
	// RFC 8693 §3: an access token of the exchanging issuer, else a JWT
	// (another configured issuer's, which the exchanging one must trust).
	subjectType := tokenTypeAccessToken
	if id.TokenType == TokenTypeJWT && id.Issuer != x.is.cfg.Issuer {
		subjectType = tokenTypeJWT
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {tok},
		"subject_token_type":   {subjectType},
		"audience":             {ir.audience},
		"requested_token_type": {tokenTypeJWT}, // one JWT the upstream verifies locally
	}
	if ir.scope != "" {
		form.Set("scope", ir.scope)
	}
	if x.cfg.Actor {
		actor, err := x.actorToken(ctx)
		if err != nil {
			return nil, err
		}
		form.Set("actor_token", actor)
		form.Set("actor_token_type", tokenTypeAccessToken)
	}
	sent := x.now()
	tr, oerr, err := x.post(ctx, form)
	if err != nil {
		return nil, err
	}
	if oerr != "" {
		var deny *Denial
		switch oerr {
		case "invalid_request", "invalid_grant":
			// §2.2.2: the subject token is not acceptable (revoked,
			// expired, bound to a key the sidecar cannot prove, of an
			// untrusted issuer).
			deny = x.refuse
		case "invalid_scope":
			deny = ir.denyScope
		default:
			// invalid_client, unauthorized_client, invalid_target,
			// unsupported_grant_type: the sidecar's client is not set up
			// for this at the issuer. Not the caller's fault: no decision.
			x.log.Error("the issuer refused the sidecar's token exchange: check internal_tokens.client_id and the client's grant types and audience",
				zap.String("error", oerr), zap.String("audience", ir.audience))
			return nil, fmt.Errorf("%w: token exchange: %s", ErrUnavailable, oerr)
		}
		x.refused.Inc()
		it := &internalToken{key: ck, deny: deny, until: sent.Add(x.negTTL)}
		x.store(it, 256, x.negTTL)
		return it, nil
	}
	x.exchanged.Inc()
	it := &internalToken{key: ck, authorization: "Bearer " + tr.token}
	if until, ok := internalTokenUntil(sent, tr.expiresIn, id.Expiry, x.cfg.ExpiryMargin); ok {
		it.until = until
		x.store(it, int64(internalTokenEntryCost+2*len(it.authorization)), until.Sub(sent))
	}
	return it, nil
}

// store caches it and waits until the cache has taken it, so that the
// next request finds it (misses are rare: each is a call to the issuer).
func (x *exchanger) store(it *internalToken, cost int64, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	x.cache.SetWithTTL(it.key, it, cost, ttl)
	x.cache.Wait()
}

// actorToken is the sidecar's own access token (client_credentials, RFC
// 6749 §4.4), cached like internal tokens.
func (x *exchanger) actorToken(ctx context.Context) (string, error) {
	if it := x.actor.Load(); it != nil && x.now().Before(it.until) {
		return it.authorization, nil
	}
	v, err, _ := x.sf.Do("\x00actor", func() (any, error) {
		if it := x.actor.Load(); it != nil && x.now().Before(it.until) {
			return it.authorization, nil
		}
		sent := x.now()
		tr, oerr, err := x.post(ctx, url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			return nil, err
		}
		if oerr != "" {
			x.log.Error("the issuer refused the sidecar's client_credentials request for its actor token: the client needs the client_credentials grant",
				zap.String("error", oerr))
			return nil, fmt.Errorf("%w: actor token: %s", ErrUnavailable, oerr)
		}
		if until, ok := internalTokenUntil(sent, tr.expiresIn, time.Time{}, x.cfg.ExpiryMargin); ok {
			x.actor.Store(&internalToken{authorization: tr.token, until: until})
		}
		return tr.token, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// tokenResponse is what the sidecar reads of a successful token response
// (RFC 6749 §5.1, RFC 8693 §2.2.1).
type tokenResponse struct {
	token     string
	expiresIn time.Duration // 0: unknown
}

// post calls the token endpoint as the sidecar's client (client_secret_basic,
// RFC 6749 §2.3.1). It returns the token, or the OAuth error code of a
// refusal (§5.2), or an error (wrapping ErrUnavailable) when there is no
// usable answer.
func (x *exchanger) post(ctx context.Context, form url.Values) (tokenResponse, string, error) {
	endpoint := x.cfg.TokenEndpoint
	if endpoint == "" {
		endpoint = x.is.keys.TokenEndpoint()
	}
	if endpoint == "" {
		return tokenResponse{}, "", fmt.Errorf("%w: %s: no token endpoint known yet (discovery not loaded)", ErrUnavailable, x.is.cfg.Issuer)
	}
	fail := func(format string, args ...any) (tokenResponse, string, error) {
		return tokenResponse{}, "", fmt.Errorf("%w: token endpoint %s: %s", ErrUnavailable, endpoint, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fail("%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(x.cfg.ClientID), url.QueryEscape(x.cfg.ClientSecret))
	resp, err := x.client.Do(req)
	if err != nil {
		// The error names the URL, never the form (tokens, secret).
		return fail("%v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes+1))
	if err != nil {
		return fail("%v", err)
	}
	if len(raw) > maxTokenResponseBytes {
		return fail("response larger than 64 KiB")
	}
	if resp.StatusCode != http.StatusOK {
		// §5.2: 400 (or 401 for client authentication) with an error code.
		var e struct {
			Error string `json:"error"`
		}
		if (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) &&
			json.Unmarshal(raw, &e) == nil && e.Error != "" && isTokenCode(e.Error) {
			return tokenResponse{}, e.Error, nil
		}
		return fail("status %d", resp.StatusCode)
	}
	return parseTokenResponse(raw, x.now())
}

// isTokenCode reports whether s looks like an RFC 6749 error code (it is
// logged): printable ASCII without quotes or backslashes, short.
func isTokenCode(s string) bool {
	return len(s) <= 64 && quotedStringSafe(s) == s && !strings.Contains(s, " ")
}

// parseTokenResponse reads a successful token response: a bearer access
// token that can be sent in a header and its lifetime (expires_in, else
// the JWT's exp, else unknown).
func parseTokenResponse(raw []byte, now time.Time) (tokenResponse, string, error) {
	bad := func(why string) (tokenResponse, string, error) {
		return tokenResponse{}, "", fmt.Errorf("%w: token endpoint: %s", ErrUnavailable, why)
	}
	var r struct {
		AccessToken string      `json:"access_token"`
		TokenType   string      `json:"token_type"`
		ExpiresIn   json.Number `json:"expires_in"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return bad("the response is not a token response")
	}
	// RFC 6749 §7.1: token_type is case-insensitive; only a bearer token
	// can replace the caller's in Authorization: Bearer.
	if !strings.EqualFold(r.TokenType, "bearer") {
		return bad(fmt.Sprintf("token_type %q is not Bearer", quotedStringSafe(r.TokenType)))
	}
	if !isB64Token(r.AccessToken) || !headerValueOK(r.AccessToken) {
		return bad("access_token is missing or not a token68")
	}
	tr := tokenResponse{token: r.AccessToken}
	if r.ExpiresIn != "" {
		n, err := strconv.ParseInt(string(r.ExpiresIn), 10, 64)
		if err != nil || n < 0 || n > 366*24*3600 {
			return bad("expires_in is not a number of seconds")
		}
		tr.expiresIn = time.Duration(n) * time.Second
	} else if exp, ok := jwtExpiry(r.AccessToken); ok {
		tr.expiresIn = exp.Sub(now)
	}
	return tr, "", nil
}

// jwtExpiry reads a JWT's exp without verifying it: only to time the
// cache of a token the issuer has just sent.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == "" {
		return time.Time{}, false
	}
	t, err := dateOf(string(c.Exp))
	return t, err == nil
}

// UpstreamAuthorization is the Authorization header the upstream must
// receive instead of the caller's ("Bearer <internal token>"), "" when
// the route has no internal token.
func (d Decision) UpstreamAuthorization() string {
	if d.internal == nil {
		return ""
	}
	return d.internal.authorization
}

// renderInternal is Envoy's OK answer on a route with an internal token:
// the identity headers plus authorization replaced by the internal token
// (OVERWRITE_IF_EXISTS_OR_ADD, so the caller's token never reaches the
// upstream). Rendered once per cached internal token: a token's identity
// is the same whichever decision cache entry carried it.
func renderInternal(a *Authorizer, id *Identity, it *internalToken) (*encodedResponse, error) {
	if r := it.envoyOK.Load(); r != nil {
		return r, nil
	}
	set := make([]Header, 0, len(id.headers)+1)
	set = append(set, Header{"authorization", it.authorization})
	set = append(set, id.headers...)
	var r *encodedResponse
	var err error
	if a.DynamicMetadata() {
		r, err = encodeResponse(okResponse(set, id.unset, claimsMetadata(id.Claims)))
	} else {
		r, err = appendOKResponse(set, id.unset)
	}
	if err != nil {
		return nil, err
	}
	it.envoyOK.Store(r)
	return r, nil
}
