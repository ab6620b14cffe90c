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
)

var grants = []string{"client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"}

// tokenSide is what the token side of an issuer whose public URL is u
// contributes in these tests.
func tokenSide(u string) Metadata {
	methods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	algs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	return Metadata{
		TokenEndpoint: u + "/oauth2/token", JWKSURI: u + "/.well-known/jwks.json", RevocationEndpoint: u + "/oauth2/revoke",
		GrantTypesSupported: grants, SubjectTypesSupported: []string{"public"},
		TokenEndpointAuthMethodsSupported: methods, TokenEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported: methods, RevocationEndpointAuthSigningAlgValuesSupported: algs,
	}
}

func newHandler(t *testing.T, issuer string, contributions ...Metadata) *Handler {
	t.Helper()
	h, err := New(Deps{}, Options{Issuer: issuer, Contributions: contributions})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

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

// The document advertises what the handlers contribute and nothing else;
// both well-known paths serve it, cacheable for five minutes.
func TestDocument(t *testing.T) {
	srv := serve(t, func(u string) *Handler { return newHandler(t, u, tokenSide(u)) })
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

// Members the caller adds appear; Extra cannot override them.
func TestCallerMembersAndExtra(t *testing.T) {
	o := Metadata{
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
		o  Metadata
		ok bool
	}{
		{Metadata{Issuer: "https://a.example.com"}, true},
		{Metadata{Issuer: "http://127.0.0.1:4444/"}, true},
		{Metadata{Issuer: ""}, false},
		{Metadata{Issuer: "a.example.com"}, false},
		{Metadata{Issuer: "https://a.example.com?x=1"}, false},
		{Metadata{Issuer: "https://a.example.com#f"}, false},
		{Metadata{Issuer: "ftp://a.example.com"}, false},
		{Metadata{Issuer: "https://a.example.com", TokenEndpoint: "/oauth2/token"}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
	if _, err := New(Deps{}, Options{Issuer: "nope"}); err == nil {
		t.Fatal("an invalid document must be refused")
	}
	if _, err := New(Deps{}, Options{Issuer: "https://a.example.com", Contributions: []Metadata{{TokenEndpoint: "/oauth2/token"}}}); err == nil {
		t.Fatal("an invalid contribution must be refused")
	}
}

// RFC 8414 §3.1: an issuer with a path has its metadata at the
// path-suffixed well-known URL too.
func TestIssuerWithPath(t *testing.T) {
	srv := serve(t, func(u string) *Handler { return newHandler(t, u+"/tenant", tokenSide(u+"/tenant")) })
	res, doc := get(t, srv.URL+OAuthServerPath+"/tenant")
	if res.StatusCode != 200 || doc["issuer"] != srv.URL+"/tenant" {
		t.Fatalf("%d %v", res.StatusCode, doc)
	}
}

// github.com/coreos/go-oidc/v3 discovers the issuer from the document.
func TestGoOIDCDiscovers(t *testing.T) {
	srv := serve(t, func(u string) *Handler {
		return newHandler(t, u, tokenSide(u),
			Metadata{AuthorizationEndpoint: u + "/oauth2/auth", IDTokenSigningAlgValuesSupported: []string{"RS256"}})
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

// Merge: a string member twice only with the same value, booleans are
// or-ed, a list one contribution gives keeps its order, a list several
// give is sorted, every value once, and nothing aliases a contribution.
func TestMerge(t *testing.T) {
	flowSide := Metadata{AuthorizationEndpoint: "https://a.example.com/oauth2/auth", GrantTypesSupported: []string{"implicit"},
		ResponseTypesSupported: []string{"code", "id_token", "token"}, BackchannelLogoutSupported: true}
	tokens := Metadata{TokenEndpoint: "https://a.example.com/oauth2/token",
		GrantTypesSupported: []string{"refresh_token", "authorization_code", "implicit"}, Extra: map[string]any{"x_one": 1}}
	m, err := Merge("https://a.example.com", tokens, flowSide, Metadata{TokenEndpoint: tokens.TokenEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	if m.Issuer != "https://a.example.com" || m.TokenEndpoint != tokens.TokenEndpoint || m.AuthorizationEndpoint == "" ||
		!m.BackchannelLogoutSupported || m.Extra["x_one"] != 1 ||
		!slices.Equal(m.GrantTypesSupported, []string{"authorization_code", "implicit", "refresh_token"}) ||
		!slices.Equal(m.ResponseTypesSupported, []string{"code", "id_token", "token"}) {
		t.Fatalf("%+v", m)
	}
	if !slices.Equal(tokens.GrantTypesSupported, []string{"refresh_token", "authorization_code", "implicit"}) {
		t.Fatalf("a contribution was changed: %v", tokens.GrantTypesSupported)
	}
	m.ResponseTypesSupported[0] = "none"
	if flowSide.ResponseTypesSupported[0] != "code" {
		t.Fatal("the merged document aliases a contribution")
	}
	for _, tc := range []struct {
		name string
		cs   []Metadata
	}{
		{"two token endpoints", []Metadata{tokens, {TokenEndpoint: "https://b.example.com/oauth2/token"}}},
		{"an issuer of its own", []Metadata{{Issuer: "https://b.example.com"}}},
		{"an extra member twice", []Metadata{tokens, {Extra: map[string]any{"x_one": 1}}}},
	} {
		if _, err := Merge("https://a.example.com", tc.cs...); err == nil {
			t.Errorf("%s: merged", tc.name)
		}
	}
}
