// Package tokenhook calls Ory Hydra's token hooks: before the token
// endpoint mints a response, it POSTs the grant it decided to an operator's
// URL, which may add claims to the access token and the ID token, or refuse
// the request.
//
// Two hooks, both with Hydra's configuration and wire shapes (wire.go):
//
//   - oauth2.token_hook, called for every grant, receives
//     {"session": {...}, "request": {client_id, requested_scopes,
//     granted_scopes, granted_audience, grant_types, payload}};
//   - oauth2.refresh_token_hook (legacy, Options.Legacy), called for the
//     refresh_token grant only and before the token hook, receives Hydra's
//     older body with subject, client_id, granted_scopes and
//     granted_audience at the top level.
//
// The answer decides (Hydra's executeHookAndUpdateSession): 200 with
// {"session": {"access_token": {...}, "id_token": {...}}} replaces the
// extra claims of both tokens; 204 leaves them as they are; 403 fails the
// request with access_denied; any other status, a body that is not that
// JSON or is larger than MaxResponseBytes, a timeout or an unreachable hook
// fails it with server_error, and nothing is issued. Claims the issuer
// computes (Reserved) are dropped from the answer, so a hook cannot
// override them.
package tokenhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

const (
	// MaxResponseBytes bounds a hook's answer (Hydra: 5 MiB).
	MaxResponseBytes = 5 << 20
	// DefaultTimeout bounds a call when Options.Timeout is zero.
	DefaultTimeout = 5 * time.Second
)

// Reserved are the claims a hook cannot set: the ones the issuer computes
// for access tokens (RFC 9068 §2.2, RFC 8693 §4.2 scope, RFC 7800 cnf)
// and Hydra's scp and ext. They are dropped from both maps of an answer;
// the ID token's own computed claims are guarded again where it is signed.
var Reserved = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"client_id": true, "scope": true, "scp": true, "cnf": true, "ext": true,
}

// Doer sends a request: issuer/safehttp.Client, whose SSRF guard the call
// goes through.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Deps are what a Hook works with.
type Deps struct {
	// HTTP sends the call (required).
	HTTP Doer
	// Metrics records the latency of each call; nil records nothing.
	Metrics *Metrics
	// Now defaults to time.Now.
	Now func() time.Time
}

// Auth is Hydra's hook authentication: type api_key, sent in a header or
// a cookie named Name with Value.
type Auth struct {
	Type  string
	In    string
	Name  string
	Value string
}

// Options are a hook's settings.
type Options struct {
	// URL is where the hook is POSTed (http or https; required).
	URL  string
	Auth *Auth
	// Legacy makes this the refresh token hook: called for the
	// refresh_token grant only, with Hydra's older body.
	Legacy bool
	// Timeout bounds one call, answer included; default DefaultTimeout.
	Timeout time.Duration
}

// Hook is one configured hook. Build it with New.
type Hook struct {
	http    Doer
	metrics *Metrics
	now     func() time.Time
	opts    Options
	name    string
}

// New checks the options and returns the Hook.
func New(d Deps, o Options) (*Hook, error) {
	if d.HTTP == nil {
		return nil, errors.New("tokenhook: Deps.HTTP is required")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tokenhook: Options.URL must be an absolute http(s) URL, got %q", o.URL)
	}
	if a := o.Auth; a != nil {
		if a.Type != "api_key" {
			return nil, fmt.Errorf("tokenhook: unsupported auth type %q (api_key)", a.Type)
		}
		if a.In != "header" && a.In != "cookie" {
			return nil, fmt.Errorf("tokenhook: auth.config.in must be header or cookie, got %q", a.In)
		}
		if a.Name == "" {
			return nil, errors.New("tokenhook: auth.config.name is required")
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	name := "token_hook"
	if o.Legacy {
		name = "refresh_token_hook"
	}
	return &Hook{http: d.HTTP, metrics: d.Metrics, now: d.Now, opts: o, name: name}, nil
}

// Result is a 200 answer, reserved claims dropped: the extra claims that
// replace the access token's and the ID token's.
type Result struct {
	AccessToken map[string]any
	IDToken     map[string]any
}

// Call calls the hook for in. It returns nil (tokens unchanged) when the
// hook answered 204 or does not apply (the legacy hook outside refresh),
// the new claims on 200, and an *apierr.Error otherwise. The request
// carries ctx (the incoming request's), bounded by Options.Timeout.
func (h *Hook) Call(ctx context.Context, in *Input) (*Result, error) {
	if h.opts.Legacy && in.GrantType != "refresh_token" {
		return nil, nil
	}
	var body any = in.body()
	if h.opts.Legacy {
		body = in.legacyBody()
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, apierr.ServerError(fmt.Errorf("tokenhook: encoding the %s body: %w", h.name, err)).
			WithDescription("An error occurred while encoding the token hook.")
	}
	start := h.now()
	res, outcome, err := h.do(ctx, raw)
	h.metrics.observe(h.name, outcome, h.now().Sub(start))
	return res, err
}

// do sends one call; outcome labels the metric.
func (h *Hook) do(ctx context.Context, raw []byte) (*Result, string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.URL, bytes.NewReader(raw))
	if err != nil {
		return nil, "error", h.failed(fmt.Errorf("preparing the request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if a := h.opts.Auth; a != nil {
		switch a.In {
		case "header":
			req.Header.Set(a.Name, a.Value)
		case "cookie":
			req.AddCookie(&http.Cookie{Name: a.Name, Value: a.Value})
		}
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, "error", h.failed(fmt.Errorf("calling %s: %w", redact(h.opts.URL), err))
	}
	defer resp.Body.Close()
	status := strconv.Itoa(resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return nil, status, nil
	case http.StatusForbidden:
		return nil, status, apierr.AccessDenied("The token hook target responded with an error.").
			WithCause(fmt.Errorf("tokenhook: %s answered %s", h.name, resp.Status))
	default:
		return nil, status, h.failed(fmt.Errorf("answered %s", resp.Status))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, "error", h.failed(fmt.Errorf("reading the answer: %w", err))
	}
	if len(data) > MaxResponseBytes {
		return nil, "error", h.failed(fmt.Errorf("the answer is longer than %d bytes", MaxResponseBytes))
	}
	res, err := parseResponse(data)
	if err != nil {
		return nil, "error", h.failed(err)
	}
	return res, status, nil
}

// parseResponse decodes a 200 answer and drops the Reserved claims.
func parseResponse(data []byte) (*Result, error) {
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	return &Result{AccessToken: unreserved(out.Session.AccessToken), IDToken: unreserved(out.Session.IDToken)}, nil
}

// failed is the server_error of a hook that could not be used; cause goes
// to the log only.
func (h *Hook) failed(cause error) error {
	return apierr.ServerError(fmt.Errorf("tokenhook: %s: %w", h.name, cause)).
		WithDescription("The token hook target responded with an error.")
}

// unreserved returns m without the Reserved claims (nil stays nil).
func unreserved(m map[string]any) map[string]any {
	for k := range m {
		if Reserved[k] {
			delete(m, k)
		}
	}
	return m
}

// redact drops user info and query from a URL for the log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the hook"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Metrics are the hooks' Prometheus series.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers the hook latency histogram on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_token_hook_duration_seconds",
		Help:    "Latency of token hook calls, by hook (token_hook, refresh_token_hook) and outcome (the hook's HTTP status, or error).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"hook", "outcome"})}
	reg.MustRegister(m.duration)
	return m
}

func (m *Metrics) observe(hook, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(hook, outcome).Observe(d.Seconds())
}
