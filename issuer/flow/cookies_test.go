package flow

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/issuer/client"
	"github.com/gatehouse-dev/gatehouse/issuer/secrets"
)

func TestCookieJar(t *testing.T) {
	old, _ := secrets.NewKeyring([]string{"old-cookie-secret-0123456789"})
	rotated, _ := secrets.NewKeyring([]string{"new-cookie-secret-0123456789", "old-cookie-secret-0123456789"})
	other, _ := secrets.NewKeyring([]string{"unrelated-secret-0123456789ab"})
	jar := &cookieJar{cipher: old, path: "/", secure: true, sameSite: http.SameSiteLaxMode}
	w := httptest.NewRecorder()
	if err := jar.set(w, "gh_session", []byte(`{"sid":"s1"}`), 0); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 0 ||
		strings.Contains(c.Value, `{"sid"`) || strings.Contains(c.Value, b64.EncodeToString([]byte(`{"sid":"s1"}`))) {
		t.Fatalf("cookie attributes or plaintext value: %+v", c)
	}
	read := func(j *cookieJar, name, value string) (string, bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: name, Value: value})
		v, ok := j.get(r, name)
		return string(v), ok
	}
	if v, ok := read(jar, "gh_session", c.Value); !ok || v != `{"sid":"s1"}` {
		t.Fatalf("round trip: %q %v", v, ok)
	}
	// Rotation: a new first secret still reads cookies of the old one.
	if v, ok := read(&cookieJar{cipher: rotated}, "gh_session", c.Value); !ok || v != `{"sid":"s1"}` {
		t.Fatal("a rotated keyring cannot read an old cookie")
	}
	for name, tc := range map[string]struct {
		jar         *cookieJar
		name, value string
	}{
		"other secret":   {&cookieJar{cipher: other}, "gh_session", c.Value},
		"renamed cookie": {jar, "gh_login_csrf", c.Value},
		"tampered":       {jar, "gh_session", c.Value[:len(c.Value)-2] + "AA"},
		"not base64":     {jar, "gh_session", "%%%"},
		"empty":          {jar, "gh_session", ""},
		"huge":           {jar, "gh_session", strings.Repeat("A", 5000)},
	} {
		if _, ok := read(tc.jar, tc.name, tc.value); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if csrfCookieName("gh_login_csrf", "a") == csrfCookieName("gh_login_csrf", "b") {
		t.Fatal("CSRF cookie names do not depend on the client")
	}
}

func TestVerifier(t *testing.T) {
	ch := newChallenge()
	v, hash := newVerifier(ch)
	gotCh, secret, ok := splitVerifier(v)
	if !ok || gotCh != ch || hashOf(secret) != hash {
		t.Fatalf("verifier round trip: %q %v", v, ok)
	}
	for _, bad := range []string{"", ch, ch + ".", "short." + secret, ch + "." + strings.Repeat("x", 129)} {
		if _, _, ok := splitVerifier(bad); ok {
			t.Errorf("splitVerifier(%q) accepted", bad)
		}
	}
}

func TestPairwiseSubject(t *testing.T) {
	want := fmt.Sprintf("%x", sha256.Sum256([]byte("rp.example.com"+"alice"+"salt")))
	for _, c := range []*client.Client{
		{ID: "a", RedirectURIs: []string{"https://rp.example.com/cb"}},
		{ID: "b", SectorIdentifierURI: "https://rp.example.com/sector.json", RedirectURIs: []string{"https://x.example/1", "https://y.example/2"}},
	} {
		got, err := pairwiseSubject(c, "alice", "salt")
		if err != nil || got != want {
			t.Fatalf("%s: %q %v, want %q", c.ID, got, err, want)
		}
	}
	if _, err := pairwiseSubject(&client.Client{ID: "c", RedirectURIs: []string{"https://x.example/1", "https://y.example/2"}}, "alice", "salt"); err == nil {
		t.Fatal("several redirect hosts without a sector identifier were accepted")
	}
}

func TestCSRFTokens(t *testing.T) {
	k, _ := secrets.NewKeyring([]string{"cookie-secret-0123456789abcdef"})
	jar := &cookieJar{cipher: k, path: "/"}
	var cookie *http.Cookie
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return r
	}
	var tokens []string
	for i := range maxCSRFTokens + 2 {
		tok := fmt.Sprintf("token-%d", i)
		tokens = append(tokens, tok)
		w := httptest.NewRecorder()
		if err := jar.addCSRF(w, req(), "csrf", tok, 0); err != nil {
			t.Fatal(err)
		}
		cookie = w.Result().Cookies()[0]
	}
	// The oldest two fell out; every other one is accepted, once each.
	for i, tok := range tokens {
		rest, ok := jar.checkCSRF(req(), "csrf", hashOf(tok))
		if ok != (i >= 2) {
			t.Fatalf("token %d: ok=%v", i, ok)
		}
		if ok && len(rest) != maxCSRFTokens-1 {
			t.Fatalf("token %d: rest %v", i, rest)
		}
	}
	if _, ok := jar.checkCSRF(req(), "csrf", hashOf("forged")); ok {
		t.Fatal("a forged token was accepted")
	}
}
