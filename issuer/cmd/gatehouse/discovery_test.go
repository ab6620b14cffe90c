package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestDiscoveryDocument: the binary's discovery document, byte for byte
// (members, their order, the order of every list), with the defaults and
// with every configuration switch that changes it flipped. The public URL
// is written {public} in testdata.
func TestDiscoveryDocument(t *testing.T) {
	for _, tc := range []struct {
		golden string
		env    map[string]string
	}{
		{"discovery-defaults.json", nil},
		{"discovery-switches.json", map[string]string{
			"OIDC_DYNAMIC_CLIENT_REGISTRATION_ENABLED":      "true",
			"URLS_INTROSPECTION":                            "http://127.0.0.1:9/introspect",
			"OAUTH2_PKCE_ALLOW_PLAIN":                       "false",
			"OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES":      "public,pairwise",
			"OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT":        "some-pairwise-salt",
			"KEYS_ALGORITHM":                                "ES256",
			"OAUTH2_PUSHED_AUTHORIZATION_REQUESTS_REQUIRED": "true",
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			is := testbin.StartIssuer(t, flowEnv(tc.env))
			for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
				code, _, raw := get(t, is.PublicURL+p)
				got := []byte(strings.ReplaceAll(string(raw), is.PublicURL, "{public}"))
				if code != 200 || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
					t.Fatalf("%s: %d\n got %s\nwant %s", p, code, got, want)
				}
			}
		})
	}
}

// TestDiscoveryAdvertisesWhatWorks: every grant type, response type,
// response mode, token endpoint authentication method and PKCE method the
// binary's discovery document advertises works, each through the
// endpoints the document names, and the other advertised endpoints
// answer. A value this test has no exercise for fails it, so nothing is
// advertised untested.
func TestDiscoveryAdvertisesWhatWorks(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"OIDC_DYNAMIC_CLIENT_REGISTRATION_ENABLED": "true"}))
	_, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration")
	var d struct {
		Authorization  string   `json:"authorization_endpoint"`
		Token          string   `json:"token_endpoint"`
		Userinfo       string   `json:"userinfo_endpoint"`
		Revocation     string   `json:"revocation_endpoint"`
		EndSession     string   `json:"end_session_endpoint"`
		Device         string   `json:"device_authorization_endpoint"`
		Registration   string   `json:"registration_endpoint"`
		JWKS           string   `json:"jwks_uri"`
		GrantTypes     []string `json:"grant_types_supported"`
		ResponseTypes  []string `json:"response_types_supported"`
		ResponseModes  []string `json:"response_modes_supported"`
		AuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
		PKCEMethods    []string `json:"code_challenge_methods_supported"`
		IDTokenAlgs    []string `json:"id_token_signing_alg_values_supported"`
		RequestObjects bool     `json:"request_parameter_supported"`
		Issuer         string   `json:"issuer"`
		PAR            string   `json:"pushed_authorization_request_endpoint"`
		ISSParameter   bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	ex := &exerciser{t: t, is: is, b: newBrowser(t, is), token: d.Token, authorization: d.Authorization}

	// One client may use everything the authorization endpoint offers.
	all := newFlowClient(t, is, map[string]any{"grant_types": d.GrantTypes, "response_types": d.ResponseTypes,
		"scope": "openid offline_access profile"})
	codes := map[string]url.Values{} // a code flow's callback per PKCE method
	for _, m := range d.PKCEMethods {
		verifier, challenge := pkcePair()
		switch m {
		case "S256":
		case "plain":
			challenge = verifier
		default:
			t.Fatalf("no exercise for the advertised code_challenge_method %q", m)
		}
		q := ex.authorize(all, url.Values{"response_type": {"code"}, "code_challenge": {challenge}, "code_challenge_method": {m}})
		mustf(t, q.Get("code") != "", "%s: %v", m, q)
		q.Set("code_verifier", verifier)
		codes[m] = q
	}
	for _, rt := range d.ResponseTypes {
		q := ex.authorize(all, url.Values{"response_type": {rt}})
		for _, part := range strings.Fields(rt) {
			param := map[string]string{"code": "code", "token": "access_token", "id_token": "id_token"}[part]
			mustf(t, param != "", "no exercise for the advertised response type %q", rt)
			mustf(t, q.Get(param) != "", "response_type %s: no %s in %v", rt, param, q)
		}
	}
	for _, mode := range d.ResponseModes {
		params := url.Values{"response_type": {"code"}, "response_mode": {mode}}
		switch mode {
		case "query", "fragment":
			at, body := ex.authorizeTo(all, params)
			got := at.RawQuery
			if mode == "fragment" {
				got = at.EscapedFragment()
			}
			mustf(t, at != nil && strings.Contains(got, "code="), "response_mode %s: %v %.300s", mode, at, body)
			q, _ := url.ParseQuery(got)
			mustf(t, !d.ISSParameter || q.Get("iss") == d.Issuer, "response_mode %s: iss in %v", mode, q)
		case "form_post":
			at, body := ex.authorizeTo(all, params)
			mustf(t, at == nil && strings.Contains(body, `action="`+callback+`"`) && strings.Contains(body, `name="code"`),
				"form_post: %v %.300s", at, body)
			mustf(t, !d.ISSParameter || formPostParams(t, body).Get("iss") == d.Issuer, "form_post: iss in %.300s", body)
		default:
			t.Fatalf("no exercise for the advertised response mode %q", mode)
		}
	}

	secret := all["client_secret"].(string)
	basic := func(form url.Values) map[string]any { return ex.tokenRequest(form, all["client_id"].(string), secret) }
	var refresh, access string
	for _, g := range d.GrantTypes {
		switch g {
		case "authorization_code":
			for m, q := range codes {
				tok := basic(url.Values{"grant_type": {g}, "code": {q.Get("code")}, "redirect_uri": {callback},
					"code_verifier": {q.Get("code_verifier")}})
				mustf(t, tok["access_token"] != nil && tok["id_token"] != nil && tok["refresh_token"] != nil, "%s with %s: %v", g, m, tok)
				refresh, access = tok["refresh_token"].(string), tok["access_token"].(string)
			}
		case "refresh_token":
			continue // after the loop, with a refresh token from authorization_code
		case "implicit":
			q := ex.authorize(all, url.Values{"response_type": {"token"}, "scope": {"profile"}})
			mustf(t, introspectToken(t, is, q.Get("access_token"))["active"] == true, "implicit: %v", q)
		case "client_credentials":
			tok := basic(url.Values{"grant_type": {g}, "scope": {"profile"}})
			mustf(t, tok["access_token"] != nil, "%s: %v", g, tok)
		case "urn:ietf:params:oauth:grant-type:jwt-bearer":
			key := newSigningKey(t, "idp-1")
			pub, _ := key.PublicKey()
			jwkJSON, _ := json.Marshal(pub)
			trust := map[string]any{"issuer": "https://idp.example", "subject": "alice", "scope": []string{"profile"},
				"jwk": json.RawMessage(jwkJSON), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
			var out map[string]any
			code := adminJSON(t, is, http.MethodPost, "/admin/trust/grants/jwt-bearer/issuers", trust, &out)
			mustf(t, code == http.StatusCreated, "trust: %d %v", code, out)
			a := signJWT(t, key, map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": d.Token,
				"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomState()})
			tok := basic(url.Values{"grant_type": {g}, "assertion": {a}, "scope": {"profile"}})
			mustf(t, tok["access_token"] != nil, "%s: %v", g, tok)
		case "urn:ietf:params:oauth:grant-type:device_code":
			status, da := postFormAs(t, d.Device, url.Values{"scope": {"openid"}}, all["client_id"].(string), secret)
			mustf(t, status == http.StatusOK, "device_authorization_endpoint: %d %v", status, da)
			at, _, _ := ex.b.visit(da["verification_uri_complete"].(string))
			mustf(t, at != nil && at.Path == "/oauth2/fallbacks/device", "verification_uri_complete: %v", at)
			status, out := enterUserCode(t, is, at.Query().Get("device_challenge"), at.Query().Get("user_code"))
			mustf(t, status == http.StatusOK, "device accept: %d %v", status, out)
			at, _, _ = ex.b.visit(out["redirect_to"].(string))
			_, to := acceptLogin(t, is, at, map[string]any{"subject": "alice", "remember": true})
			at, _, _ = ex.b.visit(to)
			_, to = acceptConsent(t, is, at, grantAll(true))
			at, _, _ = ex.b.visit(to)
			mustf(t, at != nil && at.Path == "/oauth2/fallbacks/device/done", "after the device consent: %v", at)
			tok := basic(url.Values{"grant_type": {g}, "device_code": {da["device_code"].(string)}})
			mustf(t, tok["access_token"] != nil && tok["id_token"] != nil, "%s: %v", g, tok)
		case "urn:ietf:params:oauth:grant-type:token-exchange":
			continue // after the loop, with an access token from authorization_code
		default:
			t.Fatalf("no exercise for the advertised grant type %q", g)
		}
	}
	if slices.Contains(d.GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange") {
		tok := basic(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {access},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
			"actor_token":        {access}, "actor_token_type": {"urn:ietf:params:oauth:token-type:access_token"}})
		mustf(t, tok["access_token"] != nil && tok["issued_token_type"] != nil, "token-exchange: %v", tok)
	}
	if slices.Contains(d.GrantTypes, "refresh_token") {
		tok := basic(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		mustf(t, tok["access_token"] != nil && tok["refresh_token"] != nil, "refresh_token: %v", tok)
		access = tok["access_token"].(string) // the refresh revoked the first one
	}

	for _, m := range d.AuthMethods {
		switch m {
		case "client_secret_basic":
			tok := basic(url.Values{"grant_type": {"client_credentials"}})
			mustf(t, tok["access_token"] != nil, "%s: %v", m, tok)
		case "client_secret_post":
			c := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": m, "grant_types": []string{"client_credentials"}})
			tok := ex.tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)},
				"client_secret": {c["client_secret"].(string)}}, "", "")
			mustf(t, tok["access_token"] != nil, "%s: %v", m, tok)
		case "private_key_jwt":
			key := newSigningKey(t, "rp-1")
			pub, _ := key.PublicKey()
			set := jwk.NewSet()
			_ = set.AddKey(pub)
			jwks, _ := json.Marshal(set)
			c := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": m, "client_secret": nil,
				"jwks": json.RawMessage(jwks), "grant_types": []string{"client_credentials"}})
			id := c["client_id"].(string)
			a := signJWT(t, key, map[string]any{"iss": id, "sub": id, "aud": d.Token,
				"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomState()})
			tok := ex.tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_assertion": {a},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}, "", "")
			mustf(t, tok["access_token"] != nil, "%s: %v", m, tok)
		case "none":
			c := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": m, "client_secret": nil})
			verifier, challenge := pkcePair()
			q := ex.authorize(c, url.Values{"response_type": {"code"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
			tok := ex.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {callback},
				"code_verifier": {verifier}, "client_id": {c["client_id"].(string)}}, "", "")
			mustf(t, tok["access_token"] != nil, "%s: %v", m, tok)
		default:
			t.Fatalf("no exercise for the advertised token endpoint auth method %q", m)
		}
	}

	if d.RequestObjects {
		obj := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"response_type":"code","state":"from-object"}`)) + "."
		q := ex.authorize(all, url.Values{"response_type": {"code"}, "request": {obj}})
		mustf(t, q.Get("state") == "from-object" && q.Get("code") != "", "request object: %v", q)
	}

	if d.PAR != "" {
		_, challenge := pkcePair()
		ru := parClient{t, d.PAR}.pushOK(url.Values{"response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
			"state": {"pushed"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}, all["client_id"].(string),
			all["client_secret"].(string))
		at, _, body := ex.b.visit(d.Authorization + "?" + url.Values{"client_id": {all["client_id"].(string)}, "request_uri": {ru}}.Encode())
		at, body = ex.playApps(at, body)
		q := callbackParams(t, at, body)
		mustf(t, q.Get("state") == "pushed" && q.Get("code") != "", "pushed_authorization_request_endpoint: %v", q)
	}

	// The other endpoints answer where the document says.
	code, _, body := bearerGet(t, d.Userinfo, access)
	mustf(t, code == http.StatusOK, "userinfo_endpoint: %d %s", code, body)
	req, _ := http.NewRequest(http.MethodPost, d.Revocation, strings.NewReader(url.Values{"token": {access}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(all["client_id"].(string), secret)
	resp, err := http.DefaultClient.Do(req)
	mustf(t, err == nil && resp.StatusCode == http.StatusOK && introspectToken(t, is, access)["active"] == false,
		"revocation_endpoint: %v %v", resp, err)
	_, _, jwksRaw := get(t, d.JWKS)
	mustf(t, len(d.IDTokenAlgs) == 1 && strings.Contains(string(jwksRaw), `"alg":"`+d.IDTokenAlgs[0]+`"`), "jwks_uri: %s", jwksRaw)
	at, _, page := ex.b.visit(d.EndSession)
	mustf(t, at != nil && at.Path == "/logout", "end_session_endpoint: %v %.300s", at, page)
	resp, err = http.Post(d.Registration, "application/json", strings.NewReader(`{"redirect_uris":["`+callback+`"]}`))
	mustf(t, err == nil && resp.StatusCode == http.StatusCreated, "registration_endpoint: %v %v", resp, err)
}

// exerciser runs requests against an issuer's advertised endpoints.
type exerciser struct {
	t                    *testing.T
	is                   *testbin.Issuer
	b                    *browser
	token, authorization string
}

// authorizeTo runs an authorization request of client c (redirect_uri,
// scope openid offline_access, state and nonce added unless given), plays
// login and consent, and returns where the browser ends: the callback, or
// nil and the issuer's page.
func (e *exerciser) authorizeTo(c map[string]any, params url.Values) (*url.URL, string) {
	e.t.Helper()
	q := url.Values{"client_id": {c["client_id"].(string)}, "redirect_uri": {callback}, "scope": {"openid offline_access"},
		"state": {randomState()}, "nonce": {randomState()}}
	for k, v := range params {
		q[k] = v
	}
	at, _, body := e.b.visit(e.authorization + "?" + q.Encode())
	return e.playApps(at, body)
}

// playApps accepts login and consent when the browser is at the login
// app, and returns where the browser ends.
func (e *exerciser) playApps(at *url.URL, body string) (*url.URL, string) {
	e.t.Helper()
	if at != nil && at.Path == "/login" {
		_, to := acceptLogin(e.t, e.is, at, map[string]any{"subject": "alice", "remember": true})
		at, _, _ = e.b.visit(to)
		_, to = acceptConsent(e.t, e.is, at, grantAll(true))
		at, _, body = e.b.visit(to)
	}
	return at, body
}

// authorize is authorizeTo that expects the callback and returns its
// parameters.
func (e *exerciser) authorize(c map[string]any, params url.Values) url.Values {
	e.t.Helper()
	at, body := e.authorizeTo(c, params)
	q := callbackParams(e.t, at, body)
	mustf(e.t, q.Get("error") == "", "authorization with %v: %v", params, q)
	return q
}

// tokenRequest posts form to the token endpoint, with HTTP Basic when id
// is set, and returns the decoded answer.
func (e *exerciser) tokenRequest(form url.Values, id, secret string) map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.token, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// newSigningKey returns a P-256 private key with kid and alg ES256.
func newSigningKey(t *testing.T, kid string) jwk.Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256())
	return key
}

// signJWT signs claims with key (ES256, the key's kid in the header).
func signJWT(t *testing.T, key jwk.Key, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	kid, _ := key.KeyID()
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kid)
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
