package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// readWhole reads a response to a request of method from raw the way the
// native client does: head, framing, body (and trailers).
func readWhole(raw []byte, method string) (*http.Response, []byte, error) {
	br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	hr := headReader{br: br, left: defaultMaxResponseHeaderBytes}
	resp, f, _, err := readResponse(&hr, method)
	if err != nil {
		return nil, nil, err
	}
	var body []byte
	switch f {
	case framingLength:
		body = make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, nil, err
		}
	case framingChunked:
		if body, err = io.ReadAll(newChunkedReader(br)); err != nil {
			return nil, nil, err
		}
		thr := headReader{br: br, left: defaultMaxResponseHeaderBytes}
		if err := readTrailer(&thr, resp); err != nil {
			return nil, nil, err
		}
	case framingClose:
		if body, err = io.ReadAll(br); err != nil {
			return nil, nil, err
		}
	}
	return resp, body, nil
}

// FuzzReadResponse: the native parser never panics, and whatever it
// accepts net/http's parser (http.ReadResponse) accepts too, with the same
// status, length, body and header fields: the native client is never
// more lenient than net/http, which the proxy used before.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		okReply,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
		"HTTP/1.1 200\nContent-Length: 0\n\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		resp, body, err := readWhole(raw, method)
		if err != nil {
			return
		}
		if resp.StatusCode/100 == 1 {
			return // net/http's ReadResponse returns a 1xx; the client skips it
		}
		// net/http, given the final response (past any 1xx the native
		// parser skipped: the same bytes from the final status line).
		off := finalHeadOffset(raw)
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw[off:])), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("native accepted what net/http refuses (%v): %q", err, raw)
		}
		wantBody, err := io.ReadAll(want.Body)
		if err != nil {
			t.Fatalf("native read a body net/http cannot (%v): %q", err, raw)
		}
		if resp.StatusCode != want.StatusCode || resp.ContentLength != want.ContentLength || !bytes.Equal(body, wantBody) {
			t.Fatalf("native %d, length %d, body %q; net/http %d, length %d, body %q; input %q",
				resp.StatusCode, resp.ContentLength, body, want.StatusCode, want.ContentLength, wantBody, raw)
		}
		for k, vv := range resp.Header {
			if strings.Join(vv, "\x00") != strings.Join(want.Header[k], "\x00") {
				t.Fatalf("header %q: native %q, net/http %q; input %q", k, vv, want.Header[k], raw)
			}
		}
	})
}

// finalHeadOffset returns where the last response head of raw that
// readResponse read begins: after the 1xx responses before it.
func finalHeadOffset(raw []byte) int {
	off := 0
	for {
		st := off + 9
		for st < len(raw) && raw[st] == ' ' {
			st++
		}
		if st >= len(raw) || raw[st] != '1' {
			return off
		}
		i := bytes.Index(raw[off:], []byte("\n\n"))
		j := bytes.Index(raw[off:], []byte("\n\r\n"))
		switch {
		case j >= 0 && (i < 0 || j < i):
			off += j + 3
		case i >= 0:
			off += i + 2
		default:
			return off
		}
	}
}
