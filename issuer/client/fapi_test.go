package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
)

// TestFAPIMetadata: the metadata rules of the FAPI 2.0 profile, for a
// client with fapi_profile "2.0" and for every client under the global
// setting.
func TestFAPIMetadata(t *testing.T) {
	pub, _ := publicJWKS(t)
	fapi := func(c *Client) {
		c.FAPIProfile, c.TokenEndpointAuthMethod, c.JWKS = FAPI2, AuthPrivateKeyJWT, pub
		c.RedirectURIs = []string{"https://rp.example.com/cb"}
	}
	for _, tt := range []struct {
		name   string
		mod    func(c *Client)
		global bool
		code   string // "" = valid
	}{
		{"private_key_jwt, https", func(c *Client) {}, false, ""},
		{"loopback http redirect", func(c *Client) { c.RedirectURIs = []string{"http://127.0.0.1:8080/cb"} }, false, ""},
		{"PS256 assertions", func(c *Client) { c.TokenEndpointAuthSigningAlg = "PS256" }, false, ""},
		{"http redirect", func(c *Client) { c.RedirectURIs = []string{"http://rp.example.com/cb"} }, false, "invalid_redirect_uri"},
		{"private-use scheme", func(c *Client) { c.RedirectURIs = []string{"com.example.app:/cb"} }, false, "invalid_redirect_uri"},
		{"client_secret_basic", func(c *Client) {
			c.TokenEndpointAuthMethod, c.Secret = AuthClientSecretBasic, "a-long-enough-secret-0123456789"
		}, false, "invalid_client_metadata"},
		{"public", func(c *Client) { c.TokenEndpointAuthMethod = AuthNone }, false, "invalid_client_metadata"},
		{"code id_token", func(c *Client) { c.ResponseTypes = []string{"code", "code id_token"} }, false, "invalid_client_metadata"},
		{"implicit", func(c *Client) { c.GrantTypes = append(c.GrantTypes, GrantImplicit) }, false, "invalid_client_metadata"},
		{"RS256 assertions", func(c *Client) { c.TokenEndpointAuthSigningAlg = "RS256" }, false, "invalid_client_metadata"},
		{"RS256 request objects", func(c *Client) { c.RequestObjectSigningAlg = "RS256" }, false, "invalid_client_metadata"},
		{"unknown profile", func(c *Client) { c.FAPIProfile = "1.0" }, false, "invalid_client_metadata"},
		{"global: no fapi_profile", func(c *Client) { c.FAPIProfile = "" }, true, ""},
		{"global: client_secret_post", func(c *Client) {
			c.FAPIProfile, c.TokenEndpointAuthMethod, c.Secret = "", AuthClientSecretPost, "a-long-enough-secret-0123456789"
		}, true, "invalid_client_metadata"},
		{"not FAPI: client_secret_post", func(c *Client) {
			c.FAPIProfile, c.TokenEndpointAuthMethod, c.Secret = "", AuthClientSecretPost, "a-long-enough-secret-0123456789"
		}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ID: "c1"}
			fapi(c)
			tt.mod(c)
			c.ApplyDefaults()
			err := (&ValidationOptions{FAPI: tt.global}).Validate(context.Background(), c)
			var ae *apierr.Error
			switch {
			case tt.code == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.code != "" && (!errors.As(err, &ae) || ae.Code != tt.code):
				t.Fatalf("want %s, got %v", tt.code, err)
			}
		})
	}
}

func TestFAPIRedirectURI(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://rp.example.com/cb": true, "HTTPS://rp.example.com/cb": true, "http://127.0.0.1:1/cb": true,
		"http://[::1]/cb": true, "http://localhost/cb": true, "http://rp.example.com/cb": false,
		"com.example.app:/cb": false, "https:///cb": false, "%zz": false, "": false,
	} {
		if got := FAPIRedirectURI(raw); got != want {
			t.Errorf("FAPIRedirectURI(%q) = %v", raw, got)
		}
	}
}

func FuzzFAPIRedirectURI(f *testing.F) {
	for _, s := range []string{"https://rp.example.com/cb", "http://127.0.0.1:1/cb", "http://[::1", "com.example.app:/cb", "%zz", "http://localhost"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if FAPIRedirectURI(raw) && !strings.HasPrefix(strings.ToLower(raw), "http") {
			t.Fatalf("accepted %q", raw)
		}
	})
}
