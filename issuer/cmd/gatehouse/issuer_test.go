package main_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestIssuerStringKeptExactly: URLS_SELF_ISSUER is used as configured,
// trailing slash or not, in discovery, the ID token's and the JWT access
// token's iss and introspection (OpenID Connect Discovery §4.3, RFC 9068
// §4: the very same string everywhere), while the endpoint URLs are built
// without a double slash. go-oidc, given the configured string, accepts
// discovery and verifies both tokens.
func TestIssuerStringKeptExactly(t *testing.T) {
	for _, suffix := range []string{"", "/"} {
		t.Run(fmt.Sprintf("issuer%q", suffix), func(t *testing.T) {
			port := testbin.FreePort(t)
			issuer := fmt.Sprintf("http://127.0.0.1:%d%s", port, suffix)
			is := testbin.StartIssuer(t, flowEnv(map[string]string{
				"SERVE_PUBLIC_PORT": fmt.Sprint(port), "URLS_SELF_ISSUER": issuer, "STRATEGIES_ACCESS_TOKEN": "jwt"}))

			code, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration")
			var disco map[string]any
			if err := json.Unmarshal(raw, &disco); err != nil || code != 200 {
				t.Fatalf("discovery: %d %v %s", code, err, raw)
			}
			mustf(t, disco["issuer"] == issuer, "discovery issuer %q, want %q", disco["issuer"], issuer)
			for k, v := range disco {
				if s, ok := v.(string); ok && strings.HasSuffix(k, "_endpoint") || k == "jwks_uri" {
					mustf(t, strings.HasPrefix(s, is.PublicURL+"/") && !strings.Contains(strings.TrimPrefix(s, "http://"), "//"),
						"%s = %q: want a URL under %s without a double slash", k, s, is.PublicURL)
				}
			}

			// A relying party configured with the issuer string exactly.
			provider, err := oidc.NewProvider(t.Context(), issuer)
			if err != nil {
				t.Fatalf("go-oidc discovery with %q: %v", issuer, err)
			}
			c := newFlowClient(t, is, nil)
			ep := provider.Endpoint()
			ep.AuthStyle = oauth2.AuthStyleInHeader
			rp := &relyingParty{provider: provider, verifier: provider.Verifier(&oidc.Config{ClientID: c["client_id"].(string)}),
				conf: &oauth2.Config{ClientID: c["client_id"].(string), ClientSecret: c["client_secret"].(string), Endpoint: ep,
					RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID}}}
			q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "alice")
			tok, err := rp.conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := rp.verifier.Verify(t.Context(), rawID)
			if err != nil {
				t.Fatalf("go-oidc verifying the ID token against %q: %v", issuer, err)
			}
			mustf(t, idt.Issuer == issuer, "id_token iss %q, want %q", idt.Issuer, issuer)
			at, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(t.Context(), tok.AccessToken)
			if err != nil {
				t.Fatalf("go-oidc verifying the JWT access token against %q: %v", issuer, err)
			}
			mustf(t, at.Issuer == issuer, "access token iss %q, want %q", at.Issuer, issuer)
			intro := introspectToken(t, is, tok.AccessToken)
			mustf(t, intro["active"] == true && intro["iss"] == issuer, "introspection iss %q, want %q: %v", intro["iss"], issuer, intro)
		})
	}
}
