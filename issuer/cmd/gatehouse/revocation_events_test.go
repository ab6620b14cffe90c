package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// sseFrame is one Server-Sent Events frame of the revocation stream.
type sseFrame struct {
	ID    string
	Event string
	Data  map[string]any
}

// sseStream is an open GET /admin/revocations/events.
type sseStream struct {
	t      testing.TB
	frames chan sseFrame
	resp   *http.Response
	cancel context.CancelFunc
}

// openStream opens the revocation stream at is's admin API with the
// request headers and query given, and fails unless it answers 200 with
// an event stream.
func openStream(t testing.TB, is *testbin.Issuer, query string, hdr map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, is.AdminURL+"/admin/revocations/events"+query, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, frames: make(chan sseFrame, 1024), resp: resp, cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// read parses frames (comments skipped) until the stream ends, then
// closes frames.
func (s *sseStream) read() {
	defer close(s.frames)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var f sseFrame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f.Event != "" {
				s.frames <- f
			}
			f = sseFrame{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			f.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			f.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &f.Data)
		}
	}
}

// next returns the next frame, failing the test if none comes within d.
func (s *sseStream) next(d time.Duration) sseFrame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatal("the stream ended")
		}
		return f
	case <-time.After(d):
		s.t.Fatalf("no frame within %s", d)
	}
	return sseFrame{}
}

// revocation waits at most d for the next revocation frame, skipping
// nothing: any other frame fails the test.
func (s *sseStream) revocation(d time.Duration) sseFrame {
	s.t.Helper()
	f := s.next(d)
	if f.Event != "revocation" {
		s.t.Fatalf("got a %q frame, want a revocation: %v", f.Event, f.Data)
	}
	return f
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// revokeRFC7009 revokes token as c at is's public API.
func revokeRFC7009(t testing.TB, is *testbin.Issuer, c testbin.Client, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, is.PublicURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
}

// sqliteAndPostgres are the databases two instances share in the stream
// tests: one SQLite file, one PostgreSQL database (issue 21).
// (allBackends starts with them.)
var sqliteAndPostgres = allBackends[:2]

// within is how fast an event raised at one instance must reach a stream
// at another (issue 21's target).
const within = time.Second

// TestRevocationStreamAcrossInstances: two issuers on one database; a
// stream opened at the second sees, within a second, the token
// revocations made at the first through the public and admin APIs.
func TestRevocationStreamAcrossInstances(t *testing.T) {
	for _, db := range sqliteAndPostgres {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			a := testbin.StartIssuer(t, map[string]string{"DSN": dsn})
			b := testbin.StartIssuer(t, map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL})
			s := openStream(t, b, "", nil)
			hello := s.next(5 * time.Second)
			mustf(t, hello.Event == "hello" && hello.Data["retention"] == "24h0m0s", "first frame: %+v", hello)

			// RFC 7009 at a: the opaque access token's jti.
			c, tok := a.ClientCredentialsToken(t, "read")
			revokeRFC7009(t, a, c, tok)
			f := s.revocation(within)
			jtis := strs(f.Data["jti"])
			mustf(t, f.Data["kind"] == "token" && len(jtis) == 1 && strings.HasPrefix(jtis[0], "ot.") && f.Data["client_id"] == c.ID,
				"RFC 7009 event: %+v", f.Data)
			last, _ := strconv.ParseInt(f.ID, 10, 64)

			// DELETE /admin/oauth2/tokens?client_id= at a: every token of
			// the client issued before now.
			c2, _ := a.ClientCredentialsToken(t, "read")
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/tokens?client_id="+c2.ID, nil, nil) == http.StatusNoContent, "delete tokens")
			f = s.revocation(within)
			mustf(t, f.Data["kind"] == "token" && f.Data["client_id"] == c2.ID && f.Data["issued_before"] != nil && f.Data["jti"] == nil,
				"client tokens event: %+v", f.Data)
			id, _ := strconv.ParseInt(f.ID, 10, 64)
			mustf(t, id == last+1, "positions %d then %d", last, id)

			// b's metrics: one stream, the head it read.
			_, _, metrics := get(t, b.AdminURL+"/admin/metrics/prometheus")
			mustf(t, strings.Contains(string(metrics), "\ngatehouse_revocation_streams 1\n") &&
				strings.Contains(string(metrics), "\ngatehouse_revocation_events_head_position "+f.ID+"\n"), "metrics:\n%s", metrics)
		})
	}
}

// postTokenForm posts form to is's token endpoint as the flow client c
// and returns the status and answer.
func postTokenForm(t testing.TB, is *testbin.Issuer, c map[string]any, form url.Values) (int, map[string]any) {
	t.Helper()
	status, raw := is.PostToken(t, testbin.Client{ID: c["client_id"].(string), Secret: c["client_secret"].(string)}, form)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return status, out
}

// TestRevocationEventKinds: every kind of revocation, made at instance a
// through the admin and public APIs as a client or admin would, reaches a
// stream opened at instance b (same database: SQLite, PostgreSQL and
// MariaDB) within a second, with the selectors that match the affected
// tokens.
func TestRevocationEventKinds(t *testing.T) {
	for _, db := range allBackends {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			a := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn}))
			b := testbin.StartIssuer(t, flowEnv(map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL}))
			s := openStream(t, b, "", nil)
			mustf(t, s.next(5*time.Second).Event == "hello", "no hello")
			c := newFlowClient(t, a, map[string]any{"access_token_strategy": "jwt"})
			cid := c["client_id"].(string)
			rp := newRP(t, a, c, "openid", "offline_access")
			login := func(sub string) (*browser, map[string]any, string, string, string) {
				t.Helper()
				br := newBrowser(t, a)
				q, verifier := codeFlow(t, a, br, rp, sub)
				status, tok := postTokenForm(t, a, c, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
					"redirect_uri": {callback}, "code_verifier": {verifier}})
				mustf(t, status == 200, "code exchange: %d %v", status, tok)
				claims := jwtClaims(t, tok["access_token"].(string))
				idc := jwtClaims(t, tok["id_token"].(string))
				mustf(t, claims["sid"] != nil && claims["sid"] == idc["sid"], "access token sid %v, id token sid %v", claims["sid"], idc["sid"])
				// Introspection answers the same jti and sid.
				in := introspectToken(t, a, tok["access_token"].(string))
				mustf(t, in["jti"] == claims["jti"] && in["sid"] == claims["sid"] && in["iat"] != nil, "introspection %v", in)
				return br, tok, claims["jti"].(string), claims["sid"].(string), q.Get("code")
			}
			wantEvent := func(what, kind string, check func(d map[string]any) bool) {
				t.Helper()
				f := s.revocation(within)
				mustf(t, f.Data["kind"] == kind && f.Data["until"] != nil && check(f.Data), "%s: %+v", what, f.Data)
			}
			hasJTI := func(d map[string]any, jti string) bool { l := strs(d["jti"]); return len(l) == 1 && l[0] == jti }

			// Authorization-code replay revokes the code's tokens.
			_, _, jti, _, code := login("alice")
			status, _ := postTokenForm(t, a, c, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}})
			mustf(t, status == 400, "replayed code: %d", status)
			wantEvent("code replay", "token", func(d map[string]any) bool { return hasJTI(d, jti) && d["client_id"] == cid })

			// Refresh-token reuse revokes the family (the rotated access token).
			_, tok, _, _, _ := login("alice")
			rt := tok["refresh_token"].(string)
			status, next := postTokenForm(t, a, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			mustf(t, status == 200, "refresh: %d %v", status, next)
			newJTI := jwtClaims(t, next["access_token"].(string))["jti"].(string)
			status, _ = postTokenForm(t, a, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			mustf(t, status == 400, "reused refresh token: %d", status)
			wantEvent("refresh reuse", "token", func(d map[string]any) bool { return hasJTI(d, newJTI) })

			// Consent revoked by request id: that consent's tokens.
			_, tok, jti, _, _ = login("bob")
			var consents []map[string]any
			adminJSON(t, a, http.MethodGet, "/admin/oauth2/auth/sessions/consent?subject=bob", nil, &consents)
			mustf(t, len(consents) == 1, "consents %v", consents)
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?consent_request_id="+
				consents[0]["consent_request_id"].(string), nil, nil) == 204, "revoke consent by id")
			wantEvent("consent by id", "consent", func(d map[string]any) bool {
				return hasJTI(d, jti) && d["sub"] == "bob" && d["client_id"] == cid && d["issued_before"] != nil
			})
			mustf(t, introspectToken(t, a, tok["access_token"].(string))["active"] == false, "consent's token still active")

			// Consent revoked by subject and client.
			login("carol")
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?subject=carol&client="+cid, nil, nil) == 204, "revoke consents")
			wantEvent("consent by subject", "consent", func(d map[string]any) bool {
				return d["sub"] == "carol" && d["client_id"] == cid && d["issued_before"] != nil && d["jti"] == nil
			})

			// Login session revoked by the admin API.
			_, _, _, sid, _ := login("dave")
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/oauth2/auth/sessions/login?sid="+sid, nil, nil) == 204, "revoke session")
			wantEvent("session revoked", "session", func(d map[string]any) bool {
				return d["sid"] == sid && d["sub"] == "dave" && d["issued_before"] != nil
			})

			// Logout (RP-initiated, through the logout app).
			br, tok, _, sid, _ := login("erin")
			at, _, _ := br.visit(a.PublicURL + "/oauth2/sessions/logout?" + url.Values{"id_token_hint": {tok["id_token"].(string)}}.Encode())
			mustf(t, at != nil && at.Path == "/logout", "logout app: %v", at)
			var done map[string]any
			adminJSON(t, a, http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+at.Query().Get("logout_challenge"), nil, &done)
			br.visit(done["redirect_to"].(string))
			wantEvent("logout", "session", func(d map[string]any) bool { return d["sid"] == sid && d["sub"] == "erin" })

			// Secret rotation, then deletion of the client.
			var rotated map[string]any
			mustf(t, adminJSON(t, a, http.MethodPost, "/admin/clients/"+cid+"/secrets/rotate", nil, &rotated) == 200, "rotate: %v", rotated)
			wantEvent("secret rotated", "client", func(d map[string]any) bool {
				return d["client_id"] == cid && d["reason"] == "secret_rotated" && d["issued_before"] != nil
			})
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/clients/"+cid, nil, nil) == 204, "delete client")
			wantEvent("client deleted", "client", func(d map[string]any) bool {
				return d["client_id"] == cid && d["reason"] == "deleted" && d["issued_before"] != nil
			})

			// A key removed from a set.
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			mustf(t, adminJSON(t, a, http.MethodPost, "/admin/keys/extra", map[string]any{"alg": "ES256", "use": "sig", "kid": "extra-1"}, &set) == 201, "create key")
			mustf(t, adminJSON(t, a, http.MethodDelete, "/admin/keys/extra/extra-1", nil, nil) == 204, "delete key")
			wantEvent("key deleted", "key", func(d map[string]any) bool { return d["kid"] == "extra-1" })
		})
	}
}

// TestRevocationStreamResume: the instance serving a stream shuts down
// (its stream ends cleanly and at once, not after the drain timeout);
// revocations go on at the other instance; the client reconnects to the
// restarted instance with Last-Event-ID and gets exactly what it missed.
// After the janitor flushed the log past the client's position, the
// stream says reset.
func TestRevocationStreamResume(t *testing.T) {
	for _, db := range sqliteAndPostgres {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			a := testbin.StartIssuer(t, map[string]string{"DSN": dsn})
			bEnv := map[string]string{"DSN": dsn, "URLS_SELF_ISSUER": a.PublicURL}
			b := testbin.StartIssuer(t, bEnv)
			s := openStream(t, b, "", nil)
			mustf(t, s.next(5*time.Second).Event == "hello", "no hello")
			// revoke revokes a token of a client of its own at a and
			// returns the client's id.
			revoke := func() string {
				c, tok := a.ClientCredentialsToken(t, "read")
				revokeRFC7009(t, a, c, tok)
				return c.ID
			}
			var last string
			for range 3 {
				id := revoke()
				f := s.revocation(within)
				mustf(t, f.Data["client_id"] == id, "event %+v, want client %s", f.Data, id)
				last = f.ID
			}

			start := time.Now()
			_ = b.Stop(20 * time.Second)
			for f := range s.frames {
				t.Fatalf("a frame after shutdown: %+v", f)
			}
			mustf(t, time.Since(start) < 10*time.Second, "the shutdown waited %s for the stream", time.Since(start))

			var missed []string
			for range 3 {
				missed = append(missed, revoke())
			}
			b = testbin.StartIssuer(t, bEnv)
			s = openStream(t, b, "", map[string]string{"Last-Event-ID": last})
			hello := s.next(5 * time.Second)
			mustf(t, hello.Event == "hello" && hello.ID == last, "hello after restart: %+v", hello)
			lastN, _ := strconv.ParseInt(last, 10, 64)
			for i, id := range missed {
				f := s.revocation(within)
				mustf(t, f.Data["client_id"] == id && f.ID == strconv.FormatInt(lastN+int64(i)+1, 10), "missed event %d: %s %+v", i, f.ID, f.Data)
			}

			// The janitor flushes every event (retention 0): a client at
			// the old position is told to reset, then gets what follows.
			out, err := runToExit(t, map[string]string{}, "janitor", dsn, "--revocation-events", "--revocation-events-retention", "0s")
			mustf(t, err == nil && strings.Contains(out, "Deleted 6 expired revocation events"), "janitor: %v\n%s", err, out)
			s = openStream(t, b, "?from="+last, nil)
			hello = s.next(5 * time.Second)
			head := strconv.FormatInt(lastN+3, 10)
			mustf(t, hello.Event == "hello" && hello.ID == head && hello.Data["oldest"] == 0.0, "hello past retention: %+v", hello)
			reset := s.next(5 * time.Second)
			mustf(t, reset.Event == "reset" && reset.ID == head, "reset: %+v", reset)
			id := revoke()
			f := s.revocation(within)
			mustf(t, f.Data["client_id"] == id, "after the reset: %+v", f.Data)
		})
	}
}
