// Package conformance is the storage test suite every backend runs:
//
//	conformance.RunTests(t, func(t *testing.T) storage.Storage { return newEmptyStore(t) })
//
// Each subtest gets a fresh, empty, migrated store from the factory.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Factory returns a fresh, empty, migrated store; it registers its own cleanup.
type Factory func(t *testing.T) storage.Storage

// base is a fixed instant with microsecond precision (what backends keep).
var base = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// RunTests runs the whole suite against the backend that newStore makes.
func RunTests(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"Clients", testClients},
		{"ClientUpdateConcurrent", testClientUpdateConcurrent},
		{"Keys", testKeys},
		{"KeysInitRace", testKeysInitRace},
		{"Tokens", testTokens},
		{"TokenUpdateOnce", testTokenUpdateOnce},
		{"TokenRedeem", testTokenRedeem},
		{"TokenFlush", testTokenFlush},
		{"Flows", testFlows},
		{"FlowStep", testFlowStep},
		{"FlowStepOnce", testFlowStepOnce},
		{"FlowSwap", testFlowSwap},
		{"FlowDeleteOnce", testFlowDeleteOnce},
		{"LoginSessions", testLoginSessions},
		{"ConsentSessions", testConsentSessions},
		{"Trust", testTrust},
		{"Nonces", testNonces},
		{"HostileKeys", testHostileKeys},
		{"EventsRecorded", testEventsRecorded},
		{"EventsAtomic", testEventsAtomic},
		{"EventsConcurrent", testEventsConcurrent},
		{"EventsListAndFlush", testEventsListAndFlush},
		{"EventsUntilBound", testEventsUntilBound},
		{"Ping", func(t *testing.T, s storage.Storage) {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s.Stats() == nil {
				t.Fatal("Stats returned nil")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctx() context.Context { return context.Background() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil || fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

func testClients(t *testing.T, s storage.Storage) {
	cs := s.Clients()
	c := storage.Client{ID: "client-a", SecretHash: "$pbkdf2$x", RotatedSecretHashes: []string{"old1", "old2"},
		Name: "App A", Owner: "team-1", Metadata: json.RawMessage(`{"redirect_uris":["https://a.example/cb"],"scope":"openid"}`),
		RegistrationAccessTokenHash: "rat", CreatedAt: base, UpdatedAt: base}
	must(t, cs.Create(ctx(), c))
	wantErr(t, cs.Create(ctx(), c), storage.ErrAlreadyExists)
	got, err := cs.Get(ctx(), "client-a")
	must(t, err)
	if got.ID != c.ID || got.SecretHash != c.SecretHash || !slices.Equal(got.RotatedSecretHashes, c.RotatedSecretHashes) ||
		got.Name != c.Name || got.Owner != c.Owner || got.RegistrationAccessTokenHash != "rat" {
		t.Fatalf("round trip: got %+v, want %+v", got, c)
	}
	sameJSON(t, "metadata", got.Metadata, c.Metadata)
	sameTime(t, "created_at", got.CreatedAt, base)
	_, err = cs.Get(ctx(), "CLIENT-A")
	wantErr(t, err, storage.ErrNotFound) // ids are case-sensitive on every backend

	// Update: fn sees the current row, its result is stored; the id cannot change.
	upd, err := cs.Update(ctx(), "client-a", func(c *storage.Client) error {
		c.ID = "hijack"
		c.Name = "App A2"
		c.RotatedSecretHashes = nil
		c.UpdatedAt = base.Add(time.Hour)
		return nil
	}, nil)
	must(t, err)
	if upd.ID != "client-a" || upd.Name != "App A2" {
		t.Fatalf("update result %+v", upd)
	}
	got, err = cs.Get(ctx(), "client-a")
	must(t, err)
	if got.Name != "App A2" || len(got.RotatedSecretHashes) != 0 {
		t.Fatalf("after update %+v", got)
	}
	sameTime(t, "updated_at", got.UpdatedAt, base.Add(time.Hour))
	_, err = cs.Get(ctx(), "hijack")
	wantErr(t, err, storage.ErrNotFound)

	// fn's error aborts and is returned as is.
	boom := errors.New("boom")
	_, err = cs.Update(ctx(), "client-a", func(c *storage.Client) error { c.Name = "nope"; return boom }, nil)
	wantErr(t, err, boom)
	got, _ = cs.Get(ctx(), "client-a")
	if got.Name != "App A2" {
		t.Fatal("aborted update was stored")
	}
	_, err = cs.Update(ctx(), "missing", func(*storage.Client) error { return nil }, nil)
	wantErr(t, err, storage.ErrNotFound)

	// List: keyset pagination ordered by id, filters.
	for i := range 5 {
		owner := "team-1"
		if i%2 == 1 {
			owner = "team-2"
		}
		must(t, cs.Create(ctx(), storage.Client{ID: fmt.Sprintf("client-%d", i), Name: fmt.Sprintf("n%d", i%2), Owner: owner, CreatedAt: base}))
	}
	page1, err := cs.List(ctx(), storage.ClientFilter{Limit: 4})
	must(t, err)
	if ids := clientIDs(page1); !slices.Equal(ids, []string{"client-0", "client-1", "client-2", "client-3"}) {
		t.Fatalf("page 1: %v", ids)
	}
	page2, err := cs.List(ctx(), storage.ClientFilter{Limit: 4, After: "client-3"})
	must(t, err)
	if ids := clientIDs(page2); !slices.Equal(ids, []string{"client-4", "client-a"}) {
		t.Fatalf("page 2: %v", ids)
	}
	byOwner, err := cs.List(ctx(), storage.ClientFilter{Owner: "team-2"})
	must(t, err)
	if ids := clientIDs(byOwner); !slices.Equal(ids, []string{"client-1", "client-3"}) {
		t.Fatalf("owner filter: %v", ids)
	}
	byName, err := cs.List(ctx(), storage.ClientFilter{Name: "n0", Owner: "team-1"})
	must(t, err)
	if ids := clientIDs(byName); !slices.Equal(ids, []string{"client-0", "client-2", "client-4"}) {
		t.Fatalf("name filter: %v", ids)
	}

	must(t, cs.Delete(ctx(), "client-a", nil))
	wantErr(t, cs.Delete(ctx(), "client-a", nil), storage.ErrNotFound)
	_, err = cs.Get(ctx(), "client-a")
	wantErr(t, err, storage.ErrNotFound)
}

func clientIDs(cs []storage.Client) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// testClientUpdateConcurrent proves Update is a real read-modify-write:
// concurrent increments are never lost.
func testClientUpdateConcurrent(t *testing.T, s storage.Storage) {
	cs := s.Clients()
	must(t, cs.Create(ctx(), storage.Client{ID: "counter", Metadata: json.RawMessage(`{"n":0}`)}))
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := cs.Update(ctx(), "counter", func(c *storage.Client) error {
					var m struct{ N int }
					if err := json.Unmarshal(c.Metadata, &m); err != nil {
						return err
					}
					m.N++
					c.Metadata, _ = json.Marshal(map[string]int{"n": m.N})
					return nil
				}, nil)
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := cs.Get(ctx(), "counter")
	must(t, err)
	var m struct{ N int }
	must(t, json.Unmarshal(c.Metadata, &m))
	if m.N != workers*each {
		t.Fatalf("lost updates: counter is %d, want %d", m.N, workers*each)
	}
}

func key(set, kid string, at time.Time, private bool) storage.Key {
	k := storage.Key{Set: set, KID: kid, Alg: "RS256", Use: "sig", PublicJWK: json.RawMessage(fmt.Sprintf(`{"kty":"RSA","kid":%q}`, kid)), CreatedAt: at}
	if private {
		k.PrivateEncrypted = []byte{0, 1, 2, 0xff, byte(len(kid))}
	}
	return k
}

func testKeys(t *testing.T, s storage.Storage) {
	ks := s.Keys()
	_, err := ks.List(ctx(), "set-a")
	wantErr(t, err, storage.ErrNotFound)
	created, err := ks.Init(ctx(), "set-a", []storage.Key{key("set-a", "k1", base, true)})
	must(t, err)
	if !created {
		t.Fatal("Init on a new set returned created=false")
	}
	created, err = ks.Init(ctx(), "set-a", []storage.Key{key("set-a", "k9", base, true)})
	must(t, err)
	if created {
		t.Fatal("second Init returned created=true")
	}
	must(t, ks.Add(ctx(), key("set-a", "k2", base.Add(time.Minute), false)))
	wantErr(t, ks.Add(ctx(), key("set-a", "k2", base, false)), storage.ErrAlreadyExists)
	list, err := ks.List(ctx(), "set-a")
	must(t, err)
	if len(list) != 2 || list[0].KID != "k2" || list[1].KID != "k1" {
		t.Fatalf("List must be newest first: %+v", list)
	}
	if list[0].PrivateEncrypted != nil {
		t.Fatal("public-only key came back with a private part")
	}
	got, err := ks.Get(ctx(), "set-a", "k1")
	must(t, err)
	if string(got.PrivateEncrypted) != string([]byte{0, 1, 2, 0xff, 2}) || got.Alg != "RS256" || got.Use != "sig" {
		t.Fatalf("Get: %+v", got)
	}
	sameJSON(t, "public jwk", got.PublicJWK, key("", "k1", base, false).PublicJWK)
	sameTime(t, "created", got.CreatedAt, base)
	_, err = ks.Get(ctx(), "set-a", "nope")
	wantErr(t, err, storage.ErrNotFound)

	must(t, ks.Add(ctx(), key("set-b", "b1", base, true)))
	sets, err := ks.Sets(ctx())
	must(t, err)
	if !slices.Equal(sets, []string{"set-a", "set-b"}) {
		t.Fatalf("Sets: %v", sets)
	}

	must(t, ks.Replace(ctx(), "set-a", []storage.Key{key("", "r1", base, true)}, nil))
	list, err = ks.List(ctx(), "set-a")
	must(t, err)
	if len(list) != 1 || list[0].KID != "r1" || list[0].Set != "set-a" {
		t.Fatalf("after Replace: %+v", list)
	}

	must(t, ks.Delete(ctx(), "set-a", "r1", nil))
	wantErr(t, ks.Delete(ctx(), "set-a", "r1", nil), storage.ErrNotFound)
	_, err = ks.List(ctx(), "set-a")
	wantErr(t, err, storage.ErrNotFound)
	// A set emptied key by key is gone: Init may create it again.
	created, err = ks.Init(ctx(), "set-a", []storage.Key{key("set-a", "n1", base, true)})
	must(t, err)
	if !created {
		t.Fatal("Init after the last key was deleted returned created=false")
	}

	must(t, ks.DeleteSet(ctx(), "set-b", nil))
	wantErr(t, ks.DeleteSet(ctx(), "set-b", nil), storage.ErrNotFound)
	_, err = ks.List(ctx(), "set-b")
	wantErr(t, err, storage.ErrNotFound)
}

// testKeysInitRace: replicas starting at once each try to create the set;
// exactly one wins and everyone sees the winner's keys.
func testKeysInitRace(t *testing.T, s storage.Storage) {
	const n = 8
	var wg sync.WaitGroup
	results := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Keys().Init(ctx(), "race", []storage.Key{key("race", fmt.Sprintf("kid-%d", i), base, true)})
		}()
	}
	wg.Wait()
	wins := 0
	for i := range n {
		must(t, errs[i])
		if results[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d replicas created the set, want exactly 1", wins)
	}
	list, err := s.Keys().List(ctx(), "race")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("set has %d keys after the race, want 1", len(list))
	}
}

func token(kind storage.TokenKind, sig, req, client string, exp time.Time) storage.Token {
	return storage.Token{Kind: kind, Signature: sig, RequestID: req, ClientID: client, Subject: "user-1", Active: true,
		IssuedAt: base, ExpiresAt: exp, Data: json.RawMessage(`{"scope":"a b"}`)}
}

func testTokens(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	at := token(storage.KindAccessToken, "sig-1", "req-1", "c1", base.Add(time.Hour))
	must(t, ts.Create(ctx(), at))
	wantErr(t, ts.Create(ctx(), at), storage.ErrAlreadyExists)
	// The same signature under another kind is another token.
	must(t, ts.Create(ctx(), token(storage.KindRefreshToken, "sig-1", "req-1", "c1", base.Add(2*time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "sig-2", "req-2", "c1", base.Add(time.Hour))))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "sig-3", "req-3", "c2", base.Add(time.Hour))))
	long := string(make([]byte, 0)) + fmt.Sprintf("%0342d", 7) // a JWS signature is this long (RS256-2048)
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, long, "req-4", "c3", base.Add(time.Hour))))
	if _, err := ts.Get(ctx(), storage.KindAccessToken, long); err != nil {
		t.Fatalf("long signature: %v", err)
	}

	got, err := ts.Get(ctx(), storage.KindAccessToken, "sig-1")
	must(t, err)
	if got.RequestID != "req-1" || got.ClientID != "c1" || got.Subject != "user-1" || !got.Active || got.Kind != storage.KindAccessToken {
		t.Fatalf("Get: %+v", got)
	}
	sameTime(t, "issued", got.IssuedAt, base)
	sameTime(t, "expires", got.ExpiresAt, base.Add(time.Hour))
	sameJSON(t, "data", got.Data, at.Data)
	_, err = ts.Get(ctx(), storage.KindAccessToken, "SIG-1")
	wantErr(t, err, storage.ErrNotFound)
	_, err = ts.Get(ctx(), storage.KindAuthorizationCode, "sig-1")
	wantErr(t, err, storage.ErrNotFound)

	// Update keeps what fn changed, indexed columns included.
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "sig-u", "req-u", "c1", base.Add(time.Hour))))
	_, err = ts.Update(ctx(), storage.KindAccessToken, "sig-u", func(tk *storage.Token) error {
		tk.Data = json.RawMessage(`{"scope":"a"}`)
		return nil
	})
	must(t, err)
	_, err = ts.Update(ctx(), storage.KindAccessToken, "sig-u", func(tk *storage.Token) error {
		tk.RequestID, tk.ExpiresAt = "req-v", base.Add(3*time.Hour)
		return nil
	})
	must(t, err)
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "sig-u"); got.RequestID != "req-v" || !got.Active {
		t.Fatalf("after Update: %+v", got)
	} else {
		sameTime(t, "updated expiry", got.ExpiresAt, base.Add(3*time.Hour))
		sameJSON(t, "updated data", got.Data, json.RawMessage(`{"scope":"a"}`))
	}
	must(t, ts.RevokeRequest(ctx(), "c1", "req-v", nil))
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "sig-u"); got.Active {
		t.Fatal("RevokeRequest missed a token whose request ID Update changed")
	}
	must(t, ts.Delete(ctx(), storage.KindAccessToken, "sig-u"))

	// A request ID is revoked only among its client's tokens.
	must(t, ts.RevokeRequest(ctx(), "c2", "req-1", nil))
	if got, _ := ts.Get(ctx(), storage.KindAccessToken, "sig-1"); !got.Active {
		t.Fatal("RevokeRequest with another client's ID revoked the token")
	}
	must(t, ts.RevokeRequest(ctx(), "c1", "req-1", nil))
	for _, k := range []storage.TokenKind{storage.KindAccessToken, storage.KindRefreshToken} {
		got, err := ts.Get(ctx(), k, "sig-1")
		must(t, err)
		if got.Active {
			t.Fatalf("%s still active after RevokeRequest", k)
		}
	}
	n, err := ts.RevokeClient(ctx(), "c1", nil)
	must(t, err)
	if n != 1 { // sig-2 only: sig-1's two are already inactive
		t.Fatalf("RevokeClient changed %d tokens, want 1", n)
	}
	got, _ = ts.Get(ctx(), storage.KindAccessToken, "sig-3")
	if !got.Active {
		t.Fatal("another client's token was revoked")
	}

	must(t, ts.Delete(ctx(), storage.KindAccessToken, "sig-3"))
	wantErr(t, ts.Delete(ctx(), storage.KindAccessToken, "sig-3"), storage.ErrNotFound)
}

// testTokenUpdateOnce: of concurrent callers marking a code used, exactly
// one sees it unused (the authorization-code single-use rule).
func testTokenUpdateOnce(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	must(t, ts.Create(ctx(), token(storage.KindAuthorizationCode, "code", "req", "c", base.Add(time.Hour))))
	used := errors.New("already used")
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, losers := 0, 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ts.Update(ctx(), storage.KindAuthorizationCode, "code", func(tk *storage.Token) error {
				if !tk.Active {
					return used
				}
				tk.Active = false
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners++
			case errors.Is(err, used):
				losers++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if winners != 1 || losers != n-1 {
		t.Fatalf("winners %d losers %d, want 1 and %d", winners, losers, n-1)
	}
}

// testTokenRedeem: Redeem uses a token, retires the rest of its request
// and records the successors in one transaction; nothing of it happens when
// fn refuses or a successor cannot be created.
func testTokenRedeem(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	exp := base.Add(time.Hour)
	must(t, ts.Create(ctx(), token(storage.KindRefreshToken, "rt1", "chain", "c", exp)))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "at1", "chain", "c", exp)))
	must(t, ts.Create(ctx(), token(storage.KindAccessToken, "other", "unrelated", "c", exp)))
	active := func(kind storage.TokenKind, sig string) bool {
		t.Helper()
		tk, err := ts.Get(ctx(), kind, sig)
		must(t, err)
		return tk.Active
	}
	next := []storage.Token{token(storage.KindAccessToken, "at2", "chain", "c", exp), token(storage.KindRefreshToken, "rt2", "chain", "c", exp)}

	// fn refuses: nothing changes, nothing is created.
	refused := errors.New("refused")
	if _, err := ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "rt1",
		Update: func(*storage.Token) error { return refused }, RevokeRequest: "chain", Issue: next}); !errors.Is(err, refused) {
		t.Fatalf("refusing fn: %v", err)
	}
	if !active(storage.KindAccessToken, "at1") {
		t.Fatal("a refused redeem revoked the chain")
	}
	if _, err := ts.Get(ctx(), storage.KindAccessToken, "at2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused redeem created a token: %v", err)
	}
	// A successor that already exists: all or nothing.
	dup := []storage.Token{token(storage.KindAccessToken, "at3", "chain", "c", exp), token(storage.KindAccessToken, "other", "chain", "c", exp)}
	if _, err := ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "rt1",
		Update: func(tk *storage.Token) error { tk.Active = false; return nil }, RevokeRequest: "chain", Issue: dup}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate successor: %v", err)
	}
	if !active(storage.KindRefreshToken, "rt1") || !active(storage.KindAccessToken, "at1") {
		t.Fatal("a failed redeem kept its update or revocation")
	}
	if _, err := ts.Get(ctx(), storage.KindAccessToken, "at3"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a failed redeem kept a successor: %v", err)
	}
	// Success: used, chain retired, successors active, others untouched.
	got, err := ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "rt1", Update: func(tk *storage.Token) error {
		tk.Data = []byte(`{"used":true}`)
		return nil
	}, RevokeRequest: "chain", Issue: next})
	must(t, err)
	if got.Signature != "rt1" || !got.Active {
		t.Fatalf("redeemed %+v", got)
	}
	if !active(storage.KindRefreshToken, "rt1") {
		t.Fatal("the revocation overrode what fn left on the redeemed token")
	}
	if active(storage.KindAccessToken, "at1") || !active(storage.KindAccessToken, "at2") || !active(storage.KindRefreshToken, "rt2") || !active(storage.KindAccessToken, "other") {
		t.Fatal("wrong tokens active after the redeem")
	}
	if _, err := ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "nope", Update: func(*storage.Token) error { return nil }}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}

	// A read the token changed after: fn runs on the token as it is now.
	must(t, ts.Create(ctx(), token(storage.KindRefreshToken, "stale", "stale-req", "c", exp)))
	stale, err := ts.Get(ctx(), storage.KindRefreshToken, "stale")
	must(t, err)
	_, err = ts.Update(ctx(), storage.KindRefreshToken, "stale", func(tk *storage.Token) error {
		tk.Data = []byte(`{"v":2}`)
		return nil
	})
	must(t, err)
	var last string
	got, err = ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindRefreshToken, Signature: "stale", Read: &stale, Update: func(tk *storage.Token) error {
		last = string(tk.Data)
		tk.Active = false
		return nil
	}})
	must(t, err)
	if last != `{"v":2}` || got.Active {
		t.Fatalf("redeem from an outdated read: fn last saw %s, stored %+v", last, got)
	}

	// Concurrent redemptions of one code, each from its own read or all
	// from one read made before: one wins and records its successor; the
	// others see the code used and record nothing.
	for _, shared := range []bool{false, true} {
		code := fmt.Sprintf("race-%v", shared)
		must(t, ts.Create(ctx(), token(storage.KindAuthorizationCode, code, code+"-req", "c", exp)))
		var read *storage.Token
		if shared {
			r, err := ts.Get(ctx(), storage.KindAuthorizationCode, code)
			must(t, err)
			read = &r
		}
		used := errors.New("used")
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := ts.Redeem(ctx(), storage.RedeemRequest{Kind: storage.KindAuthorizationCode, Signature: code, Read: read, Update: func(tk *storage.Token) error {
					if !tk.Active {
						return used
					}
					tk.Active = false
					return nil
				}, RevokeRequest: code + "-req", Issue: []storage.Token{token(storage.KindAccessToken, fmt.Sprintf("%s-at-%d", code, i), code+"-req", "c", exp)}})
				errs <- err
			}()
		}
		winners := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				winners++
			case !errors.Is(err, used):
				t.Errorf("concurrent redeem: %v", err)
			}
		}
		created := 0
		for i := range n {
			if _, err := ts.Get(ctx(), storage.KindAccessToken, fmt.Sprintf("%s-at-%d", code, i)); err == nil {
				created++
			}
		}
		if winners != 1 || created != 1 {
			t.Fatalf("concurrent redeem (shared read %v): %d winners, %d successors recorded; want 1 and 1", shared, winners, created)
		}
	}
}

func testTokenFlush(t *testing.T, s storage.Storage) {
	ts := s.Tokens()
	for i := range 25 {
		must(t, ts.Create(ctx(), token(storage.KindAccessToken, fmt.Sprintf("old-%02d", i), "r", "c", base.Add(-time.Minute))))
	}
	for i := range 5 {
		must(t, ts.Create(ctx(), token(storage.KindAccessToken, fmt.Sprintf("live-%d", i), "r", "c", base.Add(time.Hour))))
	}
	total := int64(0)
	for {
		n, err := ts.FlushExpired(ctx(), base, 10)
		must(t, err)
		if n > 10 {
			t.Fatalf("a batch deleted %d rows, limit 10", n)
		}
		total += n
		if n < 10 {
			break
		}
	}
	if total != 25 {
		t.Fatalf("flushed %d, want 25", total)
	}
	for i := range 5 {
		if _, err := ts.Get(ctx(), storage.KindAccessToken, fmt.Sprintf("live-%d", i)); err != nil {
			t.Fatalf("live token lost: %v", err)
		}
	}
}

func testFlows(t *testing.T, s storage.Storage) {
	fs := s.Flows()
	f := storage.Flow{Kind: storage.FlowLogin, ID: "ch-1", ClientID: "c", Subject: "", SessionID: "sid", Status: "pending",
		CreatedAt: base, ExpiresAt: base.Add(time.Hour), Data: json.RawMessage(`{"requested_scope":["openid"]}`)}
	must(t, fs.Create(ctx(), f))
	wantErr(t, fs.Create(ctx(), f), storage.ErrAlreadyExists)
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowConsent, ID: "ch-1", CreatedAt: base, ExpiresAt: base.Add(-time.Minute)}))
	got, err := fs.Get(ctx(), storage.FlowLogin, "ch-1")
	must(t, err)
	if got.ClientID != "c" || got.SessionID != "sid" || got.Status != "pending" {
		t.Fatalf("Get: %+v", got)
	}
	sameJSON(t, "data", got.Data, f.Data)
	upd, err := fs.Update(ctx(), storage.FlowLogin, "ch-1", func(f *storage.Flow) error {
		f.Status, f.Subject = "accepted", "user-1"
		return nil
	})
	must(t, err)
	if upd.Status != "accepted" || upd.Subject != "user-1" {
		t.Fatalf("Update: %+v", upd)
	}
	_, err = fs.Update(ctx(), storage.FlowLogout, "ch-1", func(*storage.Flow) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
	n, err := fs.FlushExpired(ctx(), base, 100)
	must(t, err)
	if n != 1 {
		t.Fatalf("flushed %d flows, want 1", n)
	}
	must(t, fs.Delete(ctx(), storage.FlowLogin, "ch-1"))
	_, err = fs.Get(ctx(), storage.FlowLogin, "ch-1")
	wantErr(t, err, storage.ErrNotFound)
	// A second Delete finds nothing: single-use values (pushed
	// authorization requests) are consumed by whoever deletes them first.
	wantErr(t, fs.Delete(ctx(), storage.FlowLogin, "ch-1"), storage.ErrNotFound)
}

// testFlowStep: a step updates the flow and records the sessions and the
// next flow atomically, only if the flow is as read.
func testFlowStep(t *testing.T, s storage.Storage) {
	fs := s.Flows()
	read := func(kind storage.FlowKind, id string) storage.Flow {
		t.Helper()
		f, err := fs.Get(ctx(), kind, id)
		must(t, err)
		return f
	}
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowLogin, ID: "step-1", ClientID: "c", SessionID: "sid-1", Status: "accepted",
		CreatedAt: base, ExpiresAt: base.Add(time.Hour), Data: json.RawMessage(`{"v":"a"}`)}))
	login := read(storage.FlowLogin, "step-1")
	next := storage.Flow{Kind: storage.FlowConsent, ID: "step-2", ClientID: "c", Subject: "alice", SessionID: "sid-1",
		Status: "pending", CreatedAt: base, ExpiresAt: base.Add(time.Hour), Data: json.RawMessage(`{"v":2}`)}
	sess := storage.LoginSession{ID: "sid-1", Subject: "alice", AuthenticatedAt: base, Remember: true, ExpiresAt: base.Add(time.Hour)}
	must(t, fs.Step(ctx(), storage.FlowStep{Flow: login, Status: "used", LoginSession: &sess, Next: &next}))
	if f := read(storage.FlowLogin, "step-1"); f.Status != "used" {
		t.Fatalf("flow after Step: %+v", f)
	}
	f := read(storage.FlowConsent, "step-2")
	if f.Subject != "alice" || f.Status != "pending" {
		t.Fatalf("next flow after Step: %+v", f)
	}
	sameJSON(t, "next data", f.Data, next.Data)
	if l, err := s.LoginSessions().Get(ctx(), "sid-1"); err != nil || l.Subject != "alice" || !l.Remember {
		t.Fatalf("login session after Step: %+v, %v", l, err)
	}

	// The flow is no longer as read: nothing is written.
	cs := storage.ConsentSession{ID: "step-2", Subject: "alice", ClientID: "c", LoginSessionID: "sid-1",
		GrantedScope: []string{"openid"}, GrantedAudience: []string{}, HandledAt: base}
	err := fs.Step(ctx(), storage.FlowStep{Flow: login, Status: "used", ConsentSession: &cs,
		Next: &storage.Flow{Kind: storage.FlowConsent, ID: "step-3", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}})
	wantErr(t, err, storage.ErrConflict)
	_, err = fs.Get(ctx(), storage.FlowConsent, "step-3")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.ConsentSessions().Get(ctx(), "step-2")
	wantErr(t, err, storage.ErrNotFound)
	// Data that differs only in letter case is a change too.
	caseOnly := login
	caseOnly.Status, caseOnly.Data = "used", json.RawMessage(`{"v":"A"}`)
	wantErr(t, fs.Step(ctx(), storage.FlowStep{Flow: caseOnly, Status: "x"}), storage.ErrConflict)

	// A failing write undoes the update: step-2 exists already.
	consent := read(storage.FlowConsent, "step-2")
	err = fs.Step(ctx(), storage.FlowStep{Flow: consent, Status: "used", ConsentSession: &cs, Next: &next})
	wantErr(t, err, storage.ErrAlreadyExists)
	if f := read(storage.FlowConsent, "step-2"); f.Status != "pending" {
		t.Fatalf("a failed step changed the flow: %+v", f)
	}
	_, err = s.ConsentSessions().Get(ctx(), "step-2")
	wantErr(t, err, storage.ErrNotFound)

	// Unknown flow.
	gone := login
	gone.ID = "nope"
	wantErr(t, fs.Step(ctx(), storage.FlowStep{Flow: gone, Status: "used"}), storage.ErrConflict)

	// Replacing a login session keeps its data; a new one is created.
	_, err = s.LoginSessions().Update(ctx(), "sid-1", func(l *storage.LoginSession) error {
		l.Data = json.RawMessage(`{"k":"v"}`)
		return nil
	})
	must(t, err)
	must(t, fs.Step(ctx(), storage.FlowStep{Flow: consent, Status: "used", ConsentSession: &cs, ReplaceLoginSession: true,
		LoginSession: &storage.LoginSession{ID: "sid-1", Subject: "bob", AuthenticatedAt: base.Add(time.Minute), ExpiresAt: base.Add(2 * time.Hour)}}))
	l, err := s.LoginSessions().Get(ctx(), "sid-1")
	must(t, err)
	if l.Subject != "bob" || l.Remember {
		t.Fatalf("replaced login session: %+v", l)
	}
	sameTime(t, "authenticated_at", l.AuthenticatedAt, base.Add(time.Minute))
	sameTime(t, "expires_at", l.ExpiresAt, base.Add(2*time.Hour))
	sameJSON(t, "kept data", l.Data, json.RawMessage(`{"k":"v"}`))
	if c, err := s.ConsentSessions().Get(ctx(), "step-2"); err != nil || c.Subject != "alice" || len(c.GrantedScope) != 1 {
		t.Fatalf("consent session after Step: %+v, %v", c, err)
	}
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowLogin, ID: "step-5", Status: "accepted", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
	must(t, fs.Step(ctx(), storage.FlowStep{Flow: read(storage.FlowLogin, "step-5"), Status: "used", ReplaceLoginSession: true,
		LoginSession: &storage.LoginSession{ID: "sid-new", Subject: "carol", AuthenticatedAt: base}}))
	if l, err := s.LoginSessions().Get(ctx(), "sid-new"); err != nil || l.Subject != "carol" {
		t.Fatalf("new login session: %+v, %v", l, err)
	}

	// Tokens are created with the step, and not at all when it conflicts
	// or fails.
	code := storage.Token{Kind: storage.KindAuthorizationCode, Signature: "step-code", RequestID: "step-6", ClientID: "c",
		Subject: "alice", Active: true, IssuedAt: base, ExpiresAt: base.Add(time.Minute), Data: json.RawMessage(`{"c":1}`)}
	at := code
	at.Kind, at.Signature = storage.KindAccessToken, "step-at"
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowConsent, ID: "step-6", Status: "accepted", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
	c6 := read(storage.FlowConsent, "step-6")
	stale := c6
	stale.Status = "pending"
	wantErr(t, fs.Step(ctx(), storage.FlowStep{Flow: stale, Status: "used", Tokens: []storage.Token{code}}), storage.ErrConflict)
	_, err = s.Tokens().Get(ctx(), storage.KindAuthorizationCode, "step-code")
	wantErr(t, err, storage.ErrNotFound)
	dup := storage.Flow{Kind: storage.FlowConsent, ID: "step-2", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	wantErr(t, fs.Step(ctx(), storage.FlowStep{Flow: c6, Status: "used", Next: &dup, Tokens: []storage.Token{code}}), storage.ErrAlreadyExists)
	_, err = s.Tokens().Get(ctx(), storage.KindAuthorizationCode, "step-code")
	wantErr(t, err, storage.ErrNotFound)
	must(t, fs.Step(ctx(), storage.FlowStep{Flow: c6, Status: "used", Tokens: []storage.Token{code, at}}))
	for _, want := range []storage.Token{code, at} {
		got, err := s.Tokens().Get(ctx(), want.Kind, want.Signature)
		must(t, err)
		if got.RequestID != "step-6" || got.Subject != "alice" || !got.Active {
			t.Fatalf("token created by Step: %+v", got)
		}
		sameTime(t, "expires_at", got.ExpiresAt, want.ExpiresAt)
		sameJSON(t, "token data", got.Data, want.Data)
	}
}

// testFlowStepOnce: of concurrent steps on one flow exactly one applies.
func testFlowStepOnce(t *testing.T, s storage.Storage) {
	fs := s.Flows()
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowConsent, ID: "once", Status: "accepted", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
	f, err := fs.Get(ctx(), storage.FlowConsent, "once")
	must(t, err)
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- fs.Step(ctx(), storage.FlowStep{Flow: f, Status: "used",
				ConsentSession: &storage.ConsentSession{ID: "once", Subject: "alice", ClientID: "c", HandledAt: base}})
		}()
	}
	won := 0
	for i := 0; i < n; i++ {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("a losing step failed with %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d steps applied, want exactly 1", won)
	}
}

// testFlowDeleteOnce: of concurrent deletes of one flow exactly one
// succeeds and the others find nothing; a pushed authorization request
// (RFC 9126 §4, one-time use) relies on it.
func testFlowDeleteOnce(t *testing.T, s storage.Storage) {
	fs := s.Flows()
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowPushedRequest, ID: "once", ClientID: "c", Status: "pending",
		CreatedAt: base, ExpiresAt: base.Add(time.Minute), Data: json.RawMessage(`{"params":{"client_id":["c"]}}`)}))
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { errs <- fs.Delete(ctx(), storage.FlowPushedRequest, "once") }()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("a losing delete failed with %v, want ErrNotFound", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d deletes succeeded, want exactly 1", won)
	}
}

// testFlowSwap: a swap applies only to the flow exactly as it was read.
func testFlowSwap(t *testing.T, s storage.Storage) {
	fs := s.Flows()
	must(t, fs.Create(ctx(), storage.Flow{Kind: storage.FlowLogin, ID: "swap", ClientID: "c", Status: "pending",
		CreatedAt: base, ExpiresAt: base.Add(time.Hour), Data: json.RawMessage(`{"verifier":"aB"}`)}))
	old, err := fs.Get(ctx(), storage.FlowLogin, "swap")
	must(t, err)
	next := old
	next.Status, next.Subject, next.Data = "accepted", "alice", json.RawMessage(`{"verifier":"Ab"}`)
	must(t, fs.Swap(ctx(), old, next))
	got, err := fs.Get(ctx(), storage.FlowLogin, "swap")
	must(t, err)
	if got.Status != "accepted" || got.Subject != "alice" {
		t.Fatalf("after Swap: %+v", got)
	}
	sameJSON(t, "swapped data", got.Data, next.Data)
	// old is stale now: the data differs only in letter case, which must
	// count as a change on every backend.
	stale := next
	stale.Data = json.RawMessage(`{"verifier":"AB"}`)
	wantErr(t, fs.Swap(ctx(), old, stale), storage.ErrConflict)
	lost := got
	lost.Status = "pending"
	wantErr(t, fs.Swap(ctx(), lost, stale), storage.ErrConflict)
	if got, _ := fs.Get(ctx(), storage.FlowLogin, "swap"); string(got.Data) != `{"verifier":"Ab"}` || got.Status != "accepted" {
		t.Fatalf("a stale Swap changed the flow: %+v", got)
	}
	gone := old
	gone.ID = "nope"
	wantErr(t, fs.Swap(ctx(), gone, gone), storage.ErrConflict)
	// A swap that changes the indexed columns too (backends may write a
	// swap that leaves them alone with a narrower statement).
	moved := got
	moved.Data, moved.SessionID, moved.ExpiresAt = json.RawMessage(`{"verifier":"xY"}`), "sess-9", base.Add(2*time.Hour)
	must(t, fs.Swap(ctx(), got, moved))
	if got, _ := fs.Get(ctx(), storage.FlowLogin, "swap"); got.SessionID != "sess-9" || got.Subject != "alice" {
		t.Fatalf("after a Swap of the session and expiry: %+v", got)
	} else {
		sameTime(t, "swapped expiry", got.ExpiresAt, base.Add(2*time.Hour))
	}
}

func testLoginSessions(t *testing.T, s storage.Storage) {
	ls := s.LoginSessions()
	must(t, ls.Create(ctx(), storage.LoginSession{ID: "s1", Subject: "alice", AuthenticatedAt: base, Remember: true, ExpiresAt: base.Add(time.Hour)}))
	must(t, ls.Create(ctx(), storage.LoginSession{ID: "s2", Subject: "alice", AuthenticatedAt: base.Add(time.Minute), ExpiresAt: base.Add(-time.Second)}))
	must(t, ls.Create(ctx(), storage.LoginSession{ID: "s3", Subject: "bob", AuthenticatedAt: base}))
	wantErr(t, ls.Create(ctx(), storage.LoginSession{ID: "s1"}), storage.ErrAlreadyExists)
	got, err := ls.Get(ctx(), "s1")
	must(t, err)
	if got.Subject != "alice" || !got.Remember {
		t.Fatalf("Get: %+v", got)
	}
	list, err := ls.ListBySubject(ctx(), "alice")
	must(t, err)
	if len(list) != 2 || list[0].ID != "s2" {
		t.Fatalf("ListBySubject newest first: %+v", list)
	}
	_, err = ls.Update(ctx(), "s1", func(l *storage.LoginSession) error { l.Remember = false; return nil })
	must(t, err)
	got, _ = ls.Get(ctx(), "s1")
	if got.Remember {
		t.Fatal("update lost")
	}
	n, err := ls.FlushExpired(ctx(), base, 100)
	must(t, err)
	if n != 1 { // s2; s3 never expires (zero time)
		t.Fatalf("flushed %d, want 1", n)
	}
	n, err = ls.DeleteBySubject(ctx(), "alice")
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteBySubject %d, want 1", n)
	}
	must(t, ls.Delete(ctx(), "s3", nil))
	wantErr(t, ls.Delete(ctx(), "s3", nil), storage.ErrNotFound)
}

func testConsentSessions(t *testing.T, s storage.Storage) {
	cs := s.ConsentSessions()
	mk := func(id, sub, client, sid string, handled time.Time, exp time.Time) storage.ConsentSession {
		return storage.ConsentSession{ID: id, Subject: sub, ClientID: client, LoginSessionID: sid, Remember: true,
			GrantedScope: []string{"openid", "offline"}, GrantedAudience: []string{"api"}, HandledAt: handled, ExpiresAt: exp}
	}
	must(t, cs.Create(ctx(), mk("c1", "alice", "app1", "s1", base, time.Time{})))
	must(t, cs.Create(ctx(), mk("c2", "alice", "app2", "s1", base.Add(time.Minute), base.Add(-time.Second))))
	must(t, cs.Create(ctx(), mk("c3", "bob", "app1", "s2", base, base.Add(time.Hour))))
	wantErr(t, cs.Create(ctx(), mk("c1", "x", "y", "z", base, base)), storage.ErrAlreadyExists)
	got, err := cs.Get(ctx(), "c1")
	must(t, err)
	if !slices.Equal(got.GrantedScope, []string{"openid", "offline"}) || !slices.Equal(got.GrantedAudience, []string{"api"}) || !got.ExpiresAt.IsZero() {
		t.Fatalf("Get: %+v", got)
	}
	list, err := cs.List(ctx(), storage.ConsentFilter{Subject: "alice"})
	must(t, err)
	if len(list) != 2 || list[0].ID != "c2" {
		t.Fatalf("List newest first: %+v", list)
	}
	list, err = cs.List(ctx(), storage.ConsentFilter{Subject: "alice", ClientID: "app1"})
	must(t, err)
	if len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("List filtered: %+v", list)
	}
	n, err := cs.Revoke(ctx(), storage.ConsentFilter{}, nil)
	must(t, err)
	if n != 0 {
		t.Fatal("an empty filter deleted sessions")
	}
	n, err = cs.FlushExpired(ctx(), base, 100)
	must(t, err)
	if n != 1 { // c2; c1 never expires
		t.Fatalf("flushed %d, want 1", n)
	}
	n, err = cs.Revoke(ctx(), storage.ConsentFilter{LoginSessionID: "s2"}, nil)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleted %d, want 1", n)
	}
	list, _ = cs.List(ctx(), storage.ConsentFilter{})
	if len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("left: %+v", list)
	}
	// By id: that session only, not the subject's other one for the client.
	must(t, cs.Create(ctx(), mk("c4", "alice", "app1", "s1", base, time.Time{})))
	list, _ = cs.List(ctx(), storage.ConsentFilter{ID: "c4"})
	if len(list) != 1 || list[0].ID != "c4" {
		t.Fatalf("List by id: %+v", list)
	}
	n, err = cs.Revoke(ctx(), storage.ConsentFilter{ID: "c4"}, nil)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleted by id %d, want 1", n)
	}
	list, _ = cs.List(ctx(), storage.ConsentFilter{Subject: "alice", ClientID: "app1"})
	if len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("left after the delete by id: %+v", list)
	}
}

func testTrust(t *testing.T, s storage.Storage) {
	tr := s.Trust()
	mk := func(id, iss, sub string, any bool, kid string, exp time.Time) storage.TrustedIssuer {
		return storage.TrustedIssuer{ID: id, Issuer: iss, Subject: sub, AllowAnySubject: any, Scope: []string{"read", "write"},
			KeySet: iss, KeyID: kid, PublicKey: json.RawMessage(`{"kty":"EC","kid":"` + kid + `"}`), ExpiresAt: exp, CreatedAt: base}
	}
	must(t, tr.Create(ctx(), mk("t1", "https://idp", "alice", false, "k1", base.Add(time.Hour))))
	must(t, tr.Create(ctx(), mk("t2", "https://idp", "", true, "k2", base.Add(time.Hour))))
	must(t, tr.Create(ctx(), mk("t3", "https://idp", "bob", false, "k3", base.Add(-time.Hour))))
	must(t, tr.Create(ctx(), mk("t4", "https://other", "alice", false, "k1", base.Add(time.Hour))))
	wantErr(t, tr.Create(ctx(), mk("t5", "https://idp", "alice", false, "k1", base.Add(time.Hour))), storage.ErrAlreadyExists)
	got, err := tr.Get(ctx(), "t1")
	must(t, err)
	if got.Issuer != "https://idp" || !slices.Equal(got.Scope, []string{"read", "write"}) || got.KeyID != "k1" {
		t.Fatalf("Get: %+v", got)
	}
	found, err := tr.Find(ctx(), "https://idp", "alice", base)
	must(t, err)
	if len(found) != 2 {
		t.Fatalf("Find alice: %+v", found)
	}
	found, err = tr.Find(ctx(), "https://idp", "bob", base)
	must(t, err)
	if len(found) != 1 || found[0].ID != "t2" { // t3 expired; any-subject grant applies
		t.Fatalf("Find bob: %+v", found)
	}
	all, err := tr.List(ctx(), "")
	must(t, err)
	if len(all) != 4 {
		t.Fatalf("List all: %d", len(all))
	}
	byIss, err := tr.List(ctx(), "https://other")
	must(t, err)
	if len(byIss) != 1 {
		t.Fatalf("List by issuer: %d", len(byIss))
	}
	must(t, tr.Delete(ctx(), "t1"))
	wantErr(t, tr.Delete(ctx(), "t1"), storage.ErrNotFound)
	_, err = tr.Get(ctx(), "t1")
	wantErr(t, err, storage.ErrNotFound)
}

func testNonces(t *testing.T, s storage.Storage) {
	ns := s.Nonces()
	far := time.Now().Add(time.Hour)
	must(t, ns.Use(ctx(), "iss|jti-1", far))
	wantErr(t, ns.Use(ctx(), "iss|jti-1", far), storage.ErrAlreadyExists)
	must(t, ns.Use(ctx(), "iss|jti-2", far))
	// An entry past its expiry may be used again.
	must(t, ns.Use(ctx(), "iss|old", time.Now().Add(-time.Second)))
	must(t, ns.Use(ctx(), "iss|old", far))
	must(t, ns.Use(ctx(), "iss|old2", time.Now().Add(-time.Second)))
	n, err := ns.FlushExpired(ctx(), time.Now(), 100)
	must(t, err)
	if n != 1 {
		t.Fatalf("flushed %d nonces, want 1", n)
	}
	// Concurrent use of one nonce: exactly one succeeds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ns.Use(ctx(), "iss|race", far)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent uses of one nonce succeeded, want 1", ok)
	}
}

// hostileKeys are keys no row can have on some backend: PostgreSQL refuses
// a NUL byte and invalid UTF-8 in text, MySQL invalid UTF-8, and most key
// columns are shorter than 10,000 characters.
var hostileKeys = map[string]string{
	"NUL":                          "client\x00id",
	"invalid UTF-8":                "client\xff\xfeid",
	"lone NUL":                     "\x00",
	"10,000 bytes":                 strings.Repeat("a", 10000),
	"10,000 bytes, NUL at the end": strings.Repeat("a", 9999) + "\x00",
}

// testHostileKeys: a lookup, delete or list by such a key answers "not
// found" (ErrNotFound or, where the backend refuses the key itself,
// ErrInvalid) or nothing, and a write stores it or answers ErrInvalid:
// never a driver error.
func testHostileKeys(t *testing.T, s storage.Storage) {
	notFound := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: got %v, want storage.ErrNotFound or storage.ErrInvalid", what, err)
		}
	}
	nothing := func(t *testing.T, what string, n int, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%s: got %v, want no error or storage.ErrInvalid", what, err)
		}
		if n != 0 {
			t.Errorf("%s: found %d rows, want none", what, n)
		}
	}
	noop := func(*storage.Client) error { return nil }
	for name, k := range hostileKeys {
		t.Run(name, func(t *testing.T) {
			_, err := s.Clients().Get(ctx(), k)
			notFound(t, "Clients.Get", err)
			_, err = s.Clients().Update(ctx(), k, noop, nil)
			notFound(t, "Clients.Update", err)
			notFound(t, "Clients.Delete", s.Clients().Delete(ctx(), k, nil))
			cl, err := s.Clients().List(ctx(), storage.ClientFilter{Name: k, Owner: k, After: k})
			nothing(t, "Clients.List", len(cl), err)

			_, err = s.Keys().Get(ctx(), k, k)
			notFound(t, "Keys.Get", err)
			_, err = s.Keys().List(ctx(), k)
			notFound(t, "Keys.List", err)
			notFound(t, "Keys.Delete", s.Keys().Delete(ctx(), k, k, nil))

			_, err = s.Tokens().Get(ctx(), storage.KindAccessToken, k)
			notFound(t, "Tokens.Get", err)
			_, err = s.Tokens().Update(ctx(), storage.KindRefreshToken, k, func(*storage.Token) error { return nil })
			notFound(t, "Tokens.Update", err)
			notFound(t, "Tokens.Delete", s.Tokens().Delete(ctx(), storage.KindAccessToken, k))
			if err := s.Tokens().RevokeRequest(ctx(), k, k, nil); err != nil && !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("Tokens.RevokeRequest: %v", err)
			}
			n, err := s.Tokens().RevokeClient(ctx(), k, nil)
			nothing(t, "Tokens.RevokeClient", int(n), err)

			_, err = s.Flows().Get(ctx(), storage.FlowLogin, k)
			notFound(t, "Flows.Get", err)
			_, err = s.Flows().Update(ctx(), storage.FlowConsent, k, func(*storage.Flow) error { return nil })
			notFound(t, "Flows.Update", err)
			notFound(t, "Flows.Delete", s.Flows().Delete(ctx(), storage.FlowLogout, k))

			_, err = s.LoginSessions().Get(ctx(), k)
			notFound(t, "LoginSessions.Get", err)
			notFound(t, "LoginSessions.Delete", s.LoginSessions().Delete(ctx(), k, nil))
			ls, err := s.LoginSessions().ListBySubject(ctx(), k)
			nothing(t, "LoginSessions.ListBySubject", len(ls), err)
			n, err = s.LoginSessions().DeleteBySubject(ctx(), k)
			nothing(t, "LoginSessions.DeleteBySubject", int(n), err)

			_, err = s.ConsentSessions().Get(ctx(), k)
			notFound(t, "ConsentSessions.Get", err)
			f := storage.ConsentFilter{Subject: k, ClientID: k, LoginSessionID: k}
			cs, err := s.ConsentSessions().List(ctx(), f)
			nothing(t, "ConsentSessions.List", len(cs), err)
			n, err = s.ConsentSessions().Revoke(ctx(), f, nil)
			nothing(t, "ConsentSessions.Delete", int(n), err)

			_, err = s.Trust().Get(ctx(), k)
			notFound(t, "Trust.Get", err)
			notFound(t, "Trust.Delete", s.Trust().Delete(ctx(), k))
			tl, err := s.Trust().List(ctx(), k)
			nothing(t, "Trust.List", len(tl), err)
			tl, err = s.Trust().Find(ctx(), k, k, base)
			nothing(t, "Trust.Find", len(tl), err)

			// Writes: stored (SQLite keeps any text) or ErrInvalid.
			stored := func(what string, err error) {
				t.Helper()
				if err != nil && !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("%s: got %v, want no error or storage.ErrInvalid", what, err)
				}
			}
			stored("Clients.Create", s.Clients().Create(ctx(), storage.Client{ID: k, Name: k, CreatedAt: base, UpdatedAt: base}))
			stored("Nonces.Use", s.Nonces().Use(ctx(), k, base.Add(time.Hour)))
		})
	}
}
