package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/scrape"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// gwSidecar is a running gatehouse-sidecar binary whose introspection
// endpoint (and so, by default, its revocation stream) is one issuer
// instance's admin API.
type gwSidecar struct {
	*testbin.Process
	HTTP  string // host:port
	admin string // the admin base URL it uses
}

// startGWSidecar runs the sidecar for the issuer iss (discovery and JWKS
// at its public URL), introspecting and subscribing at adminURL.
func startGWSidecar(t *testing.T, iss, adminURL string) *gwSidecar {
	t.Helper()
	bin := testbin.Build(t, "./sidecar/cmd/gatehouse-sidecar")
	var h string
	p := testbin.StartBound(t, testbin.SidecarBound, func() (*testbin.Process, string) {
		h = fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
		return testbin.Start(t, bin, map[string]string{"GATEHOUSE_SIDECAR_LOG_LEVEL": "info"}, "serve",
			"--issuer", iss, "--introspection-url", adminURL+"/admin/oauth2/introspect",
			"--grpc-listen", fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t)), "--http-listen", h), "http://" + h + "/health/ready"
	})
	s := &gwSidecar{Process: p, HTTP: h, admin: adminURL}
	s.waitStream(t, "connected")
	return s
}

// streamState is the revocation_stream member of /health/ready.
func (s *gwSidecar) streamState(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTP + "/health/ready")
	if err != nil {
		return "unreachable"
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m["revocation_stream"]
}

func (s *gwSidecar) waitStream(t testing.TB, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.streamState(t) != state {
		if time.Now().After(deadline) {
			t.Fatalf("sidecar %s: revocation stream never %s (%s)", s.HTTP, state, s.streamState(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allows asks the sidecar's forward-auth endpoint about tok: true for
// 200; false for the 401 of an inactive token (anything else fails).
func (s *gwSidecar) allows(t testing.TB, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Forwarded-Uri", "/orders")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return true
	case resp.StatusCode == http.StatusUnauthorized &&
		resp.Header.Get("WWW-Authenticate") == `Bearer error="invalid_token", error_description="The access token is not active."`:
		return false
	}
	t.Fatalf("sidecar %s: %d %q", s.HTTP, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	return false
}

// metric is a sample's value in the sidecar's /metrics ("" if absent).
func (s *gwSidecar) metric(t testing.TB, sample string) string {
	t.Helper()
	v, err := scrape.Sample("http://"+s.HTTP+"/metrics", sample)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gwAllowedEverywhere fails unless every sidecar allows tok.
func gwAllowedEverywhere(t *testing.T, what, tok string, sidecars []*gwSidecar) {
	t.Helper()
	for _, s := range sidecars {
		if !s.allows(t, tok) {
			t.Fatalf("%s: denied at the sidecar of %s", what, s.admin)
		}
	}
}

// gwDeniedEverywhere waits until every sidecar denies tok, at most d, and
// returns how long the last one took.
func gwDeniedEverywhere(t *testing.T, what, tok string, sidecars []*gwSidecar, since time.Time, d time.Duration) time.Duration {
	t.Helper()
	pending := append([]*gwSidecar(nil), sidecars...)
	for len(pending) > 0 {
		still := pending[:0]
		for _, s := range pending {
			if s.allows(t, tok) {
				still = append(still, s)
			}
		}
		pending = still
		if len(pending) > 0 && time.Since(since) > d {
			t.Fatalf("%s: still allowed %s after the revocation at the sidecar of %s", what, d, pending[0].admin)
		}
	}
	return time.Since(since)
}

// gwTokenKID is a JWT's header kid.
func gwTokenKID(t *testing.T, tok string) string {
	t.Helper()
	hdr, _ := jwtParts(t, tok)
	kid, _ := hdr["kid"].(string)
	mustf(t, kid != "", "no kid in the token header")
	return kid
}

// gwUserToken runs a code flow as subject for a new JWT client of is and
// returns the client and the access token.
func gwUserToken(t *testing.T, is *testbin.Issuer, subject string, c map[string]any) (map[string]any, string) {
	t.Helper()
	if c == nil {
		c = newFlowClient(t, is, map[string]any{"access_token_strategy": "jwt"})
	}
	rp := newRP(t, is, c, "openid")
	q, verifier := codeFlow(t, is, newBrowser(t, is), rp, subject)
	tok, err := rp.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return c, tok.AccessToken
}

// TestRevocationReachesEverySidecar is issue 21's acceptance against the
// real binaries: two issuer instances on one database (an SQLite file;
// PostgreSQL when TEST_DATABASE_POSTGRES is set), three sidecars
// subscribed to different instances. For each kind of revocation (RFC 7009
// of a JWT and of an opaque token, admin deletion of a client's tokens,
// client deletion, secret rotation, consent and login-session revocation,
// signing-key removal), the
// affected token is denied at every sidecar (within 5 s here; the latency
// figures are in docs/benchmarks.md) and unaffected ones stay allowed; a
// sidecar restarted catches up from the retained backlog; a sidecar cut
// off while the events it missed were flushed is reset and drops its
// caches; an issuer instance restarted loses no event.
func TestRevocationReachesEverySidecar(t *testing.T) {
	const within = 5 * time.Second
	for _, db := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", sqliteDSN}, {"postgres", migratedPostgres}} {
		t.Run(db.name, func(t *testing.T) {
			outer := t // processes started in a subtest outlive it
			dsn := db.dsn(t)
			a := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn}))
			b := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL}))
			// The third sidecar reaches b's admin API through a proxy that
			// can cut it off.
			proxy := testbin.StartProxy(t, strings.TrimPrefix(b.AdminURL, "http://"))
			sidecars := []*gwSidecar{
				startGWSidecar(t, a.PublicURL, a.AdminURL),
				startGWSidecar(t, a.PublicURL, b.AdminURL),
				startGWSidecar(t, a.PublicURL, "http://"+proxy.Addr()),
			}
			jwtClient := func(is *testbin.Issuer) testbin.Client {
				return is.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"},
					"scope": "read", "access_token_strategy": "jwt"})
			}
			ccToken := func(is *testbin.Issuer, c testbin.Client) string {
				return is.Token(t, c, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}).AccessToken
			}
			c1, c2 := jwtClient(a), jwtClient(b)
			bystander := ccToken(a, c2) // a token no event names
			revokeAt := func(what string, tok string, unaffected []string, revoke func()) {
				t.Helper()
				gwAllowedEverywhere(t, what, tok, sidecars)
				start := time.Now()
				revoke()
				took := gwDeniedEverywhere(t, what, tok, sidecars, start, within)
				t.Logf("%s: denied at the three sidecars %s after the revocation", what, took.Round(time.Millisecond))
				for _, u := range append(unaffected, bystander) {
					gwAllowedEverywhere(t, what+" (unaffected token)", u, sidecars)
				}
			}

			t.Run("token: RFC 7009 at one instance", func(t *testing.T) {
				tok, other := ccToken(a, c1), ccToken(a, c1)
				revokeAt("RFC 7009 (JWT)", tok, []string{other}, func() { revokeRFC7009(t, b, c1, tok) })
			})
			t.Run("token: RFC 7009 of an opaque token", func(t *testing.T) {
				op := a.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read", "access_token_strategy": "opaque"})
				tok := ccToken(a, op)
				// The sidecar matches the jti introspection answers.
				jti, _ := introspectToken(t, a, tok)["jti"].(string)
				mustf(t, strings.HasPrefix(jti, "ot."), "introspection answers jti %q", jti)
				revokeAt("RFC 7009 (opaque)", tok, []string{ccToken(a, op)}, func() { revokeRFC7009(t, a, op, tok) })
			})
			t.Run("token: admin delete of a client's tokens", func(t *testing.T) {
				c := jwtClient(a)
				tok := ccToken(b, c)
				revokeAt("DELETE /admin/oauth2/tokens", tok, nil, func() {
					mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/tokens?client_id="+url.QueryEscape(c.ID), nil, nil) == http.StatusNoContent, "delete tokens")
				})
			})
			t.Run("client deleted", func(t *testing.T) {
				c := jwtClient(a)
				tok := ccToken(a, c)
				revokeAt("DELETE /admin/clients", tok, nil, func() {
					mustf(t, adminJSON(t, b, http.MethodDelete, "/admin/clients/"+url.PathEscape(c.ID), nil, nil) == http.StatusNoContent, "delete client")
				})
			})
			t.Run("consent revoked", func(t *testing.T) {
				c, alice := gwUserToken(t, a, "alice", nil)
				_, bob := gwUserToken(t, a, "bob", c)
				revokeAt("consent revoked", alice, []string{bob}, func() {
					q := url.Values{"subject": {"alice"}, "client": {c["client_id"].(string)}}
					mustf(t, adminJSON(t, b, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?"+q.Encode(), nil, nil) == http.StatusNoContent, "revoke consent")
				})
			})
			t.Run("login session revoked", func(t *testing.T) {
				_, carol := gwUserToken(t, a, "carol", nil)
				_, dave := gwUserToken(t, a, "dave", nil)
				_, claims := jwtParts(t, carol)
				mustf(t, claims["sid"] != nil, "the access token carries no sid")
				revokeAt("login session revoked", carol, []string{dave}, func() {
					mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/auth/sessions/login?subject=carol", nil, nil) == http.StatusNoContent, "revoke login sessions")
				})
			})
			t.Run("client secret rotated", func(t *testing.T) {
				c := jwtClient(a)
				tok := ccToken(a, c)
				revokeAt("secret rotated", tok, nil, func() {
					mustf(t, adminJSON(t, b, http.MethodPost, "/admin/clients/"+url.PathEscape(c.ID)+"/secrets/rotate", nil, nil) == http.StatusOK, "rotate secret")
				})
			})
			t.Run("signing key removed", func(t *testing.T) {
				old := ccToken(a, c1)
				kid := gwTokenKID(t, old)
				mustf(t, adminJSON(t, a, http.MethodPost, "/admin/keys/hydra.jwt.access-token", map[string]string{"alg": "ES256", "use": "sig"}, nil) < 300, "new key")
				fresh := ccToken(a, c1)
				mustf(t, gwTokenKID(t, fresh) != kid, "the new key does not sign")
				bystander = ccToken(a, c2) // the old one is signed by the removed key
				revokeAt("key removed", old, []string{fresh}, func() {
					mustf(t, adminJSON(t, b, http.MethodDelete, "/admin/keys/hydra.jwt.access-token/"+url.PathEscape(kid), nil, nil) == http.StatusNoContent, "delete key")
				})
			})

			t.Run("sidecar restarted mid-stream catches up", func(t *testing.T) {
				s := sidecars[1]
				tok := ccToken(a, c1)
				gwAllowedEverywhere(t, "before", tok, sidecars)
				_ = s.Stop(10 * time.Second)
				revokeRFC7009(t, a, c1, tok)
				restarted := startGWSidecar(outer, a.PublicURL, b.AdminURL)
				sidecars[1] = restarted
				gwDeniedEverywhere(t, "revoked while a sidecar was down", tok, []*gwSidecar{restarted}, time.Now(), within)
				gwAllowedEverywhere(t, "after restart", bystander, sidecars)
			})

			t.Run("issuer instance restarted loses no event", func(t *testing.T) {
				tok := ccToken(a, c1)
				gwAllowedEverywhere(t, "before", tok, sidecars)
				_ = b.Stop(10 * time.Second)
				sidecars[1].waitStream(t, "degraded")
				revokeRFC7009(t, a, c1, tok) // while b is down
				b = testbin.StartIssuer(outer, flowEnv(map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL,
					"SERVE_PUBLIC_PORT": b.Env["SERVE_PUBLIC_PORT"], "SERVE_ADMIN_PORT": b.Env["SERVE_ADMIN_PORT"]}))
				sidecars[1].waitStream(t, "connected")
				gwDeniedEverywhere(t, "revoked while an issuer instance was down", tok, sidecars, time.Now(), within)
			})

			t.Run("sidecar cut off past the retention reloads", func(t *testing.T) {
				s := sidecars[2]
				op := a.RegisterClient(t, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "read", "access_token_strategy": "opaque"})
				opaque := ccToken(a, op)
				mustf(t, s.allows(t, opaque), "opaque token denied")
				before := s.metric(t, "gatehouse_sidecar_introspection_duration_seconds_count{issuer=\""+a.PublicURL+"\",result=\"active\"}")
				proxy.Cut()
				s.waitStream(t, "degraded")
				revokeRFC7009(t, a, c1, ccToken(a, c1)) // an event the sidecar never sees
				// The janitor flushes every event (a retention of 1ms).
				bin := testbin.Build(t, "./issuer/cmd/gatehouse")
				cmd := exec.Command(bin, "janitor", "-e", "--revocation-events", "--revocation-events-retention", "1ms")
				cmd.Env = []string{"DSN=" + dsn, "SECRETS_SYSTEM=" + testbin.TestSecret}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("janitor: %v\n%s", err, out)
				}
				proxy.Restore()
				s.waitStream(t, "connected")
				deadline := time.Now().Add(within)
				for s.metric(t, `gatehouse_sidecar_revocation_cache_resets_total{reason="reset"}`) != "1" {
					mustf(t, time.Now().Before(deadline), "no reset counted: %q", s.metric(t, `gatehouse_sidecar_revocation_cache_resets_total{reason="reset"}`))
					time.Sleep(20 * time.Millisecond)
				}
				// Its caches were dropped: the opaque token is introspected again.
				mustf(t, s.allows(t, opaque), "opaque token denied after the reset")
				after := s.metric(t, "gatehouse_sidecar_introspection_duration_seconds_count{issuer=\""+a.PublicURL+"\",result=\"active\"}")
				mustf(t, after != before, "the cached introspection answer survived the reset (%s → %s)", before, after)
				for _, other := range sidecars[:2] {
					mustf(t, other.metric(t, `gatehouse_sidecar_revocation_cache_resets_total{reason="reset"}`) == "", "a connected sidecar was reset")
				}
			})
		})
	}
}

// jwtParts decodes a JWT's header and claims without verifying it.
func jwtParts(t *testing.T, tok string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("JWT part %d", i)
		}
	}
	return hdr, claims
}
