package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
	"github.com/gatehouse-dev/gatehouse/issuer/storage/storetest"
)

// The store reads the time from Options.Now: a nonce whose expiry has
// passed on that clock may be used again, and a key stored without a
// creation time gets the clock's.
func TestStoreClock(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewClock(time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	s, err := sqlstore.Open(ctx, "memory", sqlstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Expired on the store's clock, not yet on the wall clock.
	if err := s.Nonces().Use(ctx, "iss|jti", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Nonces().Use(ctx, "iss|jti", clk.Now().Add(time.Minute)); err != nil {
		t.Fatalf("a nonce expired on the store's clock was refused: %v", err)
	}
	if err := s.Keys().Add(ctx, storage.Key{Set: "set", KID: "k1", Alg: "RS256", Use: "sig", PublicJWK: []byte(`{"kty":"oct"}`)}); err != nil {
		t.Fatal(err)
	}
	k, err := s.Keys().Get(ctx, "set", "k1")
	if err != nil || !k.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("key created at %v (%v), the store's clock says %v", k.CreatedAt, err, clk.Now())
	}
}
