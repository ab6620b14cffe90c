package apitest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// codeRef is a `path: Symbol` reference of CONTRIBUTING.md: a file or a
// package directory, and an identifier, or a Type.Member chain, in it.
var codeRef = regexp.MustCompile("`([A-Za-z0-9_./-]+):\\s+([A-Za-z_][A-Za-z0-9_.]*)`")

// goSource returns the Go source of path: the file, or every non-test
// file of the directory.
func goSource(t *testing.T, path string) (string, bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(path)
		return string(b), err == nil
	}
	files, _ := filepath.Glob(filepath.Join(path, "*.go"))
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
	}
	return b.String(), b.Len() > 0
}

// declares reports whether src declares name: a function or method, a
// type, a variable or constant, or a struct field.
func declares(src, name string) bool {
	q := regexp.QuoteMeta(name)
	return regexp.MustCompile(`(?m)(^func (\([^)]*\) )?` + q + `[\[(]|^type ` + q + `\b|^\s*` + q + `\s*=|^(var|const) ` + q + `\b|^\t` + q + `\s)`).MatchString(src)
}

// TestContributingReferences: the examples CONTRIBUTING.md gives for its
// rules point at code that declares them, so the guide cannot silently
// drift from the code (its links are checked by TestDocLinksResolve).
func TestContributingReferences(t *testing.T) {
	root := testbin.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "CONTRIBUTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	refs := codeRef.FindAllStringSubmatch(string(b), -1)
	if len(refs) < 10 {
		t.Fatalf("CONTRIBUTING.md has %d `path: Symbol` references, expected its style examples", len(refs))
	}
	for _, m := range refs {
		path, symbol := m[1], m[2]
		src, ok := goSource(t, filepath.Join(root, path))
		if !ok {
			t.Errorf("CONTRIBUTING.md refers to %s, which holds no Go source", path)
			continue
		}
		for _, name := range strings.Split(symbol, ".") {
			if !declares(src, name) {
				t.Errorf("CONTRIBUTING.md refers to %s: %s, but %s does not declare %s", path, symbol, path, name)
			}
		}
	}
}
