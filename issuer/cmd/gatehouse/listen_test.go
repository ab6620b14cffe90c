package main_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// servingAddrs waits for the issuer's "gatehouse is serving" log line (JSON
// logs) and returns the address each listener reports it is bound to.
func servingAddrs(t *testing.T, p *testbin.Process) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.Output.String(), "\n") {
			var entry struct {
				Msg       string            `json:"msg"`
				Listeners map[string]string `json:"listeners"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "gatehouse is serving" {
				return entry.Listeners
			}
		}
		if p.Exited() {
			t.Fatalf("gatehouse exited before serving:\n%s", p.Output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no \"gatehouse is serving\" line:\n%s", p.Output.String())
	return nil
}

// TestListenAddresses: what the listeners bind to when no host is
// configured, as docs/security.md says: --dev (and so `make run`) binds
// both to loopback, production keeps Hydra's default of every interface,
// and a host set explicitly wins in both modes.
func TestListenAddresses(t *testing.T) {
	bin := testbin.Build(t, "./issuer/cmd/gatehouse")
	for _, tc := range []struct {
		name             string
		dev              bool
		env              map[string]string
		wantPub, wantAdm string // "loopback" or "any" (every interface)
	}{
		{"dev binds loopback", true, nil, "loopback", "loopback"},
		{"dev keeps an explicit host", true, map[string]string{"SERVE_PUBLIC_HOST": "0.0.0.0"}, "any", "loopback"},
		{"production binds every interface", false, nil, "any", "any"},
		{"production keeps an explicit host", false, map[string]string{"SERVE_ADMIN_HOST": "127.0.0.1"}, "any", "loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"DSN": "memory", "SECRETS_SYSTEM": testbin.TestSecret, "URLS_SELF_ISSUER": "http://127.0.0.1:4444",
				"SERVE_PUBLIC_PORT": "0", "SERVE_ADMIN_PORT": "0", "LOG_FORMAT": "json",
			}
			for k, v := range tc.env {
				env[k] = v
			}
			args := []string{"serve", "all"}
			if tc.dev {
				args = append(args, "--dev")
			}
			p := testbin.Start(t, bin, env, args...)
			addrs := servingAddrs(t, p)
			for name, want := range map[string]string{"public": tc.wantPub, "admin": tc.wantAdm} {
				addr, ok := strings.CutPrefix(addrs[name], "tcp://")
				host, _, err := net.SplitHostPort(addr)
				ip := net.ParseIP(host)
				if !ok || err != nil || ip == nil || (want == "loopback") != ip.IsLoopback() || (want == "any") != ip.IsUnspecified() {
					t.Errorf("%s API bound to %q, want %s", name, addrs[name], want)
				}
			}
		})
	}
}
