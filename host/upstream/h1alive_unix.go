//go:build unix

package upstream

import (
	"net"
	"syscall"
)

// alive reports whether an idle connection can still carry a request: the
// endpoint has neither closed it nor sent anything unasked (a peek that
// does not wait). A connection that cannot be checked counts as alive.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// Nothing to read is the one good answer: 0 bytes is the
		// endpoint's close, a byte something it sent unasked.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return ok && err == nil
}
