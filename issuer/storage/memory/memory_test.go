package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/conformance"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

var ctx = context.Background()

// at is a fixed instant with nanoseconds, which the SQL backends do not keep.
var at = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

func newStore(t *testing.T, o memory.Options) *memory.Store {
	t.Helper()
	s := memory.New(o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Storage { return newStore(t, memory.Options{}) })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestValuesAreCopied: nothing a caller holds (what it stored, what it
// read, what an updater saw) shares memory with the stored rows.
func TestValuesAreCopied(t *testing.T) {
	s := newStore(t, memory.Options{})
	meta := []byte(`{"a":1}`)
	hashes := []string{"h1"}
	must(t, s.Clients().Create(ctx, storage.Client{ID: "c", Metadata: meta, RotatedSecretHashes: hashes}))
	meta[2], hashes[0] = 'X', "changed"

	got, err := s.Clients().Get(ctx, "c")
	must(t, err)
	if string(got.Metadata) != `{"a":1}` || got.RotatedSecretHashes[0] != "h1" {
		t.Fatalf("a change to the caller's value after Create reached the store: %+v", got)
	}
	got.Metadata[2], got.RotatedSecretHashes[0] = 'Y', "changed"

	var seen *storage.Client
	_, err = s.Clients().Update(ctx, "c", func(c *storage.Client) error { seen = c; return nil }, nil)
	must(t, err)
	if string(seen.Metadata) != `{"a":1}` || seen.RotatedSecretHashes[0] != "h1" {
		t.Fatalf("a change to a value read with Get reached the store: %+v", seen)
	}
	seen.Metadata[2] = 'Z'
	if got, _ := s.Clients().Get(ctx, "c"); string(got.Metadata) != `{"a":1}` {
		t.Fatalf("a change through the updater's pointer after Update reached the store: %s", got.Metadata)
	}

	key := storage.Key{Set: "s", KID: "k", PublicJWK: json.RawMessage(`{"kid":"k"}`), PrivateEncrypted: []byte{1, 2}, CreatedAt: at}
	must(t, s.Keys().Add(ctx, key))
	key.PrivateEncrypted[0] = 9
	list, err := s.Keys().List(ctx, "s")
	must(t, err)
	list[0].PublicJWK[2] = 'X'
	if k, _ := s.Keys().Get(ctx, "s", "k"); k.PrivateEncrypted[0] != 1 || string(k.PublicJWK) != `{"kid":"k"}` {
		t.Fatalf("stored key shared memory with a caller: %+v", k)
	}

	cs := storage.ConsentSession{ID: "cs", Subject: "alice", GrantedScope: []string{"openid"}}
	must(t, s.ConsentSessions().Create(ctx, cs))
	cs.GrantedScope[0] = "admin"
	l, err := s.ConsentSessions().List(ctx, storage.ConsentFilter{Subject: "alice"})
	must(t, err)
	l[0].GrantedScope[0] = "admin"
	if c, _ := s.ConsentSessions().Get(ctx, "cs"); c.GrantedScope[0] != "openid" {
		t.Fatalf("stored consent shared memory with a caller: %+v", c)
	}
}

// TestTimesAndEmptyValuesAsSQL: values come back as the SQL backends
// return them (times in UTC to the microsecond, empty lists and documents
// as nil), so a test that passes on this store does not depend on
// precision or shapes production does not keep.
func TestTimesAndEmptyValuesAsSQL(t *testing.T) {
	s := newStore(t, memory.Options{})
	must(t, s.Tokens().Create(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: "t", IssuedAt: at, ExpiresAt: at, Data: json.RawMessage{}}))
	tk, err := s.Tokens().Get(ctx, storage.KindAccessToken, "t")
	must(t, err)
	want := at.Truncate(time.Microsecond).UTC()
	if tk.IssuedAt != want || tk.ExpiresAt != want || tk.Data != nil {
		t.Fatalf("token came back as %+v, want times %v and nil data", tk, want)
	}
	must(t, s.ConsentSessions().Create(ctx, storage.ConsentSession{ID: "c", GrantedScope: []string{}, GrantedAudience: []string{}}))
	c, err := s.ConsentSessions().Get(ctx, "c")
	must(t, err)
	if c.GrantedScope != nil || c.GrantedAudience != nil || !c.HandledAt.IsZero() || !c.ExpiresAt.IsZero() {
		t.Fatalf("consent came back as %+v", c)
	}
}

// TestRedeemRunsOnTheCallersRead: with a read, Redeem runs fn on it and
// stores the result if the token is still as read; if the token changed,
// fn runs again on the token as it is now, as on PostgreSQL. A read of
// another token is ignored.
func TestRedeemRunsOnTheCallersRead(t *testing.T) {
	s := newStore(t, memory.Options{})
	ts := s.Tokens()
	mk := func(sig string) storage.Token {
		return storage.Token{Kind: storage.KindRefreshToken, Signature: sig, RequestID: "r-" + sig, ClientID: "c", Active: true,
			ExpiresAt: at.Add(time.Hour), Data: json.RawMessage(`{"v":1}`)}
	}
	use := func(calls *[]string) func(*storage.Token) error {
		return func(tk *storage.Token) error {
			*calls = append(*calls, string(tk.Data))
			if !tk.Active {
				return errors.New("used")
			}
			tk.Active, tk.Data = false, json.RawMessage(`{"used":true}`)
			return nil
		}
	}

	must(t, ts.Create(ctx, mk("fresh")))
	read, err := ts.Get(ctx, storage.KindRefreshToken, "fresh")
	must(t, err)
	var calls []string
	_, err = ts.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "fresh", Read: &read, Update: use(&calls)})
	must(t, err)
	if len(calls) != 1 {
		t.Fatalf("fn ran %d times on an unchanged read, want 1", len(calls))
	}
	if !read.Active || string(read.Data) != `{"v":1}` {
		t.Fatalf("Redeem wrote to the caller's read: %+v", read)
	}

	// The token changed after the read: fn runs on the read, its result
	// is not stored, and it runs again on the current token.
	must(t, ts.Create(ctx, mk("stale")))
	read, err = ts.Get(ctx, storage.KindRefreshToken, "stale")
	must(t, err)
	_, err = ts.Update(ctx, storage.KindRefreshToken, "stale", func(tk *storage.Token) error {
		tk.Data = json.RawMessage(`{"v":2}`)
		return nil
	})
	must(t, err)
	calls = nil
	got, err := ts.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "stale", Read: &read, Update: use(&calls)})
	must(t, err)
	if len(calls) != 2 || calls[0] != `{"v":1}` || calls[1] != `{"v":2}` {
		t.Fatalf("fn saw %q, want the read and then the current token", calls)
	}
	if got.Active || string(got.Data) != `{"used":true}` {
		t.Fatalf("redeemed %+v", got)
	}

	// Used by someone else after the read: the second run refuses and
	// nothing of the redemption is recorded.
	must(t, ts.Create(ctx, mk("raced")))
	read, err = ts.Get(ctx, storage.KindRefreshToken, "raced")
	must(t, err)
	_, err = ts.Update(ctx, storage.KindRefreshToken, "raced", func(tk *storage.Token) error { tk.Active = false; return nil })
	must(t, err)
	calls = nil
	next := mk("successor")
	_, err = ts.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "raced", Read: &read, Update: use(&calls), Issue: []storage.Token{next}})
	if err == nil || err.Error() != "used" || len(calls) != 2 {
		t.Fatalf("redeem of a token used after the read: %v after %d runs of fn", err, len(calls))
	}
	if _, err := ts.Get(ctx, storage.KindRefreshToken, "successor"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused redeem recorded a successor: %v", err)
	}

	// Deleted after the read.
	must(t, ts.Create(ctx, mk("gone")))
	read, err = ts.Get(ctx, storage.KindRefreshToken, "gone")
	must(t, err)
	must(t, ts.Delete(ctx, storage.KindRefreshToken, "gone"))
	if _, err := ts.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "gone", Read: &read, Update: use(&calls)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("redeem of a token deleted after the read: %v", err)
	}

	// A read of another token is not used.
	must(t, ts.Create(ctx, mk("other")))
	calls = nil
	_, err = ts.Redeem(ctx, storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "other", Read: &read, Update: use(&calls)})
	must(t, err)
	if len(calls) != 1 || calls[0] != `{"v":1}` {
		t.Fatalf("fn saw %q with a read of another token", calls)
	}
}

// TestClockIsInjected: nonce expiry and default key times follow
// Options.Now.
func TestClockIsInjected(t *testing.T) {
	clock := storetest.NewClock(at)
	s := newStore(t, memory.Options{Now: clock.Now})
	ns := s.Nonces()
	must(t, ns.Use(ctx, "jti", at.Add(time.Minute)))
	if err := ns.Use(ctx, "jti", at.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("replay before expiry: %v", err)
	}
	clock.Advance(time.Minute)
	must(t, ns.Use(ctx, "jti", at.Add(time.Hour)))

	must(t, s.Keys().Add(ctx, storage.Key{Set: "s", KID: "k"}))
	k, err := s.Keys().Get(ctx, "s", "k")
	must(t, err)
	if want := clock.Now().Truncate(time.Microsecond).UTC(); k.CreatedAt != want {
		t.Fatalf("key created at %v, want the clock's %v", k.CreatedAt, want)
	}
}

// TestClosed: after Close every call fails, as on a closed database.
func TestClosed(t *testing.T) {
	s := memory.New(memory.Options{})
	must(t, s.Clients().Create(ctx, storage.Client{ID: "c"}))
	must(t, s.Close())
	if err := s.Ping(ctx); !errors.Is(err, memory.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if s.Stats() == nil {
		t.Fatal("Stats after Close returned nil")
	}
	checks := map[string]error{
		"Clients.Get":   func() error { _, err := s.Clients().Get(ctx, "c"); return err }(),
		"Tokens.Create": s.Tokens().Create(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: "t"}),
		"Nonces.Use":    s.Nonces().Use(ctx, "n", at),
		"Keys.Init":     func() error { _, err := s.Keys().Init(ctx, "s", nil); return err }(),
		"Flows.Step":    s.Flows().Step(ctx, storage.FlowStep{Flow: storage.Flow{Kind: storage.FlowLogin, ID: "f"}}),
		"Close":         s.Close(),
	}
	for name, err := range checks {
		if !errors.Is(err, memory.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestCanceledContext: a call with a finished context fails with its
// error and changes nothing, as a database call would.
func TestCanceledContext(t *testing.T) {
	s := newStore(t, memory.Options{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Clients().Create(cctx, storage.Client{ID: "c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a canceled context: %v", err)
	}
	if _, err := s.Clients().Get(ctx, "c"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a canceled Create stored the client: %v", err)
	}
}

// TestDump: a dump holds every row of every table, ordered by key, as
// copies, and is empty after Close.
func TestDump(t *testing.T) {
	s := memory.New(memory.Options{})
	tok := func(kind storage.TokenKind, sig string) storage.Token {
		return storage.Token{Kind: kind, Signature: sig, ClientID: "c", Active: true, ExpiresAt: at, Data: json.RawMessage(`{}`)}
	}
	must(t, s.Clients().Create(ctx, storage.Client{ID: "c"}))
	must(t, s.Keys().Add(ctx, storage.Key{Set: "b", KID: "1"}, storage.Key{Set: "a", KID: "2"}, storage.Key{Set: "a", KID: "1"}))
	for _, tk := range []storage.Token{tok(storage.KindRefreshToken, "a"), tok(storage.KindAccessToken, "b"), tok(storage.KindAccessToken, "a")} {
		must(t, s.Tokens().Create(ctx, tk))
	}
	must(t, s.Flows().Create(ctx, storage.Flow{Kind: storage.FlowLogin, ID: "f"}))
	must(t, s.LoginSessions().Create(ctx, storage.LoginSession{ID: "l"}))
	must(t, s.ConsentSessions().Create(ctx, storage.ConsentSession{ID: "k"}))
	must(t, s.Trust().Create(ctx, storage.TrustedIssuer{ID: "i"}))
	must(t, s.Nonces().Use(ctx, "n", at))

	d := s.Dump()
	var keys, tokens []string
	for _, k := range d.Keys {
		keys = append(keys, k.Set+"/"+k.KID)
	}
	for _, tk := range d.Tokens {
		tokens = append(tokens, string(tk.Kind)+"/"+tk.Signature)
	}
	if strings.Join(keys, " ") != "a/1 a/2 b/1" || strings.Join(tokens, " ") != "access_token/a access_token/b refresh_token/a" {
		t.Fatalf("keys %v, tokens %v: not every row, or not in key order", keys, tokens)
	}
	if len(d.Clients) != 1 || len(d.Flows) != 1 || len(d.LoginSessions) != 1 || len(d.ConsentSessions) != 1 ||
		len(d.Trust) != 1 || !d.Nonces["n"].Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("dump %+v", d)
	}
	d.Tokens[0].Data[0] = 'X'
	if got, _ := s.Tokens().Get(ctx, storage.KindAccessToken, "a"); string(got.Data) != `{}` {
		t.Fatalf("a change to the dump reached the store: %s", got.Data)
	}
	must(t, s.Close())
	if d := s.Dump(); len(d.Clients)+len(d.Keys)+len(d.Tokens)+len(d.Nonces) != 0 {
		t.Fatalf("dump after Close %+v", d)
	}
}
