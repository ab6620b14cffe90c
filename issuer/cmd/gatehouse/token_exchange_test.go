package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// RFC 8693 identifiers.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	ttAccess           = "urn:ietf:params:oauth:token-type:access_token"
	ttRefresh          = "urn:ietf:params:oauth:token-type:refresh_token"
	ttID               = "urn:ietf:params:oauth:token-type:id_token"
	ttJWT              = "urn:ietf:params:oauth:token-type:jwt"
	api2               = "https://api2.example"
)

// exchange posts a token exchange as c (client_secret_basic) and returns
// the status and the decoded answer.
func exchange(t *testing.T, is *testbin.Issuer, c testbin.Client, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", grantTokenExchange)
	status, raw := is.PostToken(t, c, form)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("token exchange: %d %s", status, raw)
	}
	return status, out
}

// TestTokenExchange: RFC 8693 against the real binary on SQLite,
// PostgreSQL and MariaDB. A user's tokens from a code flow are exchanged
// by a backend service for tokens for a second API, with (delegation,
// act) and without (impersonation) an actor; a delegated token is
// exchanged again (nested act); a trusted issuer's JWT is exchanged
// through a jwt-bearer trust relationship (may_act honoured); revoking the
// consent or the refresh token family revokes every exchanged token; and
// every error the feature names is answered with its code.
func TestTokenExchange(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t), "LOG_LEVEL": "info"}))
			testTokenExchange(t, is)
		})
	}
}

func testTokenExchange(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	// The user's app: a code flow client that may also exchange its own
	// refresh token.
	app := newFlowClient(t, is, map[string]any{"grant_types": []string{"authorization_code", "refresh_token", grantTokenExchange},
		"audience": []string{api2}, "token_exchange_impersonation": true})
	rp := newRP(t, is, app, oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "profile", "email")
	appC := testbin.Client{ID: app["client_id"].(string), Secret: app["client_secret"].(string)}
	login := func(subject string) *oauth2.Token {
		q, verifier := codeFlow(t, is, newBrowser(t, is), rp, subject)
		tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange: %v", err)
		}
		return tok
	}
	user := login("alice")

	// The backend services: one may impersonate, one only delegate; both
	// have client_credentials tokens to act with.
	backend := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", grantTokenExchange},
		"scope": "profile email", "audience": []string{api2, "https://api3.example"}, "token_exchange_impersonation": true})
	delegate := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", grantTokenExchange},
		"scope": "profile email", "audience": []string{api2}, "access_token_strategy": "jwt"})
	backendActor := is.Token(t, backend, url.Values{"grant_type": {"client_credentials"}}).AccessToken
	delegateActor := is.Token(t, delegate, url.Values{"grant_type": {"client_credentials"}}).AccessToken

	// Impersonation: the user's opaque access token for api2, narrowed.
	code, imp := exchange(t, is, backend, url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {ttAccess},
		"audience": {api2}, "scope": {"profile"}})
	mustf(t, code == 200 && imp["issued_token_type"] == ttAccess && imp["token_type"] == "bearer" &&
		imp["expires_in"].(float64) > 0 && imp["refresh_token"] == nil && imp["scope"] == "profile", "impersonation: %d %v", code, imp)
	in := introspectToken(t, is, imp["access_token"].(string))
	mustf(t, in["active"] == true && in["sub"] == "alice" && in["client_id"] == backend.ID && sprintf("%v", in["aud"]) == "["+api2+"]" &&
		in["act"] == nil, "impersonated token: %v", in)
	mustf(t, strings.Contains(is.Output.String(), `"token exchange"`) && strings.Contains(is.Output.String(), `"actor":""`) &&
		!strings.Contains(is.Output.String(), user.AccessToken), "exchange log: %s", is.Output.String())

	// Delegation, as a JWT: act names the actor (RFC 8693 §4.1).
	code, del := exchange(t, is, delegate, url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {ttAccess},
		"actor_token": {delegateActor}, "actor_token_type": {ttAccess}, "resource": {api2}, "requested_token_type": {ttJWT}})
	mustf(t, code == 200 && del["issued_token_type"] == ttJWT, "delegation: %d %v", code, del)
	cl := jwtClaims(t, del["access_token"].(string))
	mustf(t, cl["sub"] == "alice" && cl["client_id"] == delegate.ID && sprintf("%v", cl["aud"]) == "["+api2+"]" &&
		sprintf("%v", cl["act"]) == "map[sub:"+delegate.ID+"]", "delegated JWT claims: %v", cl)
	mustf(t, sprintf("%v", introspectToken(t, is, del["access_token"].(string))["act"]) == "map[sub:"+delegate.ID+"]", "introspection act")

	// The delegated token exchanged again by another actor: act nests.
	code, nested := exchange(t, is, backend, url.Values{"subject_token": {del["access_token"].(string)}, "subject_token_type": {ttJWT},
		"actor_token": {backendActor}, "actor_token_type": {ttAccess}, "audience": {"https://api3.example"}})
	mustf(t, code == 200, "nested: %d %v", code, nested)
	in = introspectToken(t, is, nested["access_token"].(string))
	mustf(t, in["active"] == true && sprintf("%v", in["act"]) == "map[act:map[sub:"+delegate.ID+"] sub:"+backend.ID+"]", "nested act: %v", in)

	// An ID token and the app's own refresh token are subject tokens too.
	code, fromID := exchange(t, is, backend, url.Values{"subject_token": {user.Extra("id_token").(string)}, "subject_token_type": {ttID},
		"audience": {api2}})
	mustf(t, code == 200 && introspectToken(t, is, fromID["access_token"].(string))["sub"] == "alice", "id token: %d %v", code, fromID)
	code, fromRefresh := exchange(t, is, appC, url.Values{"subject_token": {user.RefreshToken}, "subject_token_type": {ttRefresh},
		"audience": {api2}, "scope": {"email"}})
	mustf(t, code == 200 && introspectToken(t, is, fromRefresh["access_token"].(string))["scope"] == "email", "refresh token: %d %v", code, fromRefresh)

	// Errors.
	noGrant := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "audience": []string{api2}})
	bad := func(c testbin.Client, form url.Values, want string) {
		t.Helper()
		code, out := exchange(t, is, c, form)
		mustf(t, code == 400 && out["error"] == want, "%v: want %s, got %d %v", form, want, code, out)
	}
	subj := url.Values{"subject_token": {user.AccessToken}, "subject_token_type": {ttAccess}}
	with := func(kv ...string) url.Values {
		f := url.Values{}
		for k, v := range subj {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	bad(noGrant, with(), "unauthorized_client")
	bad(backend, with("audience", "https://elsewhere.example"), "invalid_target")
	bad(backend, with("resource", "https://elsewhere.example"), "invalid_target")
	bad(backend, with("resource", "not a uri"), "invalid_target")
	bad(backend, with("scope", "openid"), "invalid_scope") // granted to the user's token, not to the backend
	bad(backend, with("scope", "admin"), "invalid_scope")  // not in the subject token
	bad(backend, with("requested_token_type", ttRefresh), "invalid_request")
	bad(backend, with("subject_token", "garbage"), "invalid_request")
	bad(backend, with("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), "invalid_request")
	bad(backend, with("subject_token_type", ""), "invalid_request")
	bad(backend, url.Values{"subject_token_type": {ttAccess}}, "invalid_request")
	bad(backend, with("actor_token", backendActor), "invalid_request")                                         // no actor_token_type
	bad(delegate, with(), "invalid_request")                                                                   // may not impersonate
	bad(backend, with("subject_token", user.RefreshToken, "subject_token_type", ttRefresh), "invalid_request") // another client's

	// A JWT of another domain, through a jwt-bearer trust relationship;
	// its may_act names the only actor that may use it (RFC 8693 §4.4).
	key := newSigningKey(t, "idp-x")
	pub, _ := key.PublicKey()
	jwkJSON, _ := json.Marshal(pub)
	var trust map[string]any
	mustf(t, adminJSON(t, is, http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", map[string]any{
		"issuer": "https://idp.other.example", "allow_any_subject": true, "scope": []string{"profile"},
		"jwk": json.RawMessage(jwkJSON), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, &trust) == 201, "trust: %v", trust)
	foreign := func(claims map[string]any) string {
		base := map[string]any{"iss": "https://idp.other.example", "sub": "bob@other", "aud": is.PublicURL + "/oauth2/token",
			"exp": time.Now().Add(5 * time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomState()}
		for k, v := range claims {
			base[k] = v
		}
		return signJWT(t, key, base)
	}
	code, x := exchange(t, is, backend, url.Values{"subject_token": {foreign(nil)}, "subject_token_type": {ttJWT},
		"audience": {api2}, "scope": {"profile"}})
	mustf(t, code == 200 && introspectToken(t, is, x["access_token"].(string))["sub"] == "bob@other", "cross-domain: %d %v", code, x)
	bad(backend, url.Values{"subject_token": {foreign(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})}, "subject_token_type": {ttJWT}}, "invalid_request")
	bad(backend, url.Values{"subject_token": {foreign(map[string]any{"iss": "https://untrusted.example"})}, "subject_token_type": {ttJWT}}, "invalid_request")
	mayActJWT := foreign(map[string]any{"may_act": map[string]any{"sub": delegate.ID}})
	bad(backend, url.Values{"subject_token": {mayActJWT}, "subject_token_type": {ttJWT}}, "invalid_request")
	bad(backend, url.Values{"subject_token": {mayActJWT}, "subject_token_type": {ttJWT}, "actor_token": {backendActor}, "actor_token_type": {ttAccess}}, "invalid_request")
	code, x = exchange(t, is, delegate, url.Values{"subject_token": {mayActJWT}, "subject_token_type": {ttJWT},
		"actor_token": {delegateActor}, "actor_token_type": {ttAccess}})
	mustf(t, code == 200, "may_act actor: %d %v", code, x)

	// Revocation cascades: revoking the user's consent revokes the tokens
	// exchanged from the grant's tokens, nested ones included; revoking a
	// refresh token family does the same; a revoked subject token cannot
	// be exchanged.
	for name, tok := range map[string]any{"impersonated": imp, "delegated": del, "nested": nested, "from refresh": fromRefresh} {
		mustf(t, introspectToken(t, is, tok.(map[string]any)["access_token"].(string))["active"] == true, "%s before revocation", name)
	}
	mustf(t, adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?subject=alice&client="+appC.ID, nil, nil) == 204, "revoke consent")
	for name, tok := range map[string]any{"impersonated": imp, "delegated": del, "nested": nested, "from refresh": fromRefresh} {
		mustf(t, introspectToken(t, is, tok.(map[string]any)["access_token"].(string))["active"] == false, "%s after consent revocation", name)
	}
	bad(backend, subj, "invalid_request")

	carol := login("carol")
	code, fromCarol := exchange(t, is, backend, url.Values{"subject_token": {carol.AccessToken}, "subject_token_type": {ttAccess}, "audience": {api2}})
	mustf(t, code == 200, "carol: %d %v", code, fromCarol)
	form := url.Values{"token": {carol.RefreshToken}}
	req, _ := http.NewRequest(http.MethodPost, is.PublicURL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(appC.ID), url.QueryEscape(appC.Secret))
	resp, err := http.DefaultClient.Do(req)
	mustf(t, err == nil && resp.StatusCode == 200, "revoke: %v %v", err, resp)
	resp.Body.Close()
	mustf(t, introspectToken(t, is, fromCarol["access_token"].(string))["active"] == false, "exchanged token after the family was revoked")
}

// TestTokenExchangeHook: the token hook sees exchanges like any grant.
func TestTokenExchangeHook(t *testing.T) {
	hook := newHookServer(t)
	is := testbin.StartIssuer(t, hookEnv(sqliteDSN(t), hook))
	backend := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", grantTokenExchange},
		"scope": "profile", "audience": []string{api2}, "access_token_strategy": "jwt"})
	actor := is.Token(t, backend, url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}).AccessToken
	hook.set(func(w http.ResponseWriter, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"session":{"access_token":{"role":"exchanged"}}}`))
	})
	code, out := exchange(t, is, backend, url.Values{"subject_token": {actor}, "subject_token_type": {ttAccess},
		"actor_token": {actor}, "actor_token_type": {ttAccess}, "audience": {api2}})
	mustf(t, code == 200, "exchange: %d %v", code, out)
	call, n := hook.last(t)
	req, _ := call.body["request"].(map[string]any)
	mustf(t, n == 1 && sprintf("%v", req["grant_types"]) == "["+grantTokenExchange+"]", "hook call: %d %v", n, call.body)
	mustf(t, jwtClaims(t, out["access_token"].(string))["role"] == "exchanged", "hook claims: %v", jwtClaims(t, out["access_token"].(string)))
}

// TestPerformTokenExchange: `gatehouse perform token-exchange` exchanges a
// token by hand, with an actor, and prints the issued token.
func TestPerformTokenExchange(t *testing.T) {
	is := testbin.StartIssuer(t, nil)
	backend := is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", grantTokenExchange},
		"scope": "read", "audience": []string{api2}})
	subject := is.Token(t, backend, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}).AccessToken
	out, err := cli(t, is, "perform", "token-exchange", "--client-id", backend.ID, "--client-secret", backend.Secret,
		"--subject-token", subject, "--actor-token", subject, "--audience", api2, "--requested-token-type", "jwt", "--format", "json")
	if err != nil {
		t.Fatalf("perform token-exchange: %v %s", err, out)
	}
	var tok map[string]any
	_ = json.Unmarshal([]byte(out), &tok)
	mustf(t, tok["issued_token_type"] == ttJWT, "output: %s", out)
	c := jwtClaims(t, tok["access_token"].(string))
	mustf(t, c["act"] != nil && sprintf("%v", c["aud"]) == "["+api2+"]", "claims: %v", c)
	out, err = cli(t, is, "perform", "token-exchange", "--client-id", backend.ID, "--client-secret", backend.Secret,
		"--subject-token", "garbage", "--actor-token", subject, "--audience", api2)
	mustf(t, err != nil && strings.Contains(out, "invalid_request"), "bad subject token: %v %s", err, out)
}
