package scripts_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// readmeTour returns the sh block of README.md between the tour markers,
// the commands a newcomer pastes.
func readmeTour(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "<!-- tour:")
	end := strings.Index(s, "<!-- /tour -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no <!-- tour: ... --> ... <!-- /tour --> block")
	}
	block := s[start:end]
	open := strings.Index(block, "```sh\n")
	closing := strings.LastIndex(block, "```")
	if open < 0 || closing <= open {
		t.Fatal("the README tour markers hold no ```sh block")
	}
	return block[open+len("```sh\n") : closing]
}

var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// portedTour moves the tour from the default ports of `make run` and its
// tools to the test's free ones; it changes nothing else. A loopback port
// the map does not know fails the test, so that a new port in the README
// gets a free one too. The callback port of `perform authorization-code`
// (4446 by default, no URL in the README) is given with --port.
func portedTour(t *testing.T, tour string, ports map[int]int, callbackPort int) string {
	t.Helper()
	var unknown []string
	tour = loopbackPort.ReplaceAllStringFunc(tour, func(m string) string {
		p, _ := strconv.Atoi(strings.TrimPrefix(m, "127.0.0.1:"))
		if to, ok := ports[p]; ok {
			return fmt.Sprintf("127.0.0.1:%d", to)
		}
		unknown = append(unknown, m)
		return m
	})
	if len(unknown) > 0 {
		t.Fatalf("the README tour uses %v, which this test does not move to a free port: add it to the map", unknown)
	}
	const perform = "perform authorization-code "
	if !strings.Contains(tour, perform) {
		t.Fatal("the README tour has no browser step (perform authorization-code)")
	}
	return strings.ReplaceAll(tour, perform, fmt.Sprintf("%s--port %d ", perform, callbackPort))
}

// authorizationURL waits for the URL `perform authorization-code` prints
// for the user to open.
func authorizationURL(t *testing.T, p *testbin.Process) string {
	t.Helper()
	const intro = "Open this URL in a browser"
	waitOutput(t, p, intro, 2*time.Minute)
	for {
		out := p.Output.String()
		_, after, _ := strings.Cut(out, intro)
		for _, line := range strings.Split(after, "\n")[1:] {
			if strings.HasPrefix(line, "http") {
				return strings.TrimSpace(line)
			}
		}
		if p.Exited() {
			t.Fatalf("no URL after %q:\n%s", intro, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadmeTour runs README.md's tour as written, in bash with -e, against
// scripts/run.sh started on free ports (none of them the defaults, so the
// test also proves that the port variables move the whole system). The
// browser step is done as a person would: open the printed URL, sign in
// as alice on the login app's form, allow on its consent form.
func TestReadmeTour(t *testing.T) {
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README tour needs %s (README.md names it): %v", tool, err)
		}
	}
	ports := freeRunPorts(t)
	run := startRunScript(t, ports)
	waitOutput(t, run.Process, runBanner, 3*time.Minute)

	public := fmt.Sprintf("http://127.0.0.1:%d", ports["SERVE_PUBLIC_PORT"])
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports["SERVE_ADMIN_PORT"])
	var disc struct {
		Issuer string `json:"issuer"`
	}
	resp, err := http.Get(public + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != public {
		t.Fatalf("discovery's issuer is %q (%v), want %s", disc.Issuer, err, public)
	}
	if want := "export HYDRA_PUBLIC_URL=" + public + " HYDRA_ADMIN_URL=" + admin; !strings.Contains(run.Output.String(), want) {
		t.Fatalf("run.sh on moved ports does not print %q:\n%s", want, run.Output.String())
	}

	sidecarHTTP, sidecarGRPC, callback := testbin.FreePort(t), testbin.FreePort(t), testbin.FreePort(t)
	tour := portedTour(t, readmeTour(t), map[int]int{
		4444: ports["SERVE_PUBLIC_PORT"], 4445: ports["SERVE_ADMIN_PORT"], 3000: ports["LOGIN_APP_PORT"], 4456: sidecarHTTP,
	}, callback)
	// The tools' own defaults are moved through their own environment
	// variables, which run.sh's banner tells the user to set.
	env := goEnv()
	env["HYDRA_PUBLIC_URL"], env["HYDRA_ADMIN_URL"] = public, admin
	env["GATEHOUSE_SIDECAR_HTTP_LISTEN"] = fmt.Sprintf("127.0.0.1:%d", sidecarHTTP)
	env["GATEHOUSE_SIDECAR_GRPC_LISTEN"] = fmt.Sprintf("127.0.0.1:%d", sidecarGRPC)
	script := "set -euo pipefail\ncd " + strconv.Quote(run.dir) + "\n" +
		"trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + tour
	sh := testbin.Start(t, bash(t), env, "-c", script)

	b := newBrowser(t)
	login := b.open(authorizationURL(t, sh))
	if login.url.Path != "/login" || !strings.HasPrefix(login.url.String(), fmt.Sprintf("http://127.0.0.1:%d/", ports["LOGIN_APP_PORT"])) {
		t.Fatalf("the printed URL led to %s, not the login app:\n%.2000s", login.url, login.body)
	}
	consent := b.submit(login, "accept", map[string]string{"username": "alice", "password": "wonderland"})
	if consent.url.Path != "/consent" {
		t.Fatalf("signing in led to %s:\n%.2000s", consent.url, consent.body)
	}
	done := b.submit(consent, "accept", nil)
	if !strings.Contains(done.body, "Authorization succeeded") {
		t.Fatalf("allowing led to %s:\n%.2000s", done.url, done.body)
	}

	exited, err := sh.Wait(2 * time.Minute)
	out := sh.Output.String()
	if !exited || err != nil {
		t.Fatalf("the README tour failed (exited %v, %v):\n%s", exited, err, out)
	}
	// What the README's comments promise, in order.
	rest := out
	for _, want := range []string{
		`ACTIVE\s+true`,                                                      // 1. introspection
		`ACCESS TOKEN\s+ory_at_`, `REFRESH TOKEN\s+ory_rt_`, `ID TOKEN\s+ey`, // 2. the browser login's tokens
		`HTTP/1.1 200 (?s:.*)HTTP/1.1 401 `, // 3. the sidecar lets the token through and refuses no token
		`(?i)www-authenticate: Bearer`,
	} {
		loc := regexp.MustCompile(want).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("the tour's output lacks %s (in order):\n%s", want, out)
		}
		if strings.HasPrefix(want, "HTTP/1.1 200") {
			for _, h := range []string{`(?i)\nx-user-id: \S+`, `(?i)\nx-client-id: \S+`} {
				if !regexp.MustCompile(h).MatchString(rest[loc[0]:loc[1]]) {
					t.Fatalf("the sidecar's 200 lacks %s:\n%s", h, out)
				}
			}
		}
		rest = rest[loc[1]:]
	}
}
