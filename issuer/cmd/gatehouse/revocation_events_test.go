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

// within is how fast an event raised at one instance must reach a stream
// at another (issue 21's target).
const within = time.Second

// TestRevocationStreamAcrossInstances: two issuers on one database; a
// stream opened at the second sees, within a second, the token
// revocations made at the first through the public and admin APIs.
func TestRevocationStreamAcrossInstances(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", sqliteDSN}, {"postgres", migratedPostgres}} {
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
		})
	}
}
