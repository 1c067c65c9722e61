package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
)

// bodyPolicy stands for a plugin that works on bodies. What it does comes
// from its name:
//
//	append-X   buffers each body to its end and appends X
//	upper      upper-cases each chunk as it passes (streams)
//	deny       answers 400 at the end of a request body containing "forbidden"
//	fail       fails on any body chunk
//	toolarge   reports a body too large to buffer
//	trailers   buffers nothing; sets X-Seen on the request trailers and
//	           X-Policy on the response trailers
type bodyPolicy struct {
	name string
	open *atomic.Int64
}

type bodyStream struct {
	p        *bodyPolicy
	reqBuf   []byte
	respBuf  []byte
	calls    int
	eosCalls int
}

func (p *bodyPolicy) NewStream(ctx context.Context, r *http.Request, info StreamInfo) (PolicyStream, error) {
	p.open.Add(1)
	return &bodyStream{p: p}, nil
}

func (p *bodyPolicy) Close() {}

func (s *bodyStream) RequestHeaders(ctx context.Context, r *http.Request) (*LocalResponse, error) {
	if strings.HasPrefix(s.p.name, "append-") {
		r.Header.Del("Content-Length") // the size changes
	}
	return nil, nil
}

func (s *bodyStream) ResponseHeaders(ctx context.Context, status int, h http.Header, eos bool) (*LocalResponse, error) {
	if strings.HasPrefix(s.p.name, "append-") {
		h.Del("Content-Length")
	}
	return nil, nil
}

func (s *bodyStream) Done() { s.p.open.Add(-1) }

func (s *bodyStream) body(buf *[]byte, chunk []byte, eos bool) ([]byte, *LocalResponse, error) {
	s.calls++
	switch name := s.p.name; {
	case strings.HasPrefix(name, "append-"):
		*buf = append(*buf, chunk...)
		if !eos {
			return nil, nil, nil
		}
		return append(*buf, name[len("append-"):]...), nil, nil
	case name == "upper":
		return bytes.ToUpper(chunk), nil, nil
	case name == "deny":
		*buf = append(*buf, chunk...)
		if !eos {
			return nil, nil, nil
		}
		if bytes.Contains(*buf, []byte("forbidden")) {
			return nil, &LocalResponse{Status: 400, Body: []byte("body refused")}, nil
		}
		return *buf, nil, nil
	case name == "fail":
		return nil, nil, errors.New("plugin trapped")
	case name == "toolarge":
		return nil, nil, fmt.Errorf("%w: limit 10", ErrBodyTooLarge)
	}
	return chunk, nil, nil
}

func (s *bodyStream) RequestBody(ctx context.Context, chunk []byte, eos bool) ([]byte, *LocalResponse, error) {
	return s.body(&s.reqBuf, chunk, eos)
}

func (s *bodyStream) ResponseBody(ctx context.Context, chunk []byte, eos bool) ([]byte, *LocalResponse, error) {
	return s.body(&s.respBuf, chunk, eos)
}

func (s *bodyStream) RequestTrailers(ctx context.Context, t http.Header) (*LocalResponse, error) {
	if s.p.name == "trailers" {
		t.Set("X-Seen", "request-"+t.Get("X-Checksum"))
	}
	return nil, nil
}

func (s *bodyStream) ResponseTrailers(ctx context.Context, t http.Header) (*LocalResponse, error) {
	if s.p.name == "trailers" {
		t.Set("X-Policy", "response-"+t.Get("X-Upstream"))
	}
	return nil, nil
}

// bodyGateway starts a gateway with one route per test policy: /<name>
// goes through the policy of that name (and /stack through append-2 then
// z-append-1, by name), to a backend that answers "got:" and the body it received,
// or a body of ?size bytes.
func bodyGateway(t *testing.T, failOpen string) (string, *backend, *atomic.Int64) {
	t.Helper()
	var be *backend
	be = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, body := be.lastRequest()
		if r.URL.Query().Get("size") != "" {
			var n int
			fmt.Sscan(r.URL.Query().Get("size"), &n)
			w.Write(bytes.Repeat([]byte("r"), n))
			return
		}
		if r.Header.Get("X-Trailers") != "" {
			w.Header().Set("Trailer", "X-Upstream")
			w.Write([]byte("got:" + string(body)))
			w.Header().Set("X-Upstream", "up")
			return
		}
		w.Write([]byte("got:" + string(body)))
	})
	names := []string{"append-1", "upper", "deny", "fail", "toolarge", "trailers"}
	var rules, pols strings.Builder
	for _, n := range append(names, "stack") {
		fmt.Fprintf(&rules, "    - name: %s\n      matches: [{path: {value: /%s}}]\n      backendRefs: [{name: b}]\n", n, n)
	}
	for _, n := range names {
		extra := ""
		if n == failOpen {
			extra = "  failurePolicy: FailOpen\n"
		}
		pols.WriteString(policyYAML(n, "Wasm", "{kind: ProxyRoute, name: r, sectionName: "+n+"}", extra))
	}
	pols.WriteString(policyYAML("append-2", "Wasm", "{kind: ProxyRoute, name: r, sectionName: stack}", ""))
	pols.WriteString(policyYAML("z-append-1", "Wasm", "{kind: ProxyRoute, name: r, sectionName: stack}", ""))
	res := gatewayYAML(freePort(t), "") + backendYAML("b", be.addr()) + route(rules.String()) + pols.String()
	var open atomic.Int64
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		return &bodyPolicy{name: strings.TrimPrefix(p.Metadata.Name, "z-"), open: &open}, nil
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder})
	return gwtest.Serve(t, gw, res), be, &open
}

func TestPolicyBodies(t *testing.T) {
	base, be, open := bodyGateway(t, "")
	big := strings.Repeat("abcdefgh", 40<<10) // 320 KiB: several chunks

	tests := []struct {
		name     string
		path     string
		body     string
		chunked  bool
		hdr      []string
		status   int
		respBody string
		upstream *string // what the backend must have received; nil: not reached
		upLen    int64   // its Content-Length (-1 chunked)
	}{
		{name: "buffered request and response, exact lengths", path: "/append-1", body: "abc",
			status: 200, respBody: "got:abc11", upstream: ptr("abc1"), upLen: 4},
		{name: "buffered chunked request gets a length", path: "/append-1", body: "abc", chunked: true,
			status: 200, respBody: "got:abc11", upstream: ptr("abc1"), upLen: 4},
		{name: "request order forward, response order reverse", path: "/stack", body: "x",
			status: 200, respBody: "got:x2112", upstream: ptr("x21"), upLen: 3},
		{name: "streaming policy keeps the length", path: "/upper", body: big,
			status: 200, respBody: "GOT:" + strings.ToUpper(big), upstream: ptr(strings.ToUpper(big)), upLen: int64(len(big))},
		{name: "streaming chunked", path: "/upper", body: big, chunked: true,
			status: 200, respBody: "GOT:" + strings.ToUpper(big), upstream: ptr(strings.ToUpper(big)), upLen: -1},
		{name: "a policy answers at the end of the body", path: "/deny", body: "this is forbidden",
			status: 400, respBody: "body refused"},
		{name: "an accepted body goes on", path: "/deny", body: "fine",
			status: 200, respBody: "got:fine", upstream: ptr("fine"), upLen: 4},
		{name: "a failing policy fails closed", path: "/fail", body: "x", status: 503},
		{name: "too large to buffer", path: "/toolarge", body: "x", status: 413},
		{name: "empty bodies make no body callbacks", path: "/toolarge?size=0", status: 200, respBody: "", upstream: ptr(""), upLen: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := be.Hits()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, _ := http.NewRequest("POST", base+tc.path, body)
			resp := do(t, req)
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, got)
			}
			if tc.respBody != "" && string(got) != tc.respBody {
				t.Errorf("response %.60q, want %.60q", got, tc.respBody)
			}
			if tc.status == 200 && resp.ContentLength >= 0 && resp.ContentLength != int64(len(got)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(got))
			}
			if tc.upstream == nil {
				if be.Hits() != before {
					t.Errorf("the backend was reached")
				}
				return
			}
			r, up := be.lastRequest()
			if string(up) != *tc.upstream {
				t.Errorf("backend got %.60q, want %.60q", up, *tc.upstream)
			}
			if r.ContentLength != tc.upLen {
				t.Errorf("backend Content-Length %d, want %d", r.ContentLength, tc.upLen)
			}
		})
	}

	t.Run("response body over the buffering limit is a 500", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/toolarge?size=100", nil)
		resp := do(t, req)
		if resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e := decodeErr(t, resp); !strings.Contains(e.Error, "too large") {
			t.Errorf("error %q", e.Error)
		}
	})

	t.Run("trailers both ways", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("data"))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", base+"/trailers", pr)
		req.Trailer = http.Header{"X-Checksum": nil}
		req.Header.Set("X-Trailers", "1")
		req.Trailer.Set("X-Checksum", "c1")
		resp := do(t, req)
		got, _ := io.ReadAll(resp.Body)
		if string(got) != "got:data" {
			t.Fatalf("response %q", got)
		}
		if v := resp.Trailer.Get("X-Policy"); v != "response-up" {
			t.Errorf("response trailer X-Policy = %q, want response-up (trailers %v)", v, resp.Trailer)
		}
		r, _ := be.lastRequest()
		if v := r.Trailer.Get("X-Seen"); v != "request-c1" {
			t.Errorf("backend saw trailer X-Seen = %q, want request-c1 (trailers %v)", v, r.Trailer)
		}
	})

	if n := open.Load(); n != 0 {
		t.Errorf("%d streams not Done", n)
	}
}

func TestPolicyBodyFailOpen(t *testing.T) {
	base, be, _ := bodyGateway(t, "fail")
	req, _ := http.NewRequest("POST", base+"/fail", strings.NewReader("keep me"))
	resp := do(t, req)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "got:keep me" {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
	if _, up := be.lastRequest(); string(up) != "keep me" {
		t.Errorf("backend got %q", up)
	}
}

func ptr(s string) *string { return &s }
