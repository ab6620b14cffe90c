package sidecar_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// tokenTypeModes are the two ways to run the sidecar for an issuer: the
// default (only typ at+jwt access tokens) and accept_typ_jwt (typ JWT or
// no typ too, as Hydra signs its JWT access tokens; ID tokens still not).
var tokenTypeModes = []struct{ name, yaml string }{
	{"default", ""},
	{"accept_typ_jwt", "issuers:\n  - accept_typ_jwt: true\n"},
}

// expectDecision asks the sidecar about tok as Envoy (gRPC Check), as a
// forward-auth gateway (/auth) and as APISIX (/introspect) do: allowed
// with x-user-id sub, or the 401 invalid_token every bad token gets (and
// {"active":false}).
func expectDecision(t *testing.T, s *sidecarProc, tok string, allowed bool, sub string) {
	t.Helper()
	r := s.check(t, "GET", "api.example.com", "/orders", map[string]string{"authorization": "Bearer " + tok, "x-user-id": "spoofed"})
	resp := forwardAuth(t, s, "GET", "api.example.com", "/orders", map[string]string{"Authorization": "Bearer " + tok, "X-User-Id": "spoofed"})
	code, m := introspect(t, s, "apisix", "apisix-secret-0123456789", tok)
	if !allowed {
		denied(t, r, codes.Unauthenticated, 401, `Bearer error="invalid_token"`)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("/auth: %d %q, want 401 Bearer error=\"invalid_token\"", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if code != 200 || m["active"] != false {
			t.Errorf("/introspect: %d %v, want {\"active\":false}", code, m)
		}
		return
	}
	if set, _ := okSet(t, r); set["x-user-id"] != sub {
		t.Errorf("gRPC x-user-id = %q, want %q", set["x-user-id"], sub)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-User-Id") != sub {
		t.Errorf("/auth: %d x-user-id %q, want 200 %q", resp.StatusCode, resp.Header.Get("X-User-Id"), sub)
	}
	if code != 200 || m["active"] != true || m["sub"] != sub {
		t.Errorf("/introspect: %d %v, want active for %s", code, m, sub)
	}
}

// TestIDTokenIsNotAnAccessToken: a user's ID token, signed by a key of
// the very JWKS that verifies access tokens, never passes as an access
// token (RFC 8725 §3.11, RFC 9068 §4), whether or not the issuer's typ
// JWT access tokens are accepted. A Hydra-shaped typ JWT access token
// passes only where accept_typ_jwt says so; an at+jwt one always does.
func TestIDTokenIsNotAnAccessToken(t *testing.T) {
	p := newFakeProvider(t)
	typJWT := map[string]any{"typ": "JWT"}
	hydraID := p.is.Sign(p.key, p.is.IDTokenClaims("web"), typJWT)
	// Gatehouse's ID tokens also carry azp, and nonce when the client sent one.
	gatehouseID := p.is.IDTokenClaims("web")
	gatehouseID["azp"], gatehouseID["nonce"] = "web", "n-0S6_WzA2Mj"
	gatehouseIDTok := p.is.Sign(p.key, gatehouseID, typJWT)
	// An ID token whose consent app added a scope claim still is one.
	withScope := p.is.IDTokenClaims("web")
	withScope["scope"] = "openid"
	withScopeTok := p.is.Sign(p.key, withScope, typJWT)
	// Hydra v2's JWT access token: typ JWT, client_id, scp, ext, no scope.
	hydraClaims := p.is.Claims()
	delete(hydraClaims, "scope")
	hydraAT := p.is.Sign(p.key, hydraClaims, typJWT)
	untypedAT := p.is.Sign(p.key, p.is.Claims(), map[string]any{"typ": nil})
	atJWT, want := p.JWT(t)

	for _, m := range tokenTypeModes {
		t.Run(m.name, func(t *testing.T) {
			s := startSidecar(t, p, m.yaml)
			accept := m.yaml != ""
			for _, tc := range []struct {
				name    string
				tok     string
				allowed bool
				sub     string
			}{
				{"Hydra-shaped ID token", hydraID, false, ""},
				{"Gatehouse-shaped ID token", gatehouseIDTok, false, ""},
				{"ID token with a scope claim", withScopeTok, false, ""},
				{"Hydra typ JWT access token", hydraAT, accept, "client-1"},
				{"access token without typ", untypedAT, accept, "client-1"},
				{"at+jwt access token", atJWT, true, want.Subject},
			} {
				t.Run(tc.name, func(t *testing.T) { expectDecision(t, s, tc.tok, tc.allowed, tc.sub) })
			}
			s.assertNoTokenLogged(t, hydraID, gatehouseIDTok, hydraAT, atJWT)
		})
	}
}

// TestRealIssuerIDTokenIsNotAnAccessToken: the gatehouse binary's own
// tokens from an authorization code flow. The ID token is refused on
// every surface in both modes; the access token (typ at+jwt) of the same
// flow is accepted in both.
func TestRealIssuerIDTokenIsNotAnAccessToken(t *testing.T) {
	p := newRealProvider(t)
	access, idToken := p.userTokens(t, "alice")
	for _, m := range tokenTypeModes {
		t.Run(m.name, func(t *testing.T) {
			s := startSidecar(t, p, m.yaml)
			t.Run("ID token", func(t *testing.T) { expectDecision(t, s, idToken, false, "") })
			t.Run("access token", func(t *testing.T) { expectDecision(t, s, access, true, "alice") })
			s.assertNoTokenLogged(t, idToken, access)
		})
	}
}
