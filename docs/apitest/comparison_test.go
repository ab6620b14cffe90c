package apitest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// comparisonHeading starts the section of docs/sidecar.md whose first
// table compares the sidecar with other gateways' token checks.
const comparisonHeading = "## Compared with other gateways' token checks"

// pendingMarker stands, in a Gatehouse cell, for the test names of a
// feature another branch is adding; the lead replaces it at merge.
const pendingMarker = "(lead: test name)"

var (
	citedTest = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	testFunc  = regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
)

// comparisonProblems checks the comparison table of doc against the test
// functions that exist: every row's Gatehouse cell cites at least one
// test (or carries pendingMarker), and every cited test exists. It
// returns the problems and the rows still pending.
func comparisonProblems(doc string, tests map[string]bool) (problems, pending []string) {
	_, after, ok := strings.Cut(doc, "\n"+comparisonHeading+"\n")
	if !ok {
		return []string{"docs/sidecar.md has no section " + comparisonHeading}, nil
	}
	var rows [][]string
	for _, line := range strings.Split(after, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "|") {
			rows = append(rows, strings.Split(strings.Trim(line, "|"), "|"))
			continue
		}
		if len(rows) > 0 {
			break // the end of the first table
		}
		if strings.HasPrefix(line, "## ") {
			break
		}
	}
	if len(rows) < 3 {
		return []string{"the comparison section has no table"}, nil
	}
	col := -1
	for i, h := range rows[0] {
		if strings.TrimSpace(h) == "Gatehouse sidecar" {
			col = i
		}
	}
	header := strings.Join(rows[0], "|")
	for _, peer := range []string{"jwt_authn", "oauth2-proxy", "Oathkeeper", "Authorino"} {
		if !strings.Contains(header, peer) {
			problems = append(problems, "the comparison table has no column for "+peer)
		}
	}
	if col < 0 {
		return append(problems, "the comparison table has no \"Gatehouse sidecar\" column"), nil
	}
	for _, r := range rows[2:] { // after the header and the separator
		feature := strings.TrimSpace(r[0])
		if len(r) != len(rows[0]) {
			problems = append(problems, fmt.Sprintf("%s: the row has %d cells, the header %d", feature, len(r), len(rows[0])))
			continue
		}
		cell := r[col]
		cited := citedTest.FindAllStringSubmatch(cell, -1)
		if strings.Contains(cell, pendingMarker) {
			pending = append(pending, feature)
		} else if len(cited) == 0 {
			problems = append(problems, feature+": the Gatehouse cell cites no test")
		}
		for _, m := range cited {
			if !tests[m[1]] {
				problems = append(problems, feature+": "+m[1]+" is not a test function of the repository")
			}
		}
	}
	return problems, pending
}

// repositoryTests returns the names of every Test function in the
// repository's _test.go files.
func repositoryTests(t *testing.T, root string) map[string]bool {
	t.Helper()
	tests := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			tests[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}

// TestSidecarComparisonTableCitesTests: where docs/sidecar.md's table
// against Envoy jwt_authn, oauth2-proxy, Oathkeeper and Authorino claims a
// Gatehouse feature, it names the tests that show it, and those tests
// exist. Rows another branch is completing carry pendingMarker, logged
// here until the lead fills in their tests.
func TestSidecarComparisonTableCitesTests(t *testing.T) {
	root := testbin.RepoRoot()
	doc, err := os.ReadFile(filepath.Join(root, "docs", "sidecar.md"))
	if err != nil {
		t.Fatal(err)
	}
	problems, pending := comparisonProblems(string(doc), repositoryTests(t, root))
	for _, p := range problems {
		t.Error(p)
	}
	for _, p := range pending {
		t.Logf("pending (%s): %s", pendingMarker, p)
	}
}

// TestComparisonProblems: the check above does catch a missing test, a
// cell without one, and a missing table.
func TestComparisonProblems(t *testing.T) {
	tests := map[string]bool{"TestReal": true}
	doc := func(rows ...string) string {
		return "intro\n" + comparisonHeading + "\n\ntext\n\n" +
			"| Feature | Gatehouse sidecar | Envoy `jwt_authn` | oauth2-proxy | Oathkeeper | Authorino |\n|---|---|---|---|---|---|\n" +
			strings.Join(rows, "\n") + "\n\nafter\n"
	}
	for _, tc := range []struct {
		name, doc string
		problems  int
		pending   int
	}{
		{"cited and existing", doc("| a | yes: `TestReal` | no | no | no | no |"), 0, 0},
		{"pending", doc("| a | " + pendingMarker + " | no | no | no | no |"), 0, 1},
		{"a test that does not exist", doc("| a | yes: `TestReal`, `TestGone` | no | no | no | no |"), 1, 0},
		{"no test cited", doc("| a | yes | no | no | no | no |"), 1, 0},
		{"a missing cell", doc("| a | yes: `TestReal` | no | no | no |"), 1, 0},
		{"no section", "no table here", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, pending := comparisonProblems(tc.doc, tests)
			if len(problems) != tc.problems || len(pending) != tc.pending {
				t.Fatalf("problems %q, pending %q; want %d and %d", problems, pending, tc.problems, tc.pending)
			}
		})
	}
}
