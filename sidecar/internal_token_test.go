package sidecar_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/extauthz/extauthztest"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

const grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// internalTokenConfig is baseConfig with a route whose upstream gets an
// internal token; the sidecar's client comes from the environment.
var internalTokenConfig = strings.Replace(baseConfig, "rules:\n", `rules:
  - name: orders
    match: {path_prefix: /orders}
    internal_token: {audience: orders-api}
`, 1) + `
internal_tokens:
  actor: true
`

// tokenEndpointCalls counts the requests the issuer's token endpoint has
// answered, from its Prometheus metrics.
func tokenEndpointCalls(t *testing.T, p *realProvider) int {
	t.Helper()
	resp, err := http.Get(p.is.AdminURL + "/admin/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gatehouse_http_requests_total{") || !strings.Contains(line, `server="public"`) ||
			!strings.Contains(line, `/oauth2/token"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		n += int(v)
	}
	return n
}

// upstreamToken returns the Authorization an OK Check response sets for
// the upstream.
func upstreamToken(t *testing.T, r *authv3.CheckResponse) string {
	t.Helper()
	set, _ := okSet(t, r)
	v, ok := strings.CutPrefix(set["authorization"], "Bearer ")
	if !ok {
		t.Fatalf("the OK response sets authorization %q, want Bearer <internal token>", set["authorization"])
	}
	return v
}

// TestInternalTokensFromTheRealIssuer: on a route with internal_token, the
// real sidecar exchanges the caller's token at the real issuer (RFC 8693,
// as a client registered for it, with its own client_credentials token as
// actor) and sends the upstream a JWT for the route's audience, with the
// caller's sub and act naming the sidecar's client, verifiable with the
// issuer's JWKS; over gRPC (header mutation) and /auth (Authorization in
// the 200). A second request is served from the cache (no call to the
// token endpoint); with the issuer stopped cached internal tokens keep
// working and a token never exchanged is no decision (fail closed).
func TestInternalTokensFromTheRealIssuer(t *testing.T) {
	p := newRealProvider(t)
	gw := p.is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials", grantTokenExchange},
		"scope": "openid read write", "audience": []string{"orders-api"}, "token_endpoint_auth_method": "client_secret_basic"})
	// The revocation stream is off: "caller token the issuer refuses to
	// exchange" revokes a JWT at the issuer, and with the stream on the
	// sidecar would soon deny it as revoked before asking for an exchange
	// (TestRevocationReachesEverySidecar covers that path).
	s := startSidecarEnv(t, p, internalTokenConfig, map[string]string{
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID":     gw.ID,
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": gw.Secret,
		"GATEHOUSE_SIDECAR_REVOCATION_EVENTS_URL":         "off",
	}, "serve")
	keys, err := jwk.Fetch(context.Background(), p.is.PublicURL+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks an internal token as the upstream would: signed by
	// the issuer, unexpired, for orders-api, of the caller, acted by the
	// gateway.
	verify := func(t *testing.T, internal, wantSub string) {
		t.Helper()
		tok, err := jwt.Parse([]byte(internal), jwt.WithKeySet(keys), jwt.WithValidate(true),
			jwt.WithIssuer(p.is.PublicURL), jwt.WithAudience("orders-api"))
		if err != nil {
			t.Fatalf("the upstream cannot verify the internal token: %v", err)
		}
		aud, _ := tok.Audience()
		sub, _ := tok.Subject()
		var act map[string]any
		_ = tok.Get("act", &act)
		if len(aud) != 1 || sub != wantSub || act["sub"] != gw.ID {
			t.Errorf("internal token: aud %v sub %q act %v; want [orders-api], %q, {sub: %s}", aud, sub, act, wantSub, gw.ID)
		}
	}

	userJWT, _ := p.userTokens(t, "alice")
	opaque, opaqueWant := p.Opaque(t, "read")
	const host = "api.example.com"

	before := tokenEndpointCalls(t, p)
	internal := upstreamToken(t, s.check(t, "GET", host, "/orders/1", bearer(userJWT)))
	if internal == userJWT {
		t.Fatal("the upstream gets the caller's token")
	}
	verify(t, internal, "alice")
	if n := tokenEndpointCalls(t, p) - before; n != 2 {
		t.Errorf("token endpoint calls for the first request = %d, want 2 (the gateway's actor token, the exchange)", n)
	}

	t.Run("cached", func(t *testing.T) {
		before := tokenEndpointCalls(t, p)
		if again := upstreamToken(t, s.check(t, "POST", host, "/orders/2", bearer(userJWT))); again != internal {
			t.Error("the second request got another internal token")
		}
		resp := forwardAuth(t, s, "GET", host, "/orders/3", map[string]string{"Authorization": "Bearer " + userJWT})
		if resp.StatusCode != 200 || resp.Header.Get("Authorization") != "Bearer "+internal || resp.Header.Get("X-User-Id") != "alice" {
			t.Errorf("/auth: %d, Authorization is the internal token: %v, x-user-id %q", resp.StatusCode, resp.Header.Get("Authorization") == "Bearer "+internal, resp.Header.Get("X-User-Id"))
		}
		if n := tokenEndpointCalls(t, p) - before; n != 0 {
			t.Errorf("token endpoint calls for cached requests = %d, want 0", n)
		}
	})

	t.Run("plain route keeps the caller's token", func(t *testing.T) {
		set, _ := okSet(t, s.check(t, "GET", host, "/catalog", bearer(userJWT)))
		if _, ok := set["authorization"]; ok {
			t.Errorf("a route without internal_token sets authorization")
		}
		if resp := forwardAuth(t, s, "GET", host, "/catalog", bearer(userJWT)); resp.StatusCode != 200 || resp.Header.Get("Authorization") != "" {
			t.Errorf("/auth on a plain route: %d %q", resp.StatusCode, resp.Header.Get("Authorization"))
		}
	})

	var opaqueInternal string
	t.Run("opaque caller token over /auth", func(t *testing.T) {
		before := tokenEndpointCalls(t, p)
		resp := forwardAuth(t, s, "GET", host, "/orders", map[string]string{"Authorization": "Bearer " + opaque})
		opaqueInternal, _ = strings.CutPrefix(resp.Header.Get("Authorization"), "Bearer ")
		if resp.StatusCode != 200 || opaqueInternal == "" {
			t.Fatalf("/auth: %d %v", resp.StatusCode, resp.Header)
		}
		verify(t, opaqueInternal, opaqueWant.Subject)
		if n := tokenEndpointCalls(t, p) - before; n != 1 {
			t.Errorf("token endpoint calls = %d, want 1 (the actor token is reused)", n)
		}
	})

	t.Run("caller token the issuer refuses to exchange", func(t *testing.T) {
		// A JWT revoked at the issuer still verifies at the sidecar (it
		// is self-contained), but the issuer refuses to exchange it.
		tok, _ := p.JWT(t, "read")
		okSet(t, s.check(t, "GET", host, "/catalog", bearer(tok)))
		revoke(t, p, p.jwt, tok)
		for _, g := range gateways {
			st, www, _ := g.ask(t, s, "GET", host, "/orders", bearer(tok))
			if want := `Bearer error="invalid_token", error_description="The access token cannot be exchanged for the upstream's token."`; st != 401 || www != want {
				t.Errorf("%s: %d %q, want 401 %q", g.name, st, www, want)
			}
		}
	})

	t.Run("issuer stopped", func(t *testing.T) {
		notYetSeen, _ := p.JWT(t, "read")
		p.Stop(t)
		if got := upstreamToken(t, s.check(t, "GET", host, "/orders", bearer(userJWT))); got != internal {
			t.Error("a cached internal token changed with the issuer down")
		}
		if resp := forwardAuth(t, s, "GET", host, "/orders", bearer(opaque)); resp.StatusCode != 200 || resp.Header.Get("Authorization") != "Bearer "+opaqueInternal {
			t.Errorf("/auth, cached, issuer down: %d", resp.StatusCode)
		}
		// A token the sidecar can verify (cached keys) but never
		// exchanged: no decision, Envoy's status_on_error applies.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.authz.Check(ctx, envoyRequest("GET", host, "/orders", bearer(notYetSeen)))
		if status.Code(err) != codes.Unavailable {
			t.Errorf("new token, issuer down: %v, want UNAVAILABLE", err)
		}
		if resp := forwardAuth(t, s, "GET", host, "/orders", bearer(notYetSeen)); resp.StatusCode != 503 {
			t.Errorf("/auth, new token, issuer down: %d, want 503", resp.StatusCode)
		}
		// Routes without internal tokens still work from cached keys.
		okSet(t, s.check(t, "GET", host, "/catalog", bearer(notYetSeen)))
	})
	s.assertNoTokenLogged(t, userJWT, opaque, internal, opaqueInternal)
	if strings.Contains(s.Output.String(), gw.Secret) {
		t.Error("the sidecar's client secret appears in its logs")
	}
}

// revoke revokes tok at the issuer (RFC 7009) as the client it was issued to.
func revoke(t *testing.T, p *realProvider, c testbin.Client, tok string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.is.PublicURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestInternalTokenForAnotherIssuersJWT: a JWT of another issuer the
// sidecar trusts (an external IdP) is exchanged as subject_token_type
// jwt at the gatehouse issuer, which trusts that IdP through a jwt-bearer
// trust relationship: the upstream gets a gatehouse JWT with the IdP's
// subject.
func TestInternalTokenForAnotherIssuersJWT(t *testing.T) {
	p := newRealProvider(t)
	idp := extauthztest.New()
	t.Cleanup(idp.Close)
	idpKey := idp.AddKey(jwa.ES256())
	pub, _ := json.Marshal(idpKey.Public)
	var trust map[string]any
	p.admin(t, http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", map[string]any{
		"issuer": idp.URL, "allow_any_subject": true, "scope": []string{"read"},
		"jwk": json.RawMessage(pub), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, &trust)
	gw := p.is.RegisterClient(t, map[string]any{"grant_types": []string{grantTokenExchange},
		"scope": "read", "audience": []string{"orders-api"}, "token_exchange_impersonation": true})
	config := strings.Replace(internalTokenConfig, "internal_tokens:\n  actor: true\n", "", 1) +
		"issuers:\n  - issuer: " + p.Issuer() + "\n  - issuer: " + idp.URL + "\n"
	s := startSidecarEnv(t, p, config, map[string]string{
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_ID":     gw.ID,
		"GATEHOUSE_SIDECAR_INTERNAL_TOKENS_CLIENT_SECRET": gw.Secret,
	}, "serve")

	// An access token of the IdP, addressed to the gatehouse token
	// endpoint as an RFC 7523 assertion must be.
	tok := idp.Token(idpKey, map[string]any{"sub": "bob@idp", "aud": []string{p.is.PublicURL + "/oauth2/token"},
		"exp": time.Now().Add(5 * time.Minute).Unix(), "client_id": "idp-app", "scope": "read", "scp": nil})
	internal := upstreamToken(t, s.check(t, "GET", "api.example.com", "/orders", bearer(tok)))
	keys, err := jwk.Fetch(context.Background(), p.is.PublicURL+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	it, err := jwt.Parse([]byte(internal), jwt.WithKeySet(keys), jwt.WithValidate(true), jwt.WithIssuer(p.is.PublicURL), jwt.WithAudience("orders-api"))
	if err != nil {
		t.Fatalf("the upstream cannot verify the internal token: %v", err)
	}
	if sub, _ := it.Subject(); sub != "bob@idp" {
		t.Errorf("internal token sub %q, want the IdP's subject", sub)
	}
	// A JWT of the IdP the gatehouse issuer does not accept (its trust
	// names another audience) is refused at the exchange.
	refused := idp.Token(idpKey, map[string]any{"sub": "bob@idp", "exp": time.Now().Add(5 * time.Minute).Unix()})
	denied(t, s.check(t, "GET", "api.example.com", "/orders", bearer(refused)), codes.Unauthenticated, 401, `Bearer error="invalid_token"`)
	okSet(t, s.check(t, "GET", "api.example.com", "/catalog", bearer(refused)))
}
