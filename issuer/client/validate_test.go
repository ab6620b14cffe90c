package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/safehttp"
)

func publicJWKS(t testing.TB) (json.RawMessage, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "k1")
	set := jwk.NewSet()
	_ = set.AddKey(k)
	b, _ := json.Marshal(set)
	return b, priv
}

func TestValidate(t *testing.T) {
	pub, priv := publicJWKS(t)
	privKey, _ := jwk.Import(priv)
	privSet := jwk.NewSet()
	_ = privSet.AddKey(privKey)
	privJWKS, _ := json.Marshal(privSet)

	type mod func(c *Client)
	tests := []struct {
		name string
		mod  mod
		opts ValidationOptions
		code string // "" = valid
		msg  string
	}{
		{"defaults are valid", func(c *Client) {}, ValidationOptions{}, "", ""},
		{"https redirect", func(c *Client) { c.RedirectURIs = []string{"https://app.example.com/cb?x=1"} }, ValidationOptions{}, "", ""},
		{"loopback http 127.0.0.1", func(c *Client) { c.RedirectURIs = []string{"http://127.0.0.1:8080/cb"} }, ValidationOptions{}, "", ""},
		{"loopback http ::1", func(c *Client) { c.RedirectURIs = []string{"http://[::1]/cb"} }, ValidationOptions{}, "", ""},
		{"loopback http localhost", func(c *Client) { c.RedirectURIs = []string{"http://localhost:3000/cb"} }, ValidationOptions{}, "", ""},
		{"native custom scheme", func(c *Client) { c.RedirectURIs = []string{"com.example.app:/oauth2redirect"} }, ValidationOptions{}, "", ""},
		{"http on public host", func(c *Client) { c.RedirectURIs = []string{"http://app.example.com/cb"} }, ValidationOptions{}, "invalid_redirect_uri", "https"},
		{"http allowed by option", func(c *Client) { c.RedirectURIs = []string{"http://app.example.com/cb"} }, ValidationOptions{AllowInsecureRedirectURIs: true}, "", ""},
		{"relative redirect", func(c *Client) { c.RedirectURIs = []string{"/cb"} }, ValidationOptions{}, "invalid_redirect_uri", "absolute"},
		{"fragment", func(c *Client) { c.RedirectURIs = []string{"https://app.example.com/cb#x"} }, ValidationOptions{}, "invalid_redirect_uri", "fragment"},
		{"empty fragment", func(c *Client) { c.RedirectURIs = []string{"https://app.example.com/cb#"} }, ValidationOptions{}, "invalid_redirect_uri", "fragment"},
		{"javascript scheme", func(c *Client) { c.RedirectURIs = []string{"javascript:alert(1)"} }, ValidationOptions{}, "invalid_redirect_uri", "forbidden"},
		{"https without host", func(c *Client) { c.RedirectURIs = []string{"https:///cb"} }, ValidationOptions{}, "invalid_redirect_uri", "host"},
		{"space in redirect", func(c *Client) { c.RedirectURIs = []string{"https://a.example/c b"} }, ValidationOptions{}, "invalid_redirect_uri", ""},
		{"post logout http", func(c *Client) { c.PostLogoutRedirectURIs = []string{"http://evil.example/"} }, ValidationOptions{}, "invalid_client_metadata", "post_logout_redirect_uris"},
		{"unknown grant", func(c *Client) { c.GrantTypes = []string{"password"} }, ValidationOptions{}, "invalid_client_metadata", "grant_types"},
		{"duplicate grant", func(c *Client) { c.GrantTypes = []string{"refresh_token", "refresh_token"} }, ValidationOptions{}, "invalid_client_metadata", "twice"},
		{"all grants", func(c *Client) { c.GrantTypes = allowedGrantTypes }, ValidationOptions{}, "", ""},
		{"token exchange", func(c *Client) { c.GrantTypes = []string{GrantTokenExchange}; c.TokenExchangeImpersonation = true }, ValidationOptions{}, "", ""},
		{"response type combination", func(c *Client) { c.ResponseTypes = []string{"code id_token", "token id_token", "code token id_token"} }, ValidationOptions{}, "", ""},
		{"unknown response type", func(c *Client) { c.ResponseTypes = []string{"code foo"} }, ValidationOptions{}, "invalid_client_metadata", "response_types"},
		{"repeated response type", func(c *Client) { c.ResponseTypes = []string{"code code"} }, ValidationOptions{}, "invalid_client_metadata", "repeats"},
		{"empty response type", func(c *Client) { c.ResponseTypes = []string{""} }, ValidationOptions{}, "invalid_client_metadata", ""},
		{"unknown auth method", func(c *Client) { c.TokenEndpointAuthMethod = "client_secret_jwt" }, ValidationOptions{}, "invalid_client_metadata", "token_endpoint_auth_method"},
		{"unknown strategy", func(c *Client) { c.AccessTokenStrategy = "macaroon" }, ValidationOptions{}, "invalid_client_metadata", "access_token_strategy"},
		{"jwt strategy", func(c *Client) { c.AccessTokenStrategy = "jwt" }, ValidationOptions{}, "", ""},
		{"dpop bound", func(c *Client) { c.DPoPBoundAccessTokens = true }, ValidationOptions{}, "", ""},
		{"dpop bound with implicit", func(c *Client) { c.DPoPBoundAccessTokens = true; c.GrantTypes = []string{"implicit"} }, ValidationOptions{}, "invalid_client_metadata", "dpop_bound_access_tokens"},
		{"dpop bound with token response", func(c *Client) { c.DPoPBoundAccessTokens = true; c.ResponseTypes = []string{"code", "code token"} }, ValidationOptions{}, "invalid_client_metadata", "dpop_bound_access_tokens"},
		{"private_key_jwt without keys", func(c *Client) { c.TokenEndpointAuthMethod = AuthPrivateKeyJWT }, ValidationOptions{}, "invalid_client_metadata", "requires jwks"},
		{"private_key_jwt with jwks", func(c *Client) { c.TokenEndpointAuthMethod = AuthPrivateKeyJWT; c.JWKS = pub }, ValidationOptions{}, "", ""},
		{"private_key_jwt with jwks_uri", func(c *Client) {
			c.TokenEndpointAuthMethod = AuthPrivateKeyJWT
			c.JWKSURI = "https://app.example.com/jwks.json"
		}, ValidationOptions{}, "", ""},
		{"jwks and jwks_uri", func(c *Client) { c.JWKS = pub; c.JWKSURI = "https://app.example.com/jwks.json" }, ValidationOptions{}, "invalid_client_metadata", "both"},
		{"jwks_uri http", func(c *Client) { c.JWKSURI = "http://app.example.com/jwks.json" }, ValidationOptions{}, "invalid_client_metadata", "https"},
		{"jwks not a set", func(c *Client) { c.JWKS = json.RawMessage(`{"kty":"EC"}`) }, ValidationOptions{}, "invalid_client_metadata", "JWK Set"},
		{"jwks garbage", func(c *Client) { c.JWKS = json.RawMessage(`{"keys":[{"kty":"RSA","n":"!"}]}`) }, ValidationOptions{}, "invalid_client_metadata", "jwks"},
		{"jwks empty", func(c *Client) { c.JWKS = json.RawMessage(`{"keys":[]}`) }, ValidationOptions{}, "invalid_client_metadata", "empty"},
		{"jwks private key", func(c *Client) { c.JWKS = privJWKS }, ValidationOptions{}, "invalid_client_metadata", "private"},
		{"jwks symmetric key", func(c *Client) { c.JWKS = json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}`) }, ValidationOptions{}, "invalid_client_metadata", "symmetric"},
		{"auth signing alg HS256", func(c *Client) { c.TokenEndpointAuthSigningAlg = "HS256" }, ValidationOptions{}, "invalid_client_metadata", "token_endpoint_auth_signing_alg"},
		{"auth signing alg none", func(c *Client) { c.TokenEndpointAuthSigningAlg = "none" }, ValidationOptions{}, "invalid_client_metadata", "token_endpoint_auth_signing_alg"},
		{"client_credentials public", func(c *Client) {
			c.TokenEndpointAuthMethod = AuthNone
			c.GrantTypes = []string{GrantClientCredentials}
		}, ValidationOptions{}, "invalid_client_metadata", "client_credentials"},
		{"public with secret", func(c *Client) { c.TokenEndpointAuthMethod = AuthNone; c.Secret = "abcdefgh" }, ValidationOptions{}, "invalid_client_metadata", "client_secret"},
		{"short secret", func(c *Client) { c.Secret = "abc" }, ValidationOptions{}, "invalid_client_metadata", "at least"},
		{"pairwise unsupported", func(c *Client) { c.SubjectType = SubjectTypePairwise }, ValidationOptions{}, "invalid_client_metadata", "subject_type"},
		{"pairwise supported", func(c *Client) { c.SubjectType = SubjectTypePairwise }, ValidationOptions{SupportedSubjectTypes: []string{"public", "pairwise"}}, "", ""},
		{"pairwise several hosts", func(c *Client) {
			c.SubjectType = SubjectTypePairwise
			c.RedirectURIs = []string{"https://a.example/cb", "https://b.example/cb"}
		}, ValidationOptions{SupportedSubjectTypes: []string{"pairwise"}}, "invalid_client_metadata", "sector_identifier_uri"},
		{"sector identifier http", func(c *Client) { c.SectorIdentifierURI = "http://a.example/s.json" }, ValidationOptions{}, "invalid_client_metadata", "https"},
		{"sector identifier https", func(c *Client) { c.SectorIdentifierURI = "https://a.example/s.json" }, ValidationOptions{}, "", ""},
		{"backchannel relative", func(c *Client) { c.BackchannelLogoutURI = "/logout" }, ValidationOptions{}, "invalid_client_metadata", "backchannel_logout_uri"},
		{"frontchannel relative", func(c *Client) { c.FrontchannelLogoutURI = "logout" }, ValidationOptions{}, "invalid_client_metadata", "frontchannel_logout_uri"},
		{"backchannel absolute", func(c *Client) { c.BackchannelLogoutURI = "https://app.example/bc" }, ValidationOptions{}, "", ""},
		{"long name", func(c *Client) { c.Name = strings.Repeat("n", MaxNameLength+1) }, ValidationOptions{}, "invalid_client_metadata", "client_name"},
		{"long owner", func(c *Client) { c.Owner = strings.Repeat("o", MaxOwnerLength+1) }, ValidationOptions{}, "invalid_client_metadata", "owner"},
		{"control char in name", func(c *Client) { c.Name = "a\x00b" }, ValidationOptions{}, "invalid_client_metadata", "control"},
		{"long id", func(c *Client) { c.ID = strings.Repeat("i", MaxIDLength+1) }, ValidationOptions{}, "invalid_client_metadata", "client_id"},
		{"bad scope", func(c *Client) { c.Scope = "openid  profile" }, ValidationOptions{}, "invalid_client_metadata", "scope"},
		{"scope with quote", func(c *Client) { c.Scope = `open"id` }, ValidationOptions{}, "invalid_client_metadata", "scope"},
		{"cors origin with path", func(c *Client) { c.AllowedCORSOrigins = []string{"https://a.example/path"} }, ValidationOptions{}, "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin", func(c *Client) { c.AllowedCORSOrigins = []string{"https://a.example:8443"} }, ValidationOptions{}, "", ""},
		{"metadata not object", func(c *Client) { c.Metadata = json.RawMessage(`[1]`) }, ValidationOptions{}, "invalid_client_metadata", "metadata"},
		{"metadata object", func(c *Client) { c.Metadata = json.RawMessage(`{"team":"a"}`) }, ValidationOptions{}, "", ""},
		{"negative lifespan", func(c *Client) { d := Duration(-time.Second); c.AuthorizationCodeGrantAccessTokenLifespan = &d }, ValidationOptions{}, "invalid_client_metadata", "lifespan"},
		{"userinfo alg HS256", func(c *Client) { c.UserinfoSignedResponseAlg = "HS256" }, ValidationOptions{}, "invalid_client_metadata", "userinfo_signed_response_alg"},
		{"audience with space", func(c *Client) { c.Audience = []string{"a b"} }, ValidationOptions{}, "invalid_client_metadata", "audience"},
		{"default audience in audience", func(c *Client) {
			c.Audience, c.DefaultAccessTokenAudience = []string{"https://a"}, []string{"https://a"}
		}, ValidationOptions{}, "", ""},
		{"default audience the global one", func(c *Client) { c.DefaultAccessTokenAudience = []string{"https://issuer"} }, ValidationOptions{DefaultAccessTokenAudience: []string{"https://issuer"}}, "", ""},
		{"default audience elsewhere", func(c *Client) {
			c.Audience, c.DefaultAccessTokenAudience = []string{"https://a"}, []string{"https://b"}
		}, ValidationOptions{DefaultAccessTokenAudience: []string{"https://issuer"}}, "invalid_client_metadata", "default_access_token_audience"},
		{"logo uri relative", func(c *Client) { c.LogoURI = "logo.png" }, ValidationOptions{}, "invalid_client_metadata", "logo_uri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ID: "c1"}
			tt.mod(c)
			c.ApplyDefaults()
			err := tt.opts.Validate(context.Background(), c)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("want %s, got %v", tt.code, err)
			}
			if ae.Code != tt.code || ae.StatusCode() != 400 || !strings.Contains(ae.Description, tt.msg) {
				t.Fatalf("want %s containing %q, got %s %d %q", tt.code, tt.msg, ae.Code, ae.StatusCode(), ae.Description)
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	c := &Client{}
	c.ApplyDefaults()
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for k, want := range map[string]string{
		"grant_types": `["authorization_code"]`, "response_types": `["code"]`, "scope": `"offline_access offline openid"`,
		"token_endpoint_auth_method": `"client_secret_basic"`, "subject_type": `"public"`,
		"redirect_uris": `[]`, "audience": `[]`, "contacts": `[]`, "allowed_cors_origins": `[]`, "post_logout_redirect_uris": `[]`,
	} {
		got, _ := json.Marshal(m[k])
		if string(got) != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
}

func TestSectorIdentifierFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb"]`))
	}))
	defer srv.Close()
	hc, _ := safehttp.New(safehttp.Options{})
	o := ValidationOptions{HTTP: hc, SupportedSubjectTypes: []string{"pairwise"}}
	// checkURL needs https for the sector identifier; call the fetch directly.
	c := &Client{ID: "c", SubjectType: "pairwise", SectorIdentifierURI: srv.URL, RedirectURIs: []string{"https://a.example/cb"}}
	if err := o.checkSectorIdentifier(context.Background(), c); err != nil {
		t.Fatalf("listed redirect: %v", err)
	}
	c.RedirectURIs = append(c.RedirectURIs, "https://c.example/cb")
	if err := o.checkSectorIdentifier(context.Background(), c); err == nil {
		t.Fatal("unlisted redirect accepted")
	}
	// With the SSRF guard, a loopback sector identifier is refused.
	guarded, _ := safehttp.New(safehttp.Options{DisallowPrivateIPRanges: true})
	o.HTTP = guarded
	c.RedirectURIs = []string{"https://a.example/cb"}
	if err := o.checkSectorIdentifier(context.Background(), c); err == nil {
		t.Fatal("guarded client fetched a loopback sector identifier")
	}
}
