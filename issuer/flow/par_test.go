package flow

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

const parCallback = "https://rp.example/cb"

// staticClients serves a fixed set of clients.
type staticClients map[string]*client.Client

func (s staticClients) Get(_ context.Context, id string) (*client.Client, error) {
	if c, ok := s[id]; ok {
		return c.Clone(), nil
	}
	return nil, storage.ErrNotFound
}

// secretAuth authenticates confidential clients by the client_secret
// "secret" in the form and public ones by their client_id.
type secretAuth struct{ clients staticClients }

func (a secretAuth) Authenticate(ctx context.Context, _ *http.Request, form url.Values) (*client.Client, error) {
	c, err := a.clients.Get(ctx, form.Get("client_id"))
	if err != nil || (!c.IsPublic() && form.Get("client_secret") != "secret") {
		return nil, apierr.InvalidClient("Client authentication failed")
	}
	return c, nil
}

type parFixture struct {
	t     *testing.T
	h     *Handler
	mux   *http.ServeMux
	clock *storetest.Clock
	flows storage.FlowStore
}

func newPARFixture(t *testing.T, par PAR, clients ...*client.Client) *parFixture {
	t.Helper()
	st := memory.New(memory.Options{})
	cookies, err := secrets.NewKeyring([]string{"cookie-secret-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	cs := staticClients{}
	for _, c := range clients {
		cs[c.ID] = c
	}
	clock := storetest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	h, err := New(Deps{Clients: cs, Flows: st.Flows(), LoginSessions: st.LoginSessions(),
		ConsentSessions: st.ConsentSessions(), Tokens: noTokens{}, Keys: unsignedKeys{}, CookieCipher: cookies,
		Auth: secretAuth{cs}, Now: clock.Now,
	}, Options{IssuerURL: "https://issuer.example/", PublicURL: "https://issuer.example", PAR: par,
		PKCE: PKCE{EnforcedForPublicClients: true}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.MountPublic(mux)
	return &parFixture{t: t, h: h, mux: mux, clock: clock, flows: st.Flows()}
}

func parTestClient(id string, mutate ...func(*client.Client)) *client.Client {
	c := &client.Client{ID: id, RedirectURIs: []string{parCallback}, GrantTypes: []string{client.GrantAuthorizationCode},
		ResponseTypes: []string{"code"}, Scope: "openid profile", TokenEndpointAuthMethod: client.AuthClientSecretPost}
	for _, m := range mutate {
		m(c)
	}
	return c
}

// push posts form to the PAR endpoint.
func (f *parFixture) push(form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, PARPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

// pushOK pushes form and returns the request_uri.
func (f *parFixture) pushOK(form url.Values) string {
	f.t.Helper()
	w := f.push(form)
	var out parResponse
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &out) != nil || !strings.HasPrefix(out.RequestURI, RequestURIPrefix) {
		f.t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	return out.RequestURI
}

// authorize sends query to the authorization endpoint and returns where
// it redirects.
func (f *parFixture) authorize(query url.Values) *url.URL {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/oauth2/auth?"+query.Encode(), nil)
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	if w.Code != http.StatusFound {
		f.t.Fatalf("authorize %v: %d %s", query, w.Code, w.Body)
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func pushedQuery(clientID, requestURI string) url.Values {
	return url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
}

func atLogin(u *url.URL) bool { return u.Path == "/oauth2/fallbacks/login" && u.Query().Get("login_challenge") != "" }

func pageCode(u *url.URL) string {
	if u.Path != "/oauth2/fallbacks/error" {
		return ""
	}
	return u.Query().Get("error")
}

// TestPushedRequestLifecycle: a pushed request is used once, by its own
// client, before it expires; whatever else is in the query is ignored.
func TestPushedRequestLifecycle(t *testing.T) {
	f := newPARFixture(t, PAR{}, parTestClient("rp"), parTestClient("other"))
	form := url.Values{"client_id": {"rp"}, "client_secret": {"secret"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"pushed-state"}, "redirect_uri": {parCallback}, "dpop_jkt": {"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}

	w := f.push(form)
	var out parResponse
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	if w.Code != http.StatusCreated || out.ExpiresIn != 60 || len(out.RequestURI) != len(RequestURIPrefix)+43 {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	// Only a hash of the random part is stored, with every authorization
	// parameter and none of the credentials.
	random := strings.TrimPrefix(out.RequestURI, RequestURIPrefix)
	if _, err := f.flows.Get(context.Background(), storage.FlowPushedRequest, random); err == nil {
		t.Fatal("the request_uri's random part is stored as the key")
	}
	stored, err := f.flows.Get(context.Background(), storage.FlowPushedRequest, hashOf(random))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.Data), "secret") || !strings.Contains(string(stored.Data), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I") ||
		!stored.ExpiresAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("stored: %s until %s", stored.Data, stored.ExpiresAt)
	}

	// Another client: refused, and left for its owner.
	if u := f.authorize(pushedQuery("other", out.RequestURI)); pageCode(u) != "invalid_request_uri" {
		t.Fatalf("another client's request_uri: %v", u)
	}
	query := pushedQuery("rp", out.RequestURI)
	query.Set("scope", "profile")
	query.Set("redirect_uri", "https://evil.example/cb")
	u := f.authorize(query)
	if !atLogin(u) {
		t.Fatalf("pushed request: %v", u)
	}
	// The login challenge's request is the pushed one.
	fl, err := f.flows.Get(context.Background(), storage.FlowLogin, u.Query().Get("login_challenge"))
	if err != nil {
		t.Fatal(err)
	}
	var st state
	_ = json.Unmarshal(fl.Data, &st)
	if st.RedirectURI != parCallback || st.Request.State != "pushed-state" || strings.Join(st.Request.Scope, " ") != "openid" ||
		st.RequestURL != "https://issuer.example/oauth2/auth?"+pushedQuery("rp", out.RequestURI).Encode() {
		t.Fatalf("login state: %+v", st)
	}
	if u := f.authorize(pushedQuery("rp", out.RequestURI)); pageCode(u) != "invalid_request_uri" {
		t.Fatalf("reused request_uri: %v", u)
	}

	// Expiry, to the second.
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{{59 * time.Second, true}, {60 * time.Second, false}} {
		f := newPARFixture(t, PAR{}, parTestClient("rp"))
		ru := f.pushOK(form)
		f.clock.Advance(tc.after)
		u := f.authorize(pushedQuery("rp", ru))
		if atLogin(u) != tc.ok || (!tc.ok && (pageCode(u) != "invalid_request_uri" || !strings.Contains(u.Query().Get("error_description"), "expired"))) {
			t.Fatalf("after %s: %v", tc.after, u)
		}
	}
}

// TestPushRefusals: the PAR endpoint's errors, in the token endpoint's
// format.
func TestPushRefusals(t *testing.T) {
	f := newPARFixture(t, PAR{}, parTestClient("rp"),
		parTestClient("pub", func(c *client.Client) { c.TokenEndpointAuthMethod = client.AuthNone }))
	base := func(kv ...string) url.Values {
		v := url.Values{"client_id": {"rp"}, "client_secret": {"secret"}, "response_type": {"code"}, "scope": {"openid"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"request_uri", base("request_uri", RequestURIPrefix+"x"), 400, "invalid_request"},
		{"wrong secret", base("client_secret", "nope"), 401, "invalid_client"},
		{"redirect_uri", base("redirect_uri", "https://evil.example/"), 400, "invalid_request"},
		{"scope", base("scope", "admin"), 400, "invalid_scope"},
		{"response_type", base("response_type", "token"), 400, "unsupported_response_type"},
		{"request object", base("request", "a.b"), 400, "invalid_request_object"},
		{"repeated state", url.Values{"client_id": {"rp"}, "client_secret": {"secret"}, "response_type": {"code"}, "state": {"a", "b"}}, 400, "invalid_request"},
		{"public without PKCE", url.Values{"client_id": {"pub"}, "response_type": {"code"}}, 400, "invalid_request"},
	} {
		w := f.push(tc.form)
		var e apierr.Error
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, w.Code, w.Body, tc.status, tc.code)
		}
	}
}

// TestPARRequired: the global setting and the client's metadata refuse
// unpushed requests with invalid_request, redirected with the issuer
// exactly as configured (RFC 9207).
func TestPARRequired(t *testing.T) {
	plain := url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
	for _, tc := range []struct {
		name   string
		par    PAR
		client *client.Client
	}{
		{"global", PAR{Required: true}, parTestClient("rp")},
		{"client", PAR{}, parTestClient("rp", func(c *client.Client) { c.RequirePushedAuthorizationRequests = true })},
	} {
		f := newPARFixture(t, tc.par, tc.client)
		q := url.Values{"client_id": {"rp"}}
		for k, v := range plain {
			q[k] = v
		}
		u := f.authorize(q)
		if !strings.HasPrefix(u.String(), parCallback+"?") || u.Query().Get("error") != "invalid_request" ||
			u.Query().Get("iss") != "https://issuer.example/" || u.Query().Get("state") != "s" {
			t.Errorf("%s: unpushed request: %v", tc.name, u)
		}
		form := url.Values{"client_id": {"rp"}, "client_secret": {"secret"}}
		for k, v := range plain {
			form[k] = v
		}
		if u := f.authorize(pushedQuery("rp", f.pushOK(form))); !atLogin(u) {
			t.Errorf("%s: pushed request: %v", tc.name, u)
		}
		md, _ := f.h.Discovery(context.Background())
		if md.PushedAuthorizationRequestEndpoint != "https://issuer.example/oauth2/par" || md.RequirePushedAuthorizationRequests != tc.par.Required ||
			!md.AuthorizationResponseISSParameterSupported {
			t.Errorf("%s: discovery %+v", tc.name, md)
		}
	}
}

// TestNewPAROptions: the request_uri lifespan is bounded, and PAR cannot
// be required without the endpoint.
func TestNewPAROptions(t *testing.T) {
	st := memory.New(memory.Options{})
	cookies, _ := secrets.NewKeyring([]string{"cookie-secret-0123456789abcdef"})
	deps := Deps{Clients: staticClients{}, Flows: st.Flows(), LoginSessions: st.LoginSessions(),
		ConsentSessions: st.ConsentSessions(), Tokens: noTokens{}, Keys: unsignedKeys{}, CookieCipher: cookies}
	withAuth := deps
	withAuth.Auth = secretAuth{}
	for _, tc := range []struct {
		deps Deps
		par  PAR
		ok   bool
	}{
		{withAuth, PAR{}, true},
		{withAuth, PAR{Lifespan: MaxRequestURILifespan}, true},
		{withAuth, PAR{Lifespan: MaxRequestURILifespan + time.Second}, false},
		{withAuth, PAR{Lifespan: time.Millisecond}, false},
		{deps, PAR{Required: true}, false},
		{deps, PAR{}, true},
	} {
		h, err := New(tc.deps, Options{PAR: tc.par})
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.par, err)
		}
		if err == nil && tc.deps.Auth == nil {
			mux := http.NewServeMux()
			h.MountPublic(mux)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, PARPath, nil))
			md, _ := h.Discovery(context.Background())
			if w.Code != http.StatusNotFound || md.PushedAuthorizationRequestEndpoint != "" {
				t.Errorf("without Auth: PAR answers %d, discovery %q", w.Code, md.PushedAuthorizationRequestEndpoint)
			}
		}
	}
}

// FuzzPushedRequestURI: whatever request_uri and client_id a browser
// brings, and whatever body a client pushes, the answer is a redirect or
// a 4xx, never a 5xx or a panic.
func FuzzPushedRequestURI(f *testing.F) {
	f.Add("rp", RequestURIPrefix+strings.Repeat("A", 43), "response_type=code&scope=openid")
	f.Add("rp", RequestURIPrefix, "client_id=rp&client_secret=secret&response_type=code&request_uri=x")
	f.Add("", RequestURIPrefix+"\x00\xff", "client_id=rp&client_secret=secret&response_type=code+token&state=%00")
	f.Add("other", RequestURIPrefix+strings.Repeat("é", 30), "client_id=rp&client_secret=secret&request=a.b.c")
	f.Add("rp\x00", "urn:ietf:params:oauth:request_uri", "client_id=rp&client_id=rp&client_secret=secret")
	f.Fuzz(func(t *testing.T, clientID, requestURI, body string) {
		fx := newPARFixture(t, PAR{}, parTestClient("rp"), parTestClient("other"))
		r := httptest.NewRequest(http.MethodPost, PARPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		fx.mux.ServeHTTP(w, r)
		if w.Code >= 500 || (w.Code != http.StatusCreated && w.Code < 400) {
			t.Fatalf("push %q: %d %s", body, w.Code, w.Body)
		}
		if w.Code == http.StatusCreated {
			var out parResponse
			_ = json.Unmarshal(w.Body.Bytes(), &out)
			requestURI = out.RequestURI
		}
		q := url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
		w = httptest.NewRecorder()
		fx.mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/oauth2/auth?"+q.Encode(), nil))
		if w.Code >= 500 {
			t.Fatalf("authorize %v: %d %s", q, w.Code, w.Body)
		}
	})
}
