package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// fapiRP is a FAPI 2.0 client as a third-party library sees it:
// golang.org/x/oauth2 for the authorization URL and the code exchange,
// its HTTP client (with a transport adding DPoP proofs written with jwx)
// for PAR, and private_key_jwt assertions signed with jwx passed as the
// library's extra parameters.
type fapiRP struct {
	t    *testing.T
	is   *testbin.Issuer
	id   string
	key  jwk.Key // the client's private_key_jwt key
	conf *oauth2.Config
	par  string // pushed_authorization_request_endpoint
	oidc *oidc.IDTokenVerifier
}

// fapiClientFields are the metadata of a FAPI 2.0 client with the public
// part of key as its jwks; fields override them.
func fapiClientFields(t *testing.T, key jwk.Key, fields map[string]any) map[string]any {
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	c := map[string]any{
		"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(jwks), "fapi_profile": "2.0",
		"redirect_uris": []string{callback}, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "openid offline_access profile",
	}
	for k, v := range fields {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func newFAPIRP(t *testing.T, is *testbin.Issuer, fields map[string]any) *fapiRP {
	t.Helper()
	key := newSigningKey(t, "fapi-rp")
	c := is.RegisterClient(t, fapiClientFields(t, key, fields))
	p, err := oidc.NewProvider(context.Background(), is.PublicURL)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		PAR string `json:"pushed_authorization_request_endpoint"`
	}
	_ = p.Claims(&meta)
	ep := p.Endpoint()
	// private_key_jwt: the library sends client_id in the body and the
	// assertion as extra parameters (no client secret).
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &fapiRP{t: t, is: is, id: c.ID, key: key, par: meta.PAR,
		conf: &oauth2.Config{ClientID: c.ID, Endpoint: ep, RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}},
		oidc: p.Verifier(&oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{"PS256", "ES256", "EdDSA"}})}
}

// assertion is a private_key_jwt client assertion (RFC 7523 §3) for aud;
// edit may change its claims.
func (rp *fapiRP) assertion(aud string, edit func(map[string]any)) string {
	now := time.Now()
	claims := map[string]any{"iss": rp.id, "sub": rp.id, "aud": aud, "jti": randomState(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	if edit != nil {
		edit(claims)
	}
	return signJWT(rp.t, rp.key, claims)
}

// assertionOpts are the assertion as x/oauth2 AuthCodeOptions.
func (rp *fapiRP) assertionOpts() []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", rp.assertion(rp.is.PublicURL+"/oauth2/token", nil)),
	}
}

// push posts the authorization request x/oauth2 builds (plus extra) to
// the PAR endpoint with the library's HTTP client from ctx, which adds a
// DPoP proof when it carries a key.
func (rp *fapiRP) push(ctx context.Context, extra url.Values, opts ...oauth2.AuthCodeOption) (int, map[string]any) {
	rp.t.Helper()
	u, _ := url.Parse(rp.conf.AuthCodeURL(randomState(), opts...))
	form := u.Query()
	for k, vs := range extra {
		form[k] = vs
	}
	if form.Get("client_assertion") == "" {
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", rp.assertion(rp.par, nil))
	}
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.PostForm(rp.par, form)
	if err != nil {
		rp.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// authorize pushes a request with PKCE S256 (through ctx's client), sends
// the browser with client_id and request_uri, plays login and consent and
// returns the code with its verifier.
func (rp *fapiRP) authorize(ctx context.Context, extra url.Values) (code, verifier string) {
	rp.t.Helper()
	verifier, _ = pkcePair()
	status, out := rp.push(ctx, extra, oauth2.S256ChallengeOption(verifier), oidc.Nonce(randomState()))
	ru, _ := out["request_uri"].(string)
	mustf(rp.t, status == http.StatusCreated && strings.HasPrefix(ru, requestURIPrefix), "PAR: %d %v", status, out)
	b := newBrowser(rp.t, rp.is)
	at, _, _ := b.visit(rp.conf.Endpoint.AuthURL + "?" + url.Values{"client_id": {rp.id}, "request_uri": {ru}}.Encode())
	_, to := acceptLogin(rp.t, rp.is, at, map[string]any{"subject": "alice"})
	at, _, _ = b.visit(to)
	_, to = acceptConsent(rp.t, rp.is, at, grantAll(false))
	at, _, body := b.visit(to)
	mustf(rp.t, at != nil && at.Path == "/callback" && at.Query().Get("code") != "", "callback: %v %s", at, body)
	// RFC 9207: the response names the issuer.
	mustf(rp.t, at.Query().Get("iss") == rp.is.Env["URLS_SELF_ISSUER"], "iss %q", at.Query().Get("iss"))
	return at.Query().Get("code"), verifier
}

// refresh posts a refresh_token grant with a proof of key and a client
// assertion (x/oauth2's refresh sends no extra parameters).
func (rp *fapiRP) refresh(t *testing.T, key *dpopKey, rt string) httpAnswer {
	tokenURL := rp.is.PublicURL + "/oauth2/token"
	return postDPoP(t, tokenURL, testbin.Client{}, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {rp.id}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {rp.assertion(tokenURL, nil)}}, key.proof(t, "POST", tokenURL, nil))
}

func (rp *fapiRP) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	return rp.conf.Exchange(ctx, code, append(rp.assertionOpts(), oauth2.VerifierOption(verifier))...)
}

func retrieveErrCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// fapiEnv is an issuer under the FAPI 2.0 profile for every client.
func fapiEnv(extra map[string]string) map[string]string {
	env := flowEnv(map[string]string{"OAUTH2_FAPI_PROFILE": "2.0", "KEYS_ALGORITHM": "ES256"})
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestFAPIClientEndToEnd: a FAPI 2.0 client on golang.org/x/oauth2 (jwx
// for its DPoP proofs and private_key_jwt assertions) drives PAR + PKCE +
// DPoP + private_key_jwt through the real binary under the global profile,
// on every backend: the code is bound to the key of the proof sent to the
// PAR endpoint (RFC 9449 §10.1), the tokens are DPoP-bound and signed with
// ES256.
func TestFAPIClientEndToEnd(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, fapiEnv(map[string]string{"DSN": db.dsn(t), "STRATEGIES_ACCESS_TOKEN": "jwt"}))
			rp := newFAPIRP(t, is, nil)
			key, other := newDPoPKey(t), newDPoPKey(t)
			code, verifier := rp.authorize(dpopContext(t, key), nil)

			_, err := rp.exchange(dpopContext(t, other), code, verifier)
			mustf(t, retrieveErrCode(err) == "invalid_grant", "code exchanged with another key than the PAR proof's: %v", err)
			tok, err := rp.exchange(dpopContext(t, key), code, verifier)
			mustf(t, err == nil && tok.TokenType == "DPoP", "exchange: %v %+v", err, tok)
			raw, _ := tok.Extra("id_token").(string)
			_, err = rp.oidc.Verify(context.Background(), raw)
			mustf(t, err == nil, "ID token: %v", err)
			mustf(t, jwtHeader(t, raw)["alg"] == "ES256" && jwtHeader(t, tok.AccessToken)["alg"] == "ES256", "signing algs")
			cnf, _ := jwtClaims(t, tok.AccessToken)["cnf"].(map[string]any)
			mustf(t, cnf["jkt"] == key.jkt, "access token cnf: %v", cnf)
			// A confidential FAPI client's refresh token is not rotated:
			// each refresh answers it again, and it keeps working.
			for i := range 2 {
				a := rp.refresh(t, key, tok.RefreshToken)
				mustf(t, a.status == 200 && a.json["refresh_token"] == tok.RefreshToken && a.json["token_type"] == "DPoP",
					"refresh %d: %d %v", i, a.status, a.json)
			}

			// Single use (and a reused code revokes what it gave).
			_, err = rp.exchange(dpopContext(t, key), code, verifier)
			mustf(t, retrieveErrCode(err) == "invalid_grant", "code used twice: %v", err)
		})
	}
}

func jwtHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	var out map[string]any
	mustf(t, err == nil && json.Unmarshal(raw, &out) == nil, "not a JWT: %.40s", token)
	return out
}

// TestFAPIRefusals: each rule of the profile refuses what breaks it, with
// the protocol's error, at the point it applies (docs/fapi.md).
func TestFAPIRefusals(t *testing.T) {
	is := testbin.StartIssuer(t, fapiEnv(map[string]string{"DSN": sqliteDSN(t)}))
	key := newSigningKey(t, "refused")
	post := func(fields map[string]any) (int, map[string]any) {
		var out map[string]any
		return adminJSON(t, is, http.MethodPost, "/admin/clients", fapiClientFields(t, key, fields), &out), out
	}
	// Registration refuses metadata a FAPI client cannot have.
	for _, tc := range []struct {
		name   string
		fields map[string]any
		err    string
	}{
		{"client_secret_basic", map[string]any{"token_endpoint_auth_method": "client_secret_basic", "jwks": nil}, "invalid_client_metadata"},
		{"public client", map[string]any{"token_endpoint_auth_method": "none", "jwks": nil}, "invalid_client_metadata"},
		{"response_type code id_token", map[string]any{"response_types": []string{"code id_token"}}, "invalid_client_metadata"},
		{"implicit grant", map[string]any{"grant_types": []string{"authorization_code", "implicit"}}, "invalid_client_metadata"},
		{"RS256 assertions", map[string]any{"token_endpoint_auth_signing_alg": "RS256"}, "invalid_client_metadata"},
		{"http redirect off loopback", map[string]any{"redirect_uris": []string{"http://rp.example.com/cb"}}, "invalid_redirect_uri"},
		{"private-use scheme redirect", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}, "invalid_redirect_uri"},
		{"unknown profile", map[string]any{"fapi_profile": "1.0"}, "invalid_client_metadata"},
	} {
		code, out := post(tc.fields)
		mustf(t, code == http.StatusBadRequest && out["error"] == tc.err, "%s: %d %v", tc.name, code, out)
	}
	code, _ := post(map[string]any{"redirect_uris": []string{"https://rp.example.com/cb", "http://127.0.0.1:8080/cb"}})
	mustf(t, code == http.StatusCreated, "https and loopback redirect URIs: %d", code)

	d := discoveryDoc(t, is)
	mustf(t, d["require_pushed_authorization_requests"] == true, "discovery under the global profile: %v", d["require_pushed_authorization_requests"])

	rp := newFAPIRP(t, is, nil)
	key1 := newDPoPKey(t)
	ctx := dpopContext(t, key1)
	verifier, _ := pkcePair()

	// PAR is required: the unpushed request is refused, at the callback.
	b := newBrowser(t, is)
	at, _, _ := b.visit(rp.conf.AuthCodeURL(randomState(), oauth2.S256ChallengeOption(verifier)))
	mustf(t, at != nil && at.Path == "/callback" && at.Query().Get("error") == "invalid_request" && at.Query().Get("iss") != "",
		"unpushed request: %v", at)
	// response_type code only; PKCE S256 required.
	for _, tc := range []struct {
		name  string
		extra url.Values
		opts  []oauth2.AuthCodeOption
		err   string
	}{
		{"response_type code id_token", url.Values{"response_type": {"code id_token"}}, []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, "unsupported_response_type"},
		{"no PKCE", nil, nil, "invalid_request"},
		{"PKCE plain", url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}, nil, "invalid_request"},
	} {
		code, out := rp.push(ctx, tc.extra, tc.opts...)
		mustf(t, code == http.StatusBadRequest && out["error"] == tc.err, "%s: %d %v", tc.name, code, out)
	}

	// Sender-constrained tokens: a code exchange without a DPoP proof.
	code1, v1 := rp.authorize(context.Background(), nil)
	_, err := rp.exchange(dpopContext(t, nil), code1, v1)
	mustf(t, retrieveErrCode(err) == "invalid_dpop_proof", "exchange without DPoP: %v", err)

	// A client assertion 20 s ahead of the server's clock: accepted by the
	// default 30 s skew, refused for a FAPI client (at most 10 s).
	code2, v2 := rp.authorize(ctx, nil)
	_, err = rp.conf.Exchange(ctx, code2, oauth2.VerifierOption(v2),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", rp.assertion(is.PublicURL+"/oauth2/token", func(c map[string]any) {
			c["iat"] = time.Now().Add(20 * time.Second).Unix()
		})))
	mustf(t, retrieveErrCode(err) == "invalid_client", "assertion from the future: %v", err)

	// Codes live at most 60 s (TTL_AUTH_CODE is 10 minutes here).
	db, err := sqlstore.Open(context.Background(), is.Env["DSN"], sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Timestamps are stored in microseconds.
	var lifespan int64
	err = db.DB().QueryRow("SELECT MAX(expires_at - issued_at) FROM tokens WHERE kind = 'authorization_code' AND client_id = ?", rp.id).Scan(&lifespan)
	mustf(t, err == nil && lifespan == int64(time.Minute/time.Microsecond), "FAPI code lifespan %dµs: %v", lifespan, err)
}

// TestFAPIPerClient: without the global setting, fapi_profile "2.0" puts
// one client under the profile and leaves the others alone; the 10 s
// forward clock skew applies to its DPoP proofs whatever
// oauth2.dpop.clock_skew allows.
func TestFAPIPerClient(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"KEYS_ALGORITHM": "PS256", "OAUTH2_DPOP_CLOCK_SKEW": "1m",
		"OAUTH2_FAPI_REFRESH_TOKEN_ROTATION": "true"}))
	rp := newFAPIRP(t, is, nil)
	key := newDPoPKey(t)
	ahead := func(_, c map[string]any) { c["iat"] = time.Now().Add(30 * time.Second).Unix() }
	tokenURL := is.PublicURL + "/oauth2/token"

	// The FAPI client: PAR required, and a proof 30 s ahead is refused.
	verifier, _ := pkcePair()
	at, _, _ := newBrowser(t, is).visit(rp.conf.AuthCodeURL(randomState(), oauth2.S256ChallengeOption(verifier)))
	mustf(t, at != nil && at.Query().Get("error") == "invalid_request", "unpushed request of the FAPI client: %v", at)
	code, v := rp.authorize(context.Background(), nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}, "redirect_uri": {callback},
		"client_id": {rp.id}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {rp.assertion(tokenURL, nil)}}
	a := postDPoP(t, tokenURL, testbin.Client{}, form, key.proof(t, "POST", tokenURL, ahead))
	mustf(t, a.status == 400 && a.json["error"] == "invalid_dpop_proof", "FAPI proof 30 s ahead: %d %v", a.status, a.json)
	form.Set("client_assertion", rp.assertion(tokenURL, nil))
	a = postDPoP(t, tokenURL, testbin.Client{}, form, key.proof(t, "POST", tokenURL, nil))
	mustf(t, a.status == 200 && a.json["token_type"] == "DPoP", "FAPI exchange: %d %v", a.status, a.json)
	idt, _ := a.json["id_token"].(string)
	mustf(t, jwtHeader(t, idt)["alg"] == "PS256", "ID token alg: %v", jwtHeader(t, idt))
	// oauth2.fapi.refresh_token_rotation: the refresh token is rotated.
	rt, _ := a.json["refresh_token"].(string)
	a = rp.refresh(t, key, rt)
	mustf(t, a.status == 200 && a.json["refresh_token"] != rt && a.json["refresh_token"] != nil, "rotated refresh: %d %v", a.status, a.json)
	a = rp.refresh(t, key, rt)
	mustf(t, a.status == 400 && a.json["error"] == "invalid_grant", "rotated refresh token reused: %d %v", a.status, a.json)

	// Another client is not under the profile: unpushed, bearer, a proof
	// 30 s ahead within oauth2.dpop.clock_skew.
	plain := testbin.Client{}
	c := newFlowClient(t, is, map[string]any{"grant_types": []string{"client_credentials"}, "response_types": []string{}})
	plain.ID, plain.Secret = c["client_id"].(string), c["client_secret"].(string)
	a = postDPoP(t, tokenURL, plain, url.Values{"grant_type": {"client_credentials"}})
	mustf(t, a.status == 200 && strings.EqualFold(a.json["token_type"].(string), "bearer"), "non-FAPI bearer: %d %v", a.status, a.json)
	a = postDPoP(t, tokenURL, plain, url.Values{"grant_type": {"client_credentials"}}, key.proof(t, "POST", tokenURL, ahead))
	mustf(t, a.status == 200, "non-FAPI proof 30 s ahead: %d %v", a.status, a.json)
}

// TestFAPIExistingClients: clients registered before the global profile
// was turned on are held to it at the point each rule applies.
func TestFAPIExistingClients(t *testing.T) {
	env := flowEnv(map[string]string{"DSN": sqliteDSN(t), "KEYS_ALGORITHM": "ES256"})
	is := testbin.StartIssuer(t, env)
	c := newFlowClient(t, is, map[string]any{"grant_types": []string{"client_credentials", "authorization_code"}})
	secretClient := testbin.Client{ID: c["client_id"].(string), Secret: c["client_secret"].(string)}
	key := newSigningKey(t, "existing")
	httpRP := is.RegisterClient(t, fapiClientFields(t, key, map[string]any{"fapi_profile": nil, "redirect_uris": []string{"com.example.app:/cb"}}))
	is.Stop(10 * time.Second)

	env["OAUTH2_FAPI_PROFILE"] = "2.0"
	is = testbin.StartIssuer(t, env)
	tokenURL := is.PublicURL + "/oauth2/token"
	dk := newDPoPKey(t)
	a := postDPoP(t, tokenURL, secretClient, url.Values{"grant_type": {"client_credentials"}}, dk.proof(t, "POST", tokenURL, nil))
	mustf(t, a.status == 401 && a.json["error"] == "invalid_client", "client_secret_basic under FAPI: %d %v", a.status, a.json)

	// A private-use scheme redirect URI (native app) is refused at PAR.
	rp := &fapiRP{t: t, is: is, id: httpRP.ID, key: key, par: is.PublicURL + "/oauth2/par",
		conf: &oauth2.Config{ClientID: httpRP.ID, RedirectURL: "com.example.app:/cb", Endpoint: oauth2.Endpoint{AuthURL: is.PublicURL + "/oauth2/auth"}}}
	verifier, _ := pkcePair()
	status, out := rp.push(context.Background(), nil, oauth2.S256ChallengeOption(verifier))
	mustf(t, status == 400 && out["error"] == "invalid_request", "private-use redirect URI under FAPI: %d %v", status, out)
}

// TestFAPIStartupRefusals: under the global profile the server refuses
// to start with settings or keys the profile forbids.
func TestFAPIStartupRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"RS256 keys", map[string]string{"KEYS_ALGORITHM": "RS256"}, "KEYS_ALGORITHM"},
		{"DPoP clock skew over 10s", map[string]string{"KEYS_ALGORITHM": "ES256", "OAUTH2_DPOP_CLOCK_SKEW": "30s"}, "OAUTH2_DPOP_CLOCK_SKEW"},
		{"unknown profile", map[string]string{"OAUTH2_FAPI_PROFILE": "1.0"}, "OAUTH2_FAPI_PROFILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := baseEnv(t)
			env["OAUTH2_FAPI_PROFILE"] = "2.0"
			for k, v := range tc.env {
				env[k] = v
			}
			out, err := runToExit(t, env, "serve", "all")
			mustf(t, err != nil && strings.Contains(out, tc.want), "started, or did not name %s:\n%s", tc.want, out)
		})
	}
	// Key sets generated with RS256 earlier: keys.algorithm only governs
	// new keys, so the existing sets are checked.
	env := flowEnv(map[string]string{"DSN": sqliteDSN(t)})
	is := testbin.StartIssuer(t, env)
	is.Stop(10 * time.Second)
	env = baseEnv(t)
	env["DSN"], env["OAUTH2_FAPI_PROFILE"], env["KEYS_ALGORITHM"] = is.Env["DSN"], "2.0", "ES256"
	out, err := runToExit(t, env, "serve", "all")
	mustf(t, err != nil && strings.Contains(out, "hydra.openid.id-token signs with RS256"), "started with RS256 key sets:\n%s", out)
}

// TestPARDPoP: a DPoP proof sent to the PAR endpoint binds the code to its
// key like dpop_jkt (RFC 9449 §10.1), outside the FAPI profile too; a
// dpop_jkt that does not match the proof, a bad or replayed proof are
// refused with invalid_dpop_proof.
func TestPARDPoP(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	c := newFlowClient(t, is, nil)
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	parURL := is.PublicURL + "/oauth2/par"
	key, other := newDPoPKey(t), newDPoPKey(t)
	_, challenge := pkcePair()
	request := func(extra url.Values) url.Values {
		f := url.Values{"response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		for k, vs := range extra {
			f[k] = vs
		}
		return f
	}
	cl := testbin.Client{ID: id, Secret: secret}
	for _, tc := range []struct {
		name  string
		extra url.Values
		proof string
	}{
		{"dpop_jkt of another key", url.Values{"dpop_jkt": {other.jkt}}, key.proof(t, "POST", parURL, nil)},
		{"htu of the token endpoint", nil, key.proof(t, "POST", is.PublicURL+"/oauth2/token", nil)},
		{"htm GET", nil, key.proof(t, "GET", parURL, nil)},
		{"not a JWT", nil, "not-a-proof"},
	} {
		a := postDPoP(t, parURL, cl, request(tc.extra), tc.proof)
		mustf(t, a.status == 400 && a.json["error"] == "invalid_dpop_proof", "%s: %d %v", tc.name, a.status, a.json)
	}
	proof := key.proof(t, "POST", parURL, nil)
	a := postDPoP(t, parURL, cl, request(url.Values{"dpop_jkt": {key.jkt}}), proof)
	mustf(t, a.status == 201, "matching dpop_jkt and proof: %d %v", a.status, a.json)
	a = postDPoP(t, parURL, cl, request(nil), proof)
	mustf(t, a.status == 400 && a.json["error"] == "invalid_dpop_proof", "replayed proof: %d %v", a.status, a.json)
}
