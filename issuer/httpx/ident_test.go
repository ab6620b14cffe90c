package httpx

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckIdentifier(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		ok      bool
	}{
		{"empty", "", true},
		{"uuid", "8b4c2a84-7a0e-4b5e-9d4f-0a1b2c3d4e5f", true},
		{"url", "https://issuer.example/tenant", true},
		{"non-ASCII", "müller@beispiel.de", true},
		{"255 characters", strings.Repeat("é", 255), true},
		{"256 characters", strings.Repeat("a", 256), false},
		{"10 KB", strings.Repeat("a", 10<<10), false},
		{"NUL", "a\x00b", false},
		{"only NUL", "\x00", false},
		{"escape", "a\x1bb", false},
		{"newline", "a\nb", false},
		{"DEL", "a\x7fb", false},
		{"C1 control", "a\u0085b", false},
		{"invalid UTF-8", "a\xffb", false},
		{"truncated UTF-8", "a\xc3", false},
		{"surrogate half", "a\xed\xa0\x80b", false},
		{"U+FFFD itself", "a\uFFFDb", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckIdentifier("client_id", tc.v)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckIdentifier(%q) = %v, want ok=%v", tc.v, err, tc.ok)
			}
			if err != nil && (err.Code != "invalid_request" || err.StatusCode() != http.StatusBadRequest) {
				t.Fatalf("error %v, want a 400 invalid_request", err)
			}
		})
	}
}

func TestIdentifiersChecksPathAndQuery(t *testing.T) {
	mux := http.NewServeMux()
	ran := false
	mux.HandleFunc("GET /keys/{set}/{kid}", Identifiers(func(http.ResponseWriter, *http.Request) { ran = true }, "subject"))
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/keys/a/b?subject=s", true},
		{"/keys/a%00/b", false},
		{"/keys/a/b%ff", false},
		{"/keys/a/b?subject=%00", false},
		{"/keys/a/b?other=%00", true},
	} {
		ran = false
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if ran != tc.ok || (!tc.ok && rec.Code != http.StatusBadRequest) {
			t.Errorf("%s: handler ran %v, status %d; want ran %v", tc.path, ran, rec.Code, tc.ok)
		}
	}
}

func TestPageToken(t *testing.T) {
	for _, tc := range []struct {
		token, want string
		ok          bool
	}{
		{"", "", true},
		{NextPageToken("client-1"), "client-1", true},
		{"not base64!", "", false},
		{base64.RawURLEncoding.EncodeToString([]byte("a\x00")), "", false},
		{base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("a", 10<<10))), "", false},
	} {
		got, err := PageToken(url.Values{"page_token": {tc.token}})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("PageToken(%.40q) = %q, %v; want %q, ok=%v", tc.token, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzCheckIdentifier: whatever a request carries, an identifier that
// passes is valid UTF-8 without control characters and at most
// MaxIdentifierLength characters, and a page token decodes only to such.
func FuzzCheckIdentifier(f *testing.F) {
	for _, s := range []string{"", "client", "a\x00b", "a\xffb", strings.Repeat("a", 300), "müller"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ok := CheckIdentifier("id", v) == nil
		want := utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl) && utf8.RuneCountInString(v) <= MaxIdentifierLength
		if ok != want {
			t.Fatalf("CheckIdentifier(%q) ok=%v, want %v", v, ok, want)
		}
		if id, err := PageToken(url.Values{"page_token": {v}}); err == nil && v != "" && CheckIdentifier("id", id) != nil {
			t.Fatalf("PageToken(%q) decoded to %q, not an identifier", v, id)
		}
	})
}
