// Package scripts_test tests the scripts a newcomer meets first, the way
// they meet them: scripts/run.sh (`make run`) and, against it, the tour in
// README.md.
package scripts_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// runBanner is a line of the banner run.sh prints once everything is up.
const runBanner = "Login and consent app"

// runPortVars are the variables that choose run.sh's ports.
var runPortVars = []string{"SERVE_PUBLIC_PORT", "SERVE_ADMIN_PORT", "LOGIN_APP_PORT"}

// freeRunPorts returns a free loopback port for each of runPortVars.
func freeRunPorts(t *testing.T) map[string]int {
	ports := map[string]int{}
	for _, v := range runPortVars {
		ports[v] = testbin.FreePort(t)
	}
	return ports
}

// runScript is scripts/run.sh started by a test, as `make run` starts it:
// the binaries in dir/bin (the tour calls them as ./bin/...), the data in
// dir/data.
type runScript struct {
	*testbin.Process
	dir string
}

// startRunScript builds the binaries and starts scripts/run.sh on ports.
func startRunScript(t *testing.T, ports map[string]int) *runScript {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"./issuer/cmd/gatehouse", "./sidecar/cmd/gatehouse-sidecar"} {
		if err := os.Symlink(testbin.Build(t, pkg), filepath.Join(bin, filepath.Base(pkg))); err != nil {
			t.Fatal(err)
		}
	}
	env := goEnv()
	env["BIN"], env["DATA"] = bin, filepath.Join(dir, "data")
	for k, v := range ports {
		env[k] = fmt.Sprint(v)
	}
	return &runScript{Process: testbin.Start(t, bash(t), env, filepath.Join(testbin.RepoRoot(), "scripts", "run.sh")), dir: dir}
}

// goEnv passes the Go toolchain's settings on: run.sh builds the login app.
func goEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "GO") {
			env[k] = v
		}
	}
	return env
}

func bash(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed:", err)
	}
	return p
}

// waitOutput waits until the process has printed want; it fails the test
// when the process exits first or timeout passes.
func waitOutput(t *testing.T, p *testbin.Process, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output.String(), want) {
		if p.Exited() {
			t.Fatalf("exited before printing %q:\n%s", want, p.Output.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not print %q within %s:\n%s", want, timeout, p.Output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunRefusesBusyPort: with one of its ports taken by someone else's
// server (one that answers every probe with 200), run.sh exits non-zero
// before starting anything, names the port and the variable that moves
// it, and never prints its success banner.
func TestRunRefusesBusyPort(t *testing.T) {
	for _, name := range runPortVars {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"status":"ok"}`))
			}), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = other.Serve(ln) }()
			t.Cleanup(func() { _ = other.Close() })
			busy := ln.Addr().(*net.TCPAddr).Port

			ports := freeRunPorts(t)
			ports[name] = busy
			p := startRunScript(t, ports)
			exited, err := p.Wait(3 * time.Minute)
			out := p.Output.String()
			if !exited {
				t.Fatalf("run.sh still runs with port %d busy:\n%s", busy, out)
			}
			if err == nil {
				t.Fatalf("run.sh exited 0 with port %d busy:\n%s", busy, out)
			}
			if !strings.Contains(out, fmt.Sprintf("port %d", busy)) || !strings.Contains(out, name) {
				t.Fatalf("the message names neither port %d nor %s:\n%s", busy, name, out)
			}
			if strings.Contains(out, runBanner) {
				t.Fatalf("run.sh printed its success banner:\n%s", out)
			}
		})
	}
}
