package extauthz

import (
	"crypto/sha256"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
)

// tokenKey is the SHA-256 of a token: the cache never holds tokens.
type tokenKey = string

func hashToken(tok string) tokenKey {
	// Hash the string's bytes in place: Sum256 only reads them, and a
	// copy of every token checked would be a tenth of a cache miss's
	// garbage.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
	return string(sum[:])
}

// cacheEntry is a remembered validation result: an identity or a denial.
type cacheEntry struct {
	id      *Identity
	deny    *Denial
	expires time.Time // on the injected clock
}

// decisionCache maps token hashes to validation results. Entries carry
// their own expiry on the injected clock; ristretto's TTL (wall clock)
// only reclaims memory. Memory is bounded by CacheConfig.MaxBytes.
type decisionCache struct {
	c    *ristretto.Cache[tokenKey, *cacheEntry]
	seen doorkeeper
}

func newDecisionCache(maxBytes int64) (*decisionCache, error) {
	// Ristretto wants ~10 counters per item it may hold; entries are
	// around 1 KiB.
	items := max(maxBytes/1024, 1024)
	c, err := ristretto.NewCache(&ristretto.Config[tokenKey, *cacheEntry]{
		NumCounters:        10 * items,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: false,
		// The key is already a SHA-256 digest: its first 128 bits are the
		// two hashes ristretto wants (no collisions an attacker can pick).
		KeyToHash: func(k tokenKey) (uint64, uint64) {
			return le64(k[0:8]), le64(k[8:16])
		},
	})
	if err != nil {
		return nil, err
	}
	return &decisionCache{c: c, seen: newDoorkeeper(2 * items)}, nil
}

func (d *decisionCache) get(k tokenKey, now time.Time) (*cacheEntry, bool) {
	e, ok := d.c.Get(k)
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}

func (d *decisionCache) set(k tokenKey, e *cacheEntry, cost int64, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	d.c.SetWithTTL(k, e, cost, ttl)
}

// admit reports whether a decision on k that costs only local work (a
// JWT's) may be cached: from the token's second miss on (see doorkeeper).
func (d *decisionCache) admit(k tokenKey) bool { return d.seen.admit(k) }

func (d *decisionCache) clear() { d.c.Clear() }

func (d *decisionCache) del(k tokenKey) { d.c.Del(k) }

func (d *decisionCache) wait() { d.c.Wait() }

func (d *decisionCache) close() { d.c.Close() }

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// doorkeeper keeps one-hit wonders out of the decision cache (TinyLFU's
// doorkeeper): a JWT decision is cached from the token's second miss
// within a recent window, not its first. Inserting a decision is most of
// a miss's cost beyond the signature (ristretto's admission goroutine,
// the cached identity kept live for the collector to mark, the heap
// growing to hold it), paid for nothing when the token is never sent
// again: clients that fetch a token per request, a flood of distinct
// forged tokens (which would also evict the decisions of real callers).
// A token sent repeatedly is verified twice instead of once.
//
// It is a direct-mapped table of 64-bit fingerprints of token hashes,
// lock-free: a token forgotten because another overwrote its slot is
// merely verified again.
type doorkeeper struct {
	slots []atomic.Uint64
	mask  uint64
}

// newDoorkeeper remembers up to n (rounded up to a power of two) tokens.
func newDoorkeeper(n int64) doorkeeper {
	size := uint64(1)
	for size < uint64(n) {
		size <<= 1
	}
	return doorkeeper{slots: make([]atomic.Uint64, size), mask: size - 1}
}

// admit reports whether k was offered recently, else remembers it. The
// slot and fingerprint come from bits of the SHA-256 that ristretto's
// hashes (the first 128) do not use.
func (d *doorkeeper) admit(k tokenKey) bool {
	slot := &d.slots[le64(k[16:24])&d.mask]
	fp := le64(k[24:32]) | 1 // never the empty slot's 0
	if slot.Load() == fp {
		return true
	}
	slot.Store(fp)
	return false
}
