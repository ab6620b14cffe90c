package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
	sqlstore "github.com/gatehouse-dev/gatehouse/issuer/storage/sql"
)

// TestJanitorCommand: `gatehouse janitor` deletes expired rows in batches
// and keeps live ones (the million-row run is in issuer/storage/sql).
func TestJanitorCommand(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "gh.sqlite")
	st, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 250 {
		exp := now.Add(-time.Hour)
		if i%5 == 0 {
			exp = now.Add(time.Hour)
		}
		if err := st.Tokens().Create(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: fmt.Sprint("s", i), ClientID: "c", Active: true, IssuedAt: now, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	// One revocation event recorded two hours ago.
	if err := st.Tokens().Revoke(ctx, storage.KindAccessToken, "s0", func([]storage.Token) (*storage.RevocationEvent, error) {
		return &storage.RevocationEvent{Kind: "token", Time: now.Add(-2 * time.Hour), Until: now.Add(time.Hour), Data: []byte(`{}`)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, err := runToExit(t, map[string]string{}, "janitor", dsn, "--tokens", "--batch-size", "7")
	if err != nil || !strings.Contains(out, "Deleted 200 expired tokens") {
		t.Fatalf("janitor: %v\n%s", err, out)
	}
	out, err = runToExit(t, map[string]string{}, "janitor", dsn)
	if err != nil || !strings.Contains(out, "Deleted 0 expired tokens") || !strings.Contains(out, "login sessions") ||
		!strings.Contains(out, "Deleted 0 expired revocation events") {
		t.Fatalf("second janitor: %v\n%s", err, out)
	}
	// The retention comes from the configuration the DSN comes from.
	out, err = runToExit(t, map[string]string{"DSN": dsn, "REVOCATION_EVENTS_RETENTION": "1h"}, "janitor", "--read-from-env", "--revocation-events")
	if err != nil || !strings.Contains(out, "Deleted 1 expired revocation events") || strings.Contains(out, "tokens") {
		t.Fatalf("janitor with a 1h retention: %v\n%s", err, out)
	}
	st, _ = sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	defer st.Close()
	var left int
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM tokens").Scan(&left); err != nil || left != 50 {
		t.Fatalf("left %d rows (%v), want the 50 live tokens", left, err)
	}
	out, err = runToExit(t, map[string]string{}, "janitor")
	if err == nil || !strings.Contains(out, "no database given") {
		t.Fatalf("janitor without DSN: %v %s", err, out)
	}
}
