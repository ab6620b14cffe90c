package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// TestWithDBsSummary: `make test` (with-dbs.sh --summary) ends by saying
// which backends and optional suites ran or were skipped and why, passes
// the command's output through and exits with the command's status.
func TestWithDBsSummary(t *testing.T) {
	// A PATH with only what the script needs, and nginx and caddy or not.
	path := func(gateways bool) string {
		dir := t.TempDir()
		for _, tool := range []string{"bash", "sh", "cat"} {
			p, err := exec.LookPath(tool)
			if err != nil {
				t.Skipf("%s not installed", tool)
			}
			if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
		}
		if gateways {
			for _, gw := range []string{"nginx", "caddy"} {
				if err := os.WriteFile(filepath.Join(dir, gw), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		return dir
	}
	run := func(gateways bool) (stdout, stderr string, status int) {
		cmd := exec.Command(filepath.Join(testbin.RepoRoot(), "scripts", "with-dbs.sh"), "--summary", "sh", "-c", "echo the tests; exit 3")
		cmd.Env = []string{"PATH=" + path(gateways), "TEST_DATABASE_POSTGRES=postgres://pg.invalid/test", "TEST_DATABASE_MYSQL=mysql://my.invalid/test"}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	head := "\nBackends and optional suites (exit status 3):\n" +
		"  SQLite                  ran\n" +
		"  PostgreSQL              ran (TEST_DATABASE_POSTGRES was set)\n" +
		"  MariaDB/MySQL           ran (TEST_DATABASE_MYSQL was set)\n"
	tail := "  Chromium browser tests  not part of make test: make e2e\n"

	out, summary, status := run(true)
	if out != "the tests\n" || status != 3 {
		t.Fatalf("the command's output %q and status %d, want %q and 3", out, status, "the tests\n")
	}
	if want := head + "  nginx gateway test      ran\n  Caddy gateway test      ran\n" + tail; summary != want {
		t.Fatalf("summary with nginx and caddy installed:\n%s\nwant:\n%s", summary, want)
	}
	for _, installed := range []string{"/usr/sbin/nginx", "/usr/bin/caddy"} {
		if _, err := os.Stat(installed); err == nil {
			return // it cannot be hidden on this machine
		}
	}
	if _, summary, _ = run(false); summary != head+"  nginx gateway test      skipped (nginx is not installed; make e2e installs it)\n"+
		"  Caddy gateway test      skipped (caddy is not installed; make e2e installs it)\n"+tail {
		t.Fatalf("summary without nginx and caddy:\n%s", summary)
	}
}
