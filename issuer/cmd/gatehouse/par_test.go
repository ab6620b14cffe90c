package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// parClient pushes authorization requests to an issuer's PAR endpoint as
// a client would: the parameters in a form body, the client's credentials
// in HTTP Basic (id and secret form-encoded, RFC 6749 §2.3.1) when
// basicID is set, else in the form.
type parClient struct {
	t        testing.TB
	endpoint string
}

// push posts params and returns the status and the decoded JSON answer.
func (p parClient) push(params url.Values, basicID, basicSecret string) (int, map[string]any) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.endpoint, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		p.t.Fatalf("PAR answered %d with %q", resp.StatusCode, raw)
	}
	if resp.StatusCode == http.StatusCreated && !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
		p.t.Fatalf("PAR answer without Cache-Control: no-store: %v", resp.Header)
	}
	return resp.StatusCode, out
}

// pushOK pushes and returns the request_uri of a 201.
func (p parClient) pushOK(params url.Values, basicID, basicSecret string) string {
	p.t.Helper()
	code, out := p.push(params, basicID, basicSecret)
	ru, _ := out["request_uri"].(string)
	if code != http.StatusCreated || !strings.HasPrefix(ru, requestURIPrefix) {
		p.t.Fatalf("push: %d %v", code, out)
	}
	return ru
}

// discoveryDoc fetches the issuer's discovery document.
func discoveryDoc(t *testing.T, is *testbin.Issuer) map[string]any {
	t.Helper()
	var d map[string]any
	if code, _, raw := get(t, is.PublicURL+"/.well-known/openid-configuration"); code != http.StatusOK || json.Unmarshal(raw, &d) != nil {
		t.Fatalf("discovery: %d %s", code, raw)
	}
	return d
}

// pageError is the error code of the issuer's error page the browser was
// sent to (at is where visit stopped), or "" when it went elsewhere.
func pageError(at *url.URL) string {
	if at == nil || at.Path != "/oauth2/fallbacks/error" {
		return ""
	}
	return at.Query().Get("error")
}

// TestPushedAuthorizationRequests: a relying party built on
// golang.org/x/oauth2 and go-oidc pushes its request (RFC 9126), sends
// the browser with client_id and request_uri only, and gets its code; a
// used, another client's or a malformed request_uri fails with
// invalid_request_uri on the error page, on every backend.
func TestPushedAuthorizationRequests(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": db.dsn(t)}))
			testPushedAuthorizationRequests(t, is)
		})
	}
}

func testPushedAuthorizationRequests(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	d := discoveryDoc(t, is)
	mustf(t, d["pushed_authorization_request_endpoint"] == is.PublicURL+"/oauth2/par", "discovery: %v", d["pushed_authorization_request_endpoint"])
	_, required := d["require_pushed_authorization_requests"]
	mustf(t, !required && d["authorization_response_iss_parameter_supported"] == true, "discovery: %v", d)
	par := parClient{t, d["pushed_authorization_request_endpoint"].(string)}

	c := newFlowClient(t, is, nil)
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	// The RP's own configuration asks for profile: the pushed request's
	// scope counts, not the query's (RFC 9101 §5).
	rp := newRP(t, is, c, "profile")
	b := newBrowser(t, is)
	verifier, challenge := pkcePair()
	state, nonce := randomState(), randomState()
	pushed := url.Values{"client_id": {id}, "response_type": {"code"}, "redirect_uri": {callback},
		"scope": {"openid offline_access"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	code, out := par.push(pushed, id, secret)
	ru, _ := out["request_uri"].(string)
	mustf(t, code == http.StatusCreated && strings.HasPrefix(ru, requestURIPrefix) && len(ru) > len(requestURIPrefix)+40 &&
		out["expires_in"] == float64(60), "push: %d %v", code, out)

	authURL := rp.conf.AuthCodeURL("query-state", oauth2.SetAuthURLParam("request_uri", ru))
	at, _, _ := b.visit(authURL)
	loginReq, to := acceptLogin(t, is, at, map[string]any{"subject": "alice", "remember": true})
	mustf(t, slices.Equal(toStrings(loginReq["requested_scope"]), []string{"openid", "offline_access"}), "requested_scope: %v", loginReq["requested_scope"])
	// The pushed parameters do not travel through the browser: request_url
	// (the base of redirect_to) is the URL the browser brought.
	requestURL, _ := url.Parse(loginReq["request_url"].(string))
	mustf(t, requestURL != nil && requestURL.Query().Get("request_uri") == ru && requestURL.Query().Get("code_challenge") == "" &&
		!strings.Contains(to, challenge), "request_url %v, redirect_to %s", loginReq["request_url"], to)
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(true))
	at, _, body := b.visit(to)
	q := callbackParams(t, at, body)
	mustf(t, q.Get("code") != "" && q.Get("state") == state && q.Get("iss") == d["issuer"], "callback: %v", q)
	tok, err := rp.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := rp.verifier.Verify(ctx, tok.Extra("id_token").(string))
	mustf(t, err == nil && idt.Subject == "alice" && idt.Nonce == nonce, "ID token: %v", err)

	// RFC 9126 §4: one use only.
	at, _, body = b.visit(authURL)
	mustf(t, pageError(at) == "invalid_request_uri", "reused request_uri: %v %.300s", at, body)

	// Another client cannot use it, and its owner still can.
	other := newFlowClient(t, is, nil)
	ru = par.pushOK(pushed, id, secret)
	at, _, body = b.visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {other["client_id"].(string)}, "request_uri": {ru}}.Encode())
	mustf(t, pageError(at) == "invalid_request_uri", "another client's request_uri: %v %.300s", at, body)
	at, _, body = newBrowser(t, is).visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {ru}}.Encode())
	mustf(t, at != nil && at.Path == "/login", "the owner after another client's attempt: %v %.300s", at, body)

	// Made-up, truncated, oversize and repeated request_uris, and one
	// without client_id: the error page, never a 5xx.
	for name, q := range map[string]url.Values{
		"unknown":     {"client_id": {id}, "request_uri": {requestURIPrefix + strings.Repeat("A", 43)}},
		"short":       {"client_id": {id}, "request_uri": {requestURIPrefix + "x"}},
		"oversize":    {"client_id": {id}, "request_uri": {requestURIPrefix + strings.Repeat("A", 8000)}},
		"control":     {"client_id": {id}, "request_uri": {requestURIPrefix + strings.Repeat("\x00", 43)}},
		"repeated":    {"client_id": {id}, "request_uri": {ru, ru}},
		"no client":   {"request_uri": {ru}},
		"wrong owner": {"client_id": {"no-such-client"}, "request_uri": {ru}},
	} {
		at, code, body := b.visit(is.PublicURL + "/oauth2/auth?" + q.Encode())
		want := "invalid_request_uri"
		if name == "repeated" || name == "no client" {
			want = "invalid_request"
		}
		mustf(t, pageError(at) == want, "%s request_uri: %v %d %.300s", name, at, code, body)
		resp, err := http.Get(at.String())
		mustf(t, err == nil && resp.StatusCode == http.StatusBadRequest, "%s: error page %v %v", name, resp, err)
		resp.Body.Close()
	}
}

// TestPushedAuthorizationRequestAuthentication: the PAR endpoint takes
// every client authentication method the token endpoint takes
// (client_secret_basic above), and refuses bad credentials with
// invalid_client.
func TestPushedAuthorizationRequestAuthentication(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	par := parClient{t, is.PublicURL + "/oauth2/par"}
	b := newBrowser(t, is)
	request := func(id string) url.Values {
		_, challenge := pkcePair()
		return url.Values{"client_id": {id}, "response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"},
			"state": {randomState()}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}
	reachesLogin := func(id, ru string) {
		t.Helper()
		at, _, body := b.visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {ru}}.Encode())
		mustf(t, at != nil && at.Path == "/login", "authorization with %s: %v %.300s", ru, at, body)
	}

	post := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	postID := post["client_id"].(string)
	form := request(postID)
	form.Set("client_secret", post["client_secret"].(string))
	reachesLogin(postID, par.pushOK(form, "", ""))

	// private_key_jwt with the PAR endpoint, the issuer or the token
	// endpoint as aud (RFC 9126 §2).
	key := newSigningKey(t, "rp-par")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	pkj := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "private_key_jwt", "client_secret": nil,
		"jwks": json.RawMessage(jwks)})
	pkjID := pkj["client_id"].(string)
	for _, aud := range []string{is.PublicURL + "/oauth2/par", is.PublicURL, is.PublicURL + "/oauth2/token"} {
		form := request(pkjID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", signJWT(t, key, map[string]any{"iss": pkjID, "sub": pkjID, "aud": aud,
			"exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix(), "jti": randomState()}))
		reachesLogin(pkjID, par.pushOK(form, "", ""))
		// An assertion is single-use at the PAR endpoint too.
		code, out := par.push(form, "", "")
		mustf(t, code == http.StatusUnauthorized && out["error"] == "invalid_client", "replayed assertion: %d %v", code, out)
	}

	// A public client authenticates with its client_id alone.
	public := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "none", "client_secret": nil})
	publicID := public["client_id"].(string)
	reachesLogin(publicID, par.pushOK(request(publicID), "", ""))

	// Bad credentials.
	basic := newFlowClient(t, is, nil)
	basicID := basic["client_id"].(string)
	code, out := par.push(request(basicID), basicID, "wrong-secret")
	mustf(t, code == http.StatusUnauthorized && out["error"] == "invalid_client", "wrong secret: %d %v", code, out)
	code, out = par.push(request(basicID), "", "")
	mustf(t, code == http.StatusUnauthorized && out["error"] == "invalid_client", "confidential client without credentials: %d %v", code, out)
	code, out = par.push(request("no-such-client"), "", "")
	mustf(t, code == http.StatusUnauthorized && out["error"] == "invalid_client", "unknown client: %d %v", code, out)
	form = request(basicID)
	form.Set("client_id", "someone-else")
	code, out = par.push(form, basicID, basic["client_secret"].(string))
	mustf(t, code == http.StatusBadRequest && out["error"] == "invalid_request", "client_id naming another client: %d %v", code, out)
}

// TestPushedAuthorizationRequestErrors: the PAR endpoint validates the
// whole request as the authorization endpoint would and answers every
// problem in the token endpoint's JSON error format (RFC 9126 §2.3).
func TestPushedAuthorizationRequestErrors(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	par := parClient{t, is.PublicURL + "/oauth2/par"}
	c := newFlowClient(t, is, map[string]any{"scope": "openid profile"})
	id, secret := c["client_id"].(string), c["client_secret"].(string)
	public := newFlowClient(t, is, map[string]any{"token_endpoint_auth_method": "none", "client_secret": nil})
	valid := func() url.Values {
		return url.Values{"client_id": {id}, "response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid"}, "state": {"s"}}
	}
	with := func(kv ...string) url.Values {
		p := valid()
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set(kv[i], kv[i+1])
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		id     string
		status int
		code   string
	}{
		{"request_uri inside", with("request_uri", requestURIPrefix+strings.Repeat("A", 43)), id, 400, "invalid_request"},
		{"unregistered redirect_uri", with("redirect_uri", "https://evil.example/cb"), id, 400, "invalid_request"},
		{"scope not allowed", with("scope", "openid admin"), id, 400, "invalid_scope"},
		{"unknown response_type", with("response_type", "magic"), id, 400, "unsupported_response_type"},
		{"response_type not registered", with("response_type", "token"), id, 400, "unsupported_response_type"},
		{"bad response_mode", with("response_mode", "carrier_pigeon"), id, 400, "invalid_request"},
		{"bad PKCE method", with("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "MD5"), id, 400, "invalid_request"},
		{"short code_challenge", with("code_challenge", "short"), id, 400, "invalid_request"},
		{"bad request object", with("request", "not.a.jwt"), id, 400, "invalid_request_object"},
		{"bad prompt", with("prompt", "none login"), id, 400, "invalid_request"},
		{"public client without PKCE", url.Values{"client_id": {public["client_id"].(string)}, "response_type": {"code"},
			"scope": {"openid"}}, "", 400, "invalid_request"},
	} {
		var code int
		var out map[string]any
		if tc.id != "" {
			code, out = par.push(tc.params, tc.id, secret)
		} else {
			code, out = par.push(tc.params, "", "")
		}
		mustf(t, code == tc.status && out["error"] == tc.code && out["error_description"] != "", "%s: %d %v", tc.name, code, out)
	}

	// Not POST: 405; too large: 413; not a form: 400 (RFC 9126 §2.3).
	resp, err := http.Get(par.endpoint)
	mustf(t, err == nil && resp.StatusCode == http.StatusMethodNotAllowed, "GET: %v %v", resp, err)
	resp.Body.Close()
	big := valid()
	big.Set("state", strings.Repeat("s", 2<<20))
	code, out := par.push(big, id, secret)
	mustf(t, code == http.StatusRequestEntityTooLarge, "oversize body: %d %v", code, out)
	req, _ := http.NewRequest(http.MethodPost, par.endpoint, strings.NewReader(`{"client_id":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(id, secret)
	resp, err = http.DefaultClient.Do(req)
	mustf(t, err == nil && resp.StatusCode == http.StatusBadRequest, "JSON body: %v %v", resp, err)
	resp.Body.Close()

	// A request object pushed (RFC 9126 §3): its members make the request.
	obj := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"client_id":"`+id+`","response_type":"code","state":"from-object","scope":"openid profile"}`)) + "."
	ru := par.pushOK(url.Values{"client_id": {id}, "request": {obj}}, id, secret)
	b := newBrowser(t, is)
	at, _, _ := b.visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {ru}}.Encode())
	loginReq, to := acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	mustf(t, slices.Equal(toStrings(loginReq["requested_scope"]), []string{"openid", "profile"}), "scope from the pushed object: %v", loginReq)
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(false))
	at, _, body := b.visit(to)
	q := callbackParams(t, at, body)
	mustf(t, q.Get("state") == "from-object" && q.Get("code") != "", "pushed request object: %v", q)
}

// TestPushedAuthorizationRequired: with
// oauth2.pushed_authorization_requests.required every unpushed request is
// refused with invalid_request (RFC 9126 §4, §5); a client's
// require_pushed_authorization_requests does the same for that client
// alone (§6).
func TestPushedAuthorizationRequired(t *testing.T) {
	t.Run("global", func(t *testing.T) {
		is := testbin.StartIssuer(t, flowEnv(map[string]string{"OAUTH2_PUSHED_AUTHORIZATION_REQUESTS_REQUIRED": "true"}))
		d := discoveryDoc(t, is)
		mustf(t, d["require_pushed_authorization_requests"] == true, "discovery: %v", d["require_pushed_authorization_requests"])
		c := newFlowClient(t, is, nil)
		refusesUnpushed(t, is, c)
		pushAndLogin(t, is, c)
	})
	t.Run("client", func(t *testing.T) {
		is := testbin.StartIssuer(t, flowEnv(nil))
		c := newFlowClient(t, is, map[string]any{"require_pushed_authorization_requests": true})
		mustf(t, c["require_pushed_authorization_requests"] == true, "client: %v", c)
		refusesUnpushed(t, is, c)
		pushAndLogin(t, is, c)
		// Other clients are not concerned.
		free := newFlowClient(t, is, nil)
		at, _, body := newBrowser(t, is).visit(newRP(t, is, free, oidc.ScopeOpenID).conf.AuthCodeURL("s"))
		mustf(t, at != nil && at.Path == "/login", "a client without the requirement: %v %.300s", at, body)
	})
}

// refusesUnpushed checks that an authorization request of c sent
// straight to the authorization endpoint is refused with invalid_request,
// redirected to the client with state and iss.
func refusesUnpushed(t *testing.T, is *testbin.Issuer, c map[string]any) {
	t.Helper()
	rp := newRP(t, is, c, oidc.ScopeOpenID)
	at, _, body := newBrowser(t, is).visit(rp.conf.AuthCodeURL("st-unpushed"))
	q := callbackParams(t, at, body)
	mustf(t, q.Get("error") == "invalid_request" && q.Get("state") == "st-unpushed" && q.Get("iss") == is.PublicURL &&
		strings.Contains(q.Get("error_description"), "/oauth2/par"), "unpushed request: %v", q)
}

// pushAndLogin pushes a request of c and checks that it reaches the login
// app.
func pushAndLogin(t *testing.T, is *testbin.Issuer, c map[string]any) {
	t.Helper()
	id := c["client_id"].(string)
	ru := parClient{t, is.PublicURL + "/oauth2/par"}.pushOK(url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}},
		id, c["client_secret"].(string))
	at, _, body := newBrowser(t, is).visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {ru}}.Encode())
	mustf(t, at != nil && at.Path == "/login", "pushed request: %v %.300s", at, body)
}

// TestPushedRequestURIExpires: a request_uri past its expires_in is
// refused with invalid_request_uri (RFC 9126 §4); the lifespan is
// oauth2.pushed_authorization_requests.request_uri_lifespan.
func TestPushedRequestURIExpires(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{"OAUTH2_PUSHED_AUTHORIZATION_REQUESTS_REQUEST_URI_LIFESPAN": "1s"}))
	c := newFlowClient(t, is, nil)
	id := c["client_id"].(string)
	pushedAt := time.Now()
	code, out := parClient{t, is.PublicURL + "/oauth2/par"}.push(url.Values{"response_type": {"code"}, "scope": {"openid"}},
		id, c["client_secret"].(string))
	mustf(t, code == http.StatusCreated && out["expires_in"] == float64(1), "push: %d %v", code, out)
	// The issuer's clock counts from before the answer; wait until a
	// second has passed on it for sure.
	time.Sleep(time.Until(pushedAt.Add(1100 * time.Millisecond)))
	at, _, body := newBrowser(t, is).visit(is.PublicURL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {out["request_uri"].(string)}}.Encode())
	mustf(t, pageError(at) == "invalid_request_uri" && strings.Contains(at.Query().Get("error_description"), "expired"),
		"expired request_uri: %v %.300s", at, body)
}

// TestAuthorizationResponseIssuer: error responses carry iss (RFC 9207
// §2) in every response mode, as successes do (TestDiscoveryAdvertisesWhatWorks
// checks those), with the issuer identifier of discovery.
func TestAuthorizationResponseIssuer(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(nil))
	iss := discoveryDoc(t, is)["issuer"].(string)
	c := newFlowClient(t, is, map[string]any{"grant_types": []string{"authorization_code", "implicit"},
		"response_types": []string{"code", "id_token"}})
	b := newBrowser(t, is)
	for _, mode := range []string{"query", "fragment", "form_post"} {
		q := url.Values{"client_id": {c["client_id"].(string)}, "response_type": {"code"}, "redirect_uri": {callback},
			"scope": {"openid admin"}, "state": {"st-" + mode}, "response_mode": {mode}}
		at, status, body := b.visit(is.PublicURL + "/oauth2/auth?" + q.Encode())
		var got url.Values
		if mode == "form_post" {
			mustf(t, at == nil && status == http.StatusOK, "form_post: %v %d", at, status)
			got = formPostParams(t, body)
		} else {
			got = callbackParams(t, at, body)
			mustf(t, (mode == "fragment") == (at.Fragment != ""), "%s: %v", mode, at)
		}
		mustf(t, got.Get("error") == "invalid_scope" && got.Get("state") == "st-"+mode && got.Get("iss") == iss, "%s: %v", mode, got)
	}
	// An error of a response type whose default mode is the fragment.
	q := url.Values{"client_id": {c["client_id"].(string)}, "response_type": {"id_token"}, "redirect_uri": {callback},
		"scope": {"openid"}, "state": {"st-nonce"}}
	at, _, body := b.visit(is.PublicURL + "/oauth2/auth?" + q.Encode())
	got := callbackParams(t, at, body)
	mustf(t, at.Fragment != "" && got.Get("error") == "invalid_request" && got.Get("iss") == iss, "id_token without nonce: %v", got)
}

// formPostParams reads the hidden inputs of a form_post page.
func formPostParams(t testing.TB, page string) url.Values {
	t.Helper()
	out := url.Values{}
	for _, part := range strings.Split(page, "<input ")[1:] {
		name := between(part, `name="`, `"`)
		value := between(part, `value="`, `"`)
		out.Add(name, strings.NewReplacer("&#43;", "+", "&#34;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(value))
	}
	return out
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}
