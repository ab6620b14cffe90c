package testbin

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An issuer whose admin port is held by another server that answers
// /health/ready with 200 exits with "address already in use"; StartBound
// does not take the other server's answer for its readiness, and starts
// it again on fresh ports.
func TestStartBoundRetriesWhenAPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the issuer")
	}
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer impostor.Close()
	taken := impostor.Listener.Addr().(*net.TCPAddr).Port
	bin := Build(t, "./issuer/cmd/gatehouse")
	var attempts []*Process
	p := StartBound(t, IssuerBound, func() (*Process, string) {
		pub, adm := FreePort(t), FreePort(t)
		if len(attempts) == 0 {
			adm = taken
		}
		p := Start(t, bin, map[string]string{
			"DSN": "memory", "SECRETS_SYSTEM": TestSecret, "LOG_LEVEL": "warn",
			"SERVE_PUBLIC_HOST": "127.0.0.1", "SERVE_PUBLIC_PORT": fmt.Sprint(pub),
			"SERVE_ADMIN_HOST": "127.0.0.1", "SERVE_ADMIN_PORT": fmt.Sprint(adm),
			"URLS_SELF_ISSUER": fmt.Sprintf("http://127.0.0.1:%d", pub),
		}, "serve", "all")
		attempts = append(attempts, p)
		return p, fmt.Sprintf("http://127.0.0.1:%d/health/ready", adm)
	})
	if len(attempts) != 2 || p != attempts[1] {
		t.Fatalf("%d attempts; want the second process after the first could not bind", len(attempts))
	}
	if !attempts[0].Exited() || p.Exited() {
		t.Fatalf("first exited %v, second exited %v; want true, false", attempts[0].Exited(), p.Exited())
	}
}
