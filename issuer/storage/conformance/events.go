package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// The revocation event log: recorded in the transaction of the change
// that raises it, positions without gaps in commit order, listed after a
// position, flushed by age.

func event(kind string, at time.Time, data string) *storage.RevocationEvent {
	return &storage.RevocationEvent{Kind: kind, Time: at, Until: at.Add(time.Hour), Data: json.RawMessage(data)}
}

// events lists every event after 0.
func events(t *testing.T, s storage.Storage) []storage.RevocationEvent {
	t.Helper()
	evs, err := s.RevocationEvents().List(ctx(), 0, 1000)
	must(t, err)
	return evs
}

func wantKinds(t *testing.T, s storage.Storage, kinds ...string) []storage.RevocationEvent {
	t.Helper()
	evs := events(t, s)
	var got []string
	for i, e := range evs {
		got = append(got, e.Kind)
		if e.Position != int64(i+1) {
			t.Fatalf("event %d has position %d: %+v", i, e.Position, evs)
		}
	}
	if !slices.Equal(got, kinds) {
		t.Fatalf("events %v, want %v", got, kinds)
	}
	return evs
}

// testEventsRecorded: every revoking method records the event it is
// given (or builds), with what the change touched, and nothing when it
// changes nothing.
func testEventsRecorded(t *testing.T, s storage.Storage) {
	b, err := s.RevocationEvents().Bounds(ctx())
	must(t, err)
	if b != (storage.EventBounds{}) {
		t.Fatalf("empty log bounds %+v", b)
	}
	ts := s.Tokens()
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-1", "req-1", "c1", base.Add(time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindRefreshToken, "rt-1", "req-1", "c1", base.Add(48*time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-2", "req-2", "c1", base.Add(2*time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-3", "req-3", "c2", base.Add(3*time.Hour))))

	// Revoke: the token as it was; again: no rows, and no event when
	// the func returns none.
	var seen [][]storage.Token
	ev := func(kind string) storage.RevocationFunc {
		return func(rows []storage.Token) (*storage.RevocationEvent, error) {
			seen = append(seen, rows)
			if len(rows) == 0 {
				return nil, nil
			}
			return event(kind, base, fmt.Sprintf(`{"n":%d}`, len(rows))), nil
		}
	}
	must(t, ts.Revoke(ctx(), storage.KindAccessToken, "at-2", ev("one")))
	must(t, ts.Revoke(ctx(), storage.KindAccessToken, "at-2", ev("again")))
	wantErr(t, ts.Revoke(ctx(), storage.KindAccessToken, "nope", ev("none")), storage.ErrNotFound)
	if len(seen) != 2 || len(seen[0]) != 1 || seen[0][0].Signature != "at-2" || !seen[0][0].Active || len(seen[1]) != 0 {
		t.Fatalf("Revoke handed %+v", seen)
	}
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "at-2"); got.Active {
		t.Fatal("Revoke left the token active")
	}
	// RevokeRequest: the grant's active tokens, every kind.
	seen = nil
	must(t, ts.RevokeRequest(ctx(), "c1", "req-1", ev("request")))
	if len(seen) != 1 || len(seen[0]) != 2 {
		t.Fatalf("RevokeRequest handed %+v", seen)
	}
	sigs := []string{seen[0][0].Signature, seen[0][1].Signature}
	slices.Sort(sigs)
	if !slices.Equal(sigs, []string{"at-1", "rt-1"}) {
		t.Fatalf("RevokeRequest rows %v", sigs)
	}
	// RevokeClient: no rows; an event without Until gets the latest
	// expiry of the stored access tokens.
	n, err := ts.RevokeClient(ctx(), "c2", func(rows []storage.Token) (*storage.RevocationEvent, error) {
		if rows != nil {
			t.Errorf("RevokeClient handed rows: %+v", rows)
		}
		return &storage.RevocationEvent{Kind: "client-tokens", Time: base, Data: json.RawMessage(`{"client_id":"c2"}`)}, nil
	})
	must(t, err)
	if n != 1 {
		t.Fatalf("RevokeClient revoked %d", n)
	}
	evs := wantKinds(t, s, "one", "request", "client-tokens")
	sameJSON(t, "data", evs[0].Data, json.RawMessage(`{"n":1}`))
	sameTime(t, "time", evs[0].Time, base)
	sameTime(t, "until", evs[0].Until, base.Add(time.Hour))
	sameTime(t, "derived until", evs[2].Until, base.Add(3*time.Hour))

	// Sessions, consents, clients, keys.
	ls := s.LoginSessions()
	must(t, ls.Create(ctx(), storage.LoginSession{ID: "s1", Subject: "alice", AuthenticatedAt: base}))
	must(t, ls.Delete(ctx(), "s1", event("session", base, `{"sid":"s1"}`)))
	wantErr(t, ls.Delete(ctx(), "s1", event("session-again", base, `{}`)), storage.ErrNotFound)

	cs := s.ConsentSessions()
	must(t, cs.Create(ctx(), storage.ConsentSession{ID: "grant-1", Subject: "alice", ClientID: "c3", HandledAt: base}))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-4", "grant-1", "c3", base.Add(time.Hour))))
	var removed []storage.ConsentSession
	var revoked []storage.Token
	n, err = cs.Revoke(ctx(), storage.ConsentFilter{Subject: "alice"}, func(r []storage.ConsentSession, tk []storage.Token) (*storage.RevocationEvent, error) {
		removed, revoked = r, tk
		return event("consent", base, `{"sub":"alice"}`), nil
	})
	must(t, err)
	if n != 1 || len(removed) != 1 || removed[0].ID != "grant-1" || len(revoked) != 1 || revoked[0].Signature != "at-4" {
		t.Fatalf("consent Revoke: %d %+v %+v", n, removed, revoked)
	}
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "at-4"); got.Active {
		t.Fatal("consent Revoke left its token active")
	}
	n, err = cs.Revoke(ctx(), storage.ConsentFilter{Subject: "alice"}, func([]storage.ConsentSession, []storage.Token) (*storage.RevocationEvent, error) {
		t.Error("consent Revoke called ev with nothing removed")
		return nil, nil
	})
	must(t, err)
	if n != 0 {
		t.Fatalf("second consent Revoke removed %d", n)
	}

	cl := s.Clients()
	must(t, cl.Create(ctx(), storage.Client{ID: "c4", SecretHash: "h1", CreatedAt: base, UpdatedAt: base}))
	_, err = cl.Update(ctx(), "c4", func(c *storage.Client) error { c.Name = "renamed"; return nil },
		func(before, after storage.Client) *storage.RevocationEvent {
			if before.SecretHash != after.SecretHash {
				return event("rotated-early", base, `{}`)
			}
			return nil
		})
	must(t, err)
	_, err = cl.Update(ctx(), "c4", func(c *storage.Client) error { c.SecretHash = "h2"; return nil },
		func(before, after storage.Client) *storage.RevocationEvent {
			if before.SecretHash == "h1" && after.SecretHash == "h2" && after.Name == "renamed" {
				return event("rotated", base, `{}`)
			}
			return nil
		})
	must(t, err)
	must(t, cl.Delete(ctx(), "c4", event("client", base, `{"client_id":"c4"}`)))
	wantErr(t, cl.Delete(ctx(), "c4", event("client-again", base, `{}`)), storage.ErrNotFound)

	ks := s.Keys()
	must(t, ks.Add(ctx(), key("set-1", "k1", base, true), key("set-1", "k2", base, true), key("set-2", "k3", base, false)))
	perKey := func(removed []storage.Key) []storage.RevocationEvent {
		var out []storage.RevocationEvent
		for _, k := range removed {
			out = append(out, *event("key", base, fmt.Sprintf(`{"kid":%q}`, k.KID)))
		}
		return out
	}
	must(t, ks.Delete(ctx(), "set-1", "k1", perKey))
	wantErr(t, ks.Delete(ctx(), "set-1", "k1", perKey), storage.ErrNotFound)
	must(t, ks.Add(ctx(), key("set-2", "k4", base, false)))
	must(t, ks.DeleteSet(ctx(), "set-2", perKey))
	// Replace: the kids no longer in the set (k2), not the kept one (k5
	// replaced by a key with the same kid).
	must(t, ks.Add(ctx(), key("set-1", "k5", base, false)))
	must(t, ks.Replace(ctx(), "set-1", []storage.Key{key("set-1", "k5", base, true), key("set-1", "k6", base, true)}, perKey))
	evs = wantKinds(t, s, "one", "request", "client-tokens", "session", "consent", "rotated", "client", "key", "key", "key", "key")
	var kids []string
	for _, e := range evs[7:] {
		var d struct{ KID string }
		must(t, json.Unmarshal(e.Data, &d))
		kids = append(kids, d.KID)
	}
	slices.Sort(kids[1:3])
	if !slices.Equal(kids, []string{"k1", "k3", "k4", "k2"}) {
		t.Fatalf("key events %v", kids)
	}
	b, err = s.RevocationEvents().Bounds(ctx())
	must(t, err)
	if b != (storage.EventBounds{Head: 11, Oldest: 1}) {
		t.Fatalf("bounds %+v", b)
	}
}

// testEventsAtomic: a change whose event cannot be built is not made,
// and no event is recorded.
func testEventsAtomic(t *testing.T, s storage.Storage) {
	boom := errors.New("boom")
	fail := func([]storage.Token) (*storage.RevocationEvent, error) { return nil, boom }
	ts := s.Tokens()
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-1", "req-1", "c1", base.Add(time.Hour))))
	wantErr(t, ts.Revoke(ctx(), storage.KindAccessToken, "at-1", fail), boom)
	wantErr(t, ts.RevokeRequest(ctx(), "c1", "req-1", fail), boom)
	_, err := ts.RevokeClient(ctx(), "c1", fail)
	wantErr(t, err, boom)
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "at-1"); !got.Active {
		t.Fatal("a failed revocation deactivated the token")
	}
	cs := s.ConsentSessions()
	must(t, cs.Create(ctx(), storage.ConsentSession{ID: "req-1", Subject: "alice", ClientID: "c1", HandledAt: base}))
	_, err = cs.Revoke(ctx(), storage.ConsentFilter{ID: "req-1"}, func([]storage.ConsentSession, []storage.Token) (*storage.RevocationEvent, error) {
		return nil, boom
	})
	wantErr(t, err, boom)
	if _, err := cs.Get(ctx(), "req-1"); err != nil {
		t.Fatalf("a failed consent revocation removed the consent: %v", err)
	}
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "at-1"); !got.Active {
		t.Fatal("a failed consent revocation deactivated its token")
	}
	// A failing change records no event: the client update's fn fails.
	cl := s.Clients()
	must(t, cl.Create(ctx(), storage.Client{ID: "c1", SecretHash: "h1", CreatedAt: base, UpdatedAt: base}))
	_, err = cl.Update(ctx(), "c1", func(c *storage.Client) error { c.SecretHash = "h2"; return boom },
		func(storage.Client, storage.Client) *storage.RevocationEvent { return event("rotated", base, `{}`) })
	wantErr(t, err, boom)
	wantKinds(t, s)
	b, err := s.RevocationEvents().Bounds(ctx())
	must(t, err)
	if b != (storage.EventBounds{}) {
		t.Fatalf("bounds after failed changes %+v", b)
	}
	// The next event still gets position 1: nothing was taken.
	must(t, ts.Revoke(ctx(), storage.KindAccessToken, "at-1", func([]storage.Token) (*storage.RevocationEvent, error) {
		return event("ok", base, `{}`), nil
	}))
	wantKinds(t, s, "ok")
}

// testEventsConcurrent: concurrent writers get every position once, and
// a reader polling after the last position it saw never skips one (a
// later commit never shows up before an earlier position).
func testEventsConcurrent(t *testing.T, s storage.Storage) {
	const writers, each = 8, 10
	ts := s.Tokens()
	for w := range writers {
		for i := range each {
			must(t, ts.Create(ctx(), token(storage.KindAccessToken, fmt.Sprintf("at-%d-%d", w, i), fmt.Sprintf("req-%d-%d", w, i), "c", base.Add(time.Hour))))
		}
	}
	done := make(chan struct{})
	var seen []int64
	var readErr error
	go func() {
		defer close(done)
		var last int64
		for len(seen) < writers*each {
			evs, err := s.RevocationEvents().List(ctx(), last, 7)
			if err != nil {
				readErr = err
				return
			}
			for _, e := range evs {
				seen = append(seen, e.Position)
				last = e.Position
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- ts.Revoke(ctx(), storage.KindAccessToken, fmt.Sprintf("at-%d-%d", w, i), func([]storage.Token) (*storage.RevocationEvent, error) {
					return event("token", base, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)), nil
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the reader saw %d of %d events", len(seen), writers*each)
	}
	must(t, readErr)
	for i, p := range seen {
		if p != int64(i+1) {
			t.Fatalf("the reader saw positions %v", seen)
		}
	}
}

// testEventsListAndFlush: List pages after a position; FlushExpired
// deletes by age, oldest first, and keeps the head.
func testEventsListAndFlush(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	for i := range 5 {
		sig := fmt.Sprintf("at-%d", i)
		must(t, ts.Create(ctx(), token(storage.KindAccessToken, sig, sig, "c", base.Add(time.Hour))))
		at := base.Add(time.Duration(i) * time.Minute)
		must(t, ts.Revoke(ctx(), storage.KindAccessToken, sig, func([]storage.Token) (*storage.RevocationEvent, error) {
			return event("token", at, `{}`), nil
		}))
	}
	ev := s.RevocationEvents()
	page, err := ev.List(ctx(), 2, 2)
	must(t, err)
	if len(page) != 2 || page[0].Position != 3 || page[1].Position != 4 {
		t.Fatalf("List(2, 2): %+v", page)
	}
	page, err = ev.List(ctx(), 5, 0)
	must(t, err)
	if len(page) != 0 {
		t.Fatalf("List after the head: %+v", page)
	}
	n, err := ev.FlushExpired(ctx(), base.Add(3*time.Minute), 2)
	must(t, err)
	if n != 2 {
		t.Fatalf("flushed %d, want 2 (the limit)", n)
	}
	n, err = ev.FlushExpired(ctx(), base.Add(3*time.Minute), 100)
	must(t, err)
	if n != 1 {
		t.Fatalf("flushed %d, want 1", n)
	}
	b, err := ev.Bounds(ctx())
	must(t, err)
	if b != (storage.EventBounds{Head: 5, Oldest: 4}) {
		t.Fatalf("bounds after flush %+v", b)
	}
	_, err = ev.FlushExpired(ctx(), base.Add(time.Hour), 0)
	must(t, err)
	b, err = ev.Bounds(ctx())
	must(t, err)
	if b != (storage.EventBounds{Head: 5}) {
		t.Fatalf("bounds after flushing all %+v", b)
	}
	// The next event continues after the head.
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-x", "req-x", "c", base.Add(time.Hour))))
	must(t, ts.Revoke(ctx(), storage.KindAccessToken, "at-x", func([]storage.Token) (*storage.RevocationEvent, error) {
		return event("token", base, `{}`), nil
	}))
	page, err = ev.List(ctx(), 0, 0)
	must(t, err)
	if len(page) != 1 || page[0].Position != 6 {
		t.Fatalf("after a flush: %+v", page)
	}
}

// testEventsUntilBound: an event recorded without Until gets a time no
// earlier than the latest access token's expiry and no later than the
// latest token's, also when over a thousand refresh tokens outlive every
// access token.
func testEventsUntilBound(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-1", "req-1", "c", base.Add(2*time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at-2", "req-2", "c", base.Add(time.Hour))))
	for i := range 1100 {
		must(t, ts.Create(ctx(), token(storage.KindRefreshToken, fmt.Sprintf("rt-%04d", i), fmt.Sprintf("req-r%d", i), "c",
			base.Add(100*time.Hour+time.Duration(i)*time.Second))))
	}
	_, err := ts.RevokeClient(ctx(), "c", func([]storage.Token) (*storage.RevocationEvent, error) {
		return &storage.RevocationEvent{Kind: "client", Time: base, Data: json.RawMessage(`{}`)}, nil
	})
	must(t, err)
	evs := wantKinds(t, s, "client")
	if u := evs[0].Until; u.Before(base.Add(2*time.Hour)) || u.After(base.Add(100*time.Hour+1099*time.Second)) {
		t.Fatalf("until %v: not between the latest access token's expiry and the latest token's", u)
	}
}
