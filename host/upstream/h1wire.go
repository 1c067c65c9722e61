package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The wire format of HTTP/1.1 (RFC 9112) as the native client writes
// requests and reads responses. Whatever it cannot frame exactly is left
// to net/http (see h1Client.native); whatever it cannot parse is an error,
// which the proxy answers with 502.

// defaultMaxResponseHeaderBytes bounds the head of a response (status
// line, header fields, and those of any 1xx responses before it), as
// net/http's Transport.MaxResponseHeaderBytes does. It is smaller than
// net/http's default of 10 MB: a proxy holds every response head in memory.
const defaultMaxResponseHeaderBytes = 1 << 20

// max1xxResponses is how many informational responses may precede the
// final one (net/http's limit).
const max1xxResponses = 5

var (
	errHeaderTooLarge = fmt.Errorf("upstream: response headers exceed %d bytes", defaultMaxResponseHeaderBytes)
	errObsFold        = errors.New("upstream: response header line begins with white space (obsolete line folding)")
	errTooMany1xx     = errors.New("upstream: too many 1xx informational responses")
	errUnasked101     = errors.New("upstream: 101 Switching Protocols to a request that asked for no upgrade")
)

// requestHead is what writeHead needs of a request, checked by native.
type requestHead struct {
	host    string
	uri     string
	chunked bool  // the body goes chunked
	length  int64 // the body's length when not chunked
}

// writeHead writes the request line and header section: the Host, the
// User-Agent as net/http writes it (the first value; none if empty; Go's
// default if absent), the request's header fields less those the framing
// owns (Host, User-Agent, Content-Length, Transfer-Encoding, Trailer), the
// framing of the body, and Connection: close if the request asks it.
// Values are trimmed of surrounding white space, as net/http does.
func writeHead(bw *bufio.Writer, req *http.Request, rh *requestHead) {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(rh.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(rh.host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1"
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(textproto.TrimString(ua))
		bw.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v))
			bw.WriteString("\r\n")
		}
	}
	switch {
	case rh.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case rh.length > 0 || sendsZeroLength(req.Method):
		bw.WriteString("Content-Length: ")
		var b [20]byte
		bw.Write(strconv.AppendInt(b[:0], rh.length, 10))
		bw.WriteString("\r\n")
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// sendsZeroLength reports whether a bodiless request of the method says
// Content-Length: 0, as net/http's does (the methods that usually carry a
// body).
func sendsZeroLength(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// validHeaders reports whether every field of h can be written as it is:
// names are tokens, values hold no control characters but HTAB (net/http
// refuses such a request; the native client leaves it to net/http).
func validHeaders(h http.Header) bool {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// writeChunked copies body to bw in chunked coding, a chunk per read,
// flushed as it goes (a streamed body reaches the endpoint as it comes),
// and the last chunk with an empty trailer section. fromBody reports
// that err came from reading body (else from writing).
func writeChunked(bw *bufio.Writer, body io.Reader, buf []byte) (fromBody bool, err error) {
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			var hb [16]byte
			bw.Write(strconv.AppendInt(hb[:0], int64(n), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:n])
			bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, rerr
		}
	}
	bw.WriteString("0\r\n\r\n")
	return false, bw.Flush()
}

// writeFixed copies exactly n bytes of body to bw, flushed as they come
// (a streamed body reaches the endpoint as the client sends it; the head
// goes with the first bytes); a body shorter than its length is an error
// (net/http's wording). What the body holds past n is not read.
// fromBody reports that err came from reading body (else from writing).
func writeFixed(bw *bufio.Writer, body io.Reader, n int64, buf []byte) (fromBody bool, err error) {
	var got int64
	for got < n {
		p := buf
		if int64(len(p)) > n-got {
			p = p[:n-got]
		}
		m, rerr := body.Read(p)
		if m > 0 {
			bw.Write(p[:m])
			if err := bw.Flush(); err != nil {
				return false, err
			}
			got += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, rerr
		}
	}
	if got != n {
		return true, fmt.Errorf("http: ContentLength=%d with Body length %d", n, got)
	}
	return false, nil
}

// headReader reads one response head from br, counting its bytes
// against a limit shared by the 1xx responses before the final one.
type headReader struct {
	br    *bufio.Reader
	left  int    // bytes the head may still take
	long  []byte // a line longer than br's buffer, assembled
	first bool   // no byte read yet: an EOF is a closed idle connection
}

// line returns the next line without its line ending (CRLF, or a bare LF
// as net/http accepts). The slice is valid until the next call.
func (hr *headReader) line() ([]byte, error) {
	l, err := hr.br.ReadSlice('\n')
	if len(l) > 0 {
		hr.first = false
	}
	if err == bufio.ErrBufferFull {
		hr.long = append(hr.long[:0], l...)
		for err == bufio.ErrBufferFull {
			if len(hr.long) > hr.left {
				return nil, errHeaderTooLarge
			}
			l, err = hr.br.ReadSlice('\n')
			hr.long = append(hr.long, l...)
		}
		l = hr.long
	}
	if len(l) > hr.left {
		return nil, errHeaderTooLarge
	}
	hr.left -= len(l)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112
// §4): only HTTP/1.0 and HTTP/1.1, a code from 100 to 999.
func parseStatusLine(l []byte) (minor int, code int, status string, err error) {
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || (l[7] != '0' && l[7] != '1') || l[8] != ' ' {
		return 0, 0, "", fmt.Errorf("upstream: malformed status line %q", truncate(l))
	}
	minor = int(l[7] - '0')
	rest := l[9:]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, 0, "", fmt.Errorf("upstream: malformed status code in %q", truncate(l))
	}
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0, 0, "", fmt.Errorf("upstream: malformed status code in %q", truncate(l))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, 0, "", fmt.Errorf("upstream: status code %d out of range", code)
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, 0, "", fmt.Errorf("upstream: control character in status line %q", truncate(l))
		}
	}
	return minor, code, statusText(rest), nil
}

// statusText returns the Status of a response, "200 OK", without an
// allocation for the usual ones.
func statusText(b []byte) string {
	switch string(b) {
	case "200 OK":
		return "200 OK"
	case "204 No Content":
		return "204 No Content"
	case "304 Not Modified":
		return "304 Not Modified"
	case "404 Not Found":
		return "404 Not Found"
	}
	return string(b)
}

// readHeader reads header fields up to the empty line into a new
// Header. A line
// beginning with white space (obs-fold), a name that is not a token, white
// space before the colon, or a control character in a value is an error
// (RFC 9112 §5: a proxy must reject obs-fold or replace it; it rejects).
func (hr *headReader) readHeader() (http.Header, error) {
	// The map sized, and one backing array for the first value of each
	// field, as net/textproto does: count the lines already buffered.
	var strs []string
	if n := hr.br.Buffered(); n > 0 {
		b, _ := hr.br.Peek(n)
		if i := indexEmptyLine(b); i >= 0 {
			b = b[:i+1]
		}
		strs = make([]string, countLF(b))
	}
	h := make(http.Header, len(strs))
	for {
		l, err := hr.line()
		if err != nil {
			return nil, err
		}
		if len(l) == 0 {
			return h, nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, errObsFold
		}
		i := indexByte(l, ':')
		if i <= 0 {
			return nil, fmt.Errorf("upstream: malformed header line %q", truncate(l))
		}
		name := l[:i]
		for _, c := range name {
			if !httpguts.IsTokenRune(rune(c)) {
				return nil, fmt.Errorf("upstream: malformed header name %q", truncate(name))
			}
		}
		v := trimOWS(l[i+1:])
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("upstream: control character in the value of header %q", truncate(name))
			}
		}
		key := headerKey(name)
		val := string(v)
		if vv, ok := h[key]; ok {
			h[key] = append(vv, val)
		} else if len(strs) > 0 {
			strs[0] = val
			h[key] = strs[:1:1]
			strs = strs[1:]
		} else {
			h[key] = []string{val}
		}
	}
}

func indexEmptyLine(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\n' && (b[i+1] == '\n' || (b[i+1] == '\r' && i+2 < len(b) && b[i+2] == '\n')) {
			return i
		}
	}
	return -1
}

func countLF(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// truncate shortens what an error quotes.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// commonKeys maps the spellings of frequent response header names to
// their canonical form, so that reading them allocates nothing.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Alt-Svc", "Cache-Control",
		"Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Range", "Content-Type", "Date", "Etag", "Expires",
		"Keep-Alive", "Last-Modified", "Link", "Location", "Pragma", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Trailer", "Transfer-Encoding",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Request-Id",
	} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	m["ETag"] = "Etag"
	m["WWW-Authenticate"] = "Www-Authenticate"
	return m
}()

// headerKey returns the canonical form of a header name (a token).
func headerKey(name []byte) string {
	if k, ok := commonKeys[string(name)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// responseFraming is how a response's body is delimited.
type responseFraming int

const (
	framingNone    responseFraming = iota // no body (HEAD, 1xx, 204, 304, Content-Length: 0)
	framingLength                         // Content-Length
	framingChunked                        // Transfer-Encoding: chunked
	framingClose                          // until the connection closes
)

// frame decides how the body of resp (to a request of method) is
// delimited (RFC 9112 §6.3, with net/http's strictness): it checks
// Content-Length (digits, equal values if repeated), accepts
// Transfer-Encoding only as a single "chunked" on HTTP/1.1 (ignoring it
// on HTTP/1.0), removes a Content-Length that chunked coding overrides,
// and sets resp's ContentLength, TransferEncoding, Close and Trailer as
// net/http does. keep reports whether the connection may carry another
// request after this response's body.
func frame(resp *http.Response, method string) (f responseFraming, keep bool, err error) {
	h := resp.Header
	conn := h["Connection"]
	resp.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	if resp.ProtoMinor == 0 {
		resp.Close = resp.Close || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	keep = !resp.Close && resp.ProtoMinor == 1

	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		if resp.ProtoMinor == 1 {
			if len(te) != 1 || !strings.EqualFold(textproto.TrimString(te[0]), "chunked") {
				return 0, false, fmt.Errorf("upstream: unsupported Transfer-Encoding %q", te)
			}
			chunked = true
		}
	}
	cl := int64(-1)
	if cls := h["Content-Length"]; len(cls) > 0 {
		first := textproto.TrimString(cls[0])
		for _, v := range cls[1:] {
			if textproto.TrimString(v) != first {
				return 0, false, fmt.Errorf("upstream: differing Content-Length headers %q", cls)
			}
		}
		if len(cls) > 1 {
			h["Content-Length"] = []string{first}
		}
		n, perr := strconv.ParseUint(first, 10, 63)
		if perr != nil || first == "" || first[0] == '+' {
			return 0, false, fmt.Errorf("upstream: bad Content-Length %q", first)
		}
		cl = int64(n)
	}

	code := resp.StatusCode
	switch {
	case method == http.MethodHead:
		resp.ContentLength = cl
		f = framingNone
	case code/100 == 1 || code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
		f = framingNone
	case chunked:
		if cl >= 0 {
			// Both: chunked wins, the length goes, and the connection is
			// not trusted with another request (RFC 9112 §6.3).
			delete(h, "Content-Length")
			keep = false
		}
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
		f = framingChunked
	case cl == 0:
		resp.ContentLength = 0
		f = framingNone
	case cl > 0:
		resp.ContentLength = cl
		f = framingLength
	default:
		resp.ContentLength = -1
		resp.Close = true
		keep = false
		f = framingClose
	}
	if chunked { // even with no body to read, as net/http does
		if tr, ok := h["Trailer"]; ok {
			delete(h, "Trailer")
			var bad string
			for _, v := range tr {
				for _, k := range strings.Split(v, ",") {
					k = textproto.TrimString(k)
					if k == "" {
						continue
					}
					k = http.CanonicalHeaderKey(k)
					switch k {
					case "Transfer-Encoding", "Trailer", "Content-Length":
						bad = k
					}
					if resp.Trailer == nil {
						resp.Trailer = make(http.Header)
					}
					resp.Trailer[k] = nil
				}
			}
			if bad != "" {
				return 0, false, fmt.Errorf("upstream: bad trailer key %q", bad)
			}
		}
	}
	return f, keep, nil
}

// readResponse reads the response to a request of method from hr's
// reader: it skips informational responses (1xx but 101), at most
// max1xxResponses of them, then reads the final head and frames its body.
// The body itself is left to the caller.
func readResponse(hr *headReader, method string) (*http.Response, responseFraming, bool, error) {
	for n := 0; ; n++ {
		l, err := hr.line()
		if err != nil {
			return nil, 0, false, err
		}
		minor, code, status, err := parseStatusLine(l)
		if err != nil {
			return nil, 0, false, err
		}
		resp := &http.Response{
			Status:     status,
			StatusCode: code,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: minor,
		}
		if minor == 0 {
			resp.Proto = "HTTP/1.0"
		}
		if resp.Header, err = hr.readHeader(); err != nil {
			return nil, 0, false, err
		}
		if code == http.StatusSwitchingProtocols {
			return nil, 0, false, errUnasked101
		}
		if code/100 == 1 {
			if n+1 >= max1xxResponses {
				return nil, 0, false, errTooMany1xx
			}
			continue
		}
		f, keep, err := frame(resp, method)
		if err != nil {
			return nil, 0, false, err
		}
		return resp, f, keep, nil
	}
}

// upcomingDoubleCRLF reports whether br holds (or can buffer) a CRLF
// CRLF within its buffer size.
func upcomingDoubleCRLF(br *bufio.Reader) bool {
	for peek := 4; peek <= br.Size(); peek++ {
		b, err := br.Peek(peek)
		if bytes.HasSuffix(b, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// newChunkedReader reads a chunked body from br up to its last chunk; the
// trailer section is left for readTrailer. It is net/http's own parser.
func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }

// readTrailer reads the trailer section after the last chunk into the
// response's Trailer (announced names get their values; others are
// added), as net/http does.
func readTrailer(hr *headReader, resp *http.Response) error {
	// The usual case: no trailer fields, just the final CRLF. Fewer than
	// two bytes left is a body cut short (net/http's rule).
	b, err := hr.br.Peek(2)
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if b[0] == '\r' && b[1] == '\n' {
		hr.br.Discard(2)
		return nil
	}
	// Trailer fields must end within the reader's buffer (4 KB), with a
	// CRLF CRLF, as net/http requires.
	if !upcomingDoubleCRLF(hr.br) {
		return errors.New("upstream: trailer section too long or not ended")
	}
	t, err := hr.readHeader()
	if err != nil {
		return err
	}
	if len(t) == 0 {
		return nil
	}
	if resp.Trailer == nil {
		resp.Trailer = t
		return nil
	}
	for k, vv := range t {
		resp.Trailer[k] = vv
	}
	return nil
}
