package flow

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

func TestRecentFlows(t *testing.T) {
	var rf recentFlows
	now := time.Unix(1_700_000_000, 0)
	f := storage.Flow{Kind: storage.FlowLogin, ID: "a", Status: "pending", Data: []byte(`{"x":1}`)}
	if _, ok := rf.get(storage.FlowLogin, "a", now); ok {
		t.Fatal("hit on an empty cache")
	}
	rf.put(f, now)
	f.Data[2] = 'y' // the caller's slice is not the remembered one
	got, ok := rf.get(storage.FlowLogin, "a", now.Add(recentFlowTTL))
	if !ok || string(got.Data) != `{"x":1}` {
		t.Fatalf("get: %v %s", ok, got.Data)
	}
	got.Data[2] = 'z'
	if again, _ := rf.get(storage.FlowLogin, "a", now); string(again.Data) != `{"x":1}` {
		t.Fatalf("a returned copy changed the remembered flow: %s", again.Data)
	}
	if _, ok := rf.get(storage.FlowConsent, "a", now); ok {
		t.Fatal("kinds are separate")
	}
	if _, ok := rf.get(storage.FlowLogin, "a", now.Add(recentFlowTTL+time.Second)); ok {
		t.Fatal("a copy older than the TTL was used")
	}
	rf.drop(storage.FlowLogin, "a")
	if _, ok := rf.get(storage.FlowLogin, "a", now); ok {
		t.Fatal("dropped flow still remembered")
	}

	// The bound: stale copies make room first; a burst of fresh ones
	// starts over.
	for i := range recentFlowMax {
		rf.put(storage.Flow{Kind: storage.FlowLogin, ID: fmt.Sprint(i)}, now)
	}
	rf.put(storage.Flow{Kind: storage.FlowLogin, ID: "late"}, now.Add(recentFlowTTL+time.Second))
	if len(rf.m) != 1 {
		t.Fatalf("stale copies kept: %d", len(rf.m))
	}
	for i := range recentFlowMax {
		rf.put(storage.Flow{Kind: storage.FlowLogin, ID: fmt.Sprint(i)}, now)
	}
	if len(rf.m) > recentFlowMax {
		t.Fatalf("bound exceeded: %d", len(rf.m))
	}
}
