// Package freeport picks loopback TCP ports for the processes that tests
// and benchmarks start on a port they must know in advance (an issuer's
// URL names its port).
//
// Ports come from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range). Inside it, the kernel hands ports to
// every outgoing connection and every listener on port 0 in any process,
// so a port that was free when picked can be taken before the process it
// was picked for binds it; below it, only another Pick choosing the same
// port at random in the same moment can.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the lowest port handed out: well above the registered ports
// of the services a developer machine commonly runs.
const lowest = 10000

// Pick returns a port on 127.0.0.1 that was free a moment ago and for
// which skip (if not nil) is false.
func Pick(skip func(port int) bool) (int, error) {
	hi := ephemeralLow()
	if hi-lowest < 1000 {
		return pickKernel(skip) // no room below the range: the kernel's choice
	}
	for range 200 {
		port := lowest + rand.IntN(hi-lowest)
		if skip != nil && skip(port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("freeport: no free port after 200 tries")
}

func pickKernel(skip func(int) bool) (int, error) {
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if skip == nil || !skip(port) {
			return port, nil
		}
	}
	return 0, errors.New("freeport: no free port after 200 tries")
}

// ephemeralLow is the first port of the kernel's ephemeral range: Linux's
// setting, else the IANA range's start (BSD, macOS, Windows).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 0 {
				return n
			}
		}
	}
	return 49152
}
