// Package scripts_test runs the repository's scripts the way a user does.
package scripts_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// demo is scripts/demo.sh running in its own process group, as a shell
// runs a foreground job: a terminal's Ctrl-C signals the whole group.
type demo struct {
	cmd    *exec.Cmd
	out    *testbin.SyncBuffer
	done   chan struct{}
	ports  map[string]int
	status int
}

// startDemo runs `make demo`'s script on free ports with prebuilt binaries
// and waits for its banner.
func startDemo(t *testing.T) *demo {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs every binary of the demo")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("scripts/demo.sh needs curl")
	}
	bin := t.TempDir()
	for _, pkg := range []string{"./issuer/cmd/gatehouse", "./sidecar/cmd/gatehouse-sidecar"} {
		b, err := os.ReadFile(testbin.Build(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(pkg)), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &demo{out: &testbin.SyncBuffer{}, done: make(chan struct{}), ports: map[string]int{}}
	d.cmd = exec.Command("bash", filepath.Join(testbin.RepoRoot(), "scripts", "demo.sh"))
	d.cmd.Env = append(os.Environ(), "BIN="+bin, "TMPDIR="+t.TempDir())
	for _, v := range []string{"SERVE_PUBLIC_PORT", "SERVE_ADMIN_PORT", "LOGIN_PORT", "WIKI_PORT", "TICKETS_PORT",
		"SIDECAR_HTTP_PORT", "SIDECAR_GRPC_PORT", "APP_PORT", "API_PORT", "ORDERS_PORT", "GATEWAY_PORT"} {
		d.ports[v] = testbin.FreePort(t)
		d.cmd.Env = append(d.cmd.Env, fmt.Sprintf("%s=%d", v, d.ports[v]))
	}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		d.status = d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", d.out.String())
		}
	})
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(d.out.String(), "Ctrl-C stops it all") {
		select {
		case <-d.done:
			t.Fatalf("the demo exited (status %d) before it was ready:\n%s", d.status, d.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo was not ready within 4 minutes:\n%s", d.out.String())
		}
	}
	// The banner is written in one go; give it a moment to be complete.
	time.Sleep(200 * time.Millisecond)
	return d
}

func (d *demo) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
		return d.status
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not stop within 30 s:\n%s", d.out.String())
		return -1
	}
}

// TestDemoCtrlCIsACleanStop: Ctrl-C, which the terminal sends to the
// script and every part it started, stops the demo with exit status 0 and
// one line, without the parts' exits or logs (make then prints no error).
func TestDemoCtrlCIsACleanStop(t *testing.T) {
	d := startDemo(t)
	before := len(d.out.String())
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if status := d.wait(t); status != 0 {
		t.Fatalf("exit status %d after Ctrl-C, want 0:\n%s", status, d.out.String()[before:])
	}
	if after := d.out.String()[before:]; after != "\ndemo: stopped\n" {
		t.Fatalf("after Ctrl-C the demo printed:\n%q\nwant only %q", after, "\ndemo: stopped\n")
	}
	for name, port := range d.ports {
		if portOpen(port) {
			t.Errorf("%s %d still answers after the demo stopped", name, port)
		}
	}
}

// TestDemoPartExitingIsAFailure: a part that exits on its own stops the
// demo with status 1 and that part's log, not the others'.
func TestDemoPartExitingIsAFailure(t *testing.T) {
	d := startDemo(t)
	pid := childListeningOn(t, d.cmd.Process.Pid, fmt.Sprintf("127.0.0.1:%d", d.ports["API_PORT"]))
	before := len(d.out.String())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if status := d.wait(t); status != 1 {
		t.Fatalf("exit status %d after a part died, want 1", status)
	}
	after := d.out.String()[before:]
	if !strings.Contains(after, "demo: api exited") || !strings.Contains(after, "---- api.log (last 30 lines)") ||
		strings.Count(after, "---- ") != 1 {
		t.Fatalf("after the api app died the demo printed:\n%s\nwant its exit and its log only", after)
	}
}

func portOpen(port int) bool {
	return exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)).Run() == nil
}

// childListeningOn finds the demo's child process whose command line has
// --listen addr.
func childListeningOn(t *testing.T, pgid int, addr string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid || pid == pgid {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "--listen\x00"+addr+"\x00") {
			return pid
		}
	}
	t.Fatalf("no process of the demo listens on %s", addr)
	return 0
}
