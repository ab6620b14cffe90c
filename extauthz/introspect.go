package extauthz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// introspectOpaque validates an opaque token through the issuers' RFC
// 7662 endpoints (in configuration order; the first active answer wins).
// Concurrent requests for the same token share one call.
func (a *Authorizer) introspectOpaque(ctx context.Context, key tokenKey, tok string) (result, error) {
	ch := a.introSF.DoChan(key, func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others. Each issuer call has its own timeout.
		return a.introspectUncached(context.WithoutCancel(ctx), tok)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return result{}, r.Err
		}
		return r.Val.(result), nil
	case <-ctx.Done():
		return result{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

func (a *Authorizer) introspectUncached(ctx context.Context, tok string) (result, error) {
	neg := result{deny: a.deny.inactive, ttl: a.cfg.Cache.NegativeTTL}
	var errs []error
	asked := false
	for _, is := range a.issuers {
		u := is.keys.IntrospectionURL()
		if u == "" {
			if is.cfg.JWKSURL == "" && is.keys.jwksURL.Load() == nil {
				// Discovery has not answered yet: it may name an endpoint.
				errs = append(errs, fmt.Errorf("%s: discovery not loaded", is.cfg.Issuer))
			}
			continue
		}
		asked = true
		claims, raw, active, err := a.callIntrospection(ctx, is, u, tok)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !active {
			continue
		}
		return a.opaqueResult(is, claims, raw), nil
	}
	if len(errs) > 0 {
		return result{}, fmt.Errorf("%w: introspection: %w", ErrUnavailable, errors.Join(errs...))
	}
	if !asked {
		return result{deny: a.deny.noOpaque, ttl: a.cfg.Cache.NegativeTTL}, nil
	}
	return neg, nil
}

// opaqueResult validates an active introspection answer and builds the
// identity, cached for introspection.cache_ttl bounded by exp.
func (a *Authorizer) opaqueResult(is *issuerState, claims map[string]any, raw []byte) result {
	d := &a.deny
	neg := func(deny *Denial) result { return result{deny: deny, ttl: a.cfg.Cache.NegativeTTL} }
	// Hydra and others answer active for refresh tokens too: only access
	// tokens are bearer credentials for resource servers.
	if use, _, err := stringClaim(claims, "token_use"); err != nil || (use != "" && use != "access_token") {
		return neg(d.tokenType)
	}
	if tt, _, _ := stringClaim(claims, "token_type"); strings.Contains(strings.ToLower(tt), "refresh") {
		return neg(d.tokenType)
	}
	if iss, present, err := stringClaim(claims, "iss"); err != nil || (present && iss != is.cfg.Issuer) {
		return neg(d.wrongIssuer)
	}
	now := a.now()
	skew := a.cfg.JWT.ClockSkew
	ttl := min(a.cfg.Introspection.CacheTTL, a.cfg.Cache.MaxTTL)
	exp, hasExp, err := numericDate(claims, "exp")
	if err != nil {
		return neg(d.invalidClaims)
	}
	if hasExp {
		if !now.Before(exp.Add(skew)) {
			return neg(d.expired)
		}
		ttl = min(ttl, exp.Add(skew).Sub(now))
	}
	if nbf, present, err := numericDate(claims, "nbf"); err != nil {
		return neg(d.invalidClaims)
	} else if present && now.Add(skew).Before(nbf) {
		return neg(d.notYetValid)
	}
	id, err := a.buildIdentity(TokenTypeOpaque, is.cfg.Issuer, mapClaims(claims), raw, exp)
	if err != nil {
		return neg(d.invalidClaims)
	}
	return result{id: id, ttl: ttl}
}

// callIntrospection POSTs the token to an RFC 7662 endpoint (§2.1) and
// decodes the answer (§2.2).
func (a *Authorizer) callIntrospection(ctx context.Context, is *issuerState, endpoint, tok string) (claims map[string]any, raw []byte, active bool, err error) {
	start := time.Now()
	outcome := "error"
	defer func() {
		a.m.introspection.WithLabelValues(is.cfg.Issuer, outcome).Observe(time.Since(start).Seconds())
	}()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Introspection.Timeout)
	defer cancel()
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if is.cfg.IntrospectionClientID != "" {
		// RFC 6749 §2.3.1: id and secret are form-urlencoded first.
		req.SetBasicAuth(url.QueryEscape(is.cfg.IntrospectionClientID), url.QueryEscape(is.cfg.IntrospectionClientSecret))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		a.log.Warn("introspection failed", zap.String("endpoint", endpoint), zap.Int("status", resp.StatusCode))
		return nil, nil, false, fmt.Errorf("%s: status %d", endpoint, resp.StatusCode)
	}
	if len(raw) > maxDocumentBytes {
		return nil, nil, false, fmt.Errorf("%s: response larger than 1 MiB", endpoint)
	}
	claims, err = parseClaims(raw)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: response is not a JSON object", endpoint)
	}
	act, ok := claims["active"].(bool)
	if !ok {
		return nil, nil, false, fmt.Errorf("%s: response has no boolean \"active\"", endpoint)
	}
	outcome = "inactive"
	if act {
		outcome = "active"
	}
	return claims, raw, act, nil
}
