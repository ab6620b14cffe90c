package oauth2

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/issuer/storage"
)

// Opaque tokens look like Hydra's: <prefix><key>.<mac>, key being 32
// bytes and mac the MAC of the key under a purpose-bound key derived from
// the system secret, both unpadded base64url. What is stored (the
// "signature") is the key's first 6 bytes followed by the MAC: a database
// dump yields no usable token, since the rest of the key cannot be
// recovered from its MAC.
//
// The key's first 6 bytes are the issue time in Unix milliseconds (big
// endian); the other 26 bytes (208 bits) are random, far above RFC 6749
// §10.10's 2^-128 bound on guessing. The time prefix is not secret (a
// JWT carries its iat in clear) and exists for the database: signatures
// issued close together sort together, so the primary-key index of a busy
// token table grows at its right edge instead of dirtying a random page
// per token (on SQLite that halves the pages a batch of inserts writes).
const (
	opaqueKeyBytes  = 32
	opaqueTimeBytes = 6
	minMACBytes     = 16
	maxMACBytes     = 64
	// maxOpaqueLength bounds what the parser looks at.
	maxOpaqueLength = 256
)

var b64 = base64.RawURLEncoding.Strict()

// opaqueKind is one family of opaque tokens.
type opaqueKind struct {
	prefix  string
	purpose string // MAC domain separation between kinds
	kind    storage.TokenKind
}

// The opaque kinds, with Hydra's prefixes.
var (
	opaqueAccessToken   = opaqueKind{prefix: "ory_at_", purpose: "oauth2/access_token", kind: storage.KindAccessToken}
	opaqueAuthorizeCode = opaqueKind{prefix: "ory_ac_", purpose: "oauth2/authorize_code", kind: storage.KindAuthorizationCode}
	opaqueRefreshToken  = opaqueKind{prefix: "ory_rt_", purpose: "oauth2/refresh_token", kind: storage.KindRefreshToken}
	// opaqueKinds are the kinds a presented token is tried against.
	opaqueKinds = []opaqueKind{opaqueAccessToken, opaqueAuthorizeCode, opaqueRefreshToken}
)

// newOpaque generates a token of kind k issued at now and returns it with
// its signature, the only part that is stored.
func newOpaque(m MACer, k opaqueKind, now time.Time) (token, signature string, err error) {
	key := make([]byte, opaqueKeyBytes)
	binary.BigEndian.PutUint64(key, uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(key[opaqueTimeBytes:]); err != nil {
		return "", "", err
	}
	mac := m.MAC(k.purpose, key)
	return k.prefix + b64.EncodeToString(key) + "." + b64.EncodeToString(mac), storageSignature(key, mac), nil
}

// storageSignature is the stored form of an opaque token: the key's time
// prefix and the MAC, base64url.
func storageSignature(key, mac []byte) string {
	return b64.EncodeToString(key[:opaqueTimeBytes]) + b64.EncodeToString(mac)
}

// splitOpaque parses <prefix><key>.<mac>. It accepts only canonical
// unpadded base64url, a 32-byte key and a MAC of sensible length; it
// never panics on hostile input.
func splitOpaque(prefix, token string) (key, mac []byte, ok bool) {
	if len(token) > maxOpaqueLength {
		return nil, nil, false
	}
	rest, found := strings.CutPrefix(token, prefix)
	if !found {
		return nil, nil, false
	}
	k64, m64, found := strings.Cut(rest, ".")
	// The decoder skips \r and \n, so the alphabet is checked first.
	if !found || !isBase64URL(k64) || !isBase64URL(m64) {
		return nil, nil, false
	}
	key, err := b64.DecodeString(k64)
	if err != nil || len(key) != opaqueKeyBytes {
		return nil, nil, false
	}
	mac, err = b64.DecodeString(m64)
	if err != nil || len(mac) < minMACBytes || len(mac) > maxMACBytes {
		return nil, nil, false
	}
	return key, mac, true
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// opaqueSignature verifies a presented opaque token of kind k and returns
// its storage signature. The MAC is checked (in constant time, under any
// of the system secrets) before the database is asked, so forged tokens
// cost no query.
func opaqueSignature(m MACer, k opaqueKind, token string) (string, bool) {
	key, mac, ok := splitOpaque(k.prefix, token)
	if !ok || !m.VerifyMAC(k.purpose, key, mac) {
		return "", false
	}
	return storageSignature(key, mac), true
}
