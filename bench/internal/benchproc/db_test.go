package benchproc

import (
	"strings"
	"testing"
)

func TestDSNFor(t *testing.T) {
	for _, tc := range []struct {
		base, backend, want string
		err                 bool
	}{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres",
			"postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable", false},
		{"mysql://root@tcp(127.0.0.1:3306)/test", "mysql", "mysql://root@tcp(127.0.0.1:3306)/s1", false},
		{"mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true", "mysql", "mysql://root@tcp(127.0.0.1:3306)/s1?parseTime=true", false},
		{"mysql://root@tcp(127.0.0.1:3306)", "mysql", "", true},
	} {
		got, err := DSNFor(tc.base, tc.backend, "s1")
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("DSNFor(%q) = %q, %v; want %q, error %t", tc.base, got, err, tc.want, tc.err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@127.0.0.1:5432/test":   "postgres://u:xxxxx@127.0.0.1:5432/test",
		"postgres://postgres@127.0.0.1:5432/test":   "postgres://postgres@127.0.0.1:5432/test",
		"mysql://root:secret@tcp(127.0.0.1:3306)/t": "mysql://root:xxxxx@tcp(127.0.0.1:3306)/t",
		"mysql://root@tcp(127.0.0.1:3306)/t":        "mysql://root@tcp(127.0.0.1:3306)/t",
	} {
		got := RedactDSN(in)
		if got != want || strings.Contains(got, "secret") {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackendOf(t *testing.T) {
	for in, want := range map[string]string{
		"": "sqlite", "sqlite:///tmp/x.sqlite": "sqlite", "postgres://x/y": "postgres",
		"postgresql://x/y": "postgres", "mysql://root@tcp(h)/d": "mysql", "memory": "other",
	} {
		if got := BackendOf(in); got != want {
			t.Errorf("BackendOf(%q) = %q, want %q", in, got, want)
		}
	}
}
