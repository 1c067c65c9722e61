package proxy_test

// The hardening suite (issue 11): what a hostile client or a broken
// backend can do to the gateway, tried on the wire. Every case runs a
// real gateway on 127.0.0.1 in front of real backends that record what
// they saw, talks to it over raw TCP (HTTP/1.1) or an HTTP/2 framer, and
// asserts the status, what the backend saw and whether the client's
// connection was closed afterwards. Where a behaviour is Go's net/http
// server's (the gateway never sees the request), the case says so in
// its stdlib field.
//
// Every wait is bounded (gwtest.RawTimeout and generous safety limits);
// the suite runs in a few seconds.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/policy"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// hardKey is the one KeyAuth key of the suite's /admin rule; its consumer
// is alice.
const hardKey = "alice-key-0123456789"

// hardened is the suite's gateway: rule "admin" (PathPrefix /admin,
// behind the bundled KeyAuth plugin) and rule "open" (PathPrefix /open,
// no policy) both go to backend "app", whose two endpoints are a and b
// (outlier detection ejects an endpoint after 2 consecutive failures).
// Nothing else is routed (404).
type hardened struct {
	gw   *proxy.Gateway
	addr string // the listener's 127.0.0.1:port
	a, b *gwtest.Backend
}

// upgradeHandler answers a request asking for a protocol switch with 101,
// as a backend that speaks every protocol would, and then answers every
// HTTP/1.1 request that comes through the tunnel with 200 "tunnelled"
// until the peer closes it; others get "hello from METHOD URI".
func upgradeHandler(w http.ResponseWriter, r *http.Request) {
	up := r.Header.Get("Upgrade")
	if up == "" {
		fmt.Fprintf(w, "hello from %s %s", r.Method, r.URL.RequestURI())
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
	brw.Flush()
	conn.SetDeadline(time.Now().Add(gwtest.RawTimeout))
	for {
		req, err := http.ReadRequest(brw.Reader)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ntunnelled")
	}
}

// policyBuilder returns a builder of the bundled first-party policies on
// a wasm runtime closed when the test ends.
func policyBuilder(t testing.TB, logger *slog.Logger) func(context.Context, *configs.Policy) (proxy.Policy, error) {
	t.Helper()
	rt, err := wasm.NewRuntime(context.Background(), wasm.Options{Logger: logger, Foreign: policy.HostFunctions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return (&policy.Builder{Runtime: rt}).Build
}

// startHardened starts the suite's gateway with gateway spec lines
// gwSpec (indented 2).
func startHardened(t testing.TB, gwSpec string) *hardened {
	t.Helper()
	h := &hardened{a: gwtest.NewBackend(t, upgradeHandler), b: gwtest.NewBackend(t, upgradeHandler)}
	res := gwtest.GatewayYAML(gwtest.FreePort(t), gwSpec) +
		gwtest.BackendYAML("app", h.a.Addr, h.b.Addr) +
		"  circuitBreaker: {consecutiveFailures: 2, baseEjectionTime: 60s}\n" +
		gwtest.RouteYAML("r", `
    - name: admin
      matches: [{path: {type: PathPrefix, value: /admin}}]
      backendRefs: [{name: app}]
    - name: open
      matches: [{path: {type: PathPrefix, value: /open}}]
      backendRefs: [{name: app}]
`) + `---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: t}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyRoute, name: r, sectionName: admin}
  keyAuth:
    keys: [{key: ` + hardKey + `, consumer: alice}]
`
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.gw = proxy.New(proxy.Options{Logger: logger, Policies: policyBuilder(t, logger)})
	h.addr = strings.TrimPrefix(gwtest.Serve(t, h.gw, res), "http://")
	return h
}

// seen returns what both endpoints saw, the probes of gwtest.RawConn.Closed
// left out.
func (h *hardened) seen() []gwtest.Seen {
	var out []gwtest.Seen
	for _, s := range append(h.a.Seen(), h.b.Seen()...) {
		if s.Path != gwtest.ProbePath {
			out = append(out, s)
		}
	}
	return out
}

// mark is how many requests each endpoint had seen: a point in time
// that since counts from.
type mark [2]int

func (h *hardened) mark() mark { return mark{len(h.a.Seen()), len(h.b.Seen())} }

// since returns what the endpoints saw after m (probes left out).
func (h *hardened) since(m mark) []gwtest.Seen {
	var out []gwtest.Seen
	for i, b := range []*gwtest.Backend{h.a, h.b} {
		for _, s := range b.Seen()[m[i]:] {
			if s.Path != gwtest.ProbePath {
				out = append(out, s)
			}
		}
	}
	return out
}

// ejections is how many times outlier detection ejected an endpoint of
// backend "app".
func (h *hardened) ejections() int {
	n := 0
	for _, b := range h.gw.Status().Backends {
		for _, ep := range b.Detail.Endpoints {
			n += ep.Ejections
			if ep.Ejected {
				n++
			}
		}
	}
	return n
}

// sight is what a case's backend must have seen.
type sight int

const (
	sawNothing sight = iota // no request reached a backend
	sawRequest              // the request reached a backend, its body complete
	// sawNothingOrAborted: no request, or one whose body ended in an
	// error (the gateway aborted it).
	sawNothingOrAborted
	sawAnything // not asserted (see check)
)

// wireCase is one request written on a raw connection.
type wireCase struct {
	name string
	// req is written as is; "{p}" is replaced by the case's own path
	// under /open, "{a}" by one under /admin, by which the backends'
	// records are told apart.
	req string
	// halfClose closes the client's sending side after req (a body cut
	// short); the connection counts as closed afterwards.
	halfClose bool
	// status is the wanted status; alt, if set, is another acceptable one
	// ("served or refused").
	status, alt int
	saw         sight
	body        string // with sawRequest: the body the backend got
	closed      bool   // the server closes the connection after answering
	// anyClose leaves closed unasserted: either is right.
	anyClose bool
	// stdlib says, when the behaviour is Go's net/http server's (the
	// request never reaches the gateway's handler), what it does.
	stdlib string
	// finding names the issue-11 finding that requires the behaviour.
	finding string
	// check, if set, looks further at what the backends saw.
	check func(t *testing.T, saw []gwtest.Seen, res gwtest.RawResult)
}

// run sends the case to h and checks it.
func (tc wireCase) run(t *testing.T, h *hardened, i int) {
	t.Helper()
	p, a := casePath(i), "/admin"+strings.TrimPrefix(casePath(i), "/open")
	req := strings.NewReplacer("{p}", p, "{a}", a).Replace(tc.req)
	m := h.mark()
	var res gwtest.RawResult
	if tc.halfClose {
		c := gwtest.Dial(t, h.addr)
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
		c.Conn.(interface{ CloseWrite() error }).CloseWrite()
		resp, body, bodyErr, err := c.ReadResponse("GET")
		res = gwtest.RawResult{Err: err, Closed: true}
		if err == nil {
			res.Status, res.Header, res.Body, res.BodyErr = resp.StatusCode, resp.Header, body, bodyErr
		}
	} else {
		res = gwtest.Raw(t, h.addr, req)
	}
	why := ""
	if tc.stdlib != "" {
		why += " [Go's net/http: " + tc.stdlib + "]"
	}
	if tc.finding != "" {
		why += " [issue 11: " + tc.finding + "]"
	}
	if res.Status != tc.status && (tc.alt == 0 || res.Status != tc.alt) {
		want := fmt.Sprint(tc.status)
		if tc.alt != 0 {
			want += fmt.Sprintf(" or %d", tc.alt)
		}
		t.Errorf("status %d (err %v, body %.200q), want %s%s", res.Status, res.Err, res.Body, want, why)
	}
	if res.Closed != tc.closed && !tc.anyClose {
		t.Errorf("connection closed afterwards: %v, want %v%s", res.Closed, tc.closed, why)
	}
	saw := h.since(m)
	if tc.tagged() {
		saw = casesSeen(h.seen(), i)
	}
	checkSight(t, tc.saw, tc.body, saw, why)
	if tc.check != nil {
		tc.check(t, saw, res)
		if t.Failed() && why != "" {
			t.Log("required:" + why)
		}
	}
}

// casePath is the path of case i, under /open.
func casePath(i int) string { return fmt.Sprintf("/open/case-%03d", i) }

// tagged reports whether the case's request has a path of its own.
func (tc wireCase) tagged() bool {
	return strings.Contains(tc.req, "{p}") || strings.Contains(tc.req, "{a}")
}

// casesSeen picks the records of case i, by its paths.
func casesSeen(all []gwtest.Seen, i int) []gwtest.Seen {
	p := casePath(i)
	a := "/admin" + strings.TrimPrefix(p, "/open")
	var out []gwtest.Seen
	for _, s := range all {
		if s.Path == p || s.Path == a {
			out = append(out, s)
		}
	}
	return out
}

func checkSight(t *testing.T, want sight, body string, saw []gwtest.Seen, why string) {
	t.Helper()
	switch want {
	case sawNothing:
		if len(saw) != 0 {
			t.Errorf("the backend saw %d request(s) (first %s %s), want none%s", len(saw), saw[0].Method, saw[0].RequestURI, why)
		}
	case sawRequest:
		if len(saw) != 1 || saw[0].BodyErr != nil || (body != "" && string(saw[0].Body) != body) {
			t.Errorf("the backend saw %s, want the request once with body %q%s", describe(saw), body, why)
		}
	case sawNothingOrAborted:
		for _, s := range saw {
			if s.BodyErr == nil {
				t.Errorf("the backend saw %s %s with a complete body %q, want nothing or an aborted body%s", s.Method, s.RequestURI, s.Body, why)
			}
		}
	}
}

func describe(saw []gwtest.Seen) string {
	if len(saw) == 0 {
		return "nothing"
	}
	var b strings.Builder
	for _, s := range saw {
		fmt.Fprintf(&b, "[%s %s body %q err %v] ", s.Method, s.RequestURI, s.Body, s.BodyErr)
	}
	return b.String()
}

// hdr checks that the one request a case's backend saw has header name
// with value want ("" = absent).
func hdr(name, want string) func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
	return func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
		t.Helper()
		if len(saw) != 1 {
			t.Errorf("the backend saw %s, want one request", describe(saw))
			return
		}
		if got := saw[0].Header.Get(name); got != want {
			t.Errorf("the backend saw %s: %q, want %q", name, got, want)
		}
	}
}

// chunkedPost is a POST of path {p} with a chunked body written as is.
func chunkedPost(body string) string {
	return "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
}

// manyHeaders is a GET of {p} with n headers besides Host.
func manyHeaders(n int) string {
	var b strings.Builder
	b.WriteString("GET {p} HTTP/1.1\r\nHost: x\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-H-%d: v\r\n", i)
	}
	return b.String() + "\r\n"
}

// framingErrors are chunked bodies a client got wrong: each must be
// answered 400, close the connection, and never count against the
// endpoint (issue 11, finding 2).
var framingErrors = []struct{ name, body string }{
	{"chunk size zz", "zz\r\nhello\r\n0\r\n\r\n"},
	{"chunk size -1", "-1\r\nhello\r\n0\r\n\r\n"},
	{"chunk size 0x5", "0x5\r\nhello\r\n0\r\n\r\n"},
	{"chunk size of 17 hex digits", "10000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"bare LF line endings", "5\nhello\n0\n\n"},
	{"8 KB chunk extension", "5;ext=" + strings.Repeat("x", 8<<10) + "\r\nhello\r\n0\r\n\r\n"},
	{"chunk data overrun", "3\r\nhello\r\n0\r\n\r\n"},
	{"chunk data without its CRLF", "5\r\nhelloXX0\r\n\r\n"},
}

// TestHardeningRequestParsing is the request-parsing corpus: smuggling
// variants, chunked framing errors, header abuse, request-targets,
// methods and versions, upgrades and hop-by-hop tricks.
func TestHardeningRequestParsing(t *testing.T) {
	h := startHardened(t, "  clientLimits: {readHeaderTimeout: 2s}\n")
	const tecl = "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	const frameClose = "a client-side framing error: 400 and close (finding 2)"
	const teclFinding = "TE with CL: served or refused, then the connection closes (finding 6, RFC 9112 §6.1)"
	cases := []wireCase{
		// A plain request and a plain body, for reference.
		{name: "plain GET", req: "GET {p} HTTP/1.1\r\nHost: x\r\n\r\n", status: 200, saw: sawRequest},
		{name: "plain POST with Content-Length", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", status: 200, saw: sawRequest, body: "hello"},
		// net/http drops Content-Length from a chunked request before
		// the handler runs, so a gateway that must close after TE+CL may
		// close after every chunked request.
		{name: "plain chunked POST", req: chunkedPost("5\r\nhello\r\n0\r\n\r\n"), status: 200, saw: sawRequest, body: "hello", anyClose: true},

		// Smuggling: Content-Length against Content-Length.
		{name: "CL+CL differing", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400, saw: sawNothing, closed: true,
			stdlib: "differing Content-Length values are refused with 400"},
		{name: "CL+CL in one line differing", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", status: 400, saw: sawNothing, closed: true,
			stdlib: "a Content-Length list is not a number: 400"},
		{name: "CL+CL equal", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", status: 200, saw: sawRequest, body: "hello",
			stdlib: "identical Content-Length values are one (RFC 9110 §8.6)"},
		// Transfer-Encoding with Content-Length, and TE obfuscations.
		{name: "CL+TE", req: fmt.Sprintf(tecl, "chunked"), status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			check: bodyIfServed("hello")},
		{name: "TE+CL", req: "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			check: bodyIfServed("hello")},
		{name: "TE xchunked with CL", req: fmt.Sprintf(tecl, "xchunked"), status: 501, saw: sawNothing, closed: true,
			stdlib: "a transfer coding other than chunked is 501 Not Implemented"},
		{name: "TE ' chunked' with CL", req: fmt.Sprintf(tecl, " chunked"), status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			stdlib: "leading white space of a field value is not part of it: the coding is chunked", check: bodyIfServed("hello")},
		{name: "TE tab chunked with CL", req: fmt.Sprintf(tecl, "\tchunked"), status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			stdlib: "leading white space of a field value is not part of it: the coding is chunked", check: bodyIfServed("hello")},
		{name: "TE chunked, identity with CL", req: fmt.Sprintf(tecl, "chunked, identity"), status: 501, saw: sawNothing, closed: true,
			stdlib: "only a lone chunked coding is supported: 501"},
		{name: "TE identity, chunked with CL", req: fmt.Sprintf(tecl, "identity, chunked"), status: 501, saw: sawNothing, closed: true,
			stdlib: "only a lone chunked coding is supported: 501"},
		{name: "TE CHUNKED upper case with CL", req: fmt.Sprintf(tecl, "CHUNKED"), status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			stdlib: "transfer codings are case-insensitive (RFC 9112 §7)", check: bodyIfServed("hello")},
		{name: "TE duplicated", req: "POST {p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 501, saw: sawNothing, closed: true,
			stdlib: "more than one Transfer-Encoding line is 501"},
		{name: "TE in an obs-fold continuation line", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\nhello", status: 200, saw: sawRequest, body: "hello",
			stdlib: "obs-fold is replaced by a space (RFC 9112 §5.2): the line is part of X-A's value, not a Transfer-Encoding",
			check: func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
				if len(saw) == 1 && (saw[0].Header.Get("Transfer-Encoding") != "" || saw[0].Header.Get("X-A") != "a Transfer-Encoding: chunked") {
					t.Errorf("the backend saw X-A %q, Transfer-Encoding %q", saw[0].Header.Get("X-A"), saw[0].Header.Get("Transfer-Encoding"))
				}
			}},
		{name: "TE with obs-fold value and CL", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 200, alt: 400, saw: sawAnything, closed: true, finding: teclFinding,
			stdlib: "obs-fold is replaced by a space (RFC 9112 §5.2): the coding is chunked", check: bodyIfServed("hello")},
		{name: "TE on HTTP/1.0", req: "POST {p} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 200, alt: 400, saw: sawAnything, closed: true,
			stdlib: "Transfer-Encoding is ignored on HTTP/1.0 (RFC 9112 §6.1): no body, and the connection closes after the answer",
			check: func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
				for _, s := range saw {
					if len(s.Body) != 0 || s.Header.Get("Transfer-Encoding") != "" {
						t.Errorf("the backend saw body %q, Transfer-Encoding %q: the HTTP/1.0 request's chunked bytes were taken as its body", s.Body, s.Header.Get("Transfer-Encoding"))
					}
				}
			}},
		{name: "CL with a plus sign", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", status: 400, saw: sawNothing, closed: true, stdlib: "Content-Length must be digits: 400"},
		{name: "CL negative", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello", status: 400, saw: sawNothing, closed: true, stdlib: "Content-Length must be digits: 400"},
		{name: "CL with inner space", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 5 0\r\n\r\nhello", status: 400, saw: sawNothing, closed: true, stdlib: "Content-Length must be digits: 400"},
		{name: "CL hexadecimal", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", status: 400, saw: sawNothing, closed: true, stdlib: "Content-Length must be digits: 400"},
		{name: "CL huge", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nhello", status: 400, saw: sawNothing, closed: true, stdlib: "a Content-Length past int64 is refused with 400"},

		// Header abuse.
		{name: "space before colon", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "white space before the colon is refused with 400 (RFC 9112 §5.1)"},
		{name: "NUL in a value", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "NUL in a field value is refused with 400"},
		{name: "CR in a value", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a bare CR in a field value is refused with 400"},
		{name: "LF in a value ends the line", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: c\r\n\r\n", status: 200, saw: sawRequest,
			stdlib: "a bare LF ends a header line (RFC 9112 §2.2 lets a recipient accept it): two fields, each forwarded as one",
			check: func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
				if len(saw) == 1 && (saw[0].Header.Get("X-A") != "a" || saw[0].Header.Get("X-B") != "c") {
					t.Errorf("the backend saw X-A %q X-B %q, want a and c", saw[0].Header.Get("X-A"), saw[0].Header.Get("X-B"))
				}
			}},
		{name: "obs-fold", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", status: 200, saw: sawRequest, check: hdr("X-A", "a b"),
			stdlib: "obs-fold is replaced by a space (RFC 9112 §5.2 allows a server to): one field forwarded on one line"},
		{name: "invalid header name", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a field name that is not a token is refused with 400"},
		{name: "header name with a space", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a field name that is not a token is refused with 400"},
		{name: "empty header name", req: "GET {p} HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "an empty field name is refused with 400"},
		{name: "99 headers", req: manyHeaders(99), status: 200, saw: sawRequest},
		{name: "1000 headers", req: manyHeaders(1000), status: 431, saw: sawNothing, closed: true, finding: "more than 100 request headers: 431 (finding 8)"},
		{name: "one 64 KB header", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", status: 431, saw: sawNothing, closed: true,
			finding: "a header block over the limit (Envoy's 60 KB): 431 (finding 8)"},
		{name: "duplicate Host", req: "GET {p} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "more than one Host is refused with 400"},
		{name: "missing Host on HTTP/1.1", req: "GET {p} HTTP/1.1\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "HTTP/1.1 without Host is refused with 400"},
		{name: "Host with userinfo", req: "GET {p} HTTP/1.1\r\nHost: user@x\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a Host that is not a valid authority is refused with 400"},
		{name: "absolute-form with another Host", req: "GET http://a.example{p} HTTP/1.1\r\nHost: b.example\r\n\r\n", status: 200, saw: sawRequest,
			stdlib: "the absolute-form's authority is the request's host and Host is ignored (RFC 9112 §3.2.2)", check: func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
				if len(saw) == 1 && saw[0].Host != "a.example" {
					t.Errorf("the backend saw Host %q, want the absolute-form's a.example", saw[0].Host)
				}
			}},
		{name: "identity header X-Consumer on a route without KeyAuth", req: "GET {p} HTTP/1.1\r\nHost: x\r\nX-Consumer: admin\r\n\r\n", status: 200, saw: sawRequest,
			finding: "client-sent identity headers are stripped on every route (finding 8)", check: hdr("X-Consumer", "")},

		// Request-targets.
		{name: "asterisk-form GET", req: "GET * HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, saw: sawNothing},
		{name: "asterisk-form OPTIONS", req: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", status: 200, saw: sawNothing, stdlib: "the server answers OPTIONS * itself (200, no body)"},
		{name: "CONNECT", req: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", status: 400, saw: sawNothing},
		{name: "target //x", req: "GET //x HTTP/1.1\r\nHost: x\r\n\r\n", status: 404, saw: sawNothing},
		{name: "target with a raw #", req: "GET /open#frag HTTP/1.1\r\nHost: x\r\n\r\n", status: 404, alt: 400, saw: sawNothing},
		{name: "target with non-ASCII bytes", req: "GET /open/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, alt: 200, saw: sawAnything,
			check: func(t *testing.T, saw []gwtest.Seen, _ gwtest.RawResult) {
				for _, s := range saw {
					if strings.ContainsFunc(s.RequestURI, func(r rune) bool { return r > 0x7e }) {
						t.Errorf("the backend saw raw non-ASCII bytes in %q", s.RequestURI)
					}
				}
			}},
		{name: "target relative without slash", req: "GET open HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "an origin-form not starting with / is refused with 400"},

		// Methods and versions.
		{name: "invalid method", req: "G@T {p} HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a method that is not a token is refused with 400"},
		{name: "HTTP/1.2", req: "GET {p} HTTP/1.2\r\nHost: x\r\n\r\n", status: 200, saw: sawRequest, stdlib: "a higher HTTP/1 minor version is served as HTTP/1.1 (RFC 9110 §2.5)"},
		{name: "HTTP/2.0 on an HTTP/1 connection", req: "GET {p} HTTP/2.0\r\nHost: x\r\n\r\n", status: 505, saw: sawNothing, closed: true, stdlib: "a major version other than 1 on HTTP/1 is 505"},
		{name: "lower-case http/1.1", req: "GET {p} http/1.1\r\nHost: x\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "the version is case-sensitive: 400"},
		{name: "HTTP/0.9 request line", req: "GET {p}\r\n\r\n", status: 400, saw: sawNothing, closed: true, stdlib: "a request line without a version is refused with 400"},

		// Upgrades.
		{name: "h2c upgrade is never tunnelled", req: "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
			status: 200, alt: 400, saw: sawAnything, finding: "h2c is never tunnelled: no 101; forwarded as a plain request or refused (finding 3)",
			check: func(t *testing.T, saw []gwtest.Seen, res gwtest.RawResult) {
				for _, s := range saw {
					if s.Header.Get("Upgrade") != "" || s.Header.Get("Http2-Settings") != "" {
						t.Errorf("the backend was asked to switch protocols: Upgrade %q, HTTP2-Settings %q", s.Header.Get("Upgrade"), s.Header.Get("Http2-Settings"))
					}
				}
			}},
		{name: "websocket upgrade is allowed", req: "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			status: 101, saw: sawRequest, check: hdr("Upgrade", "websocket")},

		// Hop-by-hop: Connection tokens cannot remove what the gateway or a
		// policy sets (finding 4).
		{name: "Connection: X-Request-Id", req: "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: X-Request-Id\r\nX-Request-Id: req-0123456789abcdef\r\n\r\n", status: 200, saw: sawRequest,
			finding: "a Connection token cannot remove the gateway's X-Request-Id (finding 4)",
			check: func(t *testing.T, saw []gwtest.Seen, res gwtest.RawResult) {
				if len(saw) == 1 && (saw[0].Header.Get("X-Request-Id") == "" || saw[0].Header.Get("X-Request-Id") != res.Header.Get("X-Request-Id")) {
					t.Errorf("the backend saw X-Request-Id %q, the client got %q", saw[0].Header.Get("X-Request-Id"), res.Header.Get("X-Request-Id"))
				}
			}},
		{name: "Connection: X-Consumer with a key", req: "GET {a} HTTP/1.1\r\nHost: x\r\nConnection: X-Consumer\r\nX-API-Key: " + hardKey + "\r\n\r\n", status: 200, saw: sawRequest,
			finding: "a Connection token cannot remove KeyAuth's X-Consumer (finding 4)", check: hdr("X-Consumer", "alice")},
		{name: "Connection: X-API-Key hides the key from KeyAuth", req: "GET {a} HTTP/1.1\r\nHost: x\r\nConnection: X-API-Key\r\nX-API-Key: " + hardKey + "\r\n\r\n", status: 401, saw: sawNothing,
			finding: "hop-by-hop headers are removed before the policies run (finding 4): KeyAuth never sees a key the client marked hop-by-hop"},
		{name: "Connection: X-Drop removes the client's X-Drop", req: "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: X-Drop\r\nX-Drop: 1\r\n\r\n", status: 200, saw: sawRequest, check: hdr("X-Drop", "")},
	}
	for _, fe := range framingErrors {
		cases = append(cases, wireCase{name: "chunked: " + fe.name, req: chunkedPost(fe.body), status: 400, saw: sawNothingOrAborted, closed: true, finding: frameClose})
	}
	cases = append(cases,
		wireCase{name: "chunked: missing final CRLF", req: chunkedPost("5\r\nhello\r\n0\r\n"), halfClose: true, status: 400, saw: sawNothingOrAborted, closed: true, finding: frameClose},
		wireCase{name: "chunked: truncated body", req: chunkedPost("10\r\nhello"), halfClose: true, status: 400, saw: sawNothingOrAborted, closed: true, finding: frameClose},
		wireCase{name: "Content-Length: truncated body", req: "POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello", halfClose: true, status: 400, saw: sawNothingOrAborted, closed: true, finding: frameClose},
	)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, h, i) })
	}

	// A client's framing errors never count against an endpoint: ten
	// more, then a normal request is served by either endpoint and
	// outlier detection (2 failures eject) ejected neither.
	t.Run("framing errors never penalise the endpoints", func(t *testing.T) {
		for range 10 {
			gwtest.Raw(t, h.addr, chunkedPost("zz\r\nhello\r\n0\r\n\r\n"))
		}
		if n := h.ejections(); n != 0 {
			t.Errorf("outlier detection ejected endpoints %d time(s) for the clients' framing errors [issue 11: finding 2]", n)
		}
		for i := range 4 {
			if res := gwtest.Raw(t, h.addr, "GET /open/after HTTP/1.1\r\nHost: x\r\n\r\n"); res.Status != 200 {
				t.Errorf("normal request %d after the framing errors: %d %q", i, res.Status, res.Body)
			}
		}
		if h.a.Hits() == 0 || h.b.Hits() == 0 {
			t.Errorf("endpoint hits %d and %d: one was taken out of the balancer", h.a.Hits(), h.b.Hits())
		}
	})

	// After an h2c upgrade request the connection is still the
	// gateway's: a following request for /admin meets KeyAuth (issue 11,
	// finding 3: a tunnel to the backend passed it).
	t.Run("no tunnel past the policies after Upgrade: h2c", func(t *testing.T) {
		c := gwtest.Dial(t, h.addr)
		c.Send("GET /open/h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
		resp, _, _, err := c.ReadResponse("GET")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			t.Errorf("Upgrade: h2c got 101 [issue 11: finding 3]")
		}
		if c.Send("GET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n") != nil {
			return // closed: nothing follows
		}
		resp, body, _, err := c.ReadResponse("GET")
		if err == nil && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /admin/secret without a key after an h2c upgrade: %d %q, want 401 [issue 11: finding 3]", resp.StatusCode, body)
		}
	})

	// Late records: an aborted upstream request may reach a backend after
	// its client was answered; every case's records are checked again.
	t.Run("late records", func(t *testing.T) {
		all := h.seen()
		for i, tc := range cases {
			if !tc.tagged() || tc.saw == sawAnything {
				continue
			}
			saw := casesSeen(all, i)
			if tc.saw == sawNothing && len(saw) != 0 {
				t.Errorf("%s: the backend saw %s, want nothing", tc.name, describe(saw))
			}
			if tc.saw == sawNothingOrAborted {
				checkSight(t, tc.saw, "", saw, " ("+tc.name+")")
			}
		}
	})
}

// bodyIfServed checks a "served or refused" case: if the backend saw the
// request, it saw it once with the body body.
func bodyIfServed(body string) func(t *testing.T, saw []gwtest.Seen, res gwtest.RawResult) {
	return func(t *testing.T, saw []gwtest.Seen, res gwtest.RawResult) {
		t.Helper()
		if res.Status == 200 {
			checkSight(t, sawRequest, body, saw, "")
		} else {
			checkSight(t, sawNothingOrAborted, "", saw, "")
		}
	}
}

// treatedAsAdmin reports whether a backend would serve path p (a
// request-target) from /admin: the recording backend (Go's net/http)
// decodes percent-escapes once, and a router of its resolves dot
// segments; backslashes are taken for slashes too, as some backends'
// file systems do. Case matters: the gateway's routing is
// case-sensitive, as the Gateway API's path matching is. A backend that
// decodes twice ("%252e") or drops ";" parameters ("..;") is beyond what
// the gateway can protect (as Envoy's path normalization, it forwards
// those as they are).
func treatedAsAdmin(p string) bool {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	return p == "/admin" || strings.HasPrefix(p, "/admin/")
}

// TestHardeningPathTricks sends spellings of /admin without a key to
// the suite's gateway, whose /admin rule is behind KeyAuth and whose
// /open rule is not: each meets the policy (401, the backend never sees
// it) or does not reach the backend as /admin at all (404, 400).
func TestHardeningPathTricks(t *testing.T) {
	h := startHardened(t, "")
	for _, tc := range []struct {
		name, target string
		status, alt  int
		why          string
	}{
		{"plain", "/admin", 401, 0, "the policy"},
		{"upper case", "/ADMIN", 404, 0, "routing is case-sensitive (as the Gateway API's): /ADMIN is no route here, and a backend must not fold case either"},
		{"mixed case", "/Admin/x", 404, 0, "routing is case-sensitive"},
		{"double slash", "//admin", 401, 0, "repeated slashes are merged before routing"},
		{"dot segment", "/./admin", 401, 0, "dot segments are resolved before routing"},
		{"dot-dot segment", "/x/../admin", 401, 0, "dot segments are resolved before routing"},
		{"from the open route", "/open/../admin", 401, 0, "dot segments are resolved before routing"},
		{"trailing slash", "/admin/", 401, 0, "the prefix matches"},
		{"sub-path", "/admin/users", 401, 0, "the prefix matches"},
		{"matrix parameter", "/admin;x", 404, 401, "\";x\" makes another segment: no route, or the policy"},
		{"escaped letter", "/%61dmin", 401, 0, "unreserved escapes are decoded before routing"},
		{"escaped letter twice", "/adm%69n/x", 401, 0, "unreserved escapes are decoded before routing"},
		{"escaped slash then dot-dot", "/admin%2f..", 401, 404, "%2F decodes to a slash and the dot segment resolves: /; or the policy"},
		{"escaped dot segment", "/%2e/admin", 401, 0, "decoded dot segments are resolved"},
		{"escaped dot-dot from open", "/open/%2e%2e/admin", 401, 0, "decoded dot segments are resolved"},
		{"escaped slash dot-dot from open", "/open/..%2fadmin", 401, 0, "decoded dot segments are resolved"},
		{"escaped slash from open", "/open%2f..%2fadmin", 401, 0, "decoded dot segments are resolved"},
		{"dot-escaped-dot", "/open/.%2e/admin", 401, 0, "decoded dot segments are resolved"},
		{"escaped leading slash", "/%2fadmin", 401, 0, "decoded repeated slashes are merged"},
		{"NUL", "/admin%00", 404, 400, "\"admin\\x00\" is another segment: no route, or refused"},
		{"escaped space", "/admin%20", 404, 401, "\"admin \" is another segment: no route, or the policy"},
		{"fragment", "/admin#x", 401, 404, "a raw # in a request-target: the policy or no route"},
		{"query", "/admin?x=1", 401, 0, "the query is not the path"},
		{"backslash", `/admin\x`, 404, 401, `a backslash is not a separator: "admin\x" is no route, or the policy`},
		{"backslash prefix", `/\admin`, 404, 400, "a backslash is not a separator"},
		{"backslash dot-dot from open", `/open\..\admin`, 200, 404, `a backslash is not a separator: one segment under /open (a backend must not take \ for /)`},
		{"escaped backslash", "/%5cadmin", 404, 400, "an escaped backslash is not a separator"},
		{"double-escaped dot-dot", "/open/%252e%252e/admin", 200, 404, "%25 decodes once: the segment is %2e%2e, forwarded escaped (a backend must not decode twice)"},
		{"double-escaped letter", "/%2561dmin", 404, 400, "%25 decodes once: no route"},
		{"IIS unicode escape", "/%u0061dmin", 400, 404, "not a percent-escape"},
		{"absolute-form", "http://x/admin", 401, 0, "the absolute-form's path is routed"},
		{"absolute-form double slash", "http://x//admin", 401, 0, "repeated slashes are merged"},
		{"absolute-form dot-dot", "http://x/open/../admin", 401, 0, "dot segments are resolved"},
		{"trailing dot", "/admin/.", 401, 0, "dot segments are resolved"},
		{"tomcat ..;", "/open/..;/admin", 200, 404, "\"..;\" is not a dot segment: under /open (a backend must not drop ;)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := h.mark()
			res := gwtest.Raw(t, h.addr, "GET "+tc.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if res.Status != tc.status && (tc.alt == 0 || res.Status != tc.alt) {
				t.Errorf("GET %s: %d %.200q, want %d (%s)", tc.target, res.Status, res.Body, tc.status, tc.why)
			}
			if res.Status == 401 || res.Status == 404 || res.Status == 400 {
				if saw := h.since(m); len(saw) != 0 {
					t.Errorf("GET %s: answered %d but the backend saw %s", tc.target, res.Status, describe(saw))
				}
			}
		})
	}
	// Whatever reached the backend without a key must not be /admin to a
	// lenient backend.
	for _, s := range h.seen() {
		if s.Header.Get("X-Consumer") == "" && treatedAsAdmin(s.RequestURI) {
			t.Errorf("the backend saw %q without a key: a lenient backend serves /admin for it", s.RequestURI)
		}
	}
	// With the key, /admin is served.
	if res := gwtest.Raw(t, h.addr, "GET /admin HTTP/1.1\r\nHost: x\r\nX-API-Key: "+hardKey+"\r\n\r\n"); res.Status != 200 {
		t.Errorf("GET /admin with the key: %d %q", res.Status, res.Body)
	}
}

// TestHardeningSlowloris trickles a request's header and body: the
// listener closes a connection whose header takes longer than
// readHeaderTimeout, and one whose body stalls longer than the body-read
// idle timeout (clientLimits.bodyReadTimeout, finding 5).
func TestHardeningSlowloris(t *testing.T) {
	t.Run("header", func(t *testing.T) {
		h := startHardened(t, "  clientLimits: {readHeaderTimeout: 500ms}\n")
		c := gwtest.Dial(t, h.addr)
		closed := make(chan bool, 1)
		go func() { closed <- c.WaitClosed(10 * time.Second) }()
		start := time.Now()
		c.Send("GET /open/slow HTTP/1.1\r\nHost: x\r\n")
		// One header line every 100ms: at most 100 lines (10 s), and no
		// more once the server has closed.
		ok := false
	trickle:
		for i := range 100 {
			select {
			case ok = <-closed:
				break trickle
			case <-time.After(100 * time.Millisecond):
				c.Send(fmt.Sprintf("X-Slow-%d: v\r\n", i))
			}
		}
		// Go's net/http: ReadHeaderTimeout bounds the whole header read.
		if !ok {
			t.Fatalf("the connection trickling its header was not closed in %v (readHeaderTimeout 500ms)", time.Since(start))
		}
		if saw := h.seen(); len(saw) != 0 {
			t.Errorf("the backend saw %s", describe(saw))
		}
	})
	t.Run("body", func(t *testing.T) {
		// bodyReadTimeout is the name assumed for issue 11's body-read
		// idle timeout (a clientLimits setting).
		h := startHardened(t, "  clientLimits: {bodyReadTimeout: 500ms}\n")
		c := gwtest.Dial(t, h.addr)
		c.Send("POST /open/slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
		// The client then sends nothing: the gateway answers 408 (or
		// closes) once the body has been idle for bodyReadTimeout.
		resp, _, _, err := c.ReadResponse("POST")
		if err == nil && resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("a stalled body got %d, want 408", resp.StatusCode)
		}
		if err != nil && !c.WaitClosed(time.Second) {
			t.Fatalf("a stalled body was neither answered nor closed in %v: %v", gwtest.RawTimeout, err)
		}
		gwtest.WaitFor(t, 5*time.Second, func() bool { return h.a.Inflight()+h.b.Inflight() == 0 },
			"the backend's request with the stalled body ends")
		checkSight(t, sawNothingOrAborted, "", h.seen(), "")
	})
}
