package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// The targets of the resource indicator tests: the client may name apiA,
// apiB and apiC (its registered audience), never evil.
const (
	apiA = "https://orders.example.com"
	apiB = "https://billing.example.com/v1?tenant=acme"
	apiC = "urn:example:reports"
	evil = "https://evil.example.com"
)

// TestResourceIndicators: RFC 8707 resource indicators and Hydra's audience
// parameter against the real binary, on every backend. A target outside
// the client's audience, a relative one or one with a fragment is
// invalid_target at /oauth2/auth (by redirect), at PAR and at the token
// endpoint (JSON 400); the consent request shows the requested targets and
// the consent app grants a subset (anything else: 400); the code and
// refresh grants narrow, never widen; client_credentials and jwt-bearer
// request targets directly; a token granted none has the client's
// default_access_token_audience, else the global default. The JWT aud and
// introspection's aud agree.
func TestResourceIndicators(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t)}))
			testResourceIndicators(t, is)
		})
	}
}

func testResourceIndicators(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	c := newFlowClient(t, is, map[string]any{
		"audience": []string{apiA, apiB, apiC}, "default_access_token_audience": []string{apiC},
		"access_token_strategy": "jwt", "grant_types": []string{"authorization_code", "refresh_token", "client_credentials"},
	})
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	rp := newRP(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	// parClient posts a form with client_secret_basic; here to the token endpoint.
	token := parClient{t: t, endpoint: is.PublicURL + "/oauth2/token"}
	resource := func(v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("resource", v) }
	audience := func(v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("audience", v) }

	t.Run("authorization endpoint refuses by redirect", func(t *testing.T) {
		for name, opt := range map[string]oauth2.AuthCodeOption{
			"unknown resource": resource(evil), "relative resource": resource("/orders"),
			"resource with fragment": resource(apiA + "#x"), "unknown audience": audience(evil),
		} {
			state := randomState()
			at, _, body := newBrowser(t, is).visit(rp.conf.AuthCodeURL(state, opt))
			if at == nil || at.Path != "/callback" || at.Query().Get("error") != "invalid_target" || at.Query().Get("state") != state {
				t.Errorf("%s: got %v %s, want invalid_target at the callback", name, at, body)
			}
		}
	})

	t.Run("PAR refuses", func(t *testing.T) {
		par := parClient{t: t, endpoint: is.PublicURL + "/oauth2/par"}
		for name, v := range map[string]string{"unknown resource": evil, "relative resource": "orders", "resource with fragment": apiA + "#"} {
			code, out := par.push(url.Values{"response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
				"resource": {apiA, v}}, id, secret)
			if code != http.StatusBadRequest || out["error"] != "invalid_target" {
				t.Errorf("%s: %d %v, want 400 invalid_target", name, code, out)
			}
		}
		// A pushed request keeps its resources: they reach the consent app.
		ru := par.pushOK(url.Values{"response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
			"resource": {apiA, apiB}}, id, secret)
		b := newBrowser(t, is)
		at, _, _ := b.visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {ru}}.Encode())
		_, to := acceptLogin(t, is, at, map[string]any{"subject": "pat"})
		at, _, _ = b.visit(to)
		req, _ := acceptConsent(t, is, at, grantAll(false))
		if got := toStrings(req["requested_access_token_audience"]); !slices.Equal(got, []string{apiA, apiB}) {
			t.Errorf("pushed request: requested_access_token_audience %q", got)
		}
	})

	t.Run("consent shows the targets and grants a subset", func(t *testing.T) {
		b := newBrowser(t, is)
		verifier, _ := pkcePair()
		at, _, _ := b.visit(rp.conf.AuthCodeURL(randomState(), resource(apiA), audience(apiB), oauth2.S256ChallengeOption(verifier)))
		_, to := acceptLogin(t, is, at, map[string]any{"subject": "carol"})
		at, _, _ = b.visit(to)
		ch := at.Query().Get("consent_challenge")
		var req map[string]any
		adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req)
		if got := toStrings(req["requested_access_token_audience"]); !slices.Equal(got, []string{apiA, apiB}) {
			t.Fatalf("requested_access_token_audience %q, want resource and audience", got)
		}
		accept := "/admin/oauth2/auth/requests/consent/accept?consent_challenge=" + ch
		for _, grant := range [][]string{{evil}, {apiA, apiC}} { // apiC: the client's, but not requested
			var out map[string]any
			if code := adminJSON(t, is, http.MethodPut, accept, map[string]any{"grant_scope": []string{"openid"},
				"grant_access_token_audience": grant}, &out); code != http.StatusBadRequest {
				t.Errorf("granting %q: %d %v, want 400", grant, code, out)
			}
		}
		var out map[string]any
		code := adminJSON(t, is, http.MethodPut, accept, map[string]any{"grant_scope": []string{"openid"},
			"grant_access_token_audience": []string{apiA}}, &out)
		mustf(t, code == http.StatusOK, "accept: %d %v", code, out)
		at, _, _ = b.visit(out["redirect_to"].(string))
		tok, err := rp.conf.Exchange(ctx, at.Query().Get("code"), oauth2.VerifierOption(verifier))
		mustf(t, err == nil, "exchange: %v", err)
		wantAud(t, is, "granted subset", tok.AccessToken, apiA)
	})

	t.Run("code and refresh grants narrow, never widen", func(t *testing.T) {
		q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "dave", resource(apiA), audience(apiB))
		code := q.Get("code")
		for _, bad := range []string{apiC, evil, "/orders"} {
			_, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier), resource(bad))
			mustf(t, isOAuthError(err, "invalid_target"), "code exchange for %q: %v, want invalid_target", bad, err)
		}
		tok, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier), resource(apiB))
		mustf(t, err == nil, "exchange: %v", err)
		wantAud(t, is, "code narrowed", tok.AccessToken, apiB)

		refresh := tok.RefreshToken
		for _, step := range []struct {
			resource []string
			want     []string
			err      string
		}{
			{nil, []string{apiA, apiB}, ""}, // everything granted again
			{[]string{apiA}, []string{apiA}, ""},
			{[]string{apiC}, nil, "invalid_target"},
			{[]string{apiA, evil}, nil, "invalid_target"},
			{[]string{"orders"}, nil, "invalid_target"},
			{[]string{apiB, apiA}, []string{apiB, apiA}, ""},
		} {
			status, out := token.push(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": step.resource}, id, secret)
			if step.err != "" {
				mustf(t, status == http.StatusBadRequest && out["error"] == step.err, "refresh for %q: %d %v", step.resource, status, out)
				continue
			}
			mustf(t, status == http.StatusOK, "refresh for %q: %d %v", step.resource, status, out)
			refresh = out["refresh_token"].(string)
			wantAud(t, is, "refresh", out["access_token"].(string), step.want...)
		}
	})

	t.Run("no target: the client's default, else the global one", func(t *testing.T) {
		q, verifier := codeFlow(t, is, newBrowser(t, is), rp, "erin")
		tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		mustf(t, err == nil, "exchange: %v", err)
		wantAud(t, is, "code flow, client default", tok.AccessToken, apiC)

		plain := newRP(t, is, newFlowClient(t, is, map[string]any{"access_token_strategy": "jwt"}), oidc.ScopeOpenID)
		q, verifier = codeFlow(t, is, newBrowser(t, is), plain, "erin")
		tok, err = plain.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		mustf(t, err == nil, "exchange: %v", err)
		wantAud(t, is, "code flow, global default", tok.AccessToken, is.Env["URLS_SELF_ISSUER"])
	})

	t.Run("client_credentials", func(t *testing.T) {
		cc := func(params url.Values) (*oauth2.Token, error) {
			conf := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: is.PublicURL + "/oauth2/token", EndpointParams: params,
				AuthStyle: oauth2.AuthStyleInHeader}
			return conf.Token(ctx)
		}
		for _, tc := range []struct {
			params url.Values
			want   []string
		}{
			{url.Values{}, []string{apiC}},
			{url.Values{"resource": {apiA}}, []string{apiA}},
			{url.Values{"resource": {apiB, apiA}}, []string{apiB, apiA}},
			{url.Values{"resource": {apiA}, "audience": {apiB + " " + apiA}}, []string{apiA, apiB}},
		} {
			tok, err := cc(tc.params)
			mustf(t, err == nil, "%v: %v", tc.params, err)
			wantAud(t, is, "client_credentials", tok.AccessToken, tc.want...)
		}
		for _, bad := range []url.Values{{"resource": {evil}}, {"resource": {apiA, "orders"}}, {"resource": {apiA + "#top"}}, {"audience": {evil}}} {
			_, err := cc(bad)
			mustf(t, isOAuthError(err, "invalid_target"), "%v: %v, want invalid_target", bad, err)
		}
	})

	t.Run("jwt-bearer", func(t *testing.T) {
		key := newSigningKey(t, "idp-resource")
		pub, _ := key.PublicKey()
		jwkJSON, _ := json.Marshal(pub)
		trust := map[string]any{"issuer": "https://idp.resource.example", "subject": "frank", "scope": []string{"profile"},
			"jwk": json.RawMessage(jwkJSON), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
		var out map[string]any
		code := adminJSON(t, is, http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", trust, &out)
		mustf(t, code == http.StatusCreated, "trust: %d %v", code, out)
		bearer := newFlowClient(t, is, map[string]any{"grant_types": []string{"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"scope": "profile", "audience": []string{apiA}, "access_token_strategy": "jwt"})
		assertion := func() string {
			return signJWT(t, key, map[string]any{"iss": "https://idp.resource.example", "sub": "frank", "aud": is.PublicURL + "/oauth2/token",
				"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomState()})
		}
		form := func(res string) url.Values {
			return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion()}, "scope": {"profile"}, "resource": {res}}
		}
		bid, bsecret := bearer["client_id"].(string), bearer["client_secret"].(string)
		status, out := token.push(form(apiA), bid, bsecret)
		mustf(t, status == http.StatusOK, "jwt-bearer: %d %v", status, out)
		wantAud(t, is, "jwt-bearer", out["access_token"].(string), apiA)
		for _, bad := range []string{apiB, "orders"} {
			status, out = token.push(form(bad), bid, bsecret)
			mustf(t, status == http.StatusBadRequest && out["error"] == "invalid_target", "jwt-bearer for %q: %d %v", bad, status, out)
		}
	})

	t.Run("client default must be an allowed target", func(t *testing.T) {
		var out map[string]any
		code := adminJSON(t, is, http.MethodPost, "/admin/clients", map[string]any{"audience": []string{apiA},
			"default_access_token_audience": []string{evil}}, &out)
		mustf(t, code == http.StatusBadRequest && out["error"] == "invalid_client_metadata", "default outside the audience: %d %v", code, out)
		code = adminJSON(t, is, http.MethodPost, "/admin/clients", map[string]any{"audience": []string{apiA},
			"default_access_token_audience": []string{apiA, is.Env["URLS_SELF_ISSUER"]}}, &out)
		mustf(t, code == http.StatusCreated, "default in the audience and the global default: %d %v", code, out)
		var stored map[string]any
		adminJSON(t, is, http.MethodGet, "/admin/clients/"+url.PathEscape(out["client_id"].(string)), nil, &stored)
		mustf(t, slices.Equal(toStrings(stored["default_access_token_audience"]), []string{apiA, is.Env["URLS_SELF_ISSUER"]}), "stored %v", stored)

		// The CLI sets it too (gatehouse create client --default-access-token-audience).
		cli := createClient(t, is, "--access-token-strategy", "jwt", "--default-access-token-audience", "https://api.example.com")
		tok, err := (&clientcredentials.Config{ClientID: cli.ID, ClientSecret: cli.Secret, TokenURL: is.PublicURL + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader}).Token(context.Background())
		mustf(t, err == nil, "token: %v", err)
		wantAud(t, is, "client created by the CLI", tok.AccessToken, "https://api.example.com")
	})
}

// wantAud checks a JWT access token's aud and introspection's aud.
func wantAud(t *testing.T, is *testbin.Issuer, what, token string, want ...string) {
	t.Helper()
	if got := jwtAudience(t, token); !slices.Equal(got, want) {
		t.Errorf("%s: JWT aud %q, want %q", what, got, want)
	}
	in := introspectToken(t, is, token)
	if got := toStrings(in["aud"]); in["active"] != true || !slices.Equal(got, want) {
		t.Errorf("%s: introspection %v, want aud %q", what, in, want)
	}
}
