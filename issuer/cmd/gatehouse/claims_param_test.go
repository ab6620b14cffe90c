package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestClaimsParameter: the OpenID Connect Core §5.5 claims parameter, at
// /oauth2/auth and inside a request object, reaches the login and consent
// requests as oidc_context.claims; the claims the consent grants in
// session.id_token go to the ID token and userinfo as requested (a claim
// asked for under userinfo only stays out of the ID token and the other
// way round; unnamed claims go to both); a requested id_token sub value
// for another user is login_required; a malformed claims parameter is
// invalid_request; discovery says claims_parameter_supported.
func TestClaimsParameter(t *testing.T) {
	ctx := context.Background()
	is := testbin.StartIssuer(t, flowEnv(nil))
	_, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration")
	var disco map[string]any
	_ = json.Unmarshal(raw, &disco)
	mustf(t, disco["claims_parameter_supported"] == true, "discovery: %s", raw)

	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, oidc.ScopeOpenID, "offline_access")
	b := newBrowser(t, is)
	claimsParam := func(v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("claims", v) }

	for _, bad := range []string{`{`, `[]`, `{"id_token":"email"}`, `{"userinfo":{"name":{"essential":"yes"}}}`} {
		at, _, body := b.visit(rp.conf.AuthCodeURL("st-bad", claimsParam(bad)))
		q := callbackParams(t, at, body)
		mustf(t, q.Get("error") == "invalid_request" && q.Get("state") == "st-bad", "claims=%s: %v", bad, q)
	}

	const requested = `{"id_token":{"email":{"essential":true},"acr":{"values":["urn:mfa"]}},"userinfo":{"name":null}}`
	var want map[string]any
	_ = json.Unmarshal([]byte(requested), &want)
	at, _, _ := b.visit(rp.conf.AuthCodeURL("st-1", claimsParam(requested), oidc.Nonce("n-1")))
	lreq, to := acceptLogin(t, is, at, map[string]any{"subject": "alice", "remember": true, "remember_for": 3600})
	mustf(t, reflect.DeepEqual(lreq["oidc_context"].(map[string]any)["claims"], want), "login request oidc_context: %v", lreq["oidc_context"])
	at, _, _ = b.visit(to)
	creq, to := acceptConsent(t, is, at, func(req map[string]any) map[string]any {
		return map[string]any{"grant_scope": req["requested_scope"], "remember": true, "session": map[string]any{
			"id_token": map[string]any{"email": "alice@example.com", "name": "Alice", "tenant": "acme"}}}
	})
	mustf(t, reflect.DeepEqual(creq["oidc_context"].(map[string]any)["claims"], want), "consent request oidc_context: %v", creq["oidc_context"])
	at, _, body := b.visit(to)
	q := callbackParams(t, at, body)
	tok, err := rp.conf.Exchange(ctx, q.Get("code"))
	mustf(t, err == nil, "exchange: %v", err)
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	mustf(t, err == nil, "ID token: %v", err)
	var idc map[string]any
	_ = idt.Claims(&idc)
	mustf(t, idc["email"] == "alice@example.com" && idc["tenant"] == "acme" && idc["name"] == nil, "ID token claims: %v", idc)
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	mustf(t, err == nil, "userinfo: %v", err)
	var uic map[string]any
	_ = ui.Claims(&uic)
	mustf(t, uic["name"] == "Alice" && uic["tenant"] == "acme" && uic["email"] == nil, "userinfo claims: %v", uic)
	// The placement holds for the ID token of a refresh.
	tok2, err := refreshWith(rp, tok.RefreshToken)
	mustf(t, err == nil, "refresh: %v", err)
	idt, err = rp.verifier.Verify(ctx, tok2.Extra("id_token").(string))
	mustf(t, err == nil, "refreshed ID token: %v", err)
	idc = nil
	_ = idt.Claims(&idc)
	mustf(t, idc["email"] == "alice@example.com" && idc["name"] == nil, "refreshed ID token claims: %v", idc)

	// A requested sub value for another user: login_required (§5.5.1).
	at, _, _ = b.visit(rp.conf.AuthCodeURL("st-2", claimsParam(`{"id_token":{"sub":{"value":"bob"}}}`)))
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "alice"})
	at, _, body = b.visit(to)
	q = callbackParams(t, at, body)
	mustf(t, q.Get("error") == "login_required" && q.Get("state") == "st-2", "id_token sub of another user: %v", q)

	// Inside an (unsigned) request object the claims member is an object.
	payload, _ := json.Marshal(map[string]any{"client_id": c["client_id"], "response_type": "code", "scope": "openid",
		"redirect_uri": callback, "state": "st-3", "claims": map[string]any{"userinfo": map[string]any{"email": nil}}})
	object := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	at, _, _ = b.visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {c["client_id"].(string)},
		"response_type": {"code"}, "scope": {"openid"}, "request": {object}}.Encode())
	_, to = acceptLogin(t, is, at, map[string]any{"subject": "alice"})
	at, _, _ = b.visit(to)
	creq, _ = acceptConsent(t, is, at, grantAll(false))
	mustf(t, reflect.DeepEqual(creq["oidc_context"].(map[string]any)["claims"], map[string]any{"userinfo": map[string]any{"email": nil}}),
		"claims from a request object: %v", creq["oidc_context"])
}
