package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// CSRF protection has two layers:
//
//  1. net/http's CrossOriginProtection rejects state-changing requests a
//     browser marks as cross-origin (Sec-Fetch-Site, else Origin vs Host).
//  2. A signed double-submit token: a random value in an HttpOnly cookie,
//     and in each form HMAC-SHA256(key, cookie value, challenge). A forged
//     form needs both the cookie value (unreadable cross-site) and the key
//     (server-side), and a token is only good for the challenge it was
//     rendered for, so an injected cookie from a sibling host is not
//     enough either (OWASP "signed double-submit cookie").
type csrf struct {
	key    []byte
	name   string
	secure bool
}

const csrfField = "csrf_token"

// token returns the form token for challenge, setting the cookie when the
// browser has none yet.
func (c *csrf) token(w http.ResponseWriter, r *http.Request, challenge string) string {
	v := c.cookie(r)
	if v == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{
			Name: c.name, Value: v, Path: "/", HttpOnly: true, Secure: c.secure,
			SameSite: http.SameSiteLaxMode,
		})
	}
	return c.sign(v, challenge)
}

func (c *csrf) cookie(r *http.Request) string {
	ck, err := r.Cookie(c.name)
	if err != nil {
		return ""
	}
	if b, err := base64.RawURLEncoding.DecodeString(ck.Value); err != nil || len(b) != 32 {
		return ""
	}
	return ck.Value
}

func (c *csrf) sign(cookie, challenge string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("gatehouse-login-consent-csrf\x00"))
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(challenge))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether the request's form token matches its cookie and
// challenge.
func (c *csrf) valid(r *http.Request, challenge, token string) bool {
	v := c.cookie(r)
	if v == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(c.sign(v, challenge)))
}

var randRead = rand.Read
