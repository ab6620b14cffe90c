package apitest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// quoteMarker precedes a fenced block that must be an excerpt of a file:
//
//	<!-- quote: envoy/envoy.yaml -->
//	```yaml
//	...
//	```
var quoteMarker = regexp.MustCompile(`^<!-- quote: (\S+) -->$`)

// quote is one marked block of a page.
type quote struct {
	page string // relative to the repository root
	line int    // of the marker, 1-based
	file string // the quoted file, relative to the repository root
	body []string
}

// docQuotes returns the marked blocks of a Markdown page.
func docQuotes(t *testing.T, root, page string) []quote {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []quote
	for i := 0; i < len(lines); i++ {
		m := quoteMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		q := quote{page: page, line: i + 1, file: m[1]}
		j := i + 1
		if j >= len(lines) || !strings.HasPrefix(lines[j], "```") {
			t.Errorf("%s:%d: a quote marker must be followed directly by a fenced code block", page, q.line)
			continue
		}
		for j++; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			q.body = append(q.body, lines[j])
		}
		if j == len(lines) {
			t.Errorf("%s:%d: the quoted code block is not closed", page, q.line)
			continue
		}
		out = append(out, q)
		i = j
	}
	return out
}

// excerptOf reports whether body is a run of consecutive lines of file,
// all shifted by the same indentation (a quote may drop the common
// leading whitespace of the lines it takes).
func excerptOf(body, file []string) bool {
	if len(body) == 0 {
		return false
	}
	for start := 0; start+len(body) <= len(file); start++ {
		first := file[start]
		if !strings.HasSuffix(first, body[0]) {
			continue
		}
		indent := first[:len(first)-len(body[0])]
		if strings.TrimSpace(indent) != "" {
			continue
		}
		ok := true
		for k, l := range body {
			got := file[start+k]
			if l == "" {
				ok = strings.TrimSpace(got) == ""
			} else {
				ok = got == indent+l
			}
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func gatewayPages(t *testing.T, root string) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "gateways", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, p := range pages {
		r, _ := filepath.Rel(root, p)
		rel = append(rel, r)
	}
	if len(rel) == 0 {
		t.Fatal("no pages in docs/gateways")
	}
	return rel
}

// TestGatewayDocsQuoteTestedConfigs: the configuration shown in
// docs/gateways is the configuration the kits' tests run. When a kit file
// changes, the page quoting the old lines fails here, naming both.
func TestGatewayDocsQuoteTestedConfigs(t *testing.T) {
	root := testbin.RepoRoot()
	n := 0
	for _, page := range gatewayPages(t, root) {
		for _, q := range docQuotes(t, root, page) {
			n++
			b, err := os.ReadFile(filepath.Join(root, q.file))
			if err != nil {
				t.Errorf("%s:%d quotes %s, which cannot be read: %v", q.page, q.line, q.file, err)
				continue
			}
			if !excerptOf(q.body, strings.Split(string(b), "\n")) {
				t.Errorf("%s:%d: the block quoted from %s is no longer a verbatim excerpt of it (it starts %q); copy the current lines into the page", q.page, q.line, q.file, q.body[0])
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d quoted blocks in docs/gateways; the pages should quote the tested configs", n)
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinksResolve: every relative link of docs/gateways/*.md,
// docs/api.md, docs/architecture.md, README.md and CONTRIBUTING.md points at
// a file or directory of the repository.
func TestDocLinksResolve(t *testing.T) {
	root := testbin.RepoRoot()
	pages := append(gatewayPages(t, root), filepath.Join("docs", "api.md"), filepath.Join("docs", "architecture.md"),
		"README.md", "CONTRIBUTING.md")
	for _, page := range pages {
		b, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				p := filepath.Join(root, filepath.Dir(page), target)
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s:%d: link %q does not resolve (%s)", page, i+1, m[1], p)
				}
			}
		}
	}
}

func TestExcerptOf(t *testing.T) {
	file := strings.Split("a:\n  b: 1\n  c:\n    d: 2\n\n  e: 3", "\n")
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"exact", "a:\n  b: 1", true},
		{"dedented", "c:\n  d: 2", true},
		{"blank line", "d: 2\n\ne: 3", false}, // e is less indented than d
		{"blank line, shifted", "  d: 2\n\ne: 3", true},
		{"changed", "b: 2", false},
		{"out of order", "c:\nb: 1", false},
		{"not whitespace indent", "b: 1\n  c:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := excerptOf(strings.Split(tt.body, "\n"), file); got != tt.want {
				t.Fatalf("excerptOf(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}
