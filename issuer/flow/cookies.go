package flow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Cipher encrypts cookie values (issuer/secrets.Keyring over
// SECRETS_COOKIE, which defaults to the system secrets): the first secret
// encrypts, every secret decrypts, so cookie secrets rotate like Hydra's.
type Cipher interface {
	Encrypt(purpose string, plaintext, aad []byte) ([]byte, error)
	Decrypt(purpose string, ciphertext, aad []byte) ([]byte, error)
}

const cookiePurpose = "cookie"

var b64 = base64.RawURLEncoding

// cookieJar writes and reads the issuer's cookies: every value is
// AES-256-GCM encrypted and bound to the cookie's name, so a cookie can be
// neither read, forged nor moved to another name.
type cookieJar struct {
	cipher   Cipher
	secure   bool
	sameSite http.SameSite
	domain   string
	path     string
	now      func() time.Time // nil: time.Now
}

func (j *cookieJar) set(w http.ResponseWriter, name string, value []byte, maxAge time.Duration) error {
	ct, err := j.cipher.Encrypt(cookiePurpose, value, []byte(name))
	if err != nil {
		return err
	}
	c := &http.Cookie{Name: name, Value: b64.EncodeToString(ct), Path: j.path, Domain: j.domain,
		Secure: j.secure, HttpOnly: true, SameSite: j.sameSite}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
		now := time.Now
		if j.now != nil {
			now = j.now
		}
		c.Expires = now().Add(maxAge)
	}
	http.SetCookie(w, c)
	return nil
}

// get returns the decrypted value of cookie name, false when absent or
// not made by this issuer (with any configured cookie secret).
func (j *cookieJar) get(r *http.Request, name string) ([]byte, bool) {
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || len(c.Value) > 4096 {
		return nil, false
	}
	ct, err := b64.DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	pt, err := j.cipher.Decrypt(cookiePurpose, ct, []byte(name))
	if err != nil {
		return nil, false
	}
	return pt, true
}

func (j *cookieJar) clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: j.path, Domain: j.domain, MaxAge: -1,
		Expires: time.Unix(1, 0), Secure: j.secure, HttpOnly: true, SameSite: j.sameSite})
}

// csrfCookieName is the login or consent CSRF cookie of one client: a
// browser may run flows of several clients at once, so the name carries a
// short hash of the client id (as Hydra's does).
func csrfCookieName(base, clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return base + "_" + hex.EncodeToString(sum[:4])
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

// newChallenge returns a new challenge id: 32 hex characters.
func newChallenge() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return b64.EncodeToString(sum[:])
}

// newVerifier returns a verifier for challenge ("<challenge>.<secret>")
// and the hash of its secret part, the only part that is stored.
func newVerifier(challenge string) (verifier, hash string) {
	secret := randomToken(32)
	return challenge + "." + secret, hashOf(secret)
}

// splitVerifier returns the challenge and secret of a verifier.
func splitVerifier(v string) (challenge, secret string, ok bool) {
	challenge, secret, ok = strings.Cut(v, ".")
	if !ok || len(challenge) != 32 || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	return challenge, secret, true
}

// maxCSRFTokens bounds how many flows of one client a browser may run at
// once (several tabs): the CSRF cookie keeps the newest tokens.
const maxCSRFTokens = 8

// addCSRF stores a new CSRF token in the client's CSRF cookie next to the
// ones of flows still running in other tabs.
func (j *cookieJar) addCSRF(w http.ResponseWriter, r *http.Request, name, token string, maxAge time.Duration) error {
	tokens := j.csrfTokens(r, name)
	tokens = append(tokens, token)
	if len(tokens) > maxCSRFTokens {
		tokens = tokens[len(tokens)-maxCSRFTokens:]
	}
	return j.set(w, name, []byte(strings.Join(tokens, " ")), maxAge)
}

// csrfTokens returns the tokens of the client's CSRF cookie.
func (j *cookieJar) csrfTokens(r *http.Request, name string) []string {
	raw, ok := j.get(r, name)
	if !ok {
		return nil
	}
	return strings.Fields(string(raw))
}

// checkCSRF reports whether the browser holds the CSRF token whose hash a
// flow stored, and returns the cookie's remaining tokens.
func (j *cookieJar) checkCSRF(r *http.Request, name, hash string) (rest []string, ok bool) {
	for _, t := range j.csrfTokens(r, name) {
		if hashOf(t) == hash {
			ok = true
			continue
		}
		rest = append(rest, t)
	}
	return rest, ok
}
