package config

import (
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User code alphabets. RFC 8628 §6.1: "The user code SHOULD be
// case-insensitive", and a base-20 alphabet of consonants avoids both
// ambiguous characters (0/O, 1/I/L) and words; digits suit numeric keypads.
const (
	UserCodeConsonants = "BCDFGHJKLMNPQRSTVWXZ"
	UserCodeDigits     = "0123456789"
)

// Limits of a custom user code (oauth2.device_authorization.user_code).
const (
	minUserCodeLength = 6
	maxUserCodeLength = 32
	minUserCodeBits   = 20
)

// UserCodeShape returns the length and alphabet of user codes: length
// and character_set when set (the alphabet upper-cased), else the preset's.
func (u UserCode) UserCodeShape() (length int, alphabet string) {
	length, alphabet = presetShape(u.EntropyPreset)
	if u.CharacterSet != "" {
		alphabet = strings.ToUpper(u.CharacterSet)
	}
	if u.Length > 0 {
		length = u.Length
	}
	return length, alphabet
}

func presetShape(preset string) (int, string) {
	switch preset {
	case "medium":
		return 7, UserCodeConsonants
	case "low":
		return 9, UserCodeDigits
	default:
		return 8, UserCodeConsonants
	}
}

func (d DeviceAuthorization) validate() *Error {
	if d.TokenPollingInterval < time.Second || d.TokenPollingInterval%time.Second != 0 {
		return keyErr("oauth2.device_authorization.token_polling_interval", "must be whole seconds, at least 1s, got %s", d.TokenPollingInterval)
	}
	u := d.UserCode
	switch u.EntropyPreset {
	case "high", "medium", "low":
	default:
		return keyErr("oauth2.device_authorization.user_code.entropy_preset", "must be high, medium or low, got %q", u.EntropyPreset)
	}
	length, alphabet := u.UserCodeShape()
	if length < minUserCodeLength || length > maxUserCodeLength {
		return keyErr("oauth2.device_authorization.user_code.length", "must be between %d and %d, got %d", minUserCodeLength, maxUserCodeLength, length)
	}
	seen := map[rune]bool{}
	for _, r := range alphabet {
		// Separators are ignored when a code is compared, so they cannot
		// be characters of one.
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) || r == utf8.RuneError {
			return keyErr("oauth2.device_authorization.user_code.character_set", "must hold only letters and digits, got %q", r)
		}
		if seen[r] {
			return keyErr("oauth2.device_authorization.user_code.character_set", "has %q twice (letters are compared case-insensitively)", r)
		}
		seen[r] = true
	}
	if len(seen) < 2 {
		return keyErr("oauth2.device_authorization.user_code.character_set", "must hold at least 2 distinct characters")
	}
	// RFC 8628 §5.1: the code space must be large enough for the
	// brute-force limits to make guessing hopeless.
	if bits := float64(length) * math.Log2(float64(len(seen))); bits < minUserCodeBits {
		return keyErr("oauth2.device_authorization.user_code.length", "%d characters of %d give %.1f bits; at least %d are required", length, len(seen), bits, minUserCodeBits)
	}
	return nil
}
