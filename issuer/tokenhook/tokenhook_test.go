package tokenhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
)

func input(grant string) *Input {
	return &Input{
		GrantType: grant, ClientID: "c1", Subject: "alice", IDSubject: "alice", Issuer: "https://iss.example",
		Form: url.Values{"grant_type": {grant}, "scope": {"openid offline"}, "client_secret": {"s3cret"},
			"code": {"ory_ac_x"}, "refresh_token": {"ory_rt_x"}, "code_verifier": {"v"}, "client_id": {"c1"}},
		RequestedScopes: []string{"openid", "offline"}, GrantedScopes: []string{"openid", "offline"},
		AccessTokenClaims: map[string]any{"tenant": "acme"}, IDTokenClaims: map[string]any{"email": "a@example.com"},
		ConsentChallenge: "ch1", Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func newHook(t *testing.T, url string, o Options, reg prometheus.Registerer) *Hook {
	t.Helper()
	hc, err := safehttp.New(safehttp.Options{MaxRedirects: -1, MaxResponseBytes: MaxResponseBytes})
	if err != nil {
		t.Fatal(err)
	}
	o.URL = url
	var m *Metrics
	if reg != nil {
		m = NewMetrics(reg)
	}
	h, err := New(Deps{HTTP: hc, Metrics: m}, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAnswers is the table of what each answer of the hook makes of the
// token request.
func TestAnswers(t *testing.T) {
	big := `{"session":{"access_token":{"x":"` + strings.Repeat("a", MaxResponseBytes) + `"}}}`
	cases := []struct {
		name    string
		status  int
		body    string
		wantErr string // apierr code, "" for success
		want    *Result
	}{
		{"200 replaces both maps", 200, `{"session":{"access_token":{"role":"admin"},"id_token":{"tier":"gold"}}}`, "",
			&Result{AccessToken: map[string]any{"role": "admin"}, IDToken: map[string]any{"tier": "gold"}}},
		{"200 drops reserved claims", 200, `{"session":{"access_token":{"sub":"mallory","iss":"x","aud":["x"],"exp":1,"iat":1,"nbf":1,"jti":"j","client_id":"c","scope":"admin","scp":["admin"],"cnf":{},"ext":{},"ok":1},"id_token":{"sub":"mallory","cnf":{"jkt":"x"},"ok":2}}}`, "",
			&Result{AccessToken: map[string]any{"ok": float64(1)}, IDToken: map[string]any{"ok": float64(2)}}},
		{"200 without maps clears", 200, `{"session":{}}`, "", &Result{}},
		{"204 leaves tokens", 204, ``, "", nil},
		{"403 is access_denied", 403, `{"error":"nope"}`, "access_denied", nil},
		{"401 is server_error", 401, ``, "server_error", nil},
		{"500 is server_error", 500, ``, "server_error", nil},
		{"302 is server_error", 302, ``, "server_error", nil},
		{"201 is server_error", 201, `{}`, "server_error", nil},
		{"200 not JSON", 200, `<html>`, "server_error", nil},
		{"200 over 5 MiB", 200, big, "server_error", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			res, err := newHook(t, srv.URL, Options{}, nil).Call(context.Background(), input("authorization_code"))
			if tc.wantErr != "" {
				var e *apierr.Error
				if !errors.As(err, &e) || e.Code != tc.wantErr || res != nil {
					t.Fatalf("got %v, %v; want %s", res, err, tc.wantErr)
				}
				if e.Description != "The token hook target responded with an error." {
					t.Errorf("description %q", e.Description)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(res, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", res, err, tc.want)
			}
		})
	}
}

// TestUnreachableAndTimeout: no answer is a server_error.
func TestUnreachableAndTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	_, err := newHook(t, srv.URL, Options{Timeout: 50 * time.Millisecond}, nil).Call(context.Background(), input("client_credentials"))
	if e := apierr.From(err); e.Code != "server_error" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	u := closed.URL
	closed.Close()
	if _, err := newHook(t, u, Options{}, nil).Call(context.Background(), input("client_credentials")); apierr.From(err).Code != "server_error" {
		t.Fatalf("unreachable: %v", err)
	}
	guarded, _ := safehttp.New(safehttp.Options{DisallowPrivateIPRanges: true})
	h, _ := New(Deps{HTTP: guarded}, Options{URL: srv.URL})
	if _, err := h.Call(context.Background(), input("client_credentials")); !errors.Is(err, safehttp.ErrBlockedAddress) {
		t.Fatalf("a loopback hook behind the SSRF guard: %v", err)
	}
}

// TestBodies: the token hook gets Hydra's TokenHookRequest with a
// sanitized payload, the legacy hook Hydra's RefreshTokenHookRequest and
// only for refresh; the api key goes in a header or a cookie.
func TestBodies(t *testing.T) {
	var got map[string]any
	var hdr http.Header
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		hdr = r.Header.Clone()
		got = nil
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(204)
	}))
	defer srv.Close()

	h := newHook(t, srv.URL, Options{Auth: &Auth{Type: "api_key", In: "header", Name: "X-Hook-Key", Value: "k1"}}, nil)
	if _, err := h.Call(context.Background(), input("refresh_token")); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("X-Hook-Key") != "k1" || hdr.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Errorf("headers %v", hdr)
	}
	req := got["request"].(map[string]any)
	wantPayload := map[string]any{"grant_type": []any{"refresh_token"}, "scope": []any{"openid offline"}, "client_id": []any{"c1"}}
	if !reflect.DeepEqual(req["payload"], wantPayload) || req["client_id"] != "c1" ||
		!reflect.DeepEqual(req["grant_types"], []any{"refresh_token"}) || req["requested_scopes"] == nil || req["granted_audience"] == nil {
		t.Errorf("request %v", req)
	}
	sess := got["session"].(map[string]any)
	idc := sess["id_token"].(map[string]any)["id_token_claims"].(map[string]any)
	if sess["extra"].(map[string]any)["tenant"] != "acme" || idc["ext"].(map[string]any)["email"] != "a@example.com" ||
		idc["sub"] != "alice" || idc["iat"] != "2026-01-02T03:04:05Z" || sess["consent_challenge"] != "ch1" || sess["client_id"] != "c1" {
		t.Errorf("session %v", sess)
	}
	for _, k := range []string{"kid", "exclude_not_before_claim", "allowed_top_level_claims", "mirror_top_level_claims"} {
		if _, ok := sess[k]; !ok {
			t.Errorf("session lacks %s", k)
		}
	}

	legacy := newHook(t, srv.URL, Options{Legacy: true, Auth: &Auth{Type: "api_key", In: "cookie", Name: "hook", Value: "k2"}}, nil)
	calls = 0
	if res, err := legacy.Call(context.Background(), input("client_credentials")); res != nil || err != nil || calls != 0 {
		t.Fatalf("the refresh token hook was called for client_credentials: %v %v %d", res, err, calls)
	}
	if _, err := legacy.Call(context.Background(), input("refresh_token")); err != nil || calls != 1 {
		t.Fatal(err)
	}
	if c, _ := (&http.Request{Header: hdr}).Cookie("hook"); c == nil || c.Value != "k2" {
		t.Errorf("cookie: %v", hdr)
	}
	for _, k := range []string{"subject", "session", "requester", "client_id", "granted_scopes", "granted_audience"} {
		if _, ok := got[k]; !ok {
			t.Errorf("legacy body lacks %s: %v", k, got)
		}
	}
	if got["subject"] != "alice" || got["requester"].(map[string]any)["grant_types"].([]any)[0] != "refresh_token" {
		t.Errorf("legacy body %v", got)
	}
}

// TestMetrics: every call is observed, by hook and outcome.
func TestMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	h := newHook(t, srv.URL, Options{}, reg)
	for range 3 {
		_, _ = h.Call(context.Background(), input("client_credentials"))
	}
	mfs, _ := reg.Gather()
	if len(mfs) != 1 || mfs[0].GetName() != "gatehouse_token_hook_duration_seconds" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("series: %v", mfs)
	}
	m := mfs[0].GetMetric()[0]
	if m.GetHistogram().GetSampleCount() != 3 || len(m.GetLabel()) != 2 || m.GetLabel()[1].GetValue() != "204" {
		t.Fatalf("metric %v", m)
	}
}

func TestNewRefuses(t *testing.T) {
	hc, _ := safehttp.New(safehttp.Options{})
	for _, o := range []Options{
		{URL: "/relative"}, {URL: "ftp://h/"},
		{URL: "https://h/", Auth: &Auth{Type: "basic"}},
		{URL: "https://h/", Auth: &Auth{Type: "api_key", In: "query", Name: "k"}},
		{URL: "https://h/", Auth: &Auth{Type: "api_key", In: "header"}},
	} {
		if _, err := New(Deps{HTTP: hc}, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := New(Deps{}, Options{URL: "https://h/"}); err == nil {
		t.Error("no HTTP client accepted")
	}
}

// FuzzParseResponse: a hook's answer never panics the parser, and what it
// returns never carries a reserved claim.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"session":{"access_token":{"a":1},"id_token":{"sub":"x"}}}`, `null`, `{"session":null}`,
		`{"session":{"access_token":[]}}`, `{"session":{"access_token":{"ext":{"sub":1}}}}`, `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseResponse(data)
		if err != nil {
			return
		}
		for _, m := range []map[string]any{res.AccessToken, res.IDToken} {
			for k := range m {
				if Reserved[k] {
					t.Fatalf("reserved claim %q kept", k)
				}
			}
		}
	})
}
