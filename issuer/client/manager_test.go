package client

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/apierr"
	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

func testHasher(t testing.TB) *Hasher {
	h, err := NewHasher(HasherOptions{PBKDF2Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newTestManager(t testing.TB, st storage.ClientStore, clk *clock, ttl time.Duration) *Manager {
	t.Helper()
	m, err := NewManager(ManagerOptions{Store: st, Hasher: testHasher(t), Now: clk.Now, CacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestManagerCreate(t *testing.T) {
	ctx := context.Background()
	st := newMemClients()
	m := newTestManager(t, st, newClock(), 0)

	c, err := m.Create(ctx, &Client{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ID) != 36 || len(c.Secret) < 26 {
		t.Fatalf("generated id %q secret %q", c.ID, c.Secret)
	}
	row, _ := st.Get(ctx, c.ID)
	if row.SecretHash == "" || strings.Contains(string(row.Metadata), c.Secret) || strings.Contains(string(row.Metadata), row.SecretHash) {
		t.Fatalf("stored row leaks the secret or its hash: %s", row.Metadata)
	}
	if VerifySecret(row.SecretHash, c.Secret) != nil {
		t.Fatal("stored hash does not verify the secret")
	}
	got, err := m.Get(ctx, c.ID)
	if err != nil || got.Secret != "" || got.Name != "app" || got.Scope != DefaultScope {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Given id and secret are kept; duplicate ids conflict.
	c2, err := m.Create(ctx, &Client{ID: "fixed", Secret: "my-secret-123"})
	if err != nil || c2.ID != "fixed" || c2.Secret != "my-secret-123" {
		t.Fatalf("%+v %v", c2, err)
	}
	_, err = m.Create(ctx, &Client{ID: "fixed"})
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.StatusCode() != 409 {
		t.Fatalf("duplicate: %v", err)
	}

	// Public clients have no secret.
	pub, err := m.Create(ctx, &Client{TokenEndpointAuthMethod: AuthNone})
	if err != nil || pub.Secret != "" || pub.SecretHash != "" {
		t.Fatalf("public: %+v %v", pub, err)
	}

	// Unknown ids are not_found wrapping storage.ErrNotFound.
	_, err = m.Get(ctx, "nope")
	if !errors.As(err, &ae) || ae.Code != "not_found" || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestManagerCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	st := newMemClients()
	clk := newClock()
	a := newTestManager(t, st, clk, 5*time.Second) // this replica
	b := newTestManager(t, st, clk, 5*time.Second) // another replica on the same database

	c, err := a.Create(ctx, &Client{ID: "c1", Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Manager{a, b} {
		if got, _ := m.Get(ctx, "c1"); got.Name != "one" {
			t.Fatalf("initial name %q", got.Name)
		}
		m.cache.Wait()
	}
	// Cached: no further store reads.
	n := st.Gets()
	if _, err := b.Get(ctx, "c1"); err != nil || st.Gets() != n {
		t.Fatalf("second Get was not served from the cache (%d -> %d)", n, st.Gets())
	}
	// Returned clients are copies: modifying one does not touch the cache.
	got, _ := b.Get(ctx, "c1")
	got.Name = "mutated"
	if again, _ := b.Get(ctx, "c1"); again.Name != "one" {
		t.Fatal("cache entry was modified through a returned client")
	}

	c.Name = "two"
	c.Secret = ""
	if _, err := a.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	// The replica that made the change sees it at once.
	if got, _ := a.Get(ctx, "c1"); got.Name != "two" {
		t.Fatalf("changing replica sees %q", got.Name)
	}
	// The other replica serves its cached copy until CacheTTL ...
	if got, _ := b.Get(ctx, "c1"); got.Name != "one" {
		t.Fatalf("other replica within TTL sees %q (expected the cached value)", got.Name)
	}
	// ... and the change once CacheTTL has passed.
	clk.Advance(5 * time.Second)
	if got, _ := b.Get(ctx, "c1"); got.Name != "two" {
		t.Fatalf("other replica after TTL sees %q", got.Name)
	}

	// Delete invalidates too.
	a.cache.Wait()
	if err := a.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted client still served: %v", err)
	}
	// Every change path invalidates: rotate, finalize, lifespans, patch.
	c3, _ := a.Create(ctx, &Client{ID: "c3"})
	for name, change := range map[string]func() error{
		"rotate":    func() error { _, err := a.RotateSecret(ctx, "c3"); return err },
		"finalize":  func() error { _, err := a.FinalizeSecretRotation(ctx, "c3"); return err },
		"lifespans": func() error { _, err := a.SetLifespans(ctx, "c3", Lifespans{}); return err },
		"patch": func() error {
			_, err := a.Patch(ctx, "c3", []byte(`[{"op":"replace","path":"/client_name","value":"patched"}]`))
			return err
		},
	} {
		before, _ := a.Get(ctx, "c3")
		a.cache.Wait()
		clk.Advance(time.Millisecond)
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after, _ := a.Get(ctx, "c3")
		if !after.UpdatedAt.After(before.UpdatedAt) {
			t.Errorf("%s: cache not invalidated (updated_at %v -> %v)", name, before.UpdatedAt, after.UpdatedAt)
		}
	}
	_ = c3
}

func TestManagerUpdateSecrets(t *testing.T) {
	ctx := context.Background()
	st := newMemClients()
	m := newTestManager(t, st, newClock(), -1)
	c, _ := m.Create(ctx, &Client{ID: "c", Secret: "first-secret"})
	hash := func() storage.Client { r, _ := st.Get(ctx, "c"); return r }

	// Empty secret keeps the secret.
	c.Secret = ""
	c.Name = "renamed"
	out, err := m.Update(ctx, c)
	if err != nil || out.Secret != "" || VerifySecret(hash().SecretHash, "first-secret") != nil {
		t.Fatalf("keep secret: %v", err)
	}
	// A new secret is rehashed (and not echoed).
	c.Secret = "second-secret"
	out, err = m.Update(ctx, c)
	if err != nil || out.Secret != "" || VerifySecret(hash().SecretHash, "second-secret") != nil {
		t.Fatalf("new secret: %v", err)
	}
	// Becoming public drops the secret; becoming confidential again generates one.
	c.Secret = ""
	c.TokenEndpointAuthMethod = AuthNone
	if _, err := m.Update(ctx, c); err != nil || hash().SecretHash != "" {
		t.Fatalf("public: %v %q", err, hash().SecretHash)
	}
	c.TokenEndpointAuthMethod = AuthClientSecretPost
	out, err = m.Update(ctx, c)
	if err != nil || out.Secret == "" || VerifySecret(hash().SecretHash, out.Secret) != nil {
		t.Fatalf("confidential again: %v", err)
	}
	// Created_at survives updates.
	if !out.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("created_at changed: %v -> %v", c.CreatedAt, out.CreatedAt)
	}
}

func TestManagerRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemClients()
	m := newTestManager(t, st, newClock(), -1)
	_, _ = m.Create(ctx, &Client{ID: "c", Secret: "secret-0"})
	secrets := []string{"secret-0"}
	for i := 0; i < DefaultMaxRotatedSecrets+2; i++ {
		out, err := m.RotateSecret(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, out.Secret)
	}
	row, _ := st.Get(ctx, "c")
	if len(row.RotatedSecretHashes) != DefaultMaxRotatedSecrets {
		t.Fatalf("kept %d rotated hashes", len(row.RotatedSecretHashes))
	}
	// The newest secret is current; the previous ones stay valid; the oldest were dropped.
	if VerifySecret(row.SecretHash, secrets[len(secrets)-1]) != nil {
		t.Fatal("current secret")
	}
	matchesRotated := func(s string) bool {
		for _, h := range row.RotatedSecretHashes {
			if VerifySecret(h, s) == nil {
				return true
			}
		}
		return false
	}
	if !matchesRotated(secrets[len(secrets)-2]) || matchesRotated(secrets[0]) {
		t.Fatal("rotated secrets window is wrong")
	}
	if _, err := m.FinalizeSecretRotation(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	row, _ = st.Get(ctx, "c")
	if len(row.RotatedSecretHashes) != 0 {
		t.Fatal("finalize kept rotated hashes")
	}
	pub, _ := m.Create(ctx, &Client{TokenEndpointAuthMethod: AuthNone})
	if _, err := m.RotateSecret(ctx, pub.ID); err == nil {
		t.Fatal("rotated a public client's secret")
	}
}

func TestManagerPatch(t *testing.T) {
	ctx := context.Background()
	st := newMemClients()
	m := newTestManager(t, st, newClock(), -1)
	_, _ = m.Create(ctx, &Client{ID: "c", Secret: "secret-0", RedirectURIs: []string{"https://a.example/cb"}})

	out, err := m.Patch(ctx, "c", []byte(`[
		{"op":"add","path":"/redirect_uris/-","value":"https://b.example/cb"},
		{"op":"replace","path":"/client_secret","value":"patched-secret"},
		{"op":"add","path":"/metadata","value":{"team":"x"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.RedirectURIs) != 2 || out.Secret != "" || string(out.Metadata) != `{"team":"x"}` {
		t.Fatalf("patched: %+v", out)
	}
	row, _ := st.Get(ctx, "c")
	if VerifySecret(row.SecretHash, "patched-secret") != nil {
		t.Fatal("patched secret not rehashed")
	}
	// A patch that does not touch the secret keeps it.
	if _, err := m.Patch(ctx, "c", []byte(`[{"op":"replace","path":"/client_name","value":"n"}]`)); err != nil {
		t.Fatal(err)
	}
	row, _ = st.Get(ctx, "c")
	if VerifySecret(row.SecretHash, "patched-secret") != nil {
		t.Fatal("secret lost by an unrelated patch")
	}

	for name, p := range map[string]string{
		"client_id":    `[{"op":"replace","path":"/client_id","value":"other"}]`,
		"not a patch":  `{"op":"replace"}`,
		"failed test":  `[{"op":"test","path":"/client_name","value":"zzz"}]`,
		"missing path": `[{"op":"replace","path":"/nope/deeper","value":1}]`,
		"invalid":      `[{"op":"replace","path":"/grant_types","value":["password"]}]`,
		"wrong type":   `[{"op":"replace","path":"/redirect_uris","value":"x"}]`,
	} {
		_, err := m.Patch(ctx, "c", []byte(p))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.StatusCode() != 400 {
			t.Errorf("%s: want 400, got %v", name, err)
		}
	}
	if _, err := m.Patch(ctx, "missing", []byte(`[]`)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
}

func TestManagerList(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, newMemClients(), newClock(), -1)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		owner := "x"
		if id == "c" {
			owner = "y"
		}
		if _, err := m.Create(ctx, &Client{ID: id, Owner: owner, Name: "n-" + id, TokenEndpointAuthMethod: AuthNone}); err != nil {
			t.Fatal(err)
		}
	}
	page, more, err := m.List(ctx, ListOptions{Limit: 2})
	if err != nil || !more || len(page) != 2 || page[0].ID != "a" || page[1].ID != "b" {
		t.Fatalf("page 1: %v %v %v", page, more, err)
	}
	page, more, _ = m.List(ctx, ListOptions{Limit: 2, After: "d"})
	if more || len(page) != 1 || page[0].ID != "e" {
		t.Fatalf("last page: %v %v", page, more)
	}
	page, _, _ = m.List(ctx, ListOptions{Owner: "y"})
	if len(page) != 1 || page[0].ID != "c" {
		t.Fatalf("owner filter: %v", page)
	}
	page, _, _ = m.List(ctx, ListOptions{Name: "n-d"})
	if len(page) != 1 || page[0].ID != "d" {
		t.Fatalf("name filter: %v", page)
	}
}

func TestStoredDocumentRoundTrip(t *testing.T) {
	d := Duration(time.Hour)
	c := &Client{ID: "c", Secret: "plain", Name: "n", SecretHash: "h", RegistrationAccessToken: "REGTOKEN123",
		Metadata: json.RawMessage(`{"a":1}`), Lifespans: Lifespans{ImplicitGrantIDTokenLifespan: &d}}
	c.ApplyDefaults()
	sc, err := toStorage(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"plain", `"h"`, "REGTOKEN123"} {
		if strings.Contains(string(sc.Metadata), leak) {
			t.Errorf("stored document contains %s: %s", leak, sc.Metadata)
		}
	}
	back, err := fromStorage(sc)
	if err != nil || back.ImplicitGrantIDTokenLifespan.Get(0) != time.Hour || back.SecretHash != "h" || string(back.Metadata) != `{"a":1}` {
		t.Fatalf("%+v %v", back, err)
	}
}
