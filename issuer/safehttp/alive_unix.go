//go:build linux || darwin || freebsd || netbsd || openbsd

package safehttp

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// alive reports whether a parked connection can carry another request:
// its peer has not closed it and sent nothing unasked. One non-blocking
// peek at the socket (MSG_PEEK|MSG_DONTWAIT), so a hook that closes idle
// connections costs a new connection, not a failed call.
func alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var buf [1]byte
	cerr := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is open and quiet.
		ok = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return cerr == nil && ok
}
