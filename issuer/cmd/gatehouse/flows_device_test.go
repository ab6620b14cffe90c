package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// deviceEnv is an issuer whose device pages are at appBase, polled at
// its shortest interval.
func deviceEnv(dsn string, extra map[string]string) map[string]string {
	env := flowEnv(map[string]string{"DSN": dsn,
		"URLS_DEVICE_VERIFICATION": appBase + "/device", "URLS_DEVICE_SUCCESS": appBase + "/device/done",
		"OAUTH2_DEVICE_AUTHORIZATION_TOKEN_POLLING_INTERVAL": "1s"})
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// newDeviceClient registers a public device client (what a TV or a CLI
// is) allowed openid and offline_access.
func newDeviceClient(t *testing.T, is *testbin.Issuer, fields map[string]any) map[string]any {
	c := map[string]any{
		"grant_types":                []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		"response_types":             []string{},
		"redirect_uris":              []string{},
		"token_endpoint_auth_method": "none",
		"scope":                      "openid offline_access profile",
	}
	for k, v := range fields {
		c[k] = v
	}
	return is.RegisterClient(t, c).Metadata
}

// deviceConf is the client as golang.org/x/oauth2 sees it, endpoints from
// discovery.
func deviceConf(t *testing.T, is *testbin.Issuer, c map[string]any, scopes ...string) (*oauth2.Config, *oidc.Provider) {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), is.PublicURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disco struct {
		DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	}
	_ = p.Claims(&disco)
	ep := p.Endpoint()
	ep.DeviceAuthURL = disco.DeviceAuthorizationEndpoint
	ep.AuthStyle = oauth2.AuthStyleInParams
	secret, _ := c["client_secret"].(string)
	if secret != "" {
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{ClientID: c["client_id"].(string), ClientSecret: secret, Endpoint: ep, Scopes: scopes}, p
}

// pollDevice posts one device access token request (RFC 8628 §3.4) as a
// public client and returns the status and the JSON answer.
func pollDevice(t *testing.T, is *testbin.Issuer, clientID, deviceCode string) (int, map[string]any) {
	t.Helper()
	return postForm(t, is.PublicURL+"/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode}, "client_id": {clientID}})
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	return postFormAs(t, u, form, "", "")
}

// postFormAs posts form with client_secret_basic credentials when id is set.
func postFormAs(t *testing.T, u string, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// enterUserCode plays the device app: the browser opened uri, the app
// got the device challenge and accepts code through the admin API
// (Hydra v25's acceptUserCodeRequest, plain HTTP: hydra-client-go v2 has
// no device API). It returns the status and the answer.
func enterUserCode(t *testing.T, is *testbin.Issuer, challenge, code string) (int, map[string]any) {
	t.Helper()
	var out map[string]any
	status := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/device/accept?device_challenge="+url.QueryEscape(challenge),
		map[string]any{"user_code": code}, &out)
	return status, out
}

// deviceChallenge opens the verification URI in b and returns the device
// challenge the issuer sent the browser to the app with.
func deviceChallenge(t *testing.T, b *browser, uri string) *url.URL {
	t.Helper()
	at, status, body := b.visit(uri)
	if at == nil || at.Path != "/device" || at.Query().Get("device_challenge") == "" {
		t.Fatalf("expected the device app, got %v %d %s", at, status, body)
	}
	return at
}

// TestDeviceAuthorizationGrant runs RFC 8628 through the real binary on
// every backend: the device authorization endpoint and discovery, the
// verification URI and the device challenge's admin API, login and
// consent ending at urls.device.success, the device polling with
// golang.org/x/oauth2 and each error of RFC 8628 §3.5 (authorization_pending,
// slow_down, access_denied, expired_token), a single-use device code,
// unauthorized_client, a wrong, expired or reused user code, a challenge
// used twice and the brute-force limits.
func TestDeviceAuthorizationGrant(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			is := testbin.StartIssuer(t, deviceEnv(dsn, nil))
			t.Run("flow", func(t *testing.T) { testDeviceFlow(t, is) })
			t.Run("denied", func(t *testing.T) { testDeviceDenied(t, is) })
			t.Run("refusals", func(t *testing.T) { testDeviceRefusals(t, is) })
			t.Run("brute force", func(t *testing.T) { testUserCodeLimits(t, is) })
			is.Process.Stop(10 * time.Second)
			// A second issuer on the same database whose codes live a second.
			short := testbin.StartIssuer(t, deviceEnv(dsn, map[string]string{"TTL_DEVICE_USER_CODE": "1s"}))
			t.Run("expired", func(t *testing.T) { testDeviceExpired(t, short) })
		})
	}
}

func testDeviceFlow(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	c := newDeviceClient(t, is, map[string]any{"device_authorization_grant_access_token_lifespan": "30m"})
	conf, p := deviceConf(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	mustf(t, conf.Endpoint.DeviceAuthURL == is.PublicURL+"/oauth2/device/auth", "discovery device_authorization_endpoint: %q", conf.Endpoint.DeviceAuthURL)
	var disco struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	_ = p.Claims(&disco)
	mustf(t, strings.Contains(strings.Join(disco.GrantTypes, " "), "urn:ietf:params:oauth:grant-type:device_code"), "grant types: %v", disco.GrantTypes)

	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	mustf(t, strings.HasPrefix(da.DeviceCode, "ory_dc_") && len(da.UserCode) == 8 && strings.Trim(da.UserCode, "BCDFGHJKLMNPQRSTVWXZ") == "",
		"device authorization: %+v", da)
	mustf(t, da.VerificationURI == is.PublicURL+"/oauth2/device/verify" && da.VerificationURIComplete == da.VerificationURI+"?user_code="+da.UserCode,
		"verification URIs: %+v", da)
	mustf(t, da.Interval == 1 && time.Until(da.Expiry) > 9*time.Minute && time.Until(da.Expiry) <= 10*time.Minute, "interval and expiry: %+v", da)

	// Before the End-User: authorization_pending; polled again at once:
	// slow_down, the interval 5 s longer (RFC 8628 §3.5).
	status, out := pollDevice(t, is, conf.ClientID, da.DeviceCode)
	mustf(t, status == 400 && out["error"] == "authorization_pending", "first poll: %d %v", status, out)
	status, out = pollDevice(t, is, conf.ClientID, da.DeviceCode)
	mustf(t, status == 400 && out["error"] == "slow_down" && strings.Contains(out["error_description"].(string), "6 seconds"), "fast poll: %d %v", status, out)

	// The End-User opens verification_uri_complete: the issuer sets its
	// CSRF cookie and sends the browser to the app with the challenge and
	// the user code.
	b := newBrowser(t, is)
	at := deviceChallenge(t, b, da.VerificationURIComplete)
	mustf(t, at.Query().Get("user_code") == da.UserCode, "user_code to the app: %v", at)
	challenge := at.Query().Get("device_challenge")
	var dreq map[string]any
	code := adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/device?device_challenge="+challenge, nil, &dreq)
	mustf(t, code == 200 && dreq["challenge"] == challenge && dreq["request_url"] == da.VerificationURI, "device request: %d %v", code, dreq)
	hasKeys(t, "device request", dreq, "challenge", "request_url", "requested_scope", "requested_access_token_audience")

	// A wrong code is refused; the right one is compared case-insensitively
	// and without separators.
	status, out = enterUserCode(t, is, challenge, "BBBBBBBB")
	mustf(t, status == 400 && out["error"] == "invalid_request", "wrong user code: %d %v", status, out)
	typed := strings.ToLower(da.UserCode[:4]) + "-" + da.UserCode[4:]
	status, out = enterUserCode(t, is, challenge, typed)
	mustf(t, status == 200 && strings.HasPrefix(out["redirect_to"].(string), da.VerificationURI+"?device_verifier="), "accept: %d %v", status, out)
	code = adminJSON(t, is, http.MethodGet, "/admin/oauth2/auth/requests/device?device_challenge="+challenge, nil, &dreq)
	mustf(t, code == 200 && dreq["client"].(map[string]any)["client_id"] == conf.ClientID && dreq["handled_at"] != nil &&
		strings.Join(toStrings(dreq["requested_scope"]), " ") == "openid offline_access", "handled device request: %v", dreq)

	// Then the usual login and consent, ending at urls.device.success.
	at, _, _ = b.visit(out["redirect_to"].(string))
	loginReq, to := acceptLogin(t, is, at, map[string]any{"subject": "tv-owner", "remember": true, "remember_for": 3600})
	mustf(t, strings.HasPrefix(loginReq["request_url"].(string), da.VerificationURI), "login request_url: %v", loginReq["request_url"])
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(false))
	at, _, body := b.visit(to)
	mustf(t, at != nil && at.String() == appBase+"/device/done", "after consent: %v %s", at, body)

	// The device's poller (x/oauth2 honours the interval and slow_down)
	// receives the tokens of a code flow.
	pollCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tok, err := conf.DeviceAccessToken(pollCtx, da)
	if err != nil {
		t.Fatalf("device access token: %v", err)
	}
	mustf(t, tok.RefreshToken != "" && time.Until(tok.Expiry) > 29*time.Minute && time.Until(tok.Expiry) <= 30*time.Minute, "tokens: %+v", tok)
	idt, err := p.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	mustf(t, idt.Subject == "tv-owner", "ID token subject %q", idt.Subject)
	in := introspectToken(t, is, tok.AccessToken)
	mustf(t, in["active"] == true && in["sub"] == "tv-owner" && in["client_id"] == conf.ClientID, "introspection: %v", in)
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	mustf(t, err == nil && refreshed.AccessToken != tok.AccessToken, "refresh: %v", err)

	// The device code is single-use.
	status, out = pollDevice(t, is, conf.ClientID, da.DeviceCode)
	mustf(t, status == 400 && out["error"] == "invalid_grant", "second redemption: %d %v", status, out)
	// The challenge is used: the app cannot accept it again, nor can the
	// browser replay its verifier; the user code is spent.
	status, out = enterUserCode(t, is, challenge, da.UserCode)
	mustf(t, status == 409, "accepting a used challenge: %d %v", status, out)
	at2 := deviceChallenge(t, newBrowser(t, is), da.VerificationURI)
	status, out = enterUserCode(t, is, at2.Query().Get("device_challenge"), da.UserCode)
	mustf(t, status == 400 && out["error"] == "invalid_request", "a used user code: %d %v", status, out)

	// Revoking the consent revokes the device's tokens.
	code = adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?subject=tv-owner&client="+conf.ClientID, nil, nil)
	mustf(t, code == 204 && introspectToken(t, is, refreshed.AccessToken)["active"] == false, "consent revocation: %d", code)
}

// testDeviceDenied: the consent app rejects; the device gets access_denied.
func testDeviceDenied(t *testing.T, is *testbin.Issuer) {
	c := newDeviceClient(t, is, nil)
	conf, _ := deviceConf(t, is, c, oidc.ScopeOpenID)
	da, err := conf.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, is)
	at := deviceChallenge(t, b, da.VerificationURI)
	status, out := enterUserCode(t, is, at.Query().Get("device_challenge"), da.UserCode)
	mustf(t, status == 200, "accept: %d %v", status, out)
	at, _, _ = b.visit(out["redirect_to"].(string))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": "bob"})
	at, _, _ = b.visit(to)
	ch := at.Query().Get("consent_challenge")
	var rej map[string]any
	code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/consent/reject?consent_challenge="+ch,
		map[string]any{"error": "access_denied", "error_description": "The user said no"}, &rej)
	mustf(t, code == 200, "reject: %d %v", code, rej)
	at, _, _ = b.visit(rej["redirect_to"].(string))
	mustf(t, at != nil && at.Query().Get("error") == "access_denied", "browser after a rejection: %v", at)
	status, out = pollDevice(t, is, conf.ClientID, da.DeviceCode)
	mustf(t, status == 403 && out["error"] == "access_denied", "poll after rejection: %d %v", status, out)
}

// testDeviceRefusals: unauthorized_client at both endpoints, another
// client's device code, bad parameters.
func testDeviceRefusals(t *testing.T, is *testbin.Issuer) {
	codeClient := newFlowClient(t, is, nil)
	id, secret := codeClient["client_id"].(string), codeClient["client_secret"].(string)
	status, out := postFormAs(t, is.PublicURL+"/oauth2/device/auth", url.Values{}, id, secret)
	mustf(t, status == 400 && out["error"] == "unauthorized_client", "device authorization without the grant: %d %v", status, out)
	status, out = postFormAs(t, is.PublicURL+"/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {"ory_dc_x.y"}}, id, secret)
	mustf(t, status == 400 && out["error"] == "unauthorized_client", "device grant without the grant type: %d %v", status, out)

	dev := newDeviceClient(t, is, nil)
	status, out = postForm(t, is.PublicURL+"/oauth2/device/auth", url.Values{"client_id": {dev["client_id"].(string)}, "scope": {"admin"}})
	mustf(t, status == 400 && out["error"] == "invalid_scope", "scope the client may not have: %d %v", status, out)
	status, out = postForm(t, is.PublicURL+"/oauth2/device/auth", url.Values{"client_id": {"nobody"}})
	mustf(t, status == 401 && out["error"] == "invalid_client", "unknown client: %d %v", status, out)

	// A confidential device client authenticates with client_secret_basic
	// (golang.org/x/oauth2's DeviceAuth sends only the client_id).
	conf := newDeviceClient(t, is, map[string]any{"token_endpoint_auth_method": "client_secret_basic",
		"client_secret": "a-very-secret-client-secret-0123"})
	status, out = postFormAs(t, is.PublicURL+"/oauth2/device/auth", url.Values{"scope": {"profile"}},
		conf["client_id"].(string), "a-very-secret-client-secret-0123")
	mustf(t, status == 200 && out["device_code"] != nil, "confidential device authorization: %d %v", status, out)
	status, out = pollDevice(t, is, dev["client_id"].(string), out["device_code"].(string))
	mustf(t, status == 400 && out["error"] == "invalid_grant", "another client's device code: %d %v", status, out)
	status, out = pollDevice(t, is, dev["client_id"].(string), "ory_dc_forged.forged")
	mustf(t, status == 400 && out["error"] == "invalid_grant", "a forged device code: %d %v", status, out)
	status, out = pollDevice(t, is, dev["client_id"].(string), "")
	mustf(t, status == 400 && out["error"] == "invalid_request", "no device code: %d %v", status, out)
	status, out = enterUserCode(t, is, "0123456789abcdef0123456789abcdef", "BCDFGHJK")
	mustf(t, status == 404, "unknown device challenge: %d %v", status, out)
}

// browserFrom is a browser whose connections come from the loopback
// address local (the per-network limit counts them apart).
func browserFrom(t *testing.T, is *testbin.Issuer, local string) *browser {
	b := newBrowser(t, is)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	b.hc.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

// testUserCodeLimits: at most 5 wrong user codes per device challenge,
// and 20 per network in 10 minutes, whatever the challenge (RFC 8628 §5.1).
// The End-User's browser comes from 127.0.0.2, the other tests' from
// 127.0.0.1.
func testUserCodeLimits(t *testing.T, is *testbin.Issuer) {
	conf, _ := deviceConf(t, is, newDeviceClient(t, is, nil))
	da, err := conf.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for ch := 0; ch < 4; ch++ {
		challenge := deviceChallenge(t, browserFrom(t, is, "127.0.0.2"), da.VerificationURI).Query().Get("device_challenge")
		for i := 0; i < 5; i++ {
			status, out := enterUserCode(t, is, challenge, "ZZZZZZZZ")
			mustf(t, status == 400, "wrong code %d: %d %v", failures, status, out)
			failures++
		}
		// The challenge has had its five: even the right code is refused.
		status, out := enterUserCode(t, is, challenge, da.UserCode)
		mustf(t, status == 429 && out["error"] == "invalid_request", "sixth code at one challenge: %d %v", status, out)
	}
	// 20 failures from this network: a fresh challenge is refused too.
	challenge := deviceChallenge(t, browserFrom(t, is, "127.0.0.2"), da.VerificationURI).Query().Get("device_challenge")
	status, out := enterUserCode(t, is, challenge, da.UserCode)
	mustf(t, status == 429 && strings.Contains(out["error_description"].(string), "network"), "after 20 failures: %d %v", status, out)
	// Another network is not held back: the code works there.
	challenge = deviceChallenge(t, newBrowser(t, is), da.VerificationURI).Query().Get("device_challenge")
	status, out = enterUserCode(t, is, challenge, da.UserCode)
	mustf(t, status == 200, "the code from another network: %d %v", status, out)
}

// testDeviceExpired: once the device code expires the device gets
// expired_token, and its user code is refused.
func testDeviceExpired(t *testing.T, is *testbin.Issuer) {
	conf, _ := deviceConf(t, is, newDeviceClient(t, is, nil))
	da, err := conf.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mustf(t, time.Until(da.Expiry) <= time.Second, "expiry: %v", da.Expiry)
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, out := pollDevice(t, is, conf.ClientID, da.DeviceCode)
		if out["error"] == "expired_token" {
			mustf(t, status == 400, "expired_token status %d", status)
			break
		}
		mustf(t, time.Now().Before(deadline), "no expired_token: %d %v", status, out)
		time.Sleep(1100 * time.Millisecond)
	}
	challenge := deviceChallenge(t, newBrowser(t, is), da.VerificationURI).Query().Get("device_challenge")
	status, out := enterUserCode(t, is, challenge, da.UserCode)
	mustf(t, status == 400 && out["error"] == "invalid_request", "expired user code: %d %v", status, out)
}

// TestPerformDeviceCodeAgainstTheBinary: `gatehouse perform device-code`
// is the device of a whole flow through the real issuer: it prints the
// verification URI and the code, the End-User enters the code, logs in
// and consents, and the command prints the tokens.
func TestPerformDeviceCodeAgainstTheBinary(t *testing.T) {
	is := testbin.StartIssuer(t, deviceEnv(sqliteDSN(t), nil))
	c := newDeviceClient(t, is, nil)
	cli := testbin.Start(t, testbin.Build(t, "./issuer/cmd/gatehouse"), nil, "perform", "device-code",
		"--endpoint", is.PublicURL, "--client-id", c["client_id"].(string), "--scope", "openid,offline_access", "--format", "json")
	var userCode string
	deadline := time.Now().Add(30 * time.Second)
	for userCode == "" {
		out := cli.Output.String()
		if _, rest, ok := strings.Cut(out, "enter the code:\n\n    "); ok {
			userCode, _, _ = strings.Cut(rest, "\n")
		}
		mustf(t, time.Now().Before(deadline) && !cli.Exited(), "no user code printed:\n%s", out)
		time.Sleep(20 * time.Millisecond)
	}
	mustf(t, strings.Contains(cli.Output.String(), "Open "+is.PublicURL+"/oauth2/device/verify"), "no verification URI:\n%s", cli.Output)

	b := newBrowser(t, is)
	at := deviceChallenge(t, b, is.PublicURL+"/oauth2/device/verify")
	status, out := enterUserCode(t, is, at.Query().Get("device_challenge"), userCode)
	mustf(t, status == 200, "accept: %d %v", status, out)
	at, _, _ = b.visit(out["redirect_to"].(string))
	_, to := acceptLogin(t, is, at, map[string]any{"subject": "cli-user"})
	at, _, _ = b.visit(to)
	_, to = acceptConsent(t, is, at, grantAll(false))
	at, _, _ = b.visit(to)
	mustf(t, at != nil && at.Path == "/device/done", "after consent: %v", at)

	exited, err := cli.Wait(30 * time.Second)
	mustf(t, exited && err == nil, "the command did not succeed: %v\n%s", err, cli.Output)
	var tok map[string]any
	for _, line := range strings.Split(cli.Output.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			_ = json.Unmarshal([]byte(line), &tok)
		}
	}
	mustf(t, tok["access_token"] != nil && tok["refresh_token"] != nil && tok["id_token"] != nil, "printed tokens: %s", cli.Output)
	mustf(t, introspectToken(t, is, tok["access_token"].(string))["sub"] == "cli-user", "the printed access token is not the user's")
}
