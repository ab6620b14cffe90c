// Package benchproc holds what the load generators under bench/ share:
// building and starting the real gatehouse binary on loopback ports (with
// an optional pprof overlay) and stopping it (this file), reading /proc
// (proc.go), and the machine description, -issuer-env flag and loopback
// HTTP transport of their runs (run.go).
package benchproc

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/freeport"
)

// PprofEnv names the loopback address the profiling overlay listens on.
const PprofEnv = "GATEHOUSE_BENCH_PPROF"

// pprofOverlay is added to package main of the issuer (or another command,
// see Build) at build time with -profile (go build -overlay: the source tree is not touched). It serves
// net/http/pprof on its own loopback listener, never on the issuer's.
const pprofOverlay = `package main

import (
	"net/http"
	"net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("` + PprofEnv + `")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
`

// BuildIssuer builds ./issuer/cmd/gatehouse into dir the way `make build`
// does (run from the repository root); with profile, plus the pprof overlay.
func BuildIssuer(dir string, profile bool) (string, error) {
	return Build(dir, "./issuer/cmd/gatehouse", profile)
}

// Build builds the command package pkg (e.g. "./sidecar/cmd/gatehouse-sidecar",
// relative to the repository root, the working directory) into dir the way
// `make build` does; with profile, plus the pprof overlay, which serves
// pprof on the address in PprofEnv when the process has it.
func Build(dir, pkg string, profile bool) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
	if profile {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		src := filepath.Join(dir, "zz_bench_pprof.go")
		ov := filepath.Join(dir, "overlay.json")
		b, _ := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(wd, filepath.FromSlash(pkg), "zz_bench_pprof.go"): src}})
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
			return "", err
		}
		if err := os.WriteFile(ov, b, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build (run from the repository root): %v\n%s", err, b)
	}
	return bin, nil
}

// Process is a gatehouse (or other) process (or, with only PID set, one given by the
// user; or any child process adopted with Adopt).
type Process struct {
	Public, Admin string
	PID           int
	Startup       time.Duration
	cmd           *exec.Cmd
	exited        chan struct{}
	stopOnce      sync.Once
	pprof         string // host:port of the overlay pprof listener
}

// StartIssuer runs `bin serve all` with loopback ports, a random system
// secret, LOG_LEVEL=warn and env (the DSN and anything else), logging to
// dir/issuer.log, and waits for /health/ready on both listeners. With
// profile the pprof overlay listens on a loopback port of its own.
func StartIssuer(bin, dir string, env []string, profile bool) (*Process, error) {
	pubPort, admPort := FreePort(), FreePort()
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	cmd := exec.Command(bin, "serve", "all")
	cmd.Env = append(os.Environ(),
		"SECRETS_SYSTEM="+base64.RawURLEncoding.EncodeToString(secret), // 32 characters
		"URLS_SELF_ISSUER=http://127.0.0.1:"+strconv.Itoa(pubPort),
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+strconv.Itoa(pubPort),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+strconv.Itoa(admPort),
		"LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, env...)
	pprofAddr := ""
	if profile {
		var pprofEnv string
		pprofAddr, pprofEnv = PprofAddr()
		cmd.Env = append(cmd.Env, pprofEnv)
	}
	logPath := filepath.Join(dir, "issuer.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, PID: cmd.Process.Pid, exited: make(chan struct{}), pprof: pprofAddr,
		Public: "http://127.0.0.1:" + strconv.Itoa(pubPort), Admin: "http://127.0.0.1:" + strconv.Itoa(admPort)}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for _, u := range []string{p.Public + "/health/ready", p.Admin + "/health/ready"} {
		for {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.exited:
				b, _ := os.ReadFile(logPath)
				return nil, fmt.Errorf("the issuer exited before it was ready:\n%s", b)
			default:
			}
			if time.Now().After(deadline) {
				p.Stop()
				return nil, fmt.Errorf("the issuer is not ready after 60s: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	p.Startup = time.Since(t0)
	return p, nil
}

// Adopt wraps a started child process so that Stop ends it.
func Adopt(cmd *exec.Cmd) *Process {
	p := &Process{cmd: cmd, PID: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

// PprofAddr returns a free loopback address for the overlay's pprof
// listener and the environment entry that gives it to the process.
func PprofAddr() (addr, env string) {
	addr = "127.0.0.1:" + strconv.Itoa(FreePort())
	return addr, PprofEnv + "=" + addr
}

// AdoptProfiled is Adopt for a process built with the pprof overlay and
// started with the environment entry of PprofAddr(addr).
func AdoptProfiled(cmd *exec.Cmd, addr string) *Process {
	p := Adopt(cmd)
	p.pprof = addr
	return p
}

// Started reports whether this program started the process (else it was
// given, and Stop leaves it alone).
func (p *Process) Started() bool { return p.cmd != nil }

// Exited is closed when the process has exited (nil for a given process).
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Profiling reports whether the process has the pprof overlay listener.
func (p *Process) Profiling() bool { return p.pprof != "" }

// Stop sends SIGTERM to the process this program started (by pid) and
// waits for it (SIGKILL after 10 s). A given process is left alone.
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// CPUProfile saves a CPU profile of the next d (whole seconds) to file.
func (p *Process) CPUProfile(file string, d time.Duration) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	return p.SaveProfile(file, "profile?seconds="+strconv.Itoa(secs))
}

// SaveProfile saves the overlay's /debug/pprof/<name> (e.g. "allocs",
// "heap", "profile?seconds=3") to file.
func (p *Process) SaveProfile(file, name string) error {
	resp, err := http.Get("http://" + p.pprof + "/debug/pprof/" + name)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FreePort returns a loopback TCP port that was free a moment ago, below
// the ephemeral range (internal/freeport).
func FreePort() int {
	port, err := freeport.Pick(nil)
	if err != nil {
		panic(err)
	}
	return port
}

// StartCPUProfile writes this process's CPU profile to path until the
// returned stop is called (a no-op stop when path is empty).
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
