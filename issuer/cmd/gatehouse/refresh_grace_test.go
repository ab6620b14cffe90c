package main_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// refreshWith presents refresh token rt at the token endpoint.
func refreshWith(rp *relyingParty, rt string) (*oauth2.Token, error) {
	return rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
}

// TestRefreshRotationGrace: with oauth2.grant.refresh_token.
// rotation_grace_period and rotation_grace_reuse_count, a rotated refresh
// token is accepted again within the period up to the count, and
// introspects active (token_use refresh_token) exactly as long as the
// token endpoint accepts it: once the count is spent or the period is
// over it introspects inactive and presenting it is invalid_grant, which
// revokes the whole chain.
func TestRefreshRotationGrace(t *testing.T) {
	is := testbin.StartIssuer(t, flowEnv(map[string]string{
		"OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD":      "3s",
		"OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_REUSE_COUNT": "1",
	}))
	c := newFlowClient(t, is, nil)
	rp := newRP(t, is, c, "openid", "offline_access")

	// Refresh tokens introspect, as Hydra's do.
	tok := loggedIn(t, is, newBrowser(t, is), rp, "alice")
	in := introspectToken(t, is, tok.RefreshToken)
	mustf(t, in["active"] == true && in["token_use"] == "refresh_token" && in["sub"] == "alice" &&
		in["client_id"] == c["client_id"] && in["token_type"] == nil, "refresh token introspection: %v", in)

	// The count: one reuse within the period, then the next is refused.
	rotated, err := refreshWith(rp, tok.RefreshToken)
	mustf(t, err == nil, "first use: %v", err)
	mustf(t, introspectToken(t, is, tok.RefreshToken)["active"] == true, "a rotated token within the grace is inactive")
	again, err := refreshWith(rp, tok.RefreshToken)
	mustf(t, err == nil, "reuse within the grace: %v", err)
	mustf(t, introspectToken(t, is, tok.RefreshToken)["active"] == false, "the reuse count is spent but the token introspects active")
	_, err = refreshWith(rp, tok.RefreshToken)
	mustf(t, isOAuthError(err, "invalid_grant"), "reuse beyond the count: %v", err)
	for _, tk := range []string{rotated.AccessToken, rotated.RefreshToken, again.AccessToken, again.RefreshToken} {
		mustf(t, introspectToken(t, is, tk)["active"] == false, "the chain survived a reuse beyond the count")
	}

	// The period: once introspection says inactive, the token endpoint
	// refuses the token too (before the fix it stayed active until the
	// refresh token's own expiry).
	tok = loggedIn(t, is, newBrowser(t, is), rp, "bob")
	rotated, err = refreshWith(rp, tok.RefreshToken)
	mustf(t, err == nil, "first use: %v", err)
	deadline := time.Now().Add(30 * time.Second)
	for introspectToken(t, is, tok.RefreshToken)["active"] == true {
		mustf(t, time.Now().Before(deadline), "the rotated refresh token still introspects active long after the grace period")
		time.Sleep(100 * time.Millisecond)
	}
	_, err = refreshWith(rp, tok.RefreshToken)
	mustf(t, isOAuthError(err, "invalid_grant"), "reuse after the grace period: %v", err)
	mustf(t, introspectToken(t, is, rotated.RefreshToken)["active"] == false, "the chain survived a reuse after the grace period")
}
