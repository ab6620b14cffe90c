package flow

import (
	"bytes"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Recently written flows.
//
// A flow is written by one request and read by the next one of the same
// End-User moments later (the challenge created, then accepted, then its
// verifier used). Where that read only feeds a compare-and-set (the app's
// accept or reject: FlowStore.Swap; a verifier: FlowStore.Step), the
// process's own last write of the flow can stand in for the read: if the
// flow changed in the database since (another instance handled it, the
// app decided again, it expired and was removed), the compare-and-set
// fails and the request reads the database and decides again, as it does
// for a concurrent change; a verifier that does not match the remembered
// flow is checked against the database before it is refused. Reads whose
// result is answered as it is (GET .../requests/{login,consent}) always go
// to the database. The copies live in this process only, for
// recentFlowTTL, at most recentFlowMax of them.

const (
	recentFlowTTL = 5 * time.Minute
	recentFlowMax = 4096
)

type recentKey struct {
	kind storage.FlowKind
	id   string
}

type recentFlow struct {
	f  storage.Flow
	at time.Time
}

type recentFlows struct {
	mu sync.Mutex
	m  map[recentKey]recentFlow
}

// put remembers f as just written.
func (rf *recentFlows) put(f storage.Flow, now time.Time) {
	f.Data = bytes.Clone(f.Data)
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.m == nil {
		rf.m = map[recentKey]recentFlow{}
	}
	if len(rf.m) >= recentFlowMax {
		for k, e := range rf.m {
			if now.Sub(e.at) > recentFlowTTL {
				delete(rf.m, k)
			}
		}
		if len(rf.m) >= recentFlowMax {
			clear(rf.m) // a burst of unfinished flows: start over
		}
	}
	rf.m[recentKey{f.Kind, f.ID}] = recentFlow{f: f, at: now}
}

// get returns the remembered copy of a flow, if there is a fresh one.
func (rf *recentFlows) get(kind storage.FlowKind, id string, now time.Time) (storage.Flow, bool) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	e, ok := rf.m[recentKey{kind, id}]
	if !ok || now.Sub(e.at) > recentFlowTTL {
		return storage.Flow{}, false
	}
	f := e.f
	f.Data = bytes.Clone(f.Data)
	return f, true
}

// drop forgets a flow (its compare-and-set failed, or it was used).
func (rf *recentFlows) drop(kind storage.FlowKind, id string) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	delete(rf.m, recentKey{kind, id})
}
