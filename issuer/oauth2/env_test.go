package oauth2

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

const (
	apiAud   = "https://api.example.com"
	otherAud = "https://other.example.com"
)

// env is a running token side: the public and admin muxes on two
// httptest servers, over in-memory stores, a real client.Manager and
// client.Authenticator, a fixed clock, an RSA signer and a keyring.
type env struct {
	t       testing.TB
	opts    Options
	clk     *clock
	clients *client.Manager
	auth    *client.Authenticator
	store   *memory.Store
	tokens  *failingTokens // store's
	signer  *rsaSigner
	mac     *fakeKeyring
	h       *Handler
	pub     *httptest.Server
	adm     *httptest.Server
	// pubMux and admMux serve pub and adm; tests may mount more on them.
	pubMux *http.ServeMux
	admMux *http.ServeMux
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), mac: newKeyring("first-system-secret-0123456789")}
	e.store = memory.New(memory.Options{Now: e.clk.Now})
	e.tokens = &failingTokens{TokenStore: e.store.Tokens()}
	e.signer = newRSASigner(t)
	var pub, adm http.Handler
	e.pub = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pub.ServeHTTP(w, r) }))
	e.adm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { adm.ServeHTTP(w, r) }))
	t.Cleanup(e.pub.Close)
	t.Cleanup(e.adm.Close)

	// The settings a default configuration gives.
	e.opts = Options{
		IssuerURL:           e.pub.URL,
		AccessTokenLifespan: time.Hour, IDTokenLifespan: time.Hour,
		RefreshTokenLifespan: 720 * time.Hour, AuthorizationCodeLifespan: 10 * time.Minute,
		AccessTokenStrategy: "opaque", ScopeStrategy: "wildcard", JWTScopeClaim: "both",
		Presigning: true,
		JWTBearer:  JWTBearerOptions{MaxLifetime: 720 * time.Hour},
	}
	for _, o := range opts {
		o(&e.opts)
	}

	hasher, err := client.NewHasher(client.HasherOptions{PBKDF2Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e.clients, err = client.NewManager(client.ManagerOptions{Store: e.store.Clients(), Hasher: hasher, Now: e.clk.Now, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.clients.Close)
	e.auth, err = client.NewAuthenticator(client.AuthenticatorOptions{
		Manager: e.clients, Nonces: e.store.Nonces(), Now: e.clk.Now,
		TokenEndpoint: e.pub.URL + "/oauth2/token", Issuer: e.pub.URL,
		ExtraAudiences: []string{e.pub.URL + "/oauth2/revoke"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.auth.Close)

	e.h, err = New(Deps{Clients: e.clients, Auth: e.auth, Tokens: e.tokens, Trust: e.store.Trust(),
		Nonces: e.store.Nonces(), Signer: e.signer, MAC: e.mac, Now: e.clk.Now}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	pm, am := http.NewServeMux(), http.NewServeMux()
	e.h.MountPublic(pm)
	e.h.MountAdmin(am)
	pub, adm = pm, am
	e.pubMux, e.admMux = pm, am

	ctx := context.Background()
	for _, c := range []*client.Client{
		{ID: "svc", Secret: "svc-secret", GrantTypes: []string{client.GrantClientCredentials, client.GrantJWTBearer},
			Scope: "read write orders.*", Audience: []string{apiAud, otherAud}},
		{ID: "post", Secret: "post-secret", TokenEndpointAuthMethod: client.AuthClientSecretPost,
			GrantTypes: []string{client.GrantClientCredentials}, Scope: "read"},
		{ID: "jwtc", Secret: "jwtc-secret", GrantTypes: []string{client.GrantClientCredentials},
			Scope: "read write", Audience: []string{apiAud}, AccessTokenStrategy: client.AccessTokenJWT},
		{ID: "nocc", Secret: "nocc-secret", GrantTypes: []string{client.GrantAuthorizationCode},
			RedirectURIs: []string{"https://app.example.com/cb"}},
		{ID: "public", TokenEndpointAuthMethod: client.AuthNone, GrantTypes: []string{client.GrantJWTBearer}, Scope: "read"},
	} {
		if _, err := e.clients.Create(ctx, c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
	return e
}

func (e *env) tokenURL() string { return e.pub.URL + "/oauth2/token" }

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r *response) str(key string) string {
	s, _ := r.json[key].(string)
	return s
}

func (e *env) do(req *http.Request) *response {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := &response{status: res.StatusCode, header: res.Header, body: b}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &out.json)
	}
	return out
}

// post sends a form; basic is "id:secret" for HTTP Basic, or "".
func (e *env) post(u string, form url.Values, basic string) *response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, secret, ok := strings.Cut(basic, ":"); ok {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return e.do(req)
}

func (e *env) token(form url.Values, basic string) *response {
	e.t.Helper()
	return e.post(e.tokenURL(), form, basic)
}

// ccToken gets a client_credentials token for svc or fails the test.
func (e *env) ccToken(basic string, form url.Values) string {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	if id, secret, _ := strings.Cut(basic, ":"); id == "post" {
		// "post" authenticates with client_secret_post.
		form.Set("client_id", id)
		form.Set("client_secret", secret)
		basic = ""
	}
	r := e.token(form, basic)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r.str("access_token")
}

func (e *env) introspect(token string, scope string) *response {
	e.t.Helper()
	f := url.Values{"token": {token}}
	if scope != "" {
		f.Set("scope", scope)
	}
	r := e.post(e.adm.URL+"/admin/oauth2/introspect", f, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r
}

func (e *env) active(token string) bool {
	e.t.Helper()
	return e.introspect(token, "").json["active"] == true
}

func (e *env) adminJSON(method, path string, body any) *response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			rd = strings.NewReader(string(mustJSON(e.t, b)))
		}
	}
	req, _ := http.NewRequest(method, e.adm.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.do(req)
}

func wantError(t *testing.T, r *response, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Fatalf("error response caching headers: %v", r.header)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error content type %q", r.header.Get("Content-Type"))
	}
}
