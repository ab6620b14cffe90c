// Package secrets turns the operator's system secrets (SECRETS_SYSTEM,
// Hydra's secrets.system) into purpose-bound keys: authenticated encryption
// for data at rest (private signing keys), HMACs for opaque tokens and
// cookies, and raw 32-byte keys for other packages.
//
// Rotation works the way Hydra documents it: the FIRST secret encrypts and
// signs, EVERY secret decrypts and verifies. To rotate, prepend the new
// secret, restart every replica, and drop the old secret once nothing made
// with it is still in use.
//
// Keys are never the secrets themselves: each use derives its own subkey
// with HKDF-SHA256 (RFC 5869) from the secret, so a key leaked from one
// purpose says nothing about the others.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
)

// MinSecretLength is the shortest system secret accepted, in bytes.
const MinSecretLength = 16

// KeySize is the length of every derived key (AES-256, HMAC-SHA256, Key).
const KeySize = 32

// Ciphertext layout written by Encrypt (version 1):
//
//	version (1 byte) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM sealed data and tag
//
// The key id is the first 4 bytes of SHA-256 over the derived encryption
// key, so Decrypt finds the right secret without trial decryption and
// nothing about the secret itself is revealed. The version byte and key id
// are authenticated together with the caller's additional data.
const (
	version1    byte = 1
	keyIDLen         = 4
	nonceLen         = 12
	tagLen           = 16
	headerLen        = 1 + keyIDLen
	overheadLen      = headerLen + nonceLen + tagLen
)

// hkdfSalt is the fixed HKDF salt (RFC 5869 §3.1: a non-secret,
// application-specific salt strengthens the extraction step).
var hkdfSalt = []byte("gatehouse.secrets.v1")

// maxCachedPurposes bounds the memory used by derived-key caches. Purposes
// are meant to be constants; beyond this many the keys are derived anew on
// every call instead of being remembered.
const maxCachedPurposes = 1024

// Errors returned by the Keyring. Neither ever includes secret material.
var (
	// ErrNoSecrets: the list of system secrets is empty.
	ErrNoSecrets = errors.New("secrets: at least one system secret is required")
	// ErrDecrypt: the ciphertext was not produced by Encrypt under any
	// current secret with this purpose and additional data, or was altered.
	ErrDecrypt = errors.New("secrets: ciphertext cannot be decrypted with any system secret (altered, bound to another context, or made with a secret no longer configured)")
)

// Keyring holds the system secrets and derives every key from them. It is
// safe for concurrent use. Its String form never shows a secret.
type Keyring struct {
	prks [][]byte // HKDF pseudorandom keys, one per secret, first first

	mu     sync.RWMutex
	aeads  map[string][]aeadKey // by purpose
	macKey map[string][][]byte  // by purpose
}

type aeadKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// NewKeyring returns a Keyring over system secrets: the first one encrypts
// and signs, all of them decrypt and verify. Each secret must be at least
// MinSecretLength bytes long; the error names the offending index (never
// the value).
func NewKeyring(system []string) (*Keyring, error) {
	if len(system) == 0 {
		return nil, ErrNoSecrets
	}
	k := &Keyring{
		prks:   make([][]byte, 0, len(system)),
		aeads:  map[string][]aeadKey{},
		macKey: map[string][][]byte{},
	}
	for i, s := range system {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("secrets: system secret at index %d is %d bytes long, at least %d bytes are required", i, len(s), MinSecretLength)
		}
		prk, err := hkdf.Extract(sha256.New, []byte(s), hkdfSalt)
		if err != nil {
			return nil, fmt.Errorf("secrets: deriving from system secret at index %d: %w", i, err)
		}
		k.prks = append(k.prks, prk)
	}
	return k, nil
}

// Len returns the number of system secrets.
func (k *Keyring) Len() int { return len(k.prks) }

// String describes the keyring without any secret material.
func (k *Keyring) String() string { return fmt.Sprintf("secrets.Keyring(%d secrets)", len(k.prks)) }

// GoString is String, so %#v cannot print secrets either.
func (k *Keyring) GoString() string { return k.String() }

// derive expands secret i's pseudorandom key for a use ("enc", "mac",
// "key") and a caller's purpose. The use prefix keeps the encryption, MAC
// and raw keys of one purpose independent (RFC 5869 §3.2, info).
func (k *Keyring) derive(i int, use, purpose string) []byte {
	// The info string is length-prefixed so that no (use, purpose) pair
	// can collide with another.
	info := fmt.Sprintf("%s:%d:%s", use, len(purpose), purpose)
	key, err := hkdf.Expand(sha256.New, k.prks[i], info, KeySize)
	if err != nil {
		// Only possible for lengths above 255*32 bytes.
		panic("secrets: hkdf.Expand: " + err.Error())
	}
	return key
}

// Key returns a 32-byte key for purpose derived from the first secret, for
// packages that need raw key material (e.g. cookie encryption). Use a
// distinct constant purpose per use.
func (k *Keyring) Key(purpose string) []byte { return k.derive(0, "key", purpose) }

// Keys returns one 32-byte key for purpose per secret, first first, for
// verifiers that must accept material made under older secrets.
func (k *Keyring) Keys(purpose string) [][]byte {
	out := make([][]byte, len(k.prks))
	for i := range k.prks {
		out[i] = k.derive(i, "key", purpose)
	}
	return out
}

// aeadKeys returns the AEADs for purpose, one per secret, first first.
func (k *Keyring) aeadKeys(purpose string) []aeadKey {
	k.mu.RLock()
	ks, ok := k.aeads[purpose]
	k.mu.RUnlock()
	if ok {
		return ks
	}
	ks = make([]aeadKey, len(k.prks))
	for i := range k.prks {
		raw := k.derive(i, "enc", purpose)
		block, err := aes.NewCipher(raw)
		if err != nil {
			panic("secrets: aes.NewCipher: " + err.Error()) // 32-byte key: cannot fail
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			panic("secrets: cipher.NewGCM: " + err.Error())
		}
		sum := sha256.Sum256(raw)
		copy(ks[i].id[:], sum[:keyIDLen])
		ks[i].aead = gcm
	}
	k.mu.Lock()
	if len(k.aeads) < maxCachedPurposes {
		k.aeads[purpose] = ks
	}
	k.mu.Unlock()
	return ks
}

func (k *Keyring) macKeys(purpose string) [][]byte {
	k.mu.RLock()
	ks, ok := k.macKey[purpose]
	k.mu.RUnlock()
	if ok {
		return ks
	}
	ks = make([][]byte, len(k.prks))
	for i := range k.prks {
		ks[i] = k.derive(i, "mac", purpose)
	}
	k.mu.Lock()
	if len(k.macKey) < maxCachedPurposes {
		k.macKey[purpose] = ks
	}
	k.mu.Unlock()
	return ks
}

// additionalData authenticates the header together with the caller's aad.
// The header has a fixed length, so the concatenation is unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	ad = append(ad, header...)
	return append(ad, aad...)
}

// Encrypt seals plaintext with AES-256-GCM under the first secret's key for
// purpose, with a random nonce. aad binds the ciphertext to its context
// (e.g. "set/kid"): Decrypt fails unless given the same aad, so stored
// ciphertexts cannot be swapped between rows.
func (k *Keyring) Encrypt(purpose string, plaintext, aad []byte) ([]byte, error) {
	key := k.aeadKeys(purpose)[0]
	out := make([]byte, headerLen+nonceLen, overheadLen+len(plaintext))
	out[0] = version1
	copy(out[1:headerLen], key.id[:])
	nonce := out[headerLen : headerLen+nonceLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: reading random nonce: %w", err)
	}
	return key.aead.Seal(out, nonce, plaintext, additionalData(out[:headerLen], aad)), nil
}

// Decrypt opens a ciphertext made by Encrypt with the same purpose and
// aad, under whichever configured secret made it. It returns ErrDecrypt if
// the ciphertext was altered, is bound to another aad or purpose, or was
// made with a secret that is no longer configured.
func (k *Keyring) Decrypt(purpose string, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < overheadLen || ciphertext[0] != version1 {
		return nil, ErrDecrypt
	}
	header := ciphertext[:headerLen]
	nonce := ciphertext[headerLen : headerLen+nonceLen]
	sealed := ciphertext[headerLen+nonceLen:]
	ad := additionalData(header, aad)
	keys := k.aeadKeys(purpose)
	// The key whose id matches first; the others only in the (2^-32)
	// event of an id collision between two secrets.
	for pass := range 2 {
		for _, key := range keys {
			if (subtle.ConstantTimeCompare(key.id[:], header[1:]) == 1) != (pass == 0) {
				continue
			}
			if pt, err := key.aead.Open(nil, nonce, sealed, ad); err == nil {
				return pt, nil
			}
		}
	}
	return nil, ErrDecrypt
}

// MAC returns HMAC-SHA256 of data under the first secret's key for purpose.
func (k *Keyring) MAC(purpose string, data []byte) []byte {
	return mac(k.macKeys(purpose)[0], data)
}

// MACs returns HMAC-SHA256 of data under every secret's key for purpose,
// first first, so that values signed before a rotation can still be
// recognised (e.g. looked up by any of them).
func (k *Keyring) MACs(purpose string, data []byte) [][]byte {
	keys := k.macKeys(purpose)
	out := make([][]byte, len(keys))
	for i, key := range keys {
		out[i] = mac(key, data)
	}
	return out
}

// VerifyMAC reports whether sum is the MAC of data for purpose under any
// configured secret. Every secret is checked, in constant time each, so the
// time taken does not tell which one matched.
func (k *Keyring) VerifyMAC(purpose string, data, sum []byte) bool {
	ok := 0
	for _, key := range k.macKeys(purpose) {
		ok |= subtle.ConstantTimeCompare(mac(key, data), sum)
	}
	return ok == 1
}

func mac(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}
