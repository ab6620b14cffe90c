package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
	"github.com/gatehouse-dev/gatehouse/issuer/tokenhook"
)

// tokenHooks builds the configured hooks in Hydra's order: the legacy
// refresh token hook, then the token hook. They call out through the SSRF
// guard of clients.http (a hook on a private or loopback address needs
// its prefix in clients.http.private_ip_prefix_allow_list when
// clients.http.disallow_private_ip_ranges is on), follow no redirect (a
// 3xx answer is a failure) and read at most tokenhook.MaxResponseBytes.
// Their latency goes to reg.
func tokenHooks(cfg *config.Config, reg prometheus.Registerer, tp trace.TracerProvider) ([]oauth2.TokenHook, error) {
	var hooks []oauth2.TokenHook
	var metrics *tokenhook.Metrics
	for _, h := range []struct {
		env    string
		c      config.Hook
		legacy bool
	}{{"OAUTH2_REFRESH_TOKEN_HOOK", cfg.OAuth2.RefreshTokenHook, true}, {"OAUTH2_TOKEN_HOOK", cfg.OAuth2.TokenHook, false}} {
		if h.c.URL == "" {
			continue
		}
		client, err := safehttp.New(safehttp.Options{
			DisallowPrivateIPRanges: cfg.Clients.HTTP.DisallowPrivateIPRanges,
			AllowedPrefixes:         cfg.Clients.HTTP.PrivateIPPrefixAllowList,
			Timeout:                 h.c.Timeout, MaxRedirects: -1, MaxResponseBytes: tokenhook.MaxResponseBytes,
			UserAgent: "gatehouse/" + version, TracerProvider: tp,
			// On the token endpoint's critical path: no hand-offs
			// between goroutines (safehttp/direct.go).
			Direct: true,
		})
		if err != nil {
			return nil, fmt.Errorf("CLIENTS_HTTP_PRIVATE_IP_PREFIX_ALLOW_LIST: %w", err)
		}
		if metrics == nil {
			metrics = tokenhook.NewMetrics(reg)
		}
		o := tokenhook.Options{URL: h.c.URL, Legacy: h.legacy, Timeout: h.c.Timeout}
		if a := h.c.Auth; a.Type != "" {
			o.Auth = &tokenhook.Auth{Type: a.Type, In: a.Config.In, Name: a.Config.Name, Value: a.Config.Value}
		}
		hook, err := tokenhook.New(tokenhook.Deps{HTTP: client, Metrics: metrics}, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.env, err)
		}
		hooks = append(hooks, hook)
	}
	return hooks, nil
}
