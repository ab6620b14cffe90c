// Package caddy_test runs examples/caddy/Caddyfile in a real Caddy (the
// Debian package) in front of examples/upstream, with gatehouse-sidecar
// and the issuer. It is skipped when caddy is not installed, unless
// REQUIRE_CADDY=1 (scripts/e2e.sh installs it).
package caddy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gatewaytest"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

// startCaddy runs the Caddyfile in front of a new stack as an
// unprivileged loopback process: no admin endpoint, no automatic HTTPS,
// and its data and configuration directories (where it autosaves the
// loaded configuration) in the test's temporary directory. It returns
// Caddy's host:port. is is the issuer (nil: a default one); extra is
// added to the sidecar's configuration.
func startCaddy(t *testing.T, is *testbin.Issuer, extra ...string) (*gatewaytest.Stack, string) {
	return startCaddyWith(t, gatewaytest.Options{Issuer: is, Extra: extra})
}

// startCaddyWith is startCaddy with a stack made with o.
func startCaddyWith(t *testing.T, o gatewaytest.Options) (*gatewaytest.Stack, string) {
	caddy := gatewaytest.Binary(t, "REQUIRE_CADDY", "caddy", "caddy", "/usr/bin/caddy")
	s := gatewaytest.StartStackWith(t, filepath.Join("..", "nginx", "sidecar.yaml"), o)
	gw := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	conf := gatewaytest.Rewrite(t, "Caddyfile", map[string]string{
		// Both site addresses (127.0.0.1:8090 and :8090).
		":8090":          gw[strings.LastIndex(gw, ":"):],
		"127.0.0.1:4456": s.SidecarHTTP, "127.0.0.1:8081": s.Upstream})
	dir := filepath.Join(s.Dir, "caddy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "XDG_DATA_HOME": filepath.Join(dir, "data"), "XDG_CONFIG_HOME": filepath.Join(dir, "config")}
	proc := testbin.Start(t, caddy, env, "run", "--adapter", "caddyfile", "--config", file)
	proc.WaitHTTP(t, "http://"+gw+"/caddy-health", 30*time.Second)
	return s, gw
}

// TestCaddyForwardAuth: the challenge reaches the client, the app sees
// only the sidecar's identity headers (forged ones replaced on checked
// paths, removed on public ones, where Caddy would otherwise pass them
// through), and the sidecar down fails closed.
func TestCaddyForwardAuth(t *testing.T) {
	s, gw := startCaddy(t, nil)
	gatewaytest.CheckForwardAuth(t, s, gw)
	gatewaytest.CheckFailsClosed(t, s, gw)
}

// TestCaddyDPoP: the jwx DPoP client through Caddy's forward_auth, as
// TestNginxDPoP through nginx.
func TestCaddyDPoP(t *testing.T) {
	s, gw := startCaddy(t, nil)
	gatewaytest.CheckDPoP(t, s, gw)
}

// TestCaddyDPoPNonce: the sidecar's DPoP-Nonce reaches the client through
// Caddy, and the retry with it passes (RFC 9449 §9).
func TestCaddyDPoPNonce(t *testing.T) {
	s, gw := startCaddy(t, nil, gatewaytest.NonceConfig)
	gatewaytest.CheckDPoPNonce(t, s, gw)
}

// TestCaddyForgedCertificateHeaders: as TestNginxForgedCertificateHeaders,
// through the Caddyfile (Caddy passes a client's headers to forward_auth
// unless the configuration removes them).
func TestCaddyForgedCertificateHeaders(t *testing.T) {
	gatewaytest.CheckForgedCertificateHeaders(t, startCaddy)
}

// TestCaddyInternalToken: as TestNginxInternalToken, through the
// Caddyfile's forward_auth.
func TestCaddyInternalToken(t *testing.T) {
	gatewaytest.CheckInternalToken(t, startCaddyWith)
}

// TestCaddySourceAddress: Caddy gives the sidecar the client's address
// as it saw it (forward_auth replaces an untrusted client's
// X-Forwarded-For), so a CEL condition on source.address cannot be
// steered by the client.
func TestCaddySourceAddress(t *testing.T) {
	gatewaytest.CheckSourceAddress(t, startCaddyWith)
}
