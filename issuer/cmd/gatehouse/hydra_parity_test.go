package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestAuthorizationServerMetadataWithIssuerPath: for an issuer with a path
// (https://host/tenant) RFC 8414 §3.1 inserts the well-known suffix between
// host and path: /.well-known/oauth-authorization-server/tenant serves the
// same document as OpenID discovery, whose issuer is the configured one
// (§3.3). Another path suffix is not served.
func TestAuthorizationServerMetadataWithIssuerPath(t *testing.T) {
	is := testbin.StartIssuer(t, map[string]string{"URLS_SELF_ISSUER": "{public}/tenant"})
	pub := strings.TrimSuffix(is.PublicURL, "/tenant")
	_, _, oidcDoc := get(t, pub+"/.well-known/openid-configuration")
	for _, path := range []string{"/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server"} {
		code, _, doc := get(t, pub+path)
		var md map[string]any
		_ = json.Unmarshal(doc, &md)
		mustf(t, code == 200 && bytes.Equal(doc, oidcDoc) && md["issuer"] == pub+"/tenant", "%s: %d %s", path, code, doc)
	}
	code, _, _ := get(t, pub+"/.well-known/oauth-authorization-server/other")
	mustf(t, code == 404, "another path suffix: %d", code)
}

// TestSkipLogoutConsent: RP-initiated logout for a client with
// skip_logout_consent ends the session without the logout app and goes
// straight to the post_logout_redirect_uri with state; a client without
// it still gets the logout challenge.
func TestSkipLogoutConsent(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	const after = appBase + "/bye"
	for _, skip := range []bool{true, false} {
		c := newFlowClient(t, is, map[string]any{"skip_logout_consent": skip, "post_logout_redirect_uris": []string{after}})
		mustf(t, c["skip_logout_consent"] == skip, "client: %v", c)
		rp := newRP(t, is, c, oidc.ScopeOpenID)
		b := newBrowser(t, is)
		hint := loggedIn(t, is, b, rp, "alice").Extra("id_token").(string)
		at, _, _ := b.visit(is.PublicURL + "/oauth2/sessions/logout?" + url.Values{"id_token_hint": {hint},
			"post_logout_redirect_uri": {after}, "state": {"st"}}.Encode())
		if !skip {
			mustf(t, at != nil && at.Path == "/logout" && at.Query().Get("logout_challenge") != "", "without skip_logout_consent: %v", at)
			continue
		}
		mustf(t, at != nil && at.String() == after+"?state=st", "skip_logout_consent: went to %v", at)
		at, _, body := b.visit(rp.conf.AuthCodeURL("s2", oauth2.SetAuthURLParam("prompt", "none")))
		q := callbackParams(t, at, body)
		mustf(t, q.Get("error") == "login_required", "the session survived a skip_logout_consent logout: %v", q)
	}
}

// TestPerClientAccessTokenStrategy: a client's access_token_strategy
// overrides strategies.access_token in both directions.
func TestPerClientAccessTokenStrategy(t *testing.T) {
	isJWT := func(tok string) bool { return strings.Count(tok, ".") == 2 && !strings.HasPrefix(tok, "ory_at_") }
	for _, global := range []string{"opaque", "jwt"} {
		is := testbin.StartIssuer(t, map[string]string{"STRATEGIES_ACCESS_TOKEN": global})
		for _, own := range []string{"", "opaque", "jwt"} {
			fields := map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read"}
			if own != "" {
				fields["access_token_strategy"] = own
			}
			c := is.RegisterClient(t, fields)
			tok := is.Token(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}).AccessToken
			want := own
			if want == "" {
				want = global
			}
			mustf(t, isJWT(tok) == (want == "jwt"), "global %s, client %q: got %.20s...", global, own, tok)
			mustf(t, introspectToken(t, is, tok)["active"] == true, "global %s, client %q: inactive", global, own)
		}
		// Unknown strategies are refused at registration.
		var out map[string]any
		code := adminJSON(t, is, http.MethodPost, "/admin/clients", map[string]any{"access_token_strategy": "paseto"}, &out)
		mustf(t, code == 400, "access_token_strategy paseto: %d %v", code, out)
	}
}
