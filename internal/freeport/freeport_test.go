package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Picked ports lie below the ephemeral range (where no outgoing
// connection takes them), are bindable, and honour skip.
func TestPick(t *testing.T) {
	hi := ephemeralLow()
	seen := map[int]bool{}
	for range 50 {
		port, err := Pick(func(p int) bool { return seen[p] })
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d picked twice although skipped", port)
		}
		seen[port] = true
		if hi-lowest >= 1000 && (port < lowest || port >= hi) {
			t.Fatalf("port %d outside [%d, %d)", port, lowest, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("picked port %d is not bindable: %v", port, err)
		}
		l.Close()
	}
}
