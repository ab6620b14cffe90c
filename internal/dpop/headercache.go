package dpop

import (
	"hash/maphash"
	"sync/atomic"
)

// HeaderCache remembers checked proof headers by their exact base64url
// text: a client signs every proof with the same key, so its proofs share
// one header, and parsing the JWK and computing its thumbprint would
// otherwise be about a third of a proof check. A header is the same
// bytes, so it has the same key: the cache changes no decision. It is a
// fixed table of recent headers, safe for concurrent use; a header pushed
// out by another is checked again. The zero value is not usable: use
// NewHeaderCache. A nil *HeaderCache caches nothing.
type HeaderCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[headerEntry]
	mask  uint64
}

type headerEntry struct {
	b64 string
	h   *checkedHeader
}

// NewHeaderCache remembers up to n headers (rounded up to a power of two).
func NewHeaderCache(n int) *HeaderCache {
	size := 1
	for size < n {
		size <<= 1
	}
	return &HeaderCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[headerEntry], size), mask: uint64(size - 1)}
}

func (c *HeaderCache) slot(b64 string) *atomic.Pointer[headerEntry] {
	return &c.slots[maphash.String(c.seed, b64)&c.mask]
}

func (c *HeaderCache) get(b64 string) *checkedHeader {
	if c == nil {
		return nil
	}
	if e := c.slot(b64).Load(); e != nil && e.b64 == b64 {
		return e.h
	}
	return nil
}

func (c *HeaderCache) put(b64 string, h *checkedHeader) {
	if c != nil {
		c.slot(b64).Store(&headerEntry{b64: b64, h: h})
	}
}
