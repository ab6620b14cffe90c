package client

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Hash algorithms (config oauth2.hashers.algorithm).
const (
	HashPBKDF2 = "pbkdf2"
	HashBCrypt = "bcrypt"
)

// Defaults of the hasher, as in Hydra.
const (
	DefaultPBKDF2Iterations = 25000
	DefaultBCryptCost       = 10
	pbkdf2KeyLen            = 32
	pbkdf2SaltLen           = 16
	// bcrypt only reads the first 72 bytes of a secret; longer secrets are
	// refused instead of silently truncated.
	bcryptMaxSecretLen = 72
	// maxPBKDF2Iterations bounds the work a stored hash may ask for, so a
	// corrupted or hostile row cannot pin a CPU.
	maxPBKDF2Iterations = 10_000_000
)

// ErrSecretMismatch is returned by Verify for a wrong secret.
var ErrSecretMismatch = errors.New("client: secret does not match")

// HasherOptions select the algorithm new hashes are made with. Verification
// accepts both encodings whatever the algorithm, so switching algorithms
// needs no migration: old hashes keep working, new and rotated secrets use
// the new one.
type HasherOptions struct {
	Algorithm        string // "pbkdf2" (default) or "bcrypt"
	PBKDF2Iterations int    // default 25,000
	BCryptCost       int    // default 10
}

// Hasher hashes and verifies client secrets. Hashes are self-describing:
//
//	$pbkdf2-sha256$i=25000,l=32$<salt>$<key>   (salt and key unpadded standard base64)
//	$2a$10$...                                 (bcrypt, modular crypt format)
type Hasher struct {
	opts HasherOptions
}

// NewHasher validates opts and returns a Hasher.
func NewHasher(o HasherOptions) (*Hasher, error) {
	if o.Algorithm == "" {
		o.Algorithm = HashPBKDF2
	}
	if o.PBKDF2Iterations == 0 {
		o.PBKDF2Iterations = DefaultPBKDF2Iterations
	}
	if o.BCryptCost == 0 {
		o.BCryptCost = DefaultBCryptCost
	}
	switch o.Algorithm {
	case HashPBKDF2, HashBCrypt:
	default:
		return nil, fmt.Errorf("client: unknown hash algorithm %q (pbkdf2, bcrypt)", o.Algorithm)
	}
	if o.PBKDF2Iterations < 1 || o.PBKDF2Iterations > maxPBKDF2Iterations {
		return nil, fmt.Errorf("client: pbkdf2 iterations must be between 1 and %d", maxPBKDF2Iterations)
	}
	if o.BCryptCost < bcrypt.MinCost || o.BCryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("client: bcrypt cost must be between %d and %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	return &Hasher{opts: o}, nil
}

// Algorithm returns the algorithm new hashes are made with.
func (h *Hasher) Algorithm() string { return h.opts.Algorithm }

// CheckSecret reports whether secret can be hashed with the current
// algorithm (bcrypt refuses secrets longer than 72 bytes).
func (h *Hasher) CheckSecret(secret string) error {
	if h.opts.Algorithm == HashBCrypt && len(secret) > bcryptMaxSecretLen {
		return fmt.Errorf("secrets longer than %d bytes cannot be hashed with bcrypt", bcryptMaxSecretLen)
	}
	return nil
}

// Hash returns a new salted hash of secret.
func (h *Hasher) Hash(secret string) (string, error) {
	if err := h.CheckSecret(secret); err != nil {
		return "", err
	}
	if h.opts.Algorithm == HashBCrypt {
		b, err := bcrypt.GenerateFromPassword([]byte(secret), h.opts.BCryptCost)
		if err != nil {
			return "", fmt.Errorf("client: bcrypt: %w", err)
		}
		return string(b), nil
	}
	salt := make([]byte, pbkdf2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, secret, salt, h.opts.PBKDF2Iterations, pbkdf2KeyLen)
	if err != nil {
		return "", fmt.Errorf("client: pbkdf2: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$pbkdf2-sha256$i=%d,l=%d$%s$%s", h.opts.PBKDF2Iterations, pbkdf2KeyLen,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify checks secret against an encoded hash of either algorithm. It
// returns nil on a match, ErrSecretMismatch on a mismatch, and another
// error for an unreadable hash.
func (h *Hasher) Verify(encoded, secret string) error { return VerifySecret(encoded, secret) }

// VerifySecret checks secret against a PBKDF2 or bcrypt hash.
func VerifySecret(encoded, secret string) error {
	switch {
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"):
		return verifyPBKDF2(encoded, secret)
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		if len(secret) > bcryptMaxSecretLen {
			return ErrSecretMismatch
		}
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(secret))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrSecretMismatch
		}
		if err != nil {
			return fmt.Errorf("client: unreadable bcrypt hash: %w", err)
		}
		return nil
	case encoded == "":
		return ErrSecretMismatch
	}
	return errors.New("client: unknown secret hash encoding")
}

func verifyPBKDF2(encoded, secret string) error {
	// "", "pbkdf2-sha256", "i=N,l=M", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 5 {
		return errors.New("client: malformed pbkdf2 hash")
	}
	var iter, keyLen int
	for _, kv := range strings.Split(parts[2], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return errors.New("client: malformed pbkdf2 parameters")
		}
		switch k {
		case "i":
			iter = n
		case "l":
			keyLen = n
		default:
			return errors.New("client: unknown pbkdf2 parameter")
		}
	}
	if iter < 1 || iter > maxPBKDF2Iterations || keyLen < 16 || keyLen > 64 {
		return errors.New("client: pbkdf2 parameters out of range")
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[3])
	want, err2 := enc.DecodeString(parts[4])
	if err1 != nil || err2 != nil || len(want) != keyLen || len(salt) == 0 {
		return errors.New("client: malformed pbkdf2 hash encoding")
	}
	got, err := pbkdf2.Key(sha256.New, secret, salt, iter, keyLen)
	if err != nil {
		return fmt.Errorf("client: pbkdf2: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrSecretMismatch
	}
	return nil
}

// GenerateSecret returns a random secret of 32 URL-safe characters
// (192 bits of entropy), above the 26 characters required.
func GenerateSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
