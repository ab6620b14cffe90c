package main_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	hydra "github.com/ory/hydra-client-go/v2"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// hydraClients are Ory's Go SDK configured the way a Hydra user does it:
// one API client on the public URL, one on the admin URL.
func hydraClients(is *testbin.Issuer) (public, admin *hydra.APIClient) {
	client := func(u string) *hydra.APIClient {
		c := hydra.NewConfiguration()
		c.Servers = hydra.ServerConfigurations{{URL: u}}
		return hydra.NewAPIClient(c)
	}
	return client(is.PublicURL), client(is.AdminURL)
}

// sdkOK fails the test with the SDK's error and the body it could not
// decode (hydra-client-go's and client-go's GenericOpenAPIError both have
// Body).
func sdkOK(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var oe interface{ Body() []byte }
	if errors.As(err, &oe) {
		t.Fatalf("%s through Ory's SDK: %v\n%s", what, err, oe.Body())
	}
	t.Fatalf("%s through Ory's SDK: %v", what, err)
}

// TestHydraGoSDK: Ory's Go SDK (github.com/ory/hydra-client-go/v2), whose
// models refuse documents that lack a required member, decodes what the
// real binary answers: discovery, clients, key sets, the login, consent
// and logout requests of a whole flow, introspection, userinfo and
// consent sessions.
func TestHydraGoSDK(t *testing.T) {
	ctx := context.Background()
	is := testbin.StartIssuer(t, flowEnv(nil))
	pub, admin := hydraClients(is)

	disco, _, err := pub.OidcAPI.DiscoverOidcConfiguration(ctx).Execute()
	sdkOK(t, "discovery", err)
	mustf(t, disco.Issuer == is.PublicURL && len(disco.IdTokenSignedResponseAlg) == 1 && len(disco.UserinfoSignedResponseAlg) == 1,
		"discovery: %+v", disco)

	in := hydra.NewOAuth2Client()
	in.SetClientSecret("a-very-secret-client-secret-0123")
	in.SetRedirectUris([]string{callback})
	in.SetGrantTypes([]string{"authorization_code", "refresh_token"})
	in.SetResponseTypes([]string{"code"})
	in.SetScope("openid offline_access")
	created, _, err := admin.OAuth2API.CreateOAuth2Client(ctx).OAuth2Client(*in).Execute()
	sdkOK(t, "create client", err)
	got, _, err := admin.OAuth2API.GetOAuth2Client(ctx, created.GetClientId()).Execute()
	sdkOK(t, "get client", err)
	mustf(t, got.GetClientId() == created.GetClientId() && got.GetScope() == "openid offline_access", "client: %+v", got)
	list, _, err := admin.OAuth2API.ListOAuth2Clients(ctx).Execute()
	sdkOK(t, "list clients", err)
	mustf(t, len(list) == 1, "clients: %+v", list)

	patch := hydra.NewJsonPatch("replace", "/client_name")
	patch.SetValue("renamed")
	patched, _, err := admin.OAuth2API.PatchOAuth2Client(ctx, created.GetClientId()).JsonPatch([]hydra.JsonPatch{*patch}).Execute()
	sdkOK(t, "patch client", err)
	mustf(t, patched.GetClientName() == "renamed", "patched client: %+v", patched)

	version, _, err := admin.MetadataAPI.GetVersion(ctx).Execute()
	sdkOK(t, "version", err)
	mustf(t, version.GetVersion() != "", "version: %+v", version)
	_, _, err = admin.MetadataAPI.IsReady(ctx).Execute()
	sdkOK(t, "readiness", err)

	generated, _, err := admin.JwkAPI.CreateJsonWebKeySet(ctx, "sdk-set").CreateJsonWebKeySet(*hydra.NewCreateJsonWebKeySet("ES256", "k1", "sig")).Execute()
	sdkOK(t, "create key set", err)
	mustf(t, len(generated.Keys) == 1 && generated.Keys[0].Kid == "k1", "generated key set: %+v", generated)
	key, _, err := admin.JwkAPI.GetJsonWebKey(ctx, "sdk-set", "k1").Execute()
	sdkOK(t, "get key", err)
	mustf(t, len(key.Keys) == 1 && key.Keys[0].Alg == "ES256", "key: %+v", key)
	set, _, err := admin.JwkAPI.GetJsonWebKeySet(ctx, "hydra.openid.id-token").Execute()
	sdkOK(t, "admin key set", err)
	mustf(t, len(set.Keys) == 1, "key set: %+v", set)
	jwks, _, err := pub.WellknownAPI.DiscoverJsonWebKeys(ctx).Execute()
	sdkOK(t, "public JWKS", err)
	mustf(t, len(jwks.Keys) >= 1, "JWKS: %+v", jwks)

	// A login app and a consent app written against the SDK.
	rp := newRP(t, is, map[string]any{"client_id": created.GetClientId(), "client_secret": "a-very-secret-client-secret-0123"},
		oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	b := newBrowser(t, is)
	verifier, _ := pkcePair()
	at, _, _ := b.visit(rp.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1")))
	mustf(t, at != nil && at.Path == "/login", "login app: %v", at)
	login, _, err := admin.OAuth2API.GetOAuth2LoginRequest(ctx).LoginChallenge(at.Query().Get("login_challenge")).Execute()
	sdkOK(t, "login request", err)
	mustf(t, !login.Skip && login.Client.GetClientId() == created.GetClientId(), "login request: %+v", login)
	accept := hydra.NewAcceptOAuth2LoginRequest("alice")
	accept.SetRemember(true)
	redirect, _, err := admin.OAuth2API.AcceptOAuth2LoginRequest(ctx).LoginChallenge(login.Challenge).AcceptOAuth2LoginRequest(*accept).Execute()
	sdkOK(t, "accept login", err)

	at, _, _ = b.visit(redirect.RedirectTo)
	mustf(t, at != nil && at.Path == "/consent", "consent app: %v", at)
	consent, _, err := admin.OAuth2API.GetOAuth2ConsentRequest(ctx).ConsentChallenge(at.Query().Get("consent_challenge")).Execute()
	sdkOK(t, "consent request", err)
	mustf(t, consent.GetSubject() == "alice" && len(consent.RequestedScope) == 2, "consent request: %+v", consent)
	grant := hydra.NewAcceptOAuth2ConsentRequest()
	grant.SetGrantScope(consent.RequestedScope)
	grant.SetRemember(true)
	redirect, _, err = admin.OAuth2API.AcceptOAuth2ConsentRequest(ctx).ConsentChallenge(consent.Challenge).AcceptOAuth2ConsentRequest(*grant).Execute()
	sdkOK(t, "accept consent", err)

	at, _, body := b.visit(redirect.RedirectTo)
	mustf(t, at != nil && at.Path == "/callback" && at.Query().Get("code") != "", "callback: %v %s", at, body)
	tok, err := rp.conf.Exchange(ctx, at.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	intro, _, err := admin.OAuth2API.IntrospectOAuth2Token(ctx).Token(tok.AccessToken).Execute()
	sdkOK(t, "introspection", err)
	mustf(t, intro.Active && intro.GetSub() == "alice" && intro.GetClientId() == created.GetClientId(), "introspection: %+v", intro)
	inactive, _, err := admin.OAuth2API.IntrospectOAuth2Token(ctx).Token("not-a-token").Execute()
	sdkOK(t, "introspection of an unknown token", err)
	mustf(t, !inactive.Active, "unknown token: %+v", inactive)

	user, _, err := pub.OidcAPI.GetOidcUserInfo(context.WithValue(ctx, hydra.ContextAccessToken, tok.AccessToken)).Execute()
	sdkOK(t, "userinfo", err)
	mustf(t, user.GetSub() == "alice", "userinfo: %+v", user)

	sessions, _, err := admin.OAuth2API.ListOAuth2ConsentSessions(ctx).Subject("alice").Execute()
	sdkOK(t, "consent sessions", err)
	mustf(t, len(sessions) == 1, "consent sessions: %+v", sessions)

	// A login app that rejects.
	at, _, _ = newBrowser(t, is).visit(rp.conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)))
	mustf(t, at != nil && at.Path == "/login", "login app: %v", at)
	reject := hydra.NewRejectOAuth2Request()
	reject.SetError("access_denied")
	redirect, _, err = admin.OAuth2API.RejectOAuth2LoginRequest(ctx).LoginChallenge(at.Query().Get("login_challenge")).RejectOAuth2Request(*reject).Execute()
	sdkOK(t, "reject login", err)
	mustf(t, redirect.RedirectTo != "", "reject login: %+v", redirect)

	// RP-initiated logout reaches the logout app.
	rawID, _ := tok.Extra("id_token").(string)
	at, _, body = b.visit(is.PublicURL + "/oauth2/sessions/logout?id_token_hint=" + url.QueryEscape(rawID))
	mustf(t, at != nil && at.Path == "/logout", "logout app: %v %s", at, body)
	logout, _, err := admin.OAuth2API.GetOAuth2LogoutRequest(ctx).LogoutChallenge(at.Query().Get("logout_challenge")).Execute()
	sdkOK(t, "logout request", err)
	mustf(t, logout.GetSubject() == "alice" && logout.GetRpInitiated(), "logout request: %+v", logout)
	redirect, _, err = admin.OAuth2API.AcceptOAuth2LogoutRequest(ctx).LogoutChallenge(logout.GetChallenge()).Execute()
	sdkOK(t, "accept logout", err)
	mustf(t, redirect.RedirectTo != "", "accept logout: %+v", redirect)
}
