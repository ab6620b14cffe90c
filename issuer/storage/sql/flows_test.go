package sqlstore

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// TestAsyncStep: on PostgreSQL only the login step (a login session and
// the consent challenge, nothing issued) commits without waiting for the
// WAL flush; a step that records a consent session or tokens, or only
// marks a challenge used (logout, a rejection), waits.
func TestAsyncStep(t *testing.T) {
	next := &storage.Flow{Kind: storage.FlowConsent, ID: "c"}
	for _, tc := range []struct {
		name string
		st   storage.FlowStep
		want bool
	}{
		{"login step", storage.FlowStep{LoginSession: &storage.LoginSession{ID: "s"}, Next: next}, true},
		{"login step, remembered session", storage.FlowStep{Next: next}, true},
		{"consent step", storage.FlowStep{ConsentSession: &storage.ConsentSession{}, Tokens: []storage.Token{{}}}, false},
		{"consent step without remembering", storage.FlowStep{Tokens: []storage.Token{{}}}, false},
		{"next challenge with tokens", storage.FlowStep{Next: next, Tokens: []storage.Token{{}}}, false},
		{"used only", storage.FlowStep{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := asyncStep(&tc.st); got != tc.want {
				t.Fatalf("asyncStep = %v, want %v", got, tc.want)
			}
			q, _ := stepStatement(&tc.st, tc.want)
			if strings.Contains(q, "synchronous_commit") != tc.want {
				t.Fatalf("statement: %s", q)
			}
		})
	}
}
