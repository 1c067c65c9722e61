package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
)

// rawClient does not ask for, nor decode, compression by itself: the
// tests see what the gateway sends.
var rawClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true},
	Timeout:   20 * time.Second,
}

const compressionYAML = `  compression:
    enabled: true
    minSize: 1024
    level: 6
    algorithms: [br, gzip, zstd]`

// jsonOf returns n bytes of JSON-ish text.
func jsonOf(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","email":"u%d@example.com"},`, i, i%97, i)
	}
	return b.Bytes()[:n]
}

// compressionBackend serves what the compression tests need; sse steps
// its event stream.
func compressionBackend(t *testing.T, sse chan struct{}) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		size := 4000
		if s := q.Get("size"); s != "" {
			size, _ = strconv.Atoi(s)
		}
		body := jsonOf(size)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/json": // known length
			h.Set("Content-Length", strconv.Itoa(len(body)))
		case "/chunked": // unknown length, several pieces
			for len(body) > 0 {
				n := min(len(body), 3000)
				w.Write(body[:n])
				w.(http.Flusher).Flush()
				body = body[n:]
			}
			return
		case "/etag":
			h.Set("Etag", `"v1"`)
			h.Set("Vary", "Origin")
			h.Set("Accept-Ranges", "bytes")
		case "/weak":
			h.Set("Etag", `W/"v1"`)
		case "/png":
			h.Set("Content-Type", "image/png")
		case "/encoded":
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			zw.Write(body)
			zw.Close()
			h.Set("Content-Encoding", "gzip")
			body = zb.Bytes()
		case "/notransform":
			h.Set("Cache-Control", "public, no-transform")
		case "/range":
			http.ServeContent(w, r, "data.json", time.Time{}, bytes.NewReader(body))
			return
		case "/trailers":
			h.Set("Trailer", "X-Checksum")
			w.Write(body)
			h.Set("X-Checksum", "c-"+strconv.Itoa(len(body)))
			return
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/sse":
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			for i := range 3 {
				fmt.Fprintf(w, "id: %d\ndata: event number %d\n\n", i, i)
				w.(http.Flusher).Flush()
				// The next event only once the client has this one: a
				// gateway that held the stream would never get it there.
				select {
				case <-sse:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Second):
					t.Errorf("event %d did not reach the client through the gateway", i)
					return
				}
			}
			return
		}
		w.Write(body)
	})
}

func decodeBody(t *testing.T, ce string, r io.Reader) []byte {
	t.Helper()
	switch ce {
	case "":
	case "gzip":
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = gz
	case "br":
		r = brotli.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("Content-Encoding %q", ce)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the %q body: %v", ce, err)
	}
	return b
}

func rawDo(t *testing.T, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestCompressionEndToEnd(t *testing.T) {
	be := compressionBackend(t, nil)
	_, base := startGateway(t, gatewayYAML(freePort(t), compressionYAML)+backendYAML("b", be.addr())+route(`
    - matches: [{method: GET}, {method: HEAD}]
      backendRefs: [{name: b}]
`))
	tests := []struct {
		name, method, path string
		hdr                []string
		status             int
		wantCE             string // "" = not compressed
		noVary             bool   // Vary: Accept-Encoding must be absent
		wantBody           []byte // nil: jsonOf(size)
		size               int
	}{
		{name: "gzip", path: "/json", hdr: []string{"Accept-Encoding", "gzip"}, wantCE: "gzip"},
		{name: "br", path: "/json", hdr: []string{"Accept-Encoding", "br"}, wantCE: "br"},
		{name: "zstd", path: "/json", hdr: []string{"Accept-Encoding", "zstd"}, wantCE: "zstd"},
		{name: "browser list: the configured order", path: "/json", hdr: []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, wantCE: "br"},
		{name: "q-values", path: "/json", hdr: []string{"Accept-Encoding", "br;q=0.5, zstd;q=0.9, gzip;q=0.8"}, wantCE: "zstd"},
		{name: "case-insensitive", path: "/json", hdr: []string{"Accept-Encoding", "GZip;Q=1, BR;q=0"}, wantCE: "gzip"},
		{name: "identity only", path: "/json", hdr: []string{"Accept-Encoding", "identity"}},
		{name: "everything refused", path: "/json", hdr: []string{"Accept-Encoding", "*;q=0"}},
		{name: "not asked: Vary anyway", path: "/json"},
		{name: "unknown length", path: "/chunked", size: 20000, hdr: []string{"Accept-Encoding", "gzip"}, wantCE: "gzip"},
		{name: "minSize - 1 not compressed", path: "/json", size: 1023, hdr: []string{"Accept-Encoding", "gzip"}},
		{name: "minSize compressed", path: "/json", size: 1024, hdr: []string{"Accept-Encoding", "gzip"}, wantCE: "gzip"},
		{name: "image skipped", path: "/png", hdr: []string{"Accept-Encoding", "gzip"}, noVary: true},
		{name: "no-transform skipped", path: "/notransform", hdr: []string{"Accept-Encoding", "gzip"}, noVary: true},
		{name: "HEAD", method: "HEAD", path: "/json", hdr: []string{"Accept-Encoding", "gzip"}, wantBody: []byte{}},
		{name: "Range request", path: "/range", hdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-99"}, status: 206, noVary: true, wantBody: jsonOf(4000)[:100]},
		{name: "204", path: "/empty", hdr: []string{"Accept-Encoding", "gzip"}, status: 204, noVary: true, wantBody: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			size := tt.size
			if size == 0 {
				size = 4000
			}
			resp := rawDo(t, method, base+tt.path+"?size="+strconv.Itoa(size), tt.hdr...)
			want := tt.wantBody
			if want == nil {
				want = jsonOf(size)
			}
			status := tt.status
			if status == 0 {
				status = 200
			}
			if resp.StatusCode != status {
				t.Fatalf("status %d, want %d", resp.StatusCode, status)
			}
			ce := resp.Header.Get("Content-Encoding")
			if ce != tt.wantCE {
				t.Errorf("Content-Encoding %q, want %q", ce, tt.wantCE)
			}
			vary := strings.ToLower(strings.Join(resp.Header.Values("Vary"), ","))
			if has := strings.Contains(vary, "accept-encoding"); has == tt.noVary {
				t.Errorf("Vary %q: want Accept-Encoding %v", vary, !tt.noVary)
			}
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			// The upstream's length is gone; net/http may count the
			// compressed bytes of a short response itself.
			if ce != "" && resp.ContentLength != -1 && resp.ContentLength != int64(len(raw)) {
				t.Errorf("compressed: Content-Length %d for %d bytes", resp.ContentLength, len(raw))
			}
			if got := decodeBody(t, ce, bytes.NewReader(raw)); !bytes.Equal(got, want) {
				t.Fatalf("decoded body: %d bytes, want %d", len(got), len(want))
			}
			if ce != "" && len(raw) >= len(want)/2 {
				t.Errorf("%s: %d bytes for %d of JSON", ce, len(raw), len(want))
			}
			if ce == "" && method == "GET" && status == 200 && tt.path == "/json" && resp.ContentLength != int64(len(want)) {
				t.Errorf("uncompressed: Content-Length %d, want %d", resp.ContentLength, len(want))
			}
		})
	}

	t.Run("already encoded passes untouched", func(t *testing.T) {
		resp := rawDo(t, "GET", base+"/encoded", "Accept-Encoding", "br, gzip")
		if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding %q, want the backend's gzip", ce)
		}
		if got := decodeBody(t, "gzip", resp.Body); !bytes.Equal(got, jsonOf(4000)) {
			t.Errorf("body altered")
		}
	})
	t.Run("strong ETag becomes weak, Vary is extended", func(t *testing.T) {
		resp := rawDo(t, "GET", base+"/etag", "Accept-Encoding", "gzip")
		if et := resp.Header.Get("Etag"); et != `W/"v1"` {
			t.Errorf("ETag %q, want W/\"v1\"", et)
		}
		if v := resp.Header.Values("Vary"); strings.Join(v, ",") != "Origin,Accept-Encoding" {
			t.Errorf("Vary %q", v)
		}
		if ar := resp.Header.Get("Accept-Ranges"); ar != "" {
			t.Errorf("Accept-Ranges %q on a compressed body", ar)
		}
		resp = rawDo(t, "GET", base+"/etag", "Accept-Encoding", "identity")
		if et := resp.Header.Get("Etag"); et != `"v1"` {
			t.Errorf("uncompressed: ETag %q, want it strong", et)
		}
		resp = rawDo(t, "GET", base+"/weak", "Accept-Encoding", "gzip")
		if et := resp.Header.Get("Etag"); et != `W/"v1"` {
			t.Errorf("weak ETag became %q", et)
		}
	})
	t.Run("trailers follow a compressed body", func(t *testing.T) {
		resp := rawDo(t, "GET", base+"/trailers", "Accept-Encoding", "zstd")
		if ce := resp.Header.Get("Content-Encoding"); ce != "zstd" {
			t.Fatalf("Content-Encoding %q", ce)
		}
		if got := decodeBody(t, "zstd", resp.Body); !bytes.Equal(got, jsonOf(4000)) {
			t.Errorf("body: %d bytes", len(got))
		}
		if tr := resp.Trailer.Get("X-Checksum"); tr != "c-4000" {
			t.Errorf("trailer X-Checksum %q", tr)
		}
	})
	t.Run("a gateway error is below minSize", func(t *testing.T) {
		resp := rawDo(t, "DELETE", base+"/json", "Accept-Encoding", "gzip") // no route: 404
		if resp.StatusCode != 404 || resp.Header.Get("Content-Encoding") != "" || resp.ContentLength <= 0 {
			t.Errorf("status %d, Content-Encoding %q, Content-Length %d", resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.ContentLength)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary %q on a JSON error", resp.Header.Get("Vary"))
		}
	})
}

func TestCompressionStreamsEvents(t *testing.T) {
	step := make(chan struct{})
	be := compressionBackend(t, step)
	_, base := startGateway(t, gatewayYAML(freePort(t), compressionYAML)+backendYAML("b", be.addr())+route(`
    - backendRefs: [{name: b}]
`))
	for _, alg := range []string{"br", "gzip", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			resp := rawDo(t, "GET", base+"/sse", "Accept-Encoding", alg, "Accept", "text/event-stream")
			if ce := resp.Header.Get("Content-Encoding"); ce != alg {
				t.Fatalf("Content-Encoding %q, want %s", ce, alg)
			}
			var dec io.Reader
			switch alg {
			case "gzip":
				gz, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				dec = gz
			case "br":
				dec = brotli.NewReader(resp.Body)
			case "zstd":
				zr, err := zstd.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				dec = zr
			}
			events := bufio.NewReader(dec)
			for i := range 3 {
				var ev strings.Builder
				for {
					line, err := events.ReadString('\n')
					if err != nil {
						t.Fatalf("event %d: %v after %q", i, err, ev.String())
					}
					ev.WriteString(line)
					if line == "\n" {
						break
					}
				}
				if want := fmt.Sprintf("id: %d\ndata: event number %d\n\n", i, i); ev.String() != want {
					t.Fatalf("event %d = %q, want %q", i, ev.String(), want)
				}
				step <- struct{}{} // the backend may send the next one
			}
			if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
				t.Errorf("after the events: %q, %v", rest, err)
			}
		})
	}
}

// TestCompressionAfterPolicies: a policy that rewrites the response body
// runs first; the client gets the rewritten body, compressed.
func TestCompressionAfterPolicies(t *testing.T) {
	be := compressionBackend(t, nil)
	res := gatewayYAML(freePort(t), compressionYAML) + backendYAML("b", be.addr()) + route(`
    - name: upper
      backendRefs: [{name: b}]
`) + policyYAML("upper", "Wasm", "{kind: ProxyRoute, name: r, sectionName: upper}", "")
	var open atomic.Int64
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policies: func(ctx context.Context, p *configs.Policy) (Policy, error) {
			return &bodyPolicy{name: p.Metadata.Name, open: &open}, nil
		}})
	base := gwtest.Serve(t, gw, res)
	for _, path := range []string{"/json", "/chunked"} {
		resp := rawDo(t, "GET", base+path+"?size=50000", "Accept-Encoding", "zstd")
		if ce := resp.Header.Get("Content-Encoding"); ce != "zstd" {
			t.Fatalf("%s: Content-Encoding %q", path, ce)
		}
		if got, want := decodeBody(t, "zstd", resp.Body), bytes.ToUpper(jsonOf(50000)); !bytes.Equal(got, want) {
			t.Errorf("%s: the client did not get the policy's body: %.40q…", path, got)
		}
	}
}

// TestCompressionFollowsTheConfiguration: compression comes and goes with
// the gateway's configuration, per generation.
func TestCompressionFollowsTheConfiguration(t *testing.T) {
	be := compressionBackend(t, nil)
	port := freePort(t)
	rest := backendYAML("b", be.addr()) + route("    - backendRefs: [{name: b}]\n")
	gw, base := startGateway(t, gatewayYAML(port, compressionYAML)+rest)
	ce := func() string {
		resp := rawDo(t, "GET", base+"/json", "Accept-Encoding", "gzip, br")
		io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("Content-Encoding")
	}
	if got := ce(); got != "br" {
		t.Fatalf("Content-Encoding %q, want br", got)
	}
	for _, step := range []struct{ extra, want string }{
		{"", ""},
		{strings.Replace(compressionYAML, "[br, gzip, zstd]", "[gzip]", 1), "gzip"},
		{strings.Replace(compressionYAML, "enabled: true", "enabled: false", 1), ""},
	} {
		snap, err := configs.LoadFiles([]configs.File{{Name: "c.yaml", Data: []byte(gatewayYAML(port, step.extra) + rest)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := gw.Apply(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		if got := ce(); got != step.want {
			t.Errorf("with %q: Content-Encoding %q, want %q", step.extra, got, step.want)
		}
	}
}

// TestCompressionBrokenUpstream: when the backend breaks off a body, the
// client's compressed stream breaks off too, without the encoder's end —
// it cannot take the truncated body for a whole one.
func TestCompressionBrokenUpstream(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jsonOf(8000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes mid-body
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), compressionYAML)+backendYAML("b", be.addr())+route("    - backendRefs: [{name: b}]\n"))
	resp := rawDo(t, "GET", base+"/", "Accept-Encoding", "gzip")
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Content-Encoding %q", ce)
	}
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Error("the client read a whole body")
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err == nil {
		_, err = io.ReadAll(gz)
	}
	if err == nil {
		t.Errorf("the %d bytes received decode as a complete gzip stream", len(raw))
	}
}

// TestCompressionUpgrade: an upgrade passes through the compressing
// writer to the hijacked connection.
func TestCompressionUpgrade(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString(strings.ToUpper(line))
		brw.Flush()
	})
	_, base := startGateway(t, gatewayYAML(freePort(t), compressionYAML)+backendYAML("b", be.addr())+route("    - backendRefs: [{name: b}]\n"))
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	fmt.Fprintf(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "HELLO\n" {
		t.Errorf("echo %q, %v", line, err)
	}
}
