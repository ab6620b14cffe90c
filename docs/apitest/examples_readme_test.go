package apitest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// shellBlocks returns the commands of a Markdown page's ```sh blocks,
// continuation lines joined.
func shellBlocks(t *testing.T, page string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), page))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	in, cur := false, ""
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
		case in && strings.HasPrefix(l, "```"):
			in = false
		case in:
			cur += strings.TrimSuffix(l, "\\")
			if !strings.HasSuffix(l, "\\") {
				cmds = append(cmds, strings.TrimSpace(cur))
				cur = ""
			}
		}
	}
	return cmds
}

// TestExamplesReadmeRecipe: the by-hand SSO recipe of examples/README.md
// fits `make run` as it is: it starts no second login app (scripts/run.sh
// starts one), runs only binaries `make build` or the recipe itself builds,
// and every flag it gives a binary is one that binary has.
func TestExamplesReadmeRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	run, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), "scripts", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := shellBlocks(t, "examples/README.md")
	if len(cmds) == 0 || cmds[0] != "make run &" {
		t.Errorf("the recipe does not start with a plain make run &: %q", cmds)
	}
	// The processes scripts/run.sh starts in the background.
	started := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)\$BIN/([a-z-]+)"[^\n]*&\s*$`).FindAllStringSubmatch(string(run), -1) {
		started[m[1]] = true
	}
	if !started["gatehouse"] || !started["login-consent"] {
		t.Fatalf("scripts/run.sh no longer starts the issuer and the login app the way this test reads it: %v", started)
	}
	built := map[string]string{"gatehouse": "./issuer/cmd/gatehouse"} // make build
	flagRe := regexp.MustCompile(`(?:^|\s)(--[a-z][a-z-]*)`)
	for _, c := range cmds {
		fields := strings.Fields(c)
		if strings.Contains(c, "make ") {
			if strings.Contains(c, "go build") {
				fields = strings.Fields(c[strings.Index(c, "go build"):])
			} else {
				continue
			}
		}
		if fields[0] == "go" {
			for _, pkg := range fields[3:] { // go build -o bin/ PKG...
				built[filepath.Base(pkg)] = pkg
			}
			continue
		}
		name, ok := strings.CutPrefix(fields[0], "bin/")
		if !ok {
			t.Errorf("unexpected command %q", c)
			continue
		}
		if strings.HasSuffix(strings.TrimSpace(strings.Split(c, "#")[0]), "&") && started[name] {
			t.Errorf("%q starts %s, which make run (scripts/run.sh) already starts", c, name)
		}
		pkg, ok := built[name]
		if !ok {
			t.Errorf("%q runs bin/%s, which neither make build nor the recipe builds", c, name)
			continue
		}
		args := []string{"--help"}
		if name == "gatehouse" { // the subcommand's help
			for _, f := range fields[1:] {
				if strings.HasPrefix(f, "-") {
					break
				}
				args = append([]string{f}, args...)
			}
			args = append(reverse(args[:len(args)-1]), "--help")
		}
		help, _ := exec.Command(testbin.Build(t, pkg), args...).CombinedOutput()
		for _, m := range flagRe.FindAllStringSubmatch(c, -1) {
			// cobra lists --name, the standard flag package -name.
			if f := strings.TrimPrefix(m[1], "-"); !strings.Contains(string(help), f+" ") && !strings.Contains(string(help), f+"=") {
				t.Errorf("%q: bin/%s has no flag %s", c, name, m[1])
			}
		}
	}
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
