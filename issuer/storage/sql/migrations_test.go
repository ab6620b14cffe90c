package sqlstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The dialects' migrations are written by hand, one directory each; they
// must create the same tables, columns, keys and indexes in the same
// versions, or a store would behave differently per backend.
func TestMigrationsAgreeAcrossDialects(t *testing.T) {
	dialects := []string{"sqlite", "postgres", "mysql"}
	schemas := map[string]map[string][]string{}
	for _, d := range dialects {
		files, err := filepath.Glob(filepath.Join("migrations", d, "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no migrations (%v)", d, err)
		}
		schema := map[string][]string{}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range schemaOf(t, filepath.Base(f), string(src)) {
				schema[k] = v
			}
		}
		schemas[d] = schema
	}
	want := schemas["sqlite"]
	if len(want) < 10 {
		t.Fatalf("parsed too little of the sqlite schema: %v", want)
	}
	for _, d := range dialects[1:] {
		got := schemas[d]
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("%s: %s is %v, sqlite has %v", d, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s is not in the sqlite migrations", d, k)
			}
		}
	}
}

var (
	createTable = regexp.MustCompile(`(?is)CREATE TABLE\s+(\w+)\s*\((.*?)\)\s*(?:ENGINE[^;]*)?;`)
	createIndex = regexp.MustCompile(`(?i)CREATE\s+(UNIQUE\s+)?INDEX\s+(\w+)\s+ON\s+(\w+)\s*\(([^)]*)\)`)
	keyClause   = regexp.MustCompile(`(?i)^(?:CONSTRAINT\s+(\w+)\s+)?(PRIMARY KEY|UNIQUE)\s*\(([^)]*)\)`)
)

// schemaOf maps "file table.column", "file table key" and "file index"
// entries of a migration's Up section to their normalised definitions
// (types differ per dialect and are left out).
func schemaOf(t *testing.T, file, src string) map[string][]string {
	up, _, _ := strings.Cut(src, "-- +goose Down")
	out := map[string][]string{}
	for _, m := range createTable.FindAllStringSubmatch(up, -1) {
		table := strings.ToLower(m[1])
		var cols []string
		for line := range strings.SplitSeq(m[2], "\n") {
			line = strings.TrimSuffix(strings.TrimSpace(line), ",")
			if line == "" || strings.HasPrefix(line, "--") {
				continue
			}
			if k := keyClause.FindStringSubmatch(line); k != nil {
				name := strings.ToLower(k[2])
				if k[1] != "" {
					name += " " + strings.ToLower(k[1])
				}
				out[fmt.Sprintf("%s %s %s", file, table, name)] = splitCols(k[3])
				continue
			}
			cols = append(cols, strings.ToLower(strings.Fields(line)[0]))
		}
		out[fmt.Sprintf("%s %s columns", file, table)] = cols
	}
	for _, m := range createIndex.FindAllStringSubmatch(up, -1) {
		out[fmt.Sprintf("%s index %s", file, strings.ToLower(m[2]))] = append([]string{strings.ToLower(m[3]), strings.TrimSpace(strings.ToLower(m[1]))}, splitCols(m[4])...)
	}
	// A migration that creates nothing (one that only alters storage
	// parameters on one dialect) has nothing to compare.
	if len(out) == 0 && strings.Contains(strings.ToUpper(up), "CREATE ") {
		t.Fatalf("%s: nothing parsed", file)
	}
	return out
}

func splitCols(s string) []string {
	var out []string
	for c := range strings.SplitSeq(s, ",") {
		// MySQL may give a prefix length: col(191).
		c, _, _ = strings.Cut(strings.TrimSpace(c), "(")
		out = append(out, strings.ToLower(strings.TrimSpace(c)))
	}
	return out
}
