// Package nginx_test runs examples/nginx/nginx.conf in a real nginx in
// front of examples/upstream, with gatehouse-sidecar and the issuer: the
// gateway path as a user would set it up. It is skipped when nginx is not
// installed, unless REQUIRE_NGINX=1 (scripts/e2e.sh installs it).
package nginx_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gatewaytest"
	"github.com/gatehouse-dev/gatehouse/internal/testbin"
)

func nginxBinary(t *testing.T) string {
	return gatewaytest.Binary(t, "REQUIRE_NGINX", "nginx", "nginx", "/usr/sbin/nginx")
}

// globals are nginx's -g directives for a test: in the foreground, and,
// when the test runs as root (CI containers), with workers that stay
// root: nginx would otherwise run them as nobody, who cannot write request
// bodies into the test's temporary directory (mode 0700), and every
// request with a body larger than nginx's buffer would fail with 500.
func globals() string {
	if os.Geteuid() == 0 {
		return "daemon off; user root;"
	}
	return "daemon off;"
}

// rewrite swaps the example's default ports for the test's.
func rewrite(t *testing.T, file string, ports map[string]string) string {
	return gatewaytest.Rewrite(t, file, ports)
}

// startNginx runs nginx.conf in front of a new stack (the issuer is, or
// a default one; sidecar.yaml plus extra) and returns its host:port.
func startNginx(t *testing.T, is *testbin.Issuer, extra ...string) (*gatewaytest.Stack, string) {
	return startNginxWith(t, gatewaytest.Options{Issuer: is, Extra: extra})
}

// startNginxWith is startNginx with a stack made with o.
func startNginxWith(t *testing.T, o gatewaytest.Options) (*gatewaytest.Stack, string) {
	nginx := nginxBinary(t)
	s := gatewaytest.StartStackWith(t, "sidecar.yaml", o)
	gw := fmt.Sprintf("127.0.0.1:%d", testbin.FreePort(t))
	conf := rewrite(t, "nginx.conf", map[string]string{"127.0.0.1:8080": gw, "127.0.0.1:4456": s.SidecarHTTP, "127.0.0.1:8081": s.Upstream})
	if err := os.MkdirAll(filepath.Join(s.Dir, "nginx", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Dir, "nginx")
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := testbin.Start(t, nginx, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", globals())
	proc.WaitHTTP(t, "http://"+gw+"/nginx-health", 30*time.Second)
	return s, gw
}

// TestNginxForwardAuth: the challenge reaches the client, the app sees
// only the sidecar's identity headers (forged ones replaced on checked
// paths, removed on public ones), and the sidecar down fails closed.
func TestNginxForwardAuth(t *testing.T) {
	s, gw := startNginx(t, nil)
	gatewaytest.CheckForwardAuth(t, s, gw)
	gatewaytest.CheckFailsClosed(t, s, gw)
}

// TestNginxDPoP: a DPoP client written with jwx gets a DPoP-bound token
// from the real issuer and calls the app through nginx; nginx passes
// the proof and the URL the client called, and the sidecar checks the
// binding (RFC 9449 §7): allowed with a fresh proof, refused with the
// right challenge for a replayed proof, a proof for another URL, method
// or server, and the bound token sent as Bearer.
func TestNginxDPoP(t *testing.T) {
	s, gw := startNginx(t, nil)
	gatewaytest.CheckDPoP(t, s, gw)
}

// TestNginxDPoPNonce: with binding.dpop.use_nonce, nginx passes the
// sidecar's DPoP-Nonce to the client with the use_dpop_nonce challenge,
// and the client's retry with it passes (RFC 9449 §9).
func TestNginxDPoPNonce(t *testing.T) {
	s, gw := startNginx(t, nil, gatewaytest.NonceConfig)
	gatewaytest.CheckDPoPNonce(t, s, gw)
}

// TestNginxForgedCertificateHeaders: with a sidecar that believes a
// certificate header from nginx, a client's own X-SSL-Client-Cert or
// X-Forwarded-Client-Cert never reaches it through nginx.conf: a stolen
// certificate-bound token with its (public) certificate in a forged
// header is refused (RFC 8705 §3).
func TestNginxForgedCertificateHeaders(t *testing.T) {
	gatewaytest.CheckForgedCertificateHeaders(t, startNginx)
}

// TestNginxInternalToken: with the example's internal-token route
// enabled, nginx's map gives the app on /orders the sidecar's internal
// token (RFC 8693 exchange) in Authorization, and the client's own
// Authorization on every other route.
func TestNginxInternalToken(t *testing.T) {
	gatewaytest.CheckInternalToken(t, startNginxWith)
}

// TestNginxSourceAddress: nginx.conf gives the sidecar the client's
// address as nginx saw it, so a CEL condition on source.address cannot
// be steered by a client's own X-Forwarded-For.
func TestNginxSourceAddress(t *testing.T) {
	gatewaytest.CheckSourceAddress(t, startNginxWith)
}
