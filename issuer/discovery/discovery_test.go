package discovery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gatehouse-dev/gatehouse/issuer/config"
)

func testConfig(t *testing.T, issuer string, mod func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DSN = "memory"
	cfg.Secrets.System = []string{"a-system-secret-of-some-length"}
	cfg.URLs.Self.Issuer = issuer
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

var grants = []string{"client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"}

// serve mounts a Handler built by build (which gets the server's URL)
// and returns the server.
func serve(t *testing.T, build func(url string) *Handler) *httptest.Server {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	build(srv.URL).MountPublic(mux)
	h = mux
	return srv
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return res, m
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The document advertises what FromConfig derives and nothing else; both
// well-known paths serve it, cacheable for five minutes.
func TestDocument(t *testing.T) {
	srv := serve(t, func(u string) *Handler {
		return &Handler{Options: FromConfig(testConfig(t, u, nil), grants)}
	})
	res, doc := get(t, srv.URL+OpenIDConfigurationPath)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=300" ||
		res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	want := []string{
		"claims_parameter_supported", "grant_types_supported", "id_token_signed_response_alg",
		"id_token_signing_alg_values_supported", "issuer", "jwks_uri",
		"request_parameter_supported", "request_uri_parameter_supported", "require_request_uri_registration",
		"response_types_supported", "revocation_endpoint", "revocation_endpoint_auth_methods_supported",
		"revocation_endpoint_auth_signing_alg_values_supported", "subject_types_supported", "token_endpoint",
		"token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported",
		"userinfo_signed_response_alg",
	}
	if got := keys(doc); !slices.Equal(got, want) {
		t.Fatalf("members\n got %v\nwant %v", got, want)
	}
	if doc["issuer"] != srv.URL || doc["token_endpoint"] != srv.URL+"/oauth2/token" ||
		doc["jwks_uri"] != srv.URL+"/.well-known/jwks.json" || doc["revocation_endpoint"] != srv.URL+"/oauth2/revoke" ||
		doc["request_uri_parameter_supported"] != false {
		t.Fatalf("%v", doc)
	}
	b, _ := json.Marshal(doc["grant_types_supported"])
	if string(b) != `["client_credentials","urn:ietf:params:oauth:grant-type:jwt-bearer"]` {
		t.Fatalf("grant types %s", b)
	}
	b, _ = json.Marshal(doc["token_endpoint_auth_methods_supported"])
	if string(b) != `["client_secret_basic","client_secret_post","private_key_jwt","none"]` {
		t.Fatalf("auth methods %s", b)
	}
	for _, m := range []string{"token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
		algs := anySlice(doc[m])
		if len(algs) == 0 || slices.Contains(algs, "none") || slices.Contains(algs, "HS256") {
			t.Fatalf("%s: %v", m, algs)
		}
	}
	b, _ = json.Marshal(doc["response_types_supported"])
	if string(b) != `[]` {
		t.Fatalf("response types %s", b)
	}

	res2, doc2 := get(t, srv.URL+OAuthServerPath)
	if res2.StatusCode != 200 || !jsonEqual(doc, doc2) {
		t.Fatalf("RFC 8414 document differs: %v", doc2)
	}

	// Conditional requests.
	res3, _ := get(t, srv.URL+OpenIDConfigurationPath, "If-None-Match", res.Header.Get("ETag"))
	if res.Header.Get("ETag") == "" || res3.StatusCode != http.StatusNotModified {
		t.Fatalf("ETag %q: %d", res.Header.Get("ETag"), res3.StatusCode)
	}
	res4, _ := get(t, srv.URL+OpenIDConfigurationPath, "If-None-Match", `"other"`)
	if res4.StatusCode != 200 {
		t.Fatalf("%d", res4.StatusCode)
	}

	// Other methods: 405 JSON.
	for _, p := range []string{OpenIDConfigurationPath, OAuthServerPath} {
		res, err := http.Post(srv.URL+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 405 || !strings.Contains(string(b), `"method_not_allowed"`) || !strings.Contains(res.Header.Get("Allow"), "GET") {
			t.Fatalf("%s: %d %s", p, res.StatusCode, b)
		}
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+OpenIDConfigurationPath, nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("HEAD %v %v", res, err)
	}
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }

func anySlice(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func jsonEqual(a, b any) bool { return string(mustMarshal(a)) == string(mustMarshal(b)) }

// introspection_endpoint only with urls.introspection, registration_endpoint
// only with dynamic registration; urls.self.public moves the endpoints.
func TestConditionalMembers(t *testing.T) {
	cfg := testConfig(t, "https://auth.example.com", nil)
	o := FromConfig(cfg, grants)
	if o.IntrospectionEndpoint != "" || o.RegistrationEndpoint != "" {
		t.Fatalf("%+v", o)
	}
	cfg = testConfig(t, "https://auth.example.com/", func(c *config.Config) {
		c.URLs.Introspection = "https://sidecar.example.com/introspect"
		c.OIDC.DynamicClientRegistration.Enabled = true
		c.URLs.Self.Public = "https://public.example.com/"
		c.OIDC.SubjectIdentifiers.SupportedTypes = []string{"public", "pairwise"}
		c.OIDC.SubjectIdentifiers.Pairwise.Salt = "some-salt-value"
	})
	o = FromConfig(cfg, grants)
	if o.Issuer != "https://auth.example.com/" || o.IntrospectionEndpoint != "https://sidecar.example.com/introspect" ||
		o.RegistrationEndpoint != "https://public.example.com/oauth2/register" ||
		o.TokenEndpoint != "https://public.example.com/oauth2/token" ||
		!slices.Equal(o.SubjectTypesSupported, []string{"public", "pairwise"}) {
		t.Fatalf("%+v", o)
	}
	doc, err := o.Document()
	if err != nil || !strings.Contains(string(doc), `"introspection_endpoint":"https://sidecar.example.com/introspect"`) {
		t.Fatalf("%s %v", doc, err)
	}
	// The caller's list is copied.
	g := []string{"client_credentials"}
	o = FromConfig(cfg, g)
	g[0] = "password"
	if o.GrantTypesSupported[0] != "client_credentials" {
		t.Fatal("grant types aliased")
	}
}

// Members the caller adds appear; Extra cannot override them.
func TestCallerMembersAndExtra(t *testing.T) {
	o := Options{
		Issuer: "https://auth.example.com", AuthorizationEndpoint: "https://auth.example.com/oauth2/auth",
		ResponseTypesSupported: []string{"code"}, CodeChallengeMethodsSupported: []string{"S256"},
		IDTokenSigningAlgValuesSupported: []string{"RS256"}, ScopesSupported: []string{"openid"},
		ClaimsSupported: []string{"sub"}, BackchannelLogoutSupported: true,
		Extra: map[string]any{"issuer": "https://evil.example.com", "x_gatehouse": true},
	}
	doc, err := o.Document()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(doc, &m)
	if m["issuer"] != "https://auth.example.com" || m["x_gatehouse"] != true || m["authorization_endpoint"] == nil ||
		m["backchannel_logout_supported"] != true || m["code_challenge_methods_supported"] == nil {
		t.Fatalf("%s", doc)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o  Options
		ok bool
	}{
		{Options{Issuer: "https://a.example.com"}, true},
		{Options{Issuer: "http://127.0.0.1:4444/"}, true},
		{Options{Issuer: ""}, false},
		{Options{Issuer: "a.example.com"}, false},
		{Options{Issuer: "https://a.example.com?x=1"}, false},
		{Options{Issuer: "https://a.example.com#f"}, false},
		{Options{Issuer: "ftp://a.example.com"}, false},
		{Options{Issuer: "https://a.example.com", TokenEndpoint: "/oauth2/token"}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("mounting an invalid document must panic")
		}
	}()
	(&Handler{Options: Options{Issuer: "nope"}}).MountPublic(http.NewServeMux())
}

// RFC 8414 §3.1: an issuer with a path has its metadata at the
// path-suffixed well-known URL too.
func TestIssuerWithPath(t *testing.T) {
	srv := serve(t, func(u string) *Handler {
		return &Handler{Options: FromConfig(testConfig(t, u+"/tenant", nil), grants)}
	})
	res, doc := get(t, srv.URL+OAuthServerPath+"/tenant")
	if res.StatusCode != 200 || doc["issuer"] != srv.URL+"/tenant" {
		t.Fatalf("%d %v", res.StatusCode, doc)
	}
}

// github.com/coreos/go-oidc/v3 discovers the issuer from the document.
func TestGoOIDCDiscovers(t *testing.T) {
	srv := serve(t, func(u string) *Handler {
		o := FromConfig(testConfig(t, u, nil), grants)
		o.AuthorizationEndpoint = u + "/oauth2/auth"
		o.IDTokenSigningAlgValuesSupported = []string{"RS256"}
		return &Handler{Options: o}
	})
	p, err := oidc.NewProvider(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Endpoint().TokenURL != srv.URL+"/oauth2/token" || p.Endpoint().AuthURL != srv.URL+"/oauth2/auth" {
		t.Fatalf("%+v", p.Endpoint())
	}
	var claims struct {
		JWKS       string `json:"jwks_uri"`
		Revocation string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&claims); err != nil || claims.JWKS != srv.URL+"/.well-known/jwks.json" || claims.Revocation == "" {
		t.Fatalf("%+v %v", claims, err)
	}
}
