package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// appBase is where the (never contacted) login, consent and logout apps
// and the clients' callbacks live: the test browser stops at any redirect
// that leaves the issuer and the test plays the app through the admin API.
const appBase = "http://127.0.0.1:9"

const callback = appBase + "/callback"

// flowEnv are the environment variables of an issuer whose login, consent
// and logout apps are at appBase.
func flowEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"URLS_LOGIN":   appBase + "/login",
		"URLS_CONSENT": appBase + "/consent",
		"URLS_LOGOUT":  appBase + "/logout",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// browser is a cookie-keeping user agent that follows redirects within
// the issuer only.
type browser struct {
	t      testing.TB
	is     *testbin.Issuer
	hc     *http.Client
	issuer *url.URL
}

func newBrowser(t testing.TB, is *testbin.Issuer) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(is.PublicURL)
	return &browser{t: t, is: is, issuer: u, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// visit opens u and follows redirects while they stay on the issuer. It
// returns the first URL outside the issuer (the app or the client's
// callback), or, when the issuer answers with a page, that response's
// status and body with a nil URL.
func (b *browser) visit(u string) (*url.URL, int, string) {
	b.t.Helper()
	for range 10 {
		resp, err := b.hc.Get(u)
		if err != nil {
			b.t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return nil, resp.StatusCode, string(body)
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("bad Location %q", resp.Header.Get("Location"))
		}
		if next.Host != b.issuer.Host || strings.HasPrefix(next.Path, "/oauth2/fallbacks/") {
			return next, resp.StatusCode, ""
		}
		u = next.String()
	}
	b.t.Fatalf("too many redirects from %s", u)
	return nil, 0, ""
}

// adminJSON calls the admin API and decodes the answer into out.
func adminJSON(t testing.TB, is *testbin.Issuer, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, is.AdminURL+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

// newFlowClient registers a client through the admin API and returns it
// as registered, with its secret; fields override a confidential
// authorization-code client with refresh tokens.
func newFlowClient(t testing.TB, is *testbin.Issuer, fields map[string]any) map[string]any {
	t.Helper()
	c := map[string]any{
		"client_secret":  "a-very-secret-client-secret-0123",
		"redirect_uris":  []string{callback},
		"grant_types":    []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"},
		"scope":          "openid offline_access profile email",
	}
	for k, v := range fields {
		c[k] = v
	}
	out := is.RegisterClient(t, c).Metadata
	if s, ok := c["client_secret"]; ok {
		out["client_secret"] = s
	}
	return out
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomState() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// acceptLogin plays the login app: it reads the login request and accepts
// it for subject.
func acceptLogin(t testing.TB, is *testbin.Issuer, at *url.URL, accept map[string]any) (req map[string]any, redirectTo string) {
	t.Helper()
	if at == nil || at.Path != "/login" {
		t.Fatalf("expected the login app, got %v", at)
	}
	ch := at.Query().Get("login_challenge")
	if code := adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+ch, nil, &req); code != 200 {
		t.Fatalf("get login request: %d %v", code, req)
	}
	var out map[string]any
	if code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch, accept, &out); code != 200 {
		t.Fatalf("accept login: %d %v", code, out)
	}
	return req, out["redirect_to"].(string)
}

// acceptConsent plays the consent app.
func acceptConsent(t testing.TB, is *testbin.Issuer, at *url.URL, accept func(req map[string]any) map[string]any) (req map[string]any, redirectTo string) {
	t.Helper()
	if at == nil || at.Path != "/consent" {
		t.Fatalf("expected the consent app, got %v", at)
	}
	ch := at.Query().Get("consent_challenge")
	if code := adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req); code != 200 {
		t.Fatalf("get consent request: %d %v", code, req)
	}
	var out map[string]any
	if code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch, accept(req), &out); code != 200 {
		t.Fatalf("accept consent: %d %v", code, out)
	}
	return req, out["redirect_to"].(string)
}

// grantAll accepts every requested scope and audience with some claims.
func grantAll(remember bool) func(map[string]any) map[string]any {
	return func(req map[string]any) map[string]any {
		return map[string]any{
			"grant_scope":                 req["requested_scope"],
			"grant_access_token_audience": req["requested_access_token_audience"],
			"remember":                    remember,
			"session": map[string]any{
				"id_token":     map[string]any{"email": "alice@example.com", "name": "Alice"},
				"access_token": map[string]any{"tenant": "acme"},
			},
		}
	}
}

// relyingParty is a client as a real RP sees it: golang.org/x/oauth2 and
// go-oidc over the issuer's discovery document.
type relyingParty struct {
	conf     *oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func newRP(t testing.TB, is *testbin.Issuer, c map[string]any, scopes ...string) *relyingParty {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, is.PublicURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	id := c["client_id"].(string)
	secret, _ := c["client_secret"].(string)
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if c["token_endpoint_auth_method"] == "none" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &relyingParty{
		conf: &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: ep,
			RedirectURL: callback, Scopes: scopes},
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: id}),
	}
}

// codeFlow runs a whole authorization code flow with PKCE in b as
// subject and returns the callback's parameters.
func codeFlow(t testing.TB, is *testbin.Issuer, b *browser, rp *relyingParty, subject string, opts ...oauth2.AuthCodeOption) (url.Values, string) {
	t.Helper()
	verifier, _ := pkcePair()
	state, nonce := randomState(), randomState()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	at, _, _ := b.visit(rp.conf.AuthCodeURL(state, opts...))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": subject, "remember": true, "remember_for": 3600, "acr": "1", "amr": []string{"pwd"}})
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(true))
	at, _, body := b.visit(to)
	if at == nil || at.Path != "/callback" {
		t.Fatalf("expected the callback, got %v %s", at, body)
	}
	q := at.Query()
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	q.Set("nonce", nonce)
	return q, verifier
}

func introspectToken(t testing.TB, is *testbin.Issuer, token string) map[string]any {
	t.Helper()
	resp, err := http.PostForm(is.AdminURL+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func mustf(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// dpopKey is a client's DPoP key (testbin's, signed with jwx).
type dpopKey struct {
	*testbin.DPoPKey
	priv *ecdsa.PrivateKey
	jwk  map[string]any
	jkt  string
}

func newDPoPKey(t testing.TB) *dpopKey {
	k := testbin.NewDPoPKey(t)
	return &dpopKey{DPoPKey: k, priv: k.Private(), jwk: k.JWK(), jkt: k.JKT}
}

// proof is an RFC 9449 §4.2 proof for htm and htu; edit may change its
// header and claims before it is signed.
func (d *dpopKey) proof(t testing.TB, htm, htu string, edit func(hdr, claims map[string]any)) string {
	t.Helper()
	return d.Proof(t, htm, htu, "", edit)
}

// dpopContext is a context for golang.org/x/oauth2 whose HTTP client adds
// a proof of key (none when nil) to every request.
func dpopContext(t testing.TB, key *dpopKey) context.Context {
	var k *testbin.DPoPKey
	if key != nil {
		k = key.DPoPKey
	}
	return context.WithValue(context.Background(), oauth2.HTTPClient, testbin.DPoPClient(t, k))
}

type httpAnswer struct {
	status int
	header http.Header
	json   map[string]any
}

// post sends form to the public URL u with the DPoP headers given (and
// client_secret_basic credentials when c has a secret).
func postDPoP(t testing.TB, u string, c testbin.Client, form url.Values, proofs ...string) httpAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return doJSON(t, req)
}

func doJSON(t testing.TB, req *http.Request) httpAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := httpAnswer{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &a.json)
	return a
}

func jwtClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	mustf(t, len(parts) == 3, "not a JWT: %.40s", token)
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	mustf(t, json.Unmarshal(raw, &c) == nil, "claims: %s", raw)
	return c
}
