package extauthz

import (
	"crypto/sha256"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
)

// tokenKey is the SHA-256 of a token: the cache never holds tokens.
type tokenKey = string

func hashToken(tok string) tokenKey {
	// Hash the string's bytes in place: Sum256 only reads them, and a
	// copy of every token checked was a tenth of a cache miss's garbage.
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
	c *ristretto.Cache[tokenKey, *cacheEntry]
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
	return &decisionCache{c: c}, nil
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

func (d *decisionCache) clear() { d.c.Clear() }

func (d *decisionCache) wait() { d.c.Wait() }

func (d *decisionCache) close() { d.c.Close() }

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
