// Package testbin builds and runs the project's real binaries for
// integration tests: the way a user runs them, on loopback ports.
package testbin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/freeport"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// RepoRoot returns the module root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build compiles the main package at pkg (e.g. "./issuer/cmd/gatehouse")
// once per test process and returns the binary path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "gatehouse-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// FreePort returns a free TCP port on 127.0.0.1 (internal/freeport: below
// the ephemeral range), never one it returned before in this process: two
// listeners of one test must not be given the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	port, err := freeport.Pick(func(p int) bool { return portsGiven[p] })
	if err != nil {
		t.Fatal(err)
	}
	portsGiven[port] = true
	return port
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// Process is a running binary.
type Process struct {
	Cmd    *exec.Cmd
	Output *SyncBuffer
	done   chan struct{}
	err    error
}

// SyncBuffer is a goroutine-safe bytes.Buffer for process output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs bin with args and env (added to a minimal environment) and
// stops it with SIGTERM when the test ends.
func Start(t testing.TB, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{Cmd: cmd, Output: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), tail(p.Output.String(), 8000))
		}
	})
	return p
}

// Stop sends SIGTERM and waits up to timeout (then kills). It returns the
// process's exit error.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Wait waits for the process to exit by itself.
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	p.waitReady(t, url, "", timeout, false)
}

// waitReady polls url until it answers 200 with bound in the process's
// output. When the process exits first, it reports true if retry is set
// and the process failed because a port was taken; otherwise, and after
// timeout, the test fails.
func (p *Process) waitReady(t testing.TB, url, bound string, timeout time.Duration, retry bool) (portTaken bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(p.Output.String(), bound) {
				return false
			}
		}
		if p.Exited() {
			if retry && strings.Contains(p.Output.String(), "address already in use") {
				return true
			}
			t.Fatalf("process exited before %s answered: %v\n%s", url, p.err, tail(p.Output.String(), 8000))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not answer 200 (and print %q) within %s\n%s", url, bound, timeout, tail(p.Output.String(), 8000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Issuer is a running gatehouse issuer.
type Issuer struct {
	*Process
	PublicURL string
	AdminURL  string
	Env       map[string]string
}

// TestSecret is the system secret integration tests run with.
const TestSecret = "integration-test-system-secret-0123456789"

// StartIssuer runs `gatehouse serve all` on free loopback ports with DSN
// (default "memory") and extra env, and waits until it is ready. PublicURL
// is the issuer URL (URLS_SELF_ISSUER).
func StartIssuer(t testing.TB, extraEnv map[string]string, args ...string) *Issuer {
	t.Helper()
	bin := Build(t, "./issuer/cmd/gatehouse")
	if len(args) == 0 {
		args = []string{"serve", "all"}
	}
	var is *Issuer
	StartBound(t, IssuerBound, func() (*Process, string) {
		pub, adm := FreePort(t), FreePort(t)
		env := map[string]string{
			"DSN":               "memory",
			"SECRETS_SYSTEM":    TestSecret,
			"SERVE_PUBLIC_HOST": "127.0.0.1", "SERVE_PUBLIC_PORT": fmt.Sprint(pub),
			"SERVE_ADMIN_HOST": "127.0.0.1", "SERVE_ADMIN_PORT": fmt.Sprint(adm),
			"URLS_SELF_ISSUER": fmt.Sprintf("http://127.0.0.1:%d", pub),
			"LOG_LEVEL":        "warn",
		}
		for k, v := range extraEnv {
			// {public} is the public listener's base URL, for values
			// that depend on the port (an issuer URL with a path).
			env[k] = strings.ReplaceAll(v, "{public}", fmt.Sprintf("http://127.0.0.1:%d", pub))
		}
		p := Start(t, bin, env, args...)
		is = &Issuer{Process: p, Env: env,
			PublicURL: strings.TrimRight(env["URLS_SELF_ISSUER"], "/"),
			AdminURL:  fmt.Sprintf("http://127.0.0.1:%s", env["SERVE_ADMIN_PORT"])}
		return p, is.AdminURL + "/health/ready"
	})
	return is
}

// IssuerBound is what gatehouse serve prints once it has bound every
// listener: the first line of its banner.
const IssuerBound = "\n  Gatehouse "

// SidecarBound is what gatehouse-sidecar logs at info level once it has
// bound both listeners.
const SidecarBound = "gatehouse-sidecar listening"

// StartBound runs start, which starts a process on ports from FreePort
// and returns it with its readiness URL, and waits until that URL answers
// 200 and the process's output holds bound, a line it prints once it has
// bound every listener (so the answer is its own and not another
// process's on a port it failed to bind). A port can still be taken
// between FreePort and the bind: a process that exits with "address
// already in use" is started again on fresh ports, three times at most.
func StartBound(t testing.TB, bound string, start func() (*Process, string)) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, url := start()
		if !p.waitReady(t, url, bound, 60*time.Second, attempt <= 3) {
			return p
		}
	}
}
