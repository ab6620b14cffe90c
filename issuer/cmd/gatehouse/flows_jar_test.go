package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestRequestObjects: request objects (OpenID Connect Core §6.1) unsigned
// and signed with the client's registered key override the query; bad
// ones are refused with invalid_request_object.
func TestRequestObjects(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := jwk.Import(priv)
	_ = key.Set(jwk.KeyIDKey, "rp-1")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	signed := newFlowClient(t, is, map[string]any{"jwks": json.RawMessage(jwks), "request_object_signing_alg": "ES256"})
	unsigned := newFlowClient(t, is, nil)
	b := newBrowser(t, is)

	sign := func(claims map[string]any) string {
		payload, _ := json.Marshal(claims)
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, "rp-1")
		out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	none := func(claims map[string]any) string {
		payload, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	auth := func(clientID, request string) url.Values {
		t.Helper()
		q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"}, "state": {"outer"}, "request": {request}}
		at, _, body := b.visit(is.PublicURL + "/oauth2/auth?" + q.Encode())
		if at != nil && at.Path == "/login" {
			req, to := acceptLogin(t, is, at, map[string]any{"subject": "ivy", "remember": true})
			mustf(t, req["oidc_context"].(map[string]any)["login_hint"] == "from-object", "login_hint from the object: %v", req["oidc_context"])
			at, _, _ = b.visit(to)
			_, to = acceptConsent(t, is, at, grantAll(true))
			at, _, body = b.visit(to)
		}
		return callbackParams(t, at, body)
	}
	sid := signed["client_id"].(string)
	claims := map[string]any{"iss": sid, "aud": is.PublicURL, "client_id": sid, "response_type": "code", "scope": "openid",
		"state": "inner", "nonce": "jar-nonce", "login_hint": "from-object", "redirect_uri": callback, "exp": time.Now().Add(time.Minute).Unix()}
	q := auth(sid, sign(claims))
	mustf(t, q.Get("code") != "" && q.Get("state") == "inner", "signed request object: %v", q)
	rp := newRP(t, is, signed, oidc.ScopeOpenID)
	tok, err := rp.conf.Exchange(ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	mustf(t, err == nil && idt.Nonce == "jar-nonce", "nonce from the request object: %v", err)

	// Refusals come back to the client as invalid_request_object.
	for name, req := range map[string]string{
		"unsigned for a signing client": none(claims),
		"wrong issuer":                  sign(map[string]any{"iss": "someone-else", "client_id": sid}),
		"wrong audience":                sign(map[string]any{"aud": "https://other.example", "client_id": sid}),
		"expired":                       sign(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"mismatched client_id":          sign(map[string]any{"client_id": "other"}),
		"garbage":                       "not-a-jwt",
	} {
		q := auth(sid, req)
		mustf(t, q.Get("error") == "invalid_request_object" && q.Get("state") == "outer", "%s: %v", name, q)
	}

	// request_uri: the object is fetched (OIDC Core §6.2), only from a
	// registered request_uri when the client registered some.
	obj := sign(claims)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
		_, _ = w.Write([]byte(obj))
	}))
	defer srv.Close()
	byRef := newFlowClient(t, is, map[string]any{"jwks": json.RawMessage(jwks), "request_uris": []string{srv.URL + "/ro.jwt"}})
	claims["iss"], claims["client_id"] = byRef["client_id"], byRef["client_id"]
	obj = sign(claims)
	refQuery := func(ru string) url.Values {
		q := url.Values{"client_id": {byRef["client_id"].(string)}, "response_type": {"code"}, "scope": {"openid"}, "state": {"outer"}, "request_uri": {ru}}
		at, _, body := b.visit(is.PublicURL + "/oauth2/auth?" + q.Encode())
		if at != nil && at.Path == "/login" {
			_, to := acceptLogin(t, is, at, map[string]any{"subject": "ivy"})
			at, _, _ = b.visit(to)
			_, to = acceptConsent(t, is, at, grantAll(true))
			at, _, body = b.visit(to)
		}
		return callbackParams(t, at, body)
	}
	q = refQuery(srv.URL + "/ro.jwt#v1")
	mustf(t, q.Get("code") != "" && q.Get("state") == "inner", "request_uri: %v", q)
	q = refQuery(srv.URL + "/other.jwt")
	mustf(t, q.Get("error") == "invalid_request" && q.Get("state") == "outer", "unregistered request_uri: %v", q)

	// An unsigned object for a client that registered no algorithm.
	uid := unsigned["client_id"].(string)
	q = auth(uid, none(map[string]any{"client_id": uid, "state": "inner-2", "login_hint": "from-object"}))
	mustf(t, q.Get("code") != "" && q.Get("state") == "inner-2", "unsigned request object: %v", q)
}
