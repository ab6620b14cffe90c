package extauthz

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// replayCache remembers the DPoP proofs seen within the replay window
// (RFC 9449 §11.1) by a 128-bit digest of (key thumbprint, jti). It is
// bounded: each shard holds at most size/shards entries, kept in arrival
// order; as every entry lives for the same window, the oldest expires
// first. A shard full of entries still inside the window refuses new
// proofs (fail closed) rather than forget one that could be replayed.
//
// Each sidecar replica has its own cache (see docs/sidecar.md).
type replayCache struct {
	shards [replayShards]replayShard
}

const replayShards = 64

type replayShard struct {
	mu      sync.Mutex
	seen    map[[2]uint64]int64 // digest → expiry (unix nanoseconds)
	order   [][2]uint64         // ring of digests in arrival order
	head, n int
}

type replayResult int

const (
	replayNew replayResult = iota
	replaySeen
	replayFull
)

func newReplayCache(size int) *replayCache {
	per := max(size/replayShards, 16)
	c := &replayCache{}
	for i := range c.shards {
		c.shards[i].seen = make(map[[2]uint64]int64)
		c.shards[i].order = make([][2]uint64, per)
	}
	return c
}

// add records the proof (jkt, jti) until now+ttl and reports whether it
// was new, already seen, or could not be recorded.
func (c *replayCache) add(jkt, jti string, now time.Time, ttl time.Duration) replayResult {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	k := [2]uint64{binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16])}
	s := &c.shards[k[0]%replayShards]
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[k]; ok && exp > t {
		return replaySeen
	}
	// Drop the expired entries at the front.
	for s.n > 0 {
		old := s.order[s.head]
		if exp, ok := s.seen[old]; ok && exp > t {
			break
		}
		delete(s.seen, old)
		s.head = (s.head + 1) % len(s.order)
		s.n--
	}
	if s.n == len(s.order) {
		return replayFull
	}
	s.seen[k] = t + int64(ttl)
	s.order[(s.head+s.n)%len(s.order)] = k
	s.n++
	return replayNew
}
