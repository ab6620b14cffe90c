package main_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	ory "github.com/ory/client-go"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// oryAdmin is Ory's Go SDK for the Ory Network API (github.com/ory/client-go)
// on the admin URL: unlike hydra-client-go v2.2.1 it has the device
// user-code accept and the consent revocation by consent_request_id.
func oryAdmin(is *testbin.Issuer) *ory.APIClient {
	c := ory.NewConfiguration()
	c.Servers = ory.ServerConfigurations{{URL: is.AdminURL}}
	return ory.NewAPIClient(c)
}

// TestOryClientGoDeviceAndConsentRevoke: a device app and a login and
// consent app written against github.com/ory/client-go drive RFC 8628
// through the real binary on every backend (the user code accepted with
// AcceptUserCodeRequest, login and consent accepted through OAuth2API),
// and RevokeOAuth2ConsentSessions with ConsentRequestId revokes the tokens
// of that one consent while a second consent of the same subject stays
// active. Errors come back as the SDK's GenericOpenAPIError with the
// decoded ErrorOAuth2.
func TestOryClientGoDeviceAndConsentRevoke(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			is := testbin.StartIssuer(t, deviceEnv(db.dsn(t), nil))
			testOryClientGo(t, is)
		})
	}
}

func testOryClientGo(t *testing.T, is *testbin.Issuer) {
	ctx := context.Background()
	admin := oryAdmin(is)
	c := newDeviceClient(t, is, nil)
	conf, _ := deviceConf(t, is, c, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)

	// deviceGrant runs one device authorization for subject and returns
	// its tokens and the consent_request_id of its consent.
	first := true
	deviceGrant := func(subject string) (*oauth2.Token, string) {
		t.Helper()
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("device authorization: %v", err)
		}
		b := newBrowser(t, is)
		at := deviceChallenge(t, b, da.VerificationURI)
		challenge := at.Query().Get("device_challenge")

		if first {
			// A wrong user code: 400 invalid_request, decoded by the SDK.
			first = false
			wrong := ory.NewAcceptDeviceUserCodeRequest()
			wrong.SetUserCode("BBBBBBBB")
			_, resp, err := admin.OAuth2API.AcceptUserCodeRequest(ctx).DeviceChallenge(challenge).AcceptDeviceUserCodeRequest(*wrong).Execute()
			var oe *ory.GenericOpenAPIError
			mustf(t, errors.As(err, &oe) && resp != nil && resp.StatusCode == http.StatusBadRequest, "wrong user code: %v %v", resp, err)
			model, ok := oe.Model().(ory.ErrorOAuth2)
			mustf(t, ok && model.GetError() == "invalid_request" && model.GetErrorDescription() != "" && len(oe.Body()) > 0,
				"wrong user code, error model: %#v %s", oe.Model(), oe.Body())
		}

		accept := ory.NewAcceptDeviceUserCodeRequest()
		accept.SetUserCode(da.UserCode)
		redirect, _, err := admin.OAuth2API.AcceptUserCodeRequest(ctx).DeviceChallenge(challenge).AcceptDeviceUserCodeRequest(*accept).Execute()
		sdkOK(t, "accept user code", err)
		mustf(t, strings.HasPrefix(redirect.RedirectTo, da.VerificationURI+"?device_verifier="), "accept user code: %+v", redirect)

		at, _, body := b.visit(redirect.RedirectTo)
		mustf(t, at != nil && at.Path == "/login", "login app: %v %s", at, body)
		login, _, err := admin.OAuth2API.GetOAuth2LoginRequest(ctx).LoginChallenge(at.Query().Get("login_challenge")).Execute()
		sdkOK(t, "login request", err)
		mustf(t, !login.Skip && login.Client.GetClientId() == conf.ClientID && strings.HasPrefix(login.RequestUrl, da.VerificationURI),
			"login request: %+v", login)
		redirect, _, err = admin.OAuth2API.AcceptOAuth2LoginRequest(ctx).LoginChallenge(login.Challenge).
			AcceptOAuth2LoginRequest(*ory.NewAcceptOAuth2LoginRequest(subject)).Execute()
		sdkOK(t, "accept login", err)
		mustf(t, redirect.RedirectTo != "", "accept login: %+v", redirect)

		at, _, body = b.visit(redirect.RedirectTo)
		mustf(t, at != nil && at.Path == "/consent", "consent app: %v %s", at, body)
		consent, _, err := admin.OAuth2API.GetOAuth2ConsentRequest(ctx).ConsentChallenge(at.Query().Get("consent_challenge")).Execute()
		sdkOK(t, "consent request", err)
		id := consent.GetConsentRequestId()
		mustf(t, consent.GetSubject() == subject && id != "" && len(consent.RequestedScope) == 2, "consent request: %+v", consent)
		grant := ory.NewAcceptOAuth2ConsentRequest()
		grant.SetGrantScope(consent.RequestedScope)
		redirect, _, err = admin.OAuth2API.AcceptOAuth2ConsentRequest(ctx).ConsentChallenge(consent.Challenge).AcceptOAuth2ConsentRequest(*grant).Execute()
		sdkOK(t, "accept consent", err)
		mustf(t, redirect.RedirectTo != "", "accept consent: %+v", redirect)
		at, _, body = b.visit(redirect.RedirectTo)
		mustf(t, at != nil && at.String() == appBase+"/device/done", "after consent: %v %s", at, body)

		pollCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		tok, err := conf.DeviceAccessToken(pollCtx, da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		mustf(t, tok.AccessToken != "" && tok.RefreshToken != "", "tokens: %+v", tok)
		return tok, id
	}
	tok1, id1 := deviceGrant("tv-owner")
	tok2, id2 := deviceGrant("tv-owner")
	mustf(t, id1 != id2, "two consents share the consent_request_id %q", id1)

	active := func(token string) bool {
		t.Helper()
		in, _, err := admin.OAuth2API.IntrospectOAuth2Token(ctx).Token(token).Execute()
		sdkOK(t, "introspection", err)
		mustf(t, !in.Active || in.GetSub() == "tv-owner" && in.GetClientId() == conf.ClientID, "introspection: %+v", in)
		return in.Active
	}
	for _, tk := range []string{tok1.AccessToken, tok1.RefreshToken, tok2.AccessToken, tok2.RefreshToken} {
		mustf(t, active(tk), "a token is inactive before any revocation")
	}

	// Hydra takes consent_request_id alone: with subject it is 400, which
	// the SDK decodes.
	resp, err := admin.OAuth2API.RevokeOAuth2ConsentSessions(ctx).Subject("tv-owner").ConsentRequestId(id1).Execute()
	var oe *ory.GenericOpenAPIError
	mustf(t, errors.As(err, &oe) && resp != nil && resp.StatusCode == http.StatusBadRequest, "revoke with subject and id: %v %v", resp, err)
	model, ok := oe.Model().(ory.ErrorOAuth2)
	mustf(t, ok && model.GetError() == "invalid_request", "revoke with subject and id, error model: %#v %s", oe.Model(), oe.Body())

	resp, err = admin.OAuth2API.RevokeOAuth2ConsentSessions(ctx).ConsentRequestId(id1).Execute()
	sdkOK(t, "revoke by consent_request_id", err)
	mustf(t, resp.StatusCode == http.StatusNoContent, "revoke by consent_request_id: %d", resp.StatusCode)
	for _, tk := range []string{tok1.AccessToken, tok1.RefreshToken} {
		mustf(t, !active(tk), "a token of the revoked consent is still active")
	}
	for _, tk := range []string{tok2.AccessToken, tok2.RefreshToken} {
		mustf(t, active(tk), "the other consent's token was revoked too")
	}
}
