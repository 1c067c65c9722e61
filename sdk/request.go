package sdk

import (
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// Request is the request a filter works on. Header names are
// case-insensitive.
type Request struct {
	answered bool // the plugin sent its own response
	id       string
	ctxID    uint32
}

// ContextID returns the proxy-wasm id of the request's HTTP context. A
// plugin that pauses several requests on one event (an HTTP callout's
// answer, a tick) resumes each of them from that event's callback by
// making its context the effective one first
// (proxywasm.SetEffectiveContext(id)), then calling Resume, Deny or the
// header methods of its Request.
func (r *Request) ContextID() uint32 { return r.ctxID }

// Header returns the value of the named header ("" if absent; the first
// value if there are several).
func (r *Request) Header(name string) string {
	v, err := proxywasm.GetHttpRequestHeader(name)
	if err != nil {
		return ""
	}
	return v
}

// HasHeader reports whether the named header is present.
func (r *Request) HasHeader(name string) bool {
	_, err := proxywasm.GetHttpRequestHeader(name)
	return err == nil
}

// Headers returns every header as (lower-case name, value) pairs, the
// pseudo-headers (":method", ":path", ":authority", ":scheme") included.
func (r *Request) Headers() [][2]string {
	h, _ := proxywasm.GetHttpRequestHeaders()
	return h
}

// SetHeader sets the named header to value, replacing any values.
func (r *Request) SetHeader(name, value string) {
	_ = proxywasm.ReplaceHttpRequestHeader(name, value)
}

// AddHeader adds a value to the named header.
func (r *Request) AddHeader(name, value string) {
	_ = proxywasm.AddHttpRequestHeader(name, value)
}

// RemoveHeader removes the named header.
func (r *Request) RemoveHeader(name string) {
	_ = proxywasm.RemoveHttpRequestHeader(name)
}

// Method returns the request method.
func (r *Request) Method() string { return r.Header(":method") }

// Path returns the request path with its query ("/a/b?c=d").
func (r *Request) Path() string { return r.Header(":path") }

// Host returns the request's host (the :authority).
func (r *Request) Host() string { return r.Header(":authority") }

// Scheme returns "http" or "https".
func (r *Request) Scheme() string { return r.Header(":scheme") }

// Query returns the value of the named query parameter ("" if absent).
func (r *Request) Query(name string) string {
	p := r.Path()
	i := strings.IndexByte(p, '?')
	if i < 0 {
		return ""
	}
	for _, kv := range strings.Split(p[i+1:], "&") {
		k, v, _ := strings.Cut(kv, "=")
		if unescape(k) == name {
			return unescape(v)
		}
	}
	return ""
}

// Cookie returns the value of the named cookie ("" if absent).
func (r *Request) Cookie(name string) string {
	for _, h := range r.Headers() {
		if h[0] != "cookie" {
			continue
		}
		for _, c := range strings.Split(h[1], ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(c), "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// ClientIP returns the client's address without port: the peer's, or,
// when the peer is one of the listener's trusted proxies, the address its
// X-Forwarded-For names (the host's source.address property).
func (r *Request) ClientIP() string {
	addr := Property("source", "address") // "ip:port" or "[ip6]:port"
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && (addr[0] == '[' || strings.Count(addr, ":") == 1) {
		addr = addr[:i]
	}
	return strings.Trim(addr, "[]")
}

// ID returns the request's X-Request-ID.
func (r *Request) ID() string {
	if r.id == "" {
		r.id = r.Header("x-request-id")
	}
	return r.id
}

// Route returns the "namespace/name" of the route the request matched.
func (r *Request) Route() string { return Property("route_name") }

// Respond answers the request with status, headers and body instead of
// sending it upstream. Return its result from OnRequest.
func (r *Request) Respond(status int, headers [][2]string, body []byte) Action {
	r.answered = true
	if err := proxywasm.SendHttpResponse(uint32(status), headers, body, -1); err != nil {
		proxywasm.LogErrorf("send local response: %v", err)
	}
	return Pause
}

// Deny answers the request with the gateway's JSON error body,
// {"error": message, "status": status, "request_id": id}, and the given
// headers. Return its result from OnRequest.
func (r *Request) Deny(status int, message string, headers ...[2]string) Action {
	h := append([][2]string{{"content-type", "application/json"}}, headers...)
	return r.Respond(status, h, ErrorBody(status, message, r.ID()))
}

// Resume lets a paused request go on (from an HTTP callout's callback).
func (r *Request) Resume() {
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("resume request: %v", err)
	}
}

// ErrorBody is the gateway's JSON error body.
func ErrorBody(status int, message, requestID string) []byte {
	b := make([]byte, 0, 64+len(message)+len(requestID))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, message)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"request_id":`...)
	b = strconv.AppendQuote(b, requestID)
	return append(b, '}')
}

// Response is the response a filter works on.
type Response struct {
	req *Request
}

// Request returns the request of this response.
func (r *Response) Request() *Request { return r.req }

// Status returns the response status code.
func (r *Response) Status() int {
	n, _ := strconv.Atoi(r.Header(":status"))
	return n
}

// Header returns the value of the named response header.
func (r *Response) Header(name string) string {
	v, err := proxywasm.GetHttpResponseHeader(name)
	if err != nil {
		return ""
	}
	return v
}

// HasHeader reports whether the named response header is present.
func (r *Response) HasHeader(name string) bool {
	_, err := proxywasm.GetHttpResponseHeader(name)
	return err == nil
}

// SetHeader sets the named response header, replacing any values.
func (r *Response) SetHeader(name, value string) {
	_ = proxywasm.ReplaceHttpResponseHeader(name, value)
}

// AddHeader adds a value to the named response header.
func (r *Response) AddHeader(name, value string) {
	_ = proxywasm.AddHttpResponseHeader(name, value)
}

// RemoveHeader removes the named response header.
func (r *Response) RemoveHeader(name string) {
	_ = proxywasm.RemoveHttpResponseHeader(name)
}

// Property reads a host property ("request", "path"; "source", "address";
// "route_name"; "plugin_name" …) as a string, "" if the host has none.
func Property(path ...string) string {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// unescape decodes %XX and '+' in a query component; a malformed escape
// is kept as is.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// ValidHeaderName reports whether s is an HTTP token, as a header name must
// be (for configurations that name headers).
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
