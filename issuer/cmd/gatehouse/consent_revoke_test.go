package main_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestRevokeConsentByRequestID: the consent request shows its
// consent_request_id (read through Ory's Go SDK, whose v2.2.1 models keep
// it in AdditionalProperties), the consent session list shows it too, and
// DELETE /admin/oauth2/auth/sessions/consent?consent_request_id= (alone,
// as Hydra v25.4 takes it) revokes that consent's tokens only. The SDK's
// RevokeOAuth2ConsentSessions requires subject and has no
// consent_request_id, so the DELETE is plain HTTP.
func TestRevokeConsentByRequestID(t *testing.T) {
	ctx := context.Background()
	is := testbin.StartIssuer(t, flowEnv(nil))
	_, admin := hydraClients(is)
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, "openid", "offline_access")

	// Two consents of alice to the same client, each with its tokens.
	signInWithID := func() (*oauth2.Token, string) {
		b := newBrowser(t, is)
		verifier, _ := pkcePair()
		at, _, _ := b.visit(rp.conf.AuthCodeURL(randomState(), oauth2.S256ChallengeOption(verifier)))
		_, to := acceptLogin(t, is, at, map[string]any{"subject": "alice"})
		at, _, _ = b.visit(to)
		cr, _, err := admin.OAuth2API.GetOAuth2ConsentRequest(ctx).ConsentChallenge(at.Query().Get("consent_challenge")).Execute()
		sdkOK(t, "get consent request", err)
		id, _ := cr.AdditionalProperties["consent_request_id"].(string)
		mustf(t, id != "", "no consent_request_id in the consent request: %+v", cr.AdditionalProperties)
		_, to = acceptConsent(t, is, at, grantAll(false))
		at, _, _ = b.visit(to)
		tok, err := rp.conf.Exchange(ctx, at.Query().Get("code"), oauth2.VerifierOption(verifier))
		mustf(t, err == nil, "exchange: %v", err)
		return tok, id
	}
	tok1, id1 := signInWithID()
	tok2, id2 := signInWithID()
	mustf(t, id1 != id2, "two consents share the consent_request_id %q", id1)

	sessions, _, err := admin.OAuth2API.ListOAuth2ConsentSessions(ctx).Subject("alice").Execute()
	sdkOK(t, "list consent sessions", err)
	listed := map[string]bool{}
	for _, s := range sessions {
		id, _ := s.AdditionalProperties["consent_request_id"].(string)
		mustf(t, s.ConsentRequest != nil && s.ConsentRequest.AdditionalProperties["consent_request_id"] == id,
			"consent_request_id %q differs inside consent_request: %+v", id, s.ConsentRequest)
		listed[id] = true
	}
	mustf(t, len(sessions) == 2 && listed[id1] && listed[id2], "consent sessions: %v", listed)

	revoke := func(q url.Values) (int, map[string]any) {
		var out map[string]any
		code := adminJSON(t, is, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?"+q.Encode(), nil, &out)
		return code, out
	}
	// The id comes alone (Hydra: "Invalid combination of query parameters").
	for _, q := range []url.Values{
		{"consent_request_id": {id1}, "subject": {"alice"}},
		{"consent_request_id": {id1}, "client": {c["client_id"].(string)}},
		{"consent_request_id": {""}},
	} {
		code, out := revoke(q)
		mustf(t, code == 400 && out["error"] == "invalid_request", "DELETE ?%s: %d %v", q.Encode(), code, out)
	}
	code, _ := revoke(url.Values{"consent_request_id": {"no-such-consent"}})
	mustf(t, code == 204, "unknown consent_request_id: %d", code)

	code, _ = revoke(url.Values{"consent_request_id": {id1}})
	mustf(t, code == 204, "revoke by consent_request_id: %d", code)
	for _, tk := range []string{tok1.AccessToken, tok1.RefreshToken} {
		mustf(t, introspectToken(t, is, tk)["active"] == false, "a token of the revoked consent is still active")
	}
	_, err = refreshWith(rp, tok1.RefreshToken)
	mustf(t, isOAuthError(err, "invalid_grant"), "refresh of the revoked consent: %v", err)
	for _, tk := range []string{tok2.AccessToken, tok2.RefreshToken} {
		mustf(t, introspectToken(t, is, tk)["active"] == true, "the other consent's token was revoked too")
	}
	sessions, _, err = admin.OAuth2API.ListOAuth2ConsentSessions(ctx).Subject("alice").Execute()
	sdkOK(t, "list consent sessions", err)
	mustf(t, len(sessions) == 1 && sessions[0].AdditionalProperties["consent_request_id"] == id2, "left: %+v", sessions)
}
