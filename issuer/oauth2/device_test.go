package oauth2

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// NormalizeUserCode: RFC 8628 §6.1, case-insensitive and without
// separators.
func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"WDJBMJHT", "WDJBMJHT"},
		{"wdjb-mjht", "WDJBMJHT"},
		{" WDJB MJHT\t", "WDJBMJHT"},
		{"wd.jb_mj:ht", "WDJBMJHT"},
		{"123-456-789", "123456789"},
		{"", ""},
		{"---", ""},
		{strings.Repeat("B", 65), ""},
		{strings.Repeat("B", 300), ""},
	} {
		if got := NormalizeUserCode(tc.in); got != tc.want {
			t.Errorf("NormalizeUserCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// randomUserCode draws only from its alphabet, with the length asked,
// and every character turns up.
func TestRandomUserCode(t *testing.T) {
	seen := map[rune]bool{}
	for range 200 {
		c, err := randomUserCode(8, "BCDFGHJKLMNPQRSTVWXZ")
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 8 || strings.Trim(c, "BCDFGHJKLMNPQRSTVWXZ") != "" {
			t.Fatalf("user code %q", c)
		}
		for _, r := range c {
			seen[r] = true
		}
		if NormalizeUserCode(c) != c {
			t.Fatalf("a user code does not survive normalisation: %q", c)
		}
	}
	if len(seen) != 20 {
		t.Fatalf("only %d of 20 characters drawn in 1600", len(seen))
	}
}

// FuzzNormalizeUserCode: user codes come from people and apps; whatever
// they type normalises to at most 64 upper-case letters and digits,
// idempotently, without panicking.
func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"WDJB-MJHT", "wdjb mjht", "", "ß", "ǅ", "\x00\xff", strings.Repeat("a", 70), "١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeUserCode(s)
		if len(n) > 64*utf8.UTFMax || NormalizeUserCode(n) != n {
			t.Fatalf("NormalizeUserCode(%q) = %q, not stable", s, n)
		}
	})
}
