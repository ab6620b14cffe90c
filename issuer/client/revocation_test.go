package client

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/storage/memory"
)

// TestClientRevocationEvents: which client changes raise a revocation
// event for the gateways (docs/revocation-events.md), recorded with the
// change.
func TestClientRevocationEvents(t *testing.T) {
	ctx := context.Background()
	st := memory.New(memory.Options{})
	clk := newClock()
	m := newTestManager(t, st.Clients(), clk, 0)
	kinds := func() []string {
		t.Helper()
		evs, err := st.RevocationEvents().List(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			var d struct {
				ClientID     string  `json:"client_id"`
				Reason       string  `json:"reason"`
				IssuedBefore *string `json:"issued_before"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil || d.ClientID != "app" || d.IssuedBefore == nil || e.Kind != "client" {
				t.Fatalf("event %s %s", e.Kind, e.Data)
			}
			out = append(out, d.Reason)
		}
		return out
	}
	want := func(step string, reasons ...string) {
		t.Helper()
		got := kinds()
		if len(got) != len(reasons) {
			t.Fatalf("%s: events %v, want %v", step, got, reasons)
		}
		for i := range got {
			if got[i] != reasons[i] {
				t.Fatalf("%s: events %v, want %v", step, got, reasons)
			}
		}
	}
	c, err := m.Create(ctx, &Client{ID: "app", Secret: "first-secret-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = ""
	c.Name = "renamed"
	if _, err := m.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	want("update keeping the secret")
	if _, err := m.RotateSecret(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	want("rotation", "secret_rotated")
	if _, err := m.FinalizeSecretRotation(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	want("finalised rotation", "secret_rotated")
	c.Secret = "second-secret-0123456789"
	if _, err := m.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	want("new secret by update", "secret_rotated", "secret_rotated")
	if err := m.Delete(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "app"); err == nil {
		t.Fatal("second delete succeeded")
	}
	want("deletion", "secret_rotated", "secret_rotated", "deleted")
}
