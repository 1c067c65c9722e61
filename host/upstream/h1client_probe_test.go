package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lateBackend answers its first request with first, and writes late a
// moment after: bytes that arrive when the client has taken the response
// as complete and pooled the connection. It answers every other request
// with okReply. Requests are parsed with net/http's server-side parser.
func lateBackend(t *testing.T, first, late string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	n := 0 // requests seen
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for range 100 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					mu.Lock()
					n++
					isFirst := n == 1
					mu.Unlock()
					if !isFirst {
						if _, err := io.WriteString(c, okReply); err != nil {
							return
						}
						continue
					}
					if _, err := io.WriteString(c, first); err != nil {
						return
					}
					if late != "" {
						time.Sleep(20 * time.Millisecond)
						if _, err := io.WriteString(c, late); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln
}

// evil is a whole response a backend sends unasked: what a client would
// get if its request were paired with it.
const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"

// TestH1ClientProbeLateBytes: a backend sends bytes after a response the
// client took as complete (after its Content-Length, after the last chunk,
// a body to a HEAD request or with a 204 or 304), in a later segment, when
// the connection is already idle in the pool. The next request must not
// read them as its response (response splitting across clients). net/http's
// Transport reads idle connections on its own goroutine and closes one that
// receives anything unasked ("Unsolicited response received on idle HTTP
// channel"); the native client checks a pooled connection before reusing it.
func TestH1ClientProbeLateBytes(t *testing.T) {
	tests := []struct {
		name, method, first, late string
	}{
		{name: "after Content-Length body", method: "GET", first: okReply, late: evil},
		{name: "after Content-Length 0", method: "GET", first: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", late: evil},
		{name: "after the last chunk", method: "GET", first: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", late: evil},
		{name: "body of a HEAD response", method: "HEAD", first: "HTTP/1.1 200 OK\r\nContent-Length: 43\r\n\r\n", late: evil},
		{name: "body of a 204", method: "GET", first: "HTTP/1.1 204 No Content\r\n\r\n", late: evil},
		{name: "body of a 304", method: "GET", first: "HTTP/1.1 304 Not Modified\r\n\r\n", late: evil},
		{name: "a 1xx after the response", method: "GET", first: okReply, late: "HTTP/1.1 100 Continue\r\n\r\n" + evil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := lateBackend(t, tt.first, tt.late)
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			resp, err := c.RoundTrip(newReq(t, ctx, tt.method, ln.Addr().String(), "/a", nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			// Let the late bytes reach the pooled connection.
			time.Sleep(100 * time.Millisecond)
			// A second client's request.
			resp, err = c.RoundTrip(newReq(t, ctx, "GET", ln.Addr().String(), "/b", nil))
			if err != nil {
				t.Fatalf("second request: %v", err)
			}
			body, err := readAll(resp)
			if strings.Contains(body, "EVIL") || err != nil {
				t.Fatalf("second request got %d %q (err %v): the first response's late bytes", resp.StatusCode, body, err)
			}
		})
	}
}

// TestH1ClientProbeAbortedBody: a response body the client stops reading
// midway (it closes it, or its context ends) never leaves its tail to the
// next request on the connection.
func TestH1ClientProbeAbortedBody(t *testing.T) {
	long := "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("T", 100000)
	tests := []struct {
		name   string
		cancel bool
	}{
		{name: "closed after a partial read"},
		{name: "context cancelled after a partial read", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(n int) reply {
				if n == 0 {
					return reply{raw: long}
				}
				return reply{raw: okReply}
			})
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			rctx, cancel := context.WithCancel(ctx)
			resp, err := c.RoundTrip(newReq(t, rctx, "GET", be.addr(), "/a", nil))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			if tt.cancel {
				cancel()
				resp.Body.Read(buf)
			}
			resp.Body.Close()
			cancel()
			for i := 0; i < 3; i++ {
				resp, err = c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/b", nil))
				if err != nil {
					t.Fatalf("next request: %v", err)
				}
				if body, err := readAll(resp); body != "ok" || err != nil {
					t.Fatalf("next request got %q (err %v), want ok", body, err)
				}
			}
		})
	}
}

// TestH1ClientProbeMatchesTransport: odd but parseable responses, each
// read by the native client and by net/http's Transport (the behaviour it
// replaces): both fail, or both give the same status, body and error-free
// end. The expectations are the standard library's, but where stricter
// says the native client refuses what net/http lets through.
func TestH1ClientProbeMatchesTransport(t *testing.T) {
	tests := []struct {
		name, raw string
		stricter  bool
	}{
		{name: "no reason phrase", raw: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
		{name: "Content-Length with leading zeros", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0002\r\n\r\nok"},
		{name: "Content-Length overflowing", raw: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok"},
		{name: "Content-Length negative", raw: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"},
		{name: "Content-Length hex", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok"},
		{name: "chunk extension", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;name=value\r\nok\r\n0\r\n\r\n"},
		{name: "chunk size overflowing", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nok\r\n0\r\n\r\n"},
		{name: "chunk size negative", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n"},
		{name: "chunk with bare LF", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n"},
		{name: "chunked and Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{name: "Transfer-Encoding identity", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok"},
		{name: "Transfer-Encoding gzip", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok"},
		{name: "Transfer-Encoding on HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok"},
		{name: "HTTP/1.0 until close", raw: "HTTP/1.0 200 OK\r\n\r\nuntil close"},
		{name: "trailer with forbidden field", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nContent-Length: 5\r\n\r\n"},
		{name: "trailer with a NUL", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: a\x00b\r\n\r\n"},
		// net/http's client keeps a field named "X A"; a name that is not
		// a token could not be forwarded as it is, so the native client
		// refuses the response.
		{name: "header name with a space", raw: "HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok", stricter: true},
		{name: "LF-only head", raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{name: "five 1xx", raw: strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 4) + okReply},
		{name: "status 999", raw: "HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok"},
	}
	roundTrip := func(t *testing.T, rt http.RoundTripper, raw string) (code int, body string, err error) {
		be := newRawBackend(t, func(int) reply { return reply{raw: raw, closeConn: true} })
		resp, err := rt.RoundTrip(newReq(t, testCtx(t), "GET", be.addr(), "/", nil))
		if err != nil {
			return 0, "", err
		}
		body, err = readAll(resp)
		return resp.StatusCode, body, err
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			std := &http.Transport{DisableCompression: true}
			defer std.CloseIdleConnections()
			wantCode, wantBody, wantErr := roundTrip(t, std, tt.raw)
			c := newTestClient(t, time.Minute, 4)
			code, body, err := roundTrip(t, c, tt.raw)
			if c.fellBack.Load() != 0 {
				t.Fatal("the request went to the fallback transport")
			}
			if tt.stricter {
				if wantErr != nil || err == nil {
					t.Fatalf("native: %d %q err %v; net/http: %d %q err %v; want net/http to accept, native to refuse", code, body, err, wantCode, wantBody, wantErr)
				}
				return
			}
			if tt.stricter {
				if wantErr != nil || err == nil {
					t.Fatalf("native: %d %q err %v; net/http: %d %q err %v; want net/http to accept, native to refuse", code, body, err, wantCode, wantBody, wantErr)
				}
				return
			}
			if (err != nil) != (wantErr != nil) || code != wantCode || body != wantBody {
				t.Errorf("native: %d %q err %v; net/http: %d %q err %v", code, body, err, wantCode, wantBody, wantErr)
			}
		})
	}
}

// TestH1ClientProbeCancelDuringBody: the client's context ends while its
// request body is still being written (the body source blocks; the
// backend answered early without reading it). RoundTrip does not wait on
// the body, and the body's source is never left blocked: its pending Read
// takes what comes next or the body is closed (net/http's Transport does
// either, depending on timing; its RoundTrip may close the body "in a
// separate goroutine even after RoundTrip returns").
func TestH1ClientProbeCancelDuringBody(t *testing.T) {
	tests := []struct {
		name   string
		native bool
	}{
		{name: "net/http Transport"},
		{name: "native", native: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(int) reply {
				return reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", skipBody: true, readBody: false}
			})
			var rt http.RoundTripper
			if tt.native {
				rt = newTestClient(t, time.Minute, 4)
			} else {
				std := &http.Transport{}
				t.Cleanup(std.CloseIdleConnections)
				rt = std
			}
			ctx, cancel := context.WithCancel(testCtx(t))
			pr, pw := io.Pipe()
			wrote := make(chan error, 1)
			cancelled := make(chan struct{})
			go func() {
				// The transport reads "first", then waits for more; after
				// the cancel, a closed body refuses the rest.
				_, err := pw.Write([]byte("first"))
				if err == nil {
					<-cancelled
					time.Sleep(50 * time.Millisecond) // let RoundTrip's cleanup run
					_, err = pw.Write([]byte("rest"))
				}
				wrote <- err
			}()
			req := newReq(t, ctx, "POST", be.addr(), "/", pr)
			req.ContentLength = 100
			resp, err := rt.RoundTrip(req)
			if err == nil {
				cancel()
				readAll(resp)
			}
			cancel()
			close(cancelled)
			select {
			case err := <-wrote:
				// net/http's Transport closes the body or lets the pending
				// Read take the rest, depending on timing: either is right.
				if err != nil && err != io.ErrClosedPipe {
					t.Fatalf("body writer: %v", err)
				}
			case <-time.After(5 * time.Second): // a safety bound
				pw.Close()
				t.Fatal("the pending body Read never took the rest")
			}
			pw.Close()
		})
	}
}
