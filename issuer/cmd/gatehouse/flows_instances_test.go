package main_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestFlowAcrossInstances: two issuers on one database, the browser at
// one and the login and consent apps at the other (or deciding again
// there). Each instance remembers the flows it wrote last instead of
// reading them back before a compare-and-set (issuer/flow/recent.go); the
// database's state must still decide every step.
func TestFlowAcrossInstances(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", sqliteDSN}, {"postgres", migratedPostgres}} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			a := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn}))
			b := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL}))
			// onB sends a public URL of a (the issuer URL both share) to b.
			onB := func(raw string) string {
				u, _ := url.Parse(raw)
				u.Host = "127.0.0.1:" + b.Env["SERVE_PUBLIC_PORT"]
				return u.String()
			}
			c := newFlowClient(t, a, nil)
			rp := newRP(t, a, c, "openid", "offline_access")
			var verifier string
			start := func(br *browser) (challenge string) {
				t.Helper()
				verifier, _ = pkcePair()
				at, _, body := br.visit(rp.conf.AuthCodeURL(randomState(), oauth2.S256ChallengeOption(verifier), oidc.Nonce(randomState())))
				mustf(t, at != nil && at.Path == "/login", "expected the login app: %v %s", at, body)
				return at.Query().Get("login_challenge")
			}
			accept := func(is *testbin.Issuer, kind, challenge string, body map[string]any) (int, string) {
				t.Helper()
				var out map[string]any
				code := adminJSON(t, is, http.MethodPut, "/admin/oauth2/auth/requests/"+kind+"/accept?"+kind+"_challenge="+challenge, body, &out)
				to, _ := out["redirect_to"].(string)
				return code, to
			}
			login := map[string]any{"subject": "alice"}
			consent := map[string]any{"grant_scope": []string{"openid", "offline_access"}}

			// 1. Both apps decide at b; the browser stays at a, which
			// wrote the challenges and remembers them undecided.
			br := newBrowser(t, a)
			code, to := accept(b, "login", start(br), login)
			mustf(t, code == 200, "login accept at b: %d", code)
			at, _, body := br.visit(to)
			mustf(t, at != nil && at.Path == "/consent", "login verifier at a after accept at b: %v %s", at, body)
			code, to = accept(b, "consent", at.Query().Get("consent_challenge"), consent)
			mustf(t, code == 200, "consent accept at b: %d", code)
			at, _, body = br.visit(to)
			mustf(t, at != nil && at.Path == "/callback" && at.Query().Get("code") != "", "consent verifier at a after accept at b: %v %s", at, body)
			tok, err := rp.conf.Exchange(context.Background(), at.Query().Get("code"), oauth2.VerifierOption(verifier))
			mustf(t, err == nil && tok.RefreshToken != "", "code exchange: %v", err)

			// 2. The app decides at a, then again at b: the last decision
			// counts, the first verifier is spent.
			br = newBrowser(t, a)
			ch := start(br)
			_, first := accept(a, "login", ch, login)
			_, second := accept(b, "login", ch, login)
			at, _, _ = br.visit(first)
			mustf(t, at != nil && at.Path == "/oauth2/fallbacks/error", "superseded verifier: %v", at)
			at, _, body = br.visit(second)
			mustf(t, at != nil && at.Path == "/consent", "last decision: %v %s", at, body)

			// 3. The challenge is used at b; a, which accepted it last,
			// must not accept it again or use it a second time.
			br = newBrowser(t, a)
			ch = start(br)
			_, to = accept(a, "login", ch, login)
			at, _, body = br.visit(onB(to))
			mustf(t, at != nil && at.Path == "/consent", "login verifier at b: %v %s", at, body)
			code, _ = accept(a, "login", ch, login)
			mustf(t, code == http.StatusConflict, "accept at a of a challenge used at b: %d", code)
			at, _, _ = br.visit(to)
			mustf(t, at != nil && at.Path == "/oauth2/fallbacks/error", "verifier used at b, replayed at a: %v", at)
			var lr map[string]any
			mustf(t, adminJSON(t, a, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+ch, nil, &lr) == http.StatusGone,
				"GET at a of a challenge used at b: %v", lr)
		})
	}
}
