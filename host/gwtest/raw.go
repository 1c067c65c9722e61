package gwtest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// RawTimeout bounds each read of a raw exchange: a safety limit for a
// server that neither answers nor closes, not a measure.
const RawTimeout = 5 * time.Second

// ProbePath is the path of the request Raw sends after a response to find
// out whether the connection is still open; backends' records can leave
// it out.
const ProbePath = "/__gwtest_probe"

// probe is a complete, valid request on an open HTTP/1.1 connection.
const probe = "GET " + ProbePath + " HTTP/1.1\r\nHost: probe.test\r\n\r\n"

// RawConn is a client TCP connection that writes exact bytes and reads
// HTTP/1.x responses with a deadline.
type RawConn struct {
	net.Conn
	br *bufio.Reader
}

// Dial connects to addr (127.0.0.1:port); the connection is closed when
// the test ends.
func Dial(t testing.TB, addr string) *RawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, RawTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{Conn: c, br: bufio.NewReader(c)}
}

// Send writes s as is.
func (c *RawConn) Send(s string) error {
	c.SetWriteDeadline(time.Now().Add(RawTimeout))
	_, err := io.WriteString(c.Conn, s)
	return err
}

// ReadResponse reads one response within RawTimeout, and its body (for a
// request of method, which decides whether a body follows). body holds
// what arrived; bodyErr is non-nil when the body ended before its framing
// said it would (an aborted response).
func (c *RawConn) ReadResponse(method string) (resp *http.Response, body []byte, bodyErr, err error) {
	c.SetReadDeadline(time.Now().Add(RawTimeout))
	resp, err = http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, nil, err
	}
	body, bodyErr = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, bodyErr, nil
}

// Closed reports whether the server has closed the connection (or is
// closing it), found out without waiting on a timer when it has not: it
// sends a valid request and reads. End of stream or a reset is closed; a
// response is open. A read that times out (the server still waits for
// bytes of the previous request) counts as open.
func (c *RawConn) Closed() bool {
	if c.Send(probe) != nil {
		return true
	}
	c.SetReadDeadline(time.Now().Add(RawTimeout))
	_, err := c.br.ReadByte()
	if err == nil {
		return false
	}
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// WaitClosed reports whether the server closes the connection within d,
// reading and dropping whatever arrives meanwhile; it returns as soon as
// the connection is closed.
func (c *RawConn) WaitClosed(d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.br)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// RawResult is what a raw exchange got back.
type RawResult struct {
	// Status is the response's status code; 0 when none could be read
	// (then Err says why).
	Status int
	Header http.Header
	Body   []byte
	// BodyErr is set when the response's body ended before its framing
	// said it would.
	BodyErr error
	Err     error
	// Closed reports whether the server closed the connection after the
	// response (see RawConn.Closed).
	Closed bool
}

// Raw dials addr, writes req as is, reads one response and finds out
// whether the server then closed the connection. A response with status
// 101 (the connection is no longer HTTP) is not probed.
func Raw(t testing.TB, addr, req string) RawResult {
	t.Helper()
	c := Dial(t, addr)
	defer c.Close()
	var res RawResult
	if err := c.Send(req); err != nil {
		res.Err = err
	}
	resp, body, bodyErr, err := c.ReadResponse("GET")
	if err != nil {
		res.Err = err
		res.Closed = !errors.Is(err, os.ErrDeadlineExceeded)
		return res
	}
	res.Status, res.Header, res.Body, res.BodyErr = resp.StatusCode, resp.Header, body, bodyErr
	if resp.StatusCode != http.StatusSwitchingProtocols {
		res.Closed = c.Closed()
	}
	return res
}
