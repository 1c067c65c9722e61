package upstream

import (
	"bufio"

	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// rawBackend is an HTTP/1.1 endpoint on a raw listener: it parses each
// request with net/http's server-side parser (so what the client writes
// is checked by the standard library) and answers with what script
// returns for the n-th request it received (from 0), byte for byte.
type rawBackend struct {
	ln       net.Listener
	accepted atomic.Int32
	closed   atomic.Int32 // connections that ended (EOF or error seen)
	mu       sync.Mutex
	reqs     []*seenRequest
	wg       sync.WaitGroup
}

// seenRequest is a request as the backend parsed it.
type seenRequest struct {
	method, uri, host string
	header            http.Header
	body              string
	bodyErr           error
	contentLength     int64
	te                []string
	close             bool
}

// reply is the backend's answer to one request.
type reply struct {
	raw       string
	closeConn bool          // close the connection after the answer
	readBody  bool          // read the request body before answering (default: yes)
	stall     chan struct{} // wait on it before answering (closed by the test)
	skipBody  bool          // answer right after the head, leave the body unread
}

func newRawBackend(t *testing.T, script func(n int) reply) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln}
	var n atomic.Int32
	var conns sync.Map
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			conns.Store(c, true)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer b.closed.Add(1)
				defer c.Close()
				br := bufio.NewReader(c)
				for range 1000 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					i := int(n.Add(1)) - 1
					r := script(i)
					sr := &seenRequest{method: req.Method, uri: req.RequestURI, host: req.Host, header: req.Header,
						contentLength: req.ContentLength, te: req.TransferEncoding, close: req.Close}
					if !r.skipBody {
						body, err := io.ReadAll(req.Body)
						sr.body, sr.bodyErr = string(body), err
					}
					b.mu.Lock()
					b.reqs = append(b.reqs, sr)
					b.mu.Unlock()
					if r.stall != nil {
						<-r.stall
					}
					if _, err := io.WriteString(c, r.raw); err != nil || r.closeConn {
						if r.skipBody {
							// A lingering close, as servers do: the
							// client reads the answer, not a reset.
							c.(*net.TCPConn).CloseWrite()
							c.SetReadDeadline(time.Now().Add(10 * time.Second))
							io.Copy(io.Discard, c)
						}
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		b.wg.Wait()
	})
	return b
}

func (b *rawBackend) addr() string { return b.ln.Addr().String() }

func (b *rawBackend) seen() []*seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*seenRequest(nil), b.reqs...)
}

// testClient is a native client whose fallback counts the requests it
// is given.
type testClient struct {
	*h1Client
	fellBack atomic.Int32
}

func newTestClient(t *testing.T, idleTimeout time.Duration, perHost int) *testClient {
	tr := &http.Transport{DisableCompression: true, IdleConnTimeout: idleTimeout, MaxIdleConnsPerHost: perHost}
	tc := &testClient{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		tc.fellBack.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	tc.h1Client = newH1Client(tr)
	tc.h1Client.dial = d.DialContext
	t.Cleanup(tc.close)
	return tc
}

const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a safety bound
	t.Cleanup(cancel)
	return ctx
}

func newReq(t *testing.T, ctx context.Context, method, addr, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), err
}

// TestH1ClientResponseFraming: each way a response's body is delimited
// (RFC 9112 §6.3), and whether the connection then carries the next
// request.
func TestH1ClientResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 1<<20+17) // larger than any buffer of the client
	tests := []struct {
		name     string
		method   string
		reply    reply
		status   int
		body     string
		length   int64
		trailer  http.Header
		noHeader string // a header that must not reach the caller
		reused   bool   // the next request goes on the same connection
	}{
		{name: "Content-Length", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"}, status: 200, body: "hello", length: 5, reused: true},
		{name: "Content-Length repeated, equal", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"}, status: 200, body: "hello", length: 5, reused: true},
		{name: "Content-Length 0", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}, status: 200, length: 0, reused: true},
		{name: "chunked", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"}, status: 200, body: "hello world", length: -1, noHeader: "Transfer-Encoding", reused: true},
		{name: "chunked with trailers", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-Late: 1\r\n\r\n"},
			status: 200, body: "hello", length: -1, trailer: http.Header{"X-Sum": {"42"}, "X-Late": {"1"}}, noHeader: "Trailer", reused: true},
		{name: "chunked with an extension", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n"}, status: 200, body: "hello", length: -1, reused: true},
		{name: "chunked and Content-Length: chunked wins, no reuse", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
			status: 200, body: "hello", length: -1, noHeader: "Content-Length"},
		{name: "close-delimited", reply: reply{raw: "HTTP/1.1 200 OK\r\n\r\nuntil the end", closeConn: true}, status: 200, body: "until the end", length: -1},
		{name: "close-delimited, large", reply: reply{raw: "HTTP/1.1 200 OK\r\n\r\n" + big, closeConn: true}, status: 200, body: big, length: -1},
		{name: "Content-Length, large", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big}, status: 200, body: big, length: int64(len(big)), reused: true},
		{name: "HEAD with Content-Length", method: "HEAD", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"}, status: 200, length: 5, reused: true},
		{name: "HEAD without Content-Length", method: "HEAD", reply: reply{raw: "HTTP/1.1 200 OK\r\n\r\n"}, status: 200, length: -1, reused: true},
		{name: "204", reply: reply{raw: "HTTP/1.1 204 No Content\r\n\r\n"}, status: 204, length: 0, reused: true},
		{name: "304 with a Content-Length", reply: reply{raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"}, status: 304, length: 0, reused: true},
		{name: "1xx skipped", reply: reply{raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + okReply}, status: 200, body: "ok", length: 2, noHeader: "Link", reused: true},
		{name: "Connection: close", reply: reply{raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"}, status: 200, body: "ok", length: 2},
		{name: "HTTP/1.0", reply: reply{raw: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"}, status: 200, body: "ok", length: 2},
		{name: "HTTP/1.0 ignores Transfer-Encoding", reply: reply{raw: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nraw", closeConn: true}, status: 200, body: "raw", length: -1},
		{name: "status without reason", reply: reply{raw: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"}, status: 200, body: "ok", length: 2, reused: true},
		{name: "bare LF line endings", reply: reply{raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"}, status: 200, body: "ok", length: 2, reused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(n int) reply {
				if n == 0 {
					return tt.reply
				}
				return reply{raw: okReply}
			})
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			resp, err := c.RoundTrip(newReq(t, ctx, method, be.addr(), "/a", nil))
			if err != nil {
				t.Fatal(err)
			}
			body, err := readAll(resp)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tt.status || body != tt.body || resp.ContentLength != tt.length {
				t.Errorf("got %d, %d bytes, length %d; want %d, %d bytes, length %d",
					resp.StatusCode, len(body), resp.ContentLength, tt.status, len(tt.body), tt.length)
			}
			if tt.trailer != nil {
				for k, v := range tt.trailer {
					if got := resp.Trailer[k]; len(got) != 1 || got[0] != v[0] {
						t.Errorf("trailer %s: %q, want %q", k, got, v)
					}
				}
			}
			if tt.noHeader != "" {
				if v, ok := resp.Header[tt.noHeader]; ok {
					t.Errorf("header %s reached the caller: %q", tt.noHeader, v)
				}
			}
			resp, err = c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/b", nil))
			if err != nil {
				t.Fatal(err)
			}
			if body, err := readAll(resp); err != nil || body != "ok" {
				t.Fatalf("second response %q, %v", body, err)
			}
			if reused := be.accepted.Load() == 1; reused != tt.reused {
				t.Errorf("connections %d: reused %v, want %v", be.accepted.Load(), reused, tt.reused)
			}
			if n := c.fellBack.Load(); n != 0 {
				t.Errorf("%d requests went to net/http", n)
			}
		})
	}
}

// TestH1ClientResponseErrors: what the client cannot frame exactly or
// parse is an error (the proxy answers 502), and the connection is not
// used again.
func TestH1ClientResponseErrors(t *testing.T) {
	tests := []struct {
		name    string
		reply   reply
		bodyErr bool // the head is fine; reading the body fails
	}{
		{name: "malformed status line", reply: reply{raw: "HTTP/1.1 OK\r\n\r\n"}},
		{name: "HTTP/0.9", reply: reply{raw: "hello\r\n"}},
		{name: "HTTP/2.0 status line", reply: reply{raw: "HTTP/2.0 200 OK\r\n\r\n"}},
		{name: "two-digit status", reply: reply{raw: "HTTP/1.1 20 OK\r\n\r\n"}},
		{name: "status 099", reply: reply{raw: "HTTP/1.1 099 X\r\n\r\n"}},
		{name: "header line without colon", reply: reply{raw: "HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n"}},
		{name: "space before colon", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"}},
		{name: "obs-fold", reply: reply{raw: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"}},
		{name: "NUL in a value", reply: reply{raw: "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"}},
		{name: "bare CR in a value", reply: reply{raw: "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"}},
		{name: "differing Content-Lengths", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"}},
		{name: "Content-Length list", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"}},
		{name: "Content-Length with a sign", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"}},
		{name: "Content-Length empty", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello"}},
		{name: "Transfer-Encoding gzip, chunked", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"}},
		{name: "Transfer-Encoding twice", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}},
		{name: "bad trailer name announced", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n"}},
		{name: "unasked 101", reply: reply{raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"}},
		{name: "six 1xx", reply: reply{raw: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + okReply}},
		{name: "header section over the limit", reply: reply{raw: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", defaultMaxResponseHeaderBytes) + "\r\nContent-Length: 0\r\n\r\n"}},
		{name: "many lines over the limit", reply: reply{raw: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", defaultMaxResponseHeaderBytes/1000+1) + "\r\n"}},
		{name: "closed without an answer", reply: reply{raw: "", closeConn: true}},
		{name: "closed mid-head", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Le", closeConn: true}},
		{name: "body shorter than its Content-Length", reply: reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", closeConn: true}, bodyErr: true},
		{name: "chunked cut short", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhello", closeConn: true}, bodyErr: true},
		{name: "chunked without last chunk", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", closeConn: true}, bodyErr: true},
		{name: "chunk size not hex", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"}, bodyErr: true},
		{name: "malformed trailer", reply: reply{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"}, bodyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(n int) reply {
				if n == 0 {
					return tt.reply
				}
				return reply{raw: okReply}
			})
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if !tt.bodyErr {
				if err == nil {
					body, _ := readAll(resp)
					t.Fatalf("got %d %q, want an error", resp.StatusCode, body)
				}
			} else {
				if err != nil {
					t.Fatalf("head: %v", err)
				}
				if body, err := readAll(resp); err == nil {
					t.Fatalf("body %q read without error", body)
				}
			}
			// The next request goes on a new connection.
			resp, err = c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			if n := be.accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2 (the failed one not reused)", n)
			}
		})
	}
}

// TestH1ClientRequestFraming: the request as the endpoint parses it
// (with net/http's server): line, Host, User-Agent, fields, and the body
// with Content-Length or chunked.
func TestH1ClientRequestFraming(t *testing.T) {
	big := strings.Repeat("y", 200<<10)
	tests := []struct {
		name     string
		method   string
		body     io.Reader
		length   int64 // set on the request when body is set
		host     string
		header   http.Header
		close    bool
		wantLen  int64
		wantTE   []string
		wantBody string
		wantUA   string
		check    func(t *testing.T, sr *seenRequest)
	}{
		{name: "GET without body sends no length", method: "GET", wantLen: 0, wantUA: "Go-http-client/1.1",
			check: func(t *testing.T, sr *seenRequest) {
				if _, ok := sr.header["Content-Length"]; ok {
					t.Error("a GET without body said Content-Length")
				}
			}},
		{name: "POST without body says Content-Length: 0", method: "POST", wantLen: 0, wantUA: "Go-http-client/1.1",
			check: func(t *testing.T, sr *seenRequest) {
				if v := sr.header.Get("Content-Length"); v != "0" {
					t.Errorf("Content-Length %q, want 0", v)
				}
			}},
		{name: "POST with Content-Length", method: "POST", body: strings.NewReader("hello"), length: 5, wantLen: 5, wantBody: "hello", wantUA: "Go-http-client/1.1"},
		{name: "PUT large with Content-Length", method: "PUT", body: strings.NewReader(big), length: int64(len(big)), wantLen: int64(len(big)), wantBody: big, wantUA: "Go-http-client/1.1"},
		{name: "POST streamed goes chunked", method: "POST", body: io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")), length: -1,
			wantLen: -1, wantTE: []string{"chunked"}, wantBody: "hello", wantUA: "Go-http-client/1.1"},
		{name: "POST streamed large", method: "POST", body: io.MultiReader(strings.NewReader(big), strings.NewReader("!")), length: -1,
			wantLen: -1, wantTE: []string{"chunked"}, wantBody: big + "!", wantUA: "Go-http-client/1.1"},
		{name: "Host from the request, fields as given", method: "GET", host: "api.example:8080",
			header: http.Header{"X-Multi": {"a", "b"}, "User-Agent": {"curl/8"}, "X-Pad": {"  padded  "}}, wantUA: "curl/8",
			check: func(t *testing.T, sr *seenRequest) {
				if sr.host != "api.example:8080" {
					t.Errorf("Host %q", sr.host)
				}
				if v := sr.header["X-Multi"]; len(v) != 2 || v[0] != "a" || v[1] != "b" {
					t.Errorf("X-Multi %q", v)
				}
				if v := sr.header.Get("X-Pad"); v != "padded" {
					t.Errorf("X-Pad %q", v)
				}
			}},
		{name: "empty User-Agent sends none", method: "GET", header: http.Header{"User-Agent": {""}}, wantUA: ""},
		{name: "framing fields of the header are ignored", method: "POST", body: strings.NewReader("hello"), length: 5,
			header: http.Header{"Content-Length": {"99"}, "Transfer-Encoding": {"chunked"}}, wantLen: 5, wantBody: "hello", wantUA: "Go-http-client/1.1"},
		{name: "Close asks Connection: close", method: "GET", close: true, wantUA: "Go-http-client/1.1",
			check: func(t *testing.T, sr *seenRequest) {
				if !sr.close {
					t.Error("the endpoint did not see Connection: close")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
			c := newTestClient(t, time.Minute, 4)
			req := newReq(t, testCtx(t), tt.method, be.addr(), "/p/a%2Fb?q=1", tt.body)
			if tt.body != nil {
				req.ContentLength = tt.length
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			req.Close = tt.close
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			if n := c.fellBack.Load(); n != 0 {
				t.Fatalf("%d requests went to net/http", n)
			}
			seen := be.seen()
			if len(seen) != 1 {
				t.Fatalf("the endpoint saw %d requests", len(seen))
			}
			sr := seen[0]
			if sr.method != tt.method || sr.uri != "/p/a%2Fb?q=1" {
				t.Errorf("request line %s %s", sr.method, sr.uri)
			}
			if sr.contentLength != tt.wantLen || strings.Join(sr.te, ",") != strings.Join(tt.wantTE, ",") {
				t.Errorf("length %d, TE %q; want %d, %q", sr.contentLength, sr.te, tt.wantLen, tt.wantTE)
			}
			if sr.bodyErr != nil || sr.body != tt.wantBody {
				t.Errorf("body of %d bytes (%v), want %d", len(sr.body), sr.bodyErr, len(tt.wantBody))
			}
			if ua := sr.header.Get("User-Agent"); ua != tt.wantUA {
				t.Errorf("User-Agent %q, want %q", ua, tt.wantUA)
			}
			if tt.check != nil {
				tt.check(t, sr)
			}
		})
	}
}

// TestH1ClientFallback: what the native client does not send itself goes
// to net/http's Transport, as before.
func TestH1ClientFallback(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(r *http.Request)
		wantErr string // net/http refuses it before dialling
	}{
		{name: "Upgrade", edit: func(r *http.Request) { r.Header.Set("Connection", "Upgrade"); r.Header.Set("Upgrade", "websocket") }},
		{name: "Expect: 100-continue", edit: func(r *http.Request) {
			r.Header.Set("Expect", "100-continue")
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hi")), 2
		}},
		{name: "trailers", edit: func(r *http.Request) {
			r.Body, r.ContentLength, r.Trailer = io.NopCloser(strings.NewReader("hi")), -1, http.Header{"X-T": {"v"}}
		}},
		{name: "body of length 0", edit: func(r *http.Request) {
			r.Method, r.Body, r.ContentLength = "POST", io.NopCloser(strings.NewReader("")), 0
		}},
		{name: "extension method", edit: func(r *http.Request) { r.Method = "PROPFIND" }},
		{name: "invalid header value", edit: func(r *http.Request) { r.Header["X-Bad"] = []string{"a\r\nb"} }, wantErr: "net/http: invalid header field value"},
		{name: "control characters in the target", edit: func(r *http.Request) { r.URL.RawQuery = "a\r\nX-Smuggled: 1" },
			wantErr: "net/http: can't write control character in Request.URL"},
		{name: "non-ASCII host", edit: func(r *http.Request) { r.Host = "café.example" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
			c := newTestClient(t, time.Minute, 4)
			req := newReq(t, testCtx(t), "GET", be.addr(), "/", nil)
			tt.edit(req)
			resp, err := c.RoundTrip(req)
			if err == nil {
				readAll(resp)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want net/http's %q", err, tt.wantErr)
				}
				return
			}
			if c.fellBack.Load() != 1 {
				t.Errorf("net/http's Transport dialled %d times, want 1", c.fellBack.Load())
			}
		})
	}
}

// TestH1ClientStaleConnection: a pooled connection the endpoint closed
// while it was idle is not used for a request that could not be sent
// again (it is checked first), and is replaced once for one that can (as
// net/http does). A request the endpoint read and then dropped without an
// answer is sent again only if it is idempotent.
func TestH1ClientStaleConnection(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		header http.Header
		resent bool // sent again when dropped unanswered
	}{
		{name: "GET", method: "GET", resent: true},
		{name: "HEAD", method: "HEAD", resent: true},
		{name: "POST with an Idempotency-Key", method: "POST", header: http.Header{"Idempotency-Key": {"k"}}, resent: true},
		{name: "POST without body", method: "POST"},
		{name: "POST with a body", method: "POST", body: "payload"},
	}
	for _, tt := range tests {
		req := func(t *testing.T, ctx context.Context, addr string) *http.Request {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := newReq(t, ctx, tt.method, addr, "/", body)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			return r
		}
		t.Run(tt.name+" after an idle close", func(t *testing.T) {
			// The first answer does not say close, but the endpoint closes.
			be := newRawBackend(t, func(n int) reply { return reply{raw: okReply, closeConn: n == 0} })
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			waitFor(t, func() bool { return be.closed.Load() == 1 }, "the endpoint closes its first connection")
			resp, err = c.RoundTrip(req(t, ctx, be.addr()))
			if err != nil {
				t.Fatalf("failed on the closed connection: %v", err)
			}
			readAll(resp)
			if n := be.accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if n := len(be.seen()); n != 2 {
				t.Errorf("the endpoint saw %d requests, want 2", n)
			}
		})
		t.Run(tt.name+" dropped unanswered", func(t *testing.T) {
			be := newRawBackend(t, func(n int) reply {
				if n == 1 {
					return reply{closeConn: true} // the second request: no answer
				}
				return reply{raw: okReply}
			})
			c := newTestClient(t, time.Minute, 4)
			ctx := testCtx(t)
			resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(resp)
			resp, err = c.RoundTrip(req(t, ctx, be.addr()))
			if err == nil {
				readAll(resp)
			}
			if sent := len(be.seen()) - 1; (sent == 2) != tt.resent || (err == nil) != tt.resent {
				t.Errorf("sent %d times, error %v; want sent again: %v", sent, err, tt.resent)
			}
		})
	}
}

// waitFor polls cond, with a generous safety bound.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestH1ClientEarlyAnswer: an endpoint that answers before reading the
// request's body (413, then closes) has its answer read, while the body is
// still being written: the writer does not block the reader.
func TestH1ClientEarlyAnswer(t *testing.T) {
	be := newRawBackend(t, func(int) reply {
		return reply{raw: "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", skipBody: true, closeConn: true}
	})
	c := newTestClient(t, time.Minute, 4)
	// 64 MB: more than the socket buffers hold, so the writer blocks.
	body := io.LimitReader(zeros{}, 64<<20)
	req := newReq(t, testCtx(t), "POST", be.addr(), "/", body)
	req.ContentLength = 64 << 20
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestH1ClientContext: the context's end aborts a request waiting for its
// answer, or reading its body, and the connection is closed (the endpoint
// sees it end), not pooled.
func TestH1ClientContext(t *testing.T) {
	t.Run("waiting for the head", func(t *testing.T) {
		stall := make(chan struct{})
		defer close(stall)
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply, stall: stall} })
		c := newTestClient(t, time.Minute, 4)
		ctx, cancel := context.WithCancel(testCtx(t))
		go func() {
			waitFor(t, func() bool { return len(be.seen()) == 1 }, "the request arrives")
			cancel()
		}()
		_, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("deadline while reading the body", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply {
			return reply{raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"} // and 5 bytes that never come
		})
		c := newTestClient(t, time.Minute, 4)
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		defer cancel()
		resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(resp)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("body error %v, want context.DeadlineExceeded", err)
		}
		waitFor(t, func() bool { return be.closed.Load() == 1 }, "the endpoint sees the connection closed")
		c.mu.Lock()
		idle := c.idle
		c.mu.Unlock()
		if idle != 0 {
			t.Errorf("%d idle connections, want 0", idle)
		}
	})
	t.Run("a finished request leaves the pooled connection usable", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, time.Minute, 4)
		for i := range 3 {
			ctx, cancel := context.WithCancel(testCtx(t))
			resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if err != nil {
				t.Fatal(i, err)
			}
			readAll(resp)
			cancel() // after the response: must not touch the pooled connection
		}
		if n := be.accepted.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
}

// TestH1ClientWroteRequest: the trace's WroteRequest comes once the whole
// request, body included, is written (the proxy's response header
// timeout starts there).
func TestH1ClientWroteRequest(t *testing.T) {
	be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
	c := newTestClient(t, time.Minute, 4)
	for _, body := range []string{"", "hello"} {
		var wrote atomic.Int32
		ctx := httptrace.WithClientTrace(testCtx(t), &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					wrote.Add(1)
				}
			},
		})
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		resp, err := c.RoundTrip(newReq(t, ctx, "POST", be.addr(), "/", rb))
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
		if wrote.Load() != 1 {
			t.Errorf("body %q: WroteRequest called %d times, want 1", body, wrote.Load())
		}
	}
}

// TestH1ClientPool: idle connections are reused most recent first, kept
// up to the per-endpoint bound, closed after the idle timeout, when their
// endpoint leaves, and when the client closes (those in use when their
// response ends).
func TestH1ClientPool(t *testing.T) {
	t.Run("bounded per endpoint", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, time.Minute, 2)
		ctx := testCtx(t)
		// Four concurrent requests: four connections, two kept.
		var resps []*http.Response
		for range 4 {
			resp, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resps = append(resps, resp)
		}
		for _, r := range resps {
			readAll(r)
		}
		waitFor(t, func() bool { return be.closed.Load() == 2 }, "two connections past the bound close")
		c.mu.Lock()
		idle := c.idle
		c.mu.Unlock()
		if idle != 2 {
			t.Errorf("%d idle, want 2", idle)
		}
	})
	t.Run("most recently used first", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, time.Minute, 4)
		ctx := testCtx(t)
		r1, _ := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		r2, _ := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		readAll(r1)
		readAll(r2) // r2's connection is pooled last
		c.mu.Lock()
		p := c.hosts[be.addr()]
		last := p.conns[len(p.conns)-1]
		c.mu.Unlock()
		pc, err := c.get(ctx, be.addr(), false)
		if err != nil {
			t.Fatal(err)
		}
		if pc != last {
			t.Error("the pool did not hand out the most recently used connection")
		}
		pc.close()
	})
	t.Run("idle timeout", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, 50*time.Millisecond, 4)
		resp, err := c.RoundTrip(newReq(t, testCtx(t), "GET", be.addr(), "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
		waitFor(t, func() bool { return be.closed.Load() == 1 }, "the idle connection is closed after the idle timeout")
	})
	t.Run("endpoint leaves", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, time.Minute, 4)
		resp, err := c.RoundTrip(newReq(t, testCtx(t), "GET", be.addr(), "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
		c.closeIdleHost("127.0.0.1:1") // another endpoint
		if be.closed.Load() != 0 {
			t.Fatal("closing another endpoint's connections closed this one")
		}
		c.closeIdleHost(be.addr())
		waitFor(t, func() bool { return be.closed.Load() == 1 }, "the idle connection is closed")
	})
	t.Run("close", func(t *testing.T) {
		be := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
		c := newTestClient(t, time.Minute, 4)
		ctx := testCtx(t)
		idle, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		inUse, err := c.RoundTrip(newReq(t, ctx, "GET", be.addr(), "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(idle)
		c.close()
		waitFor(t, func() bool { return be.closed.Load() == 1 }, "the idle connection is closed")
		if body, err := readAll(inUse); err != nil || body != "ok" {
			t.Fatalf("the response in flight: %q, %v", body, err)
		}
		waitFor(t, func() bool { return be.closed.Load() == 2 }, "the connection in use is closed when its response ends")
	})
}

// TestBackendUsesNativeClient: an HTTP backend's round tripper is the
// native client, an H2C one's net/http's Transport.
func TestBackendUsesNativeClient(t *testing.T) {
	for _, tt := range []struct {
		protocol string
		native   bool
	}{{"HTTP", true}, {"H2C", false}} {
		t.Run(tt.protocol, func(t *testing.T) {
			spec := explicitSpec("RoundRobin", 1)
			spec.Protocol = tt.protocol
			b := newTestBackend(t, spec, Options{})
			_, native := b.Transport().(*h1Client)
			if native != tt.native {
				t.Errorf("native %v, want %v", native, tt.native)
			}
		})
	}
}

// TestBackendClosesIdleToRemovedEndpoints: when an endpoint leaves the
// backend, its idle connections are closed; a remaining endpoint's stay.
func TestBackendClosesIdleToRemovedEndpoints(t *testing.T) {
	stay := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
	leave := newRawBackend(t, func(int) reply { return reply{raw: okReply} })
	spec := explicitSpec("RoundRobin")
	spec.Endpoints = nil
	for _, a := range []string{stay.addr(), leave.addr()} {
		spec.Endpoints = append(spec.Endpoints, configs.Endpoint{Address: a})
	}
	b := newTestBackend(t, spec, Options{})
	for _, a := range []string{stay.addr(), leave.addr()} {
		resp, err := b.Transport().RoundTrip(newReq(t, testCtx(t), "GET", a, "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(resp)
	}
	b.setEndpoints([]endpointSpec{{addr: stay.addr(), weight: 1}})
	waitFor(t, func() bool { return leave.closed.Load() == 1 }, "the removed endpoint's idle connection is closed")
	if n := stay.closed.Load(); n != 0 {
		t.Errorf("%d connections to the remaining endpoint closed", n)
	}
}
