package flow

import (
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/oauth2"
)

// TestValidate: the rules checked once client and redirect URI are known
// (their errors go back to the client).
func TestValidate(t *testing.T) {
	web := &client.Client{ID: "web", TokenEndpointAuthMethod: client.AuthClientSecretBasic,
		GrantTypes:    []string{client.GrantAuthorizationCode, client.GrantImplicit},
		ResponseTypes: []string{"code", "id_token token", "code id_token", "token"}, Scope: "openid offline_access api.*", Audience: []string{"https://api"}}
	codeOnly := &client.Client{ID: "code", GrantTypes: []string{client.GrantAuthorizationCode}, ResponseTypes: []string{"code", "code id_token"}, Scope: "openid"}
	spa := &client.Client{ID: "spa", TokenEndpointAuthMethod: client.AuthNone, GrantTypes: []string{client.GrantAuthorizationCode},
		ResponseTypes: []string{"code"}, Scope: "openid"}
	s256 := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, tc := range []struct {
		name  string
		c     *client.Client
		query string
		pkce  func(*PKCE)
		want  string
	}{
		{"code", web, "response_type=code&scope=openid", nil, ""},
		{"order does not matter", web, "response_type=token+id_token&scope=openid&nonce=n", nil, ""},
		{"unregistered response type", web, "response_type=code+token&scope=openid&nonce=n", nil, "unsupported_response_type"},
		{"implicit needs the implicit grant", codeOnly, "response_type=code+id_token&scope=openid&nonce=n", nil, "unauthorized_client"},
		{"implicit needs a nonce", web, "response_type=id_token+token&scope=openid", nil, "invalid_request"},
		{"hybrid needs a nonce", web, "response_type=code+id_token&scope=openid", nil, "invalid_request"},
		{"OAuth 2.0 implicit needs no nonce", web, "response_type=token&scope=offline_access", nil, ""},
		{"id_token needs openid", web, "response_type=code+id_token&nonce=n&scope=offline_access", nil, "invalid_scope"},
		{"tokens never in the query", web, "response_type=token&response_mode=query", nil, "invalid_request"},
		{"unknown response mode", web, "response_type=code&response_mode=jwt", nil, "invalid_request"},
		{"form_post", web, "response_type=code&response_mode=form_post", nil, ""},
		{"wildcard scope", web, "response_type=code&scope=api.read", nil, ""},
		{"scope not allowed", web, "response_type=code&scope=admin", nil, "invalid_scope"},
		{"audience allowed", web, "response_type=code&audience=https%3A%2F%2Fapi", nil, ""},
		{"audience not allowed", web, "response_type=code&audience=https%3A%2F%2Fother", nil, "invalid_target"},
		{"resource allowed", web, "response_type=code&resource=https%3A%2F%2Fapi", nil, ""},
		{"resource and audience allowed", web, "response_type=code&resource=https%3A%2F%2Fapi&audience=https%3A%2F%2Fapi", nil, ""},
		{"resource not allowed", web, "response_type=code&resource=https%3A%2F%2Fother", nil, "invalid_target"},
		{"resource relative", web, "response_type=code&resource=%2Fapi", nil, "invalid_target"},
		{"resource with fragment", web, "response_type=code&resource=https%3A%2F%2Fapi%23x", nil, "invalid_target"},
		{"public client needs PKCE", spa, "response_type=code", nil, "invalid_request"},
		{"public client with S256", spa, "response_type=code&code_challenge_method=S256&code_challenge=" + s256, nil, ""},
		{"PKCE not enforced for public clients", spa, "response_type=code", func(p *PKCE) { p.EnforcedForPublicClients = false }, ""},
		{"PKCE enforced for all", web, "response_type=code", func(p *PKCE) { p.Enforced = true }, "invalid_request"},
		{"plain by default", web, "response_type=code&code_challenge=" + s256, nil, ""},
		{"plain disabled", web, "response_type=code&code_challenge=" + s256, func(p *PKCE) { p.AllowPlain = false }, "invalid_request"},
		{"S256 with plain disabled", web, "response_type=code&code_challenge_method=S256&code_challenge=" + s256, func(p *PKCE) { p.AllowPlain = false }, ""},
		{"method without challenge", web, "response_type=code&code_challenge_method=S256", nil, "invalid_request"},
		{"challenge too short", web, "response_type=code&code_challenge=abc", nil, "invalid_request"},
		{"challenge with bad characters", web, "response_type=code&code_challenge=" + strings.Repeat("a", 42) + "%2B", nil, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The configuration's defaults.
			pkce := PKCE{EnforcedForPublicClients: true, AllowPlain: true}
			if tc.pkce != nil {
				tc.pkce(&pkce)
			}
			h := &Handler{opts: Options{PKCE: pkce, Scopes: oauth2.WildcardScopeStrategy}}
			form, _ := url.ParseQuery("client_id=" + tc.c.ID + "&" + tc.query)
			req, err := ParseAuthorizeRequest(form)
			if err != nil {
				t.Fatal(err)
			}
			got := code(h.validate(&authz{client: tc.c, req: req, redirectURI: "https://rp/cb"}))
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
