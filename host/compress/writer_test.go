package compress

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/novaedge/novaedge/configs"
)

func newConfig(t testing.TB, minSize int64, level int, algs ...string) *Config {
	t.Helper()
	c, err := New(&configs.Compression{Enabled: true, MinSize: &configs.Size{Bytes: minSize}, Level: level, Algorithms: algs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// decode decodes body as coding ce ("" = identity).
func decode(t testing.TB, ce string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "":
		return body
	case "gzip":
		gz, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = gz
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", ce)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", ce, err)
	}
	return out
}

func TestNew(t *testing.T) {
	if c, err := New(nil); c != nil || err != nil {
		t.Errorf("New(nil) = %v, %v", c, err)
	}
	if c, err := New(&configs.Compression{Level: 6}); c != nil || err != nil {
		t.Errorf("disabled: %v, %v", c, err)
	}
	for _, tt := range []struct {
		name string
		c    configs.Compression
		want string
	}{
		{"unknown algorithm", configs.Compression{Enabled: true, Level: 6, Algorithms: []string{"lzma"}}, `unknown compression algorithm "lzma"`},
		{"twice", configs.Compression{Enabled: true, Level: 6, Algorithms: []string{"br", "br"}}, `"br" listed twice`},
		{"level", configs.Compression{Enabled: true, Level: 12}, "level 12 is out of range"},
		{"minSize", configs.Compression{Enabled: true, Level: 1, MinSize: &configs.Size{Bytes: -1}}, "minSize -1"},
	} {
		if _, err := New(&tt.c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	c := newConfig(t, 10, 6, "zstd", "gzip")
	if got := fmt.Sprint(c.Algorithms()); got != "[zstd gzip]" || c.MinSize() != 10 {
		t.Errorf("algorithms %s, minSize %d", got, c.MinSize())
	}
}

func TestLibraryLevels(t *testing.T) {
	for _, tt := range []struct {
		alg   Algorithm
		level int
		want  int
	}{
		{Gzip, 1, 1}, {Gzip, 6, 6}, {Gzip, 9, 9}, {Gzip, 11, 9},
		{Brotli, 1, 1}, {Brotli, 6, 6}, {Brotli, 11, 11},
		{Zstd, 1, int(zstd.SpeedFastest)}, {Zstd, 3, int(zstd.SpeedDefault)},
		{Zstd, 6, int(zstd.SpeedBetterCompression)}, {Zstd, 11, int(zstd.SpeedBestCompression)},
	} {
		if got := libraryLevel(tt.alg, tt.level); got != tt.want {
			t.Errorf("%v level %d -> %d, want %d", tt.alg, tt.level, got, tt.want)
		}
	}
}

func TestCompressible(t *testing.T) {
	yes := []string{"text/html", "text/plain; charset=utf-8", "TEXT/CSS", "text/event-stream",
		"application/json", "application/problem+json", "Application/JSON ; charset=UTF-8", "application/javascript",
		"application/xml", "application/atom+xml", "application/wasm", "application/x-ndjson", "application/yaml",
		"application/openapi+yaml", "image/svg+xml", "image/x-icon", "image/bmp", "font/ttf", "font/otf",
		"application/vnd.ms-fontobject", "application/x-www-form-urlencoded", "application/graphql"}
	no := []string{"", "text", "text/", "/json", "image/png", "image/jpeg", "image/webp", "image/avif", "video/mp4",
		"audio/mpeg", "application/zip", "application/gzip", "application/zstd", "application/x-7z-compressed",
		"application/octet-stream", "application/pdf", "font/woff", "font/woff2", "application/+json",
		"application/grpc", "multipart/form-data; boundary=x"}
	for _, ct := range yes {
		if !Compressible(ct) {
			t.Errorf("%q should be compressible", ct)
		}
	}
	for _, ct := range no {
		if Compressible(ct) {
			t.Errorf("%q should not be compressible", ct)
		}
	}
}

var jsonBody = strings.Repeat(`{"id":12345,"name":"some user","email":"user@example.com","active":true},`, 40) // 2.9 KB

func TestWriterDecisions(t *testing.T) {
	type resp struct {
		status int
		hdr    []string // name, value pairs
		body   string
	}
	ok := func(hdr ...string) resp {
		return resp{status: 200, hdr: append([]string{"Content-Type", "application/json"}, hdr...), body: jsonBody}
	}
	tests := []struct {
		name     string
		method   string
		reqHdr   []string
		resp     resp
		wantCE   string
		wantVary bool
	}{
		{name: "gzip", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok(), wantCE: "gzip", wantVary: true},
		{name: "br", reqHdr: []string{"Accept-Encoding", "br"}, resp: ok(), wantCE: "br", wantVary: true},
		{name: "zstd", reqHdr: []string{"Accept-Encoding", "zstd"}, resp: ok(), wantCE: "zstd", wantVary: true},
		{name: "known length", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Content-Length", fmt.Sprint(len(jsonBody))), wantCE: "gzip", wantVary: true},
		{name: "not asked: Vary anyway", resp: ok(), wantVary: true},
		{name: "identity asked", reqHdr: []string{"Accept-Encoding", "identity"}, resp: ok(), wantVary: true},
		{name: "HEAD", method: "HEAD", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok(), wantVary: true},
		{name: "Range request", reqHdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-10"}, resp: ok(), wantVary: true},
		{name: "206", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{206, []string{"Content-Type", "text/plain", "Content-Range", "bytes 0-2899/5000"}, jsonBody}},
		{name: "Content-Range on 200", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Content-Range", "bytes 0-1/2")},
		{name: "already encoded", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Content-Encoding", "br"), wantCE: "br"},
		{name: "no-transform", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Cache-Control", "public, No-Transform")},
		{name: "image", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{200, []string{"Content-Type", "image/png"}, jsonBody}},
		{name: "no type", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{200, []string{"Content-Type", ""}, jsonBody}},
		{name: "error status compressed too", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{500, []string{"Content-Type", "text/plain"}, jsonBody}, wantCE: "gzip", wantVary: true},
		{name: "below minSize, known length", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{200, []string{"Content-Type", "text/plain", "Content-Length", "1023"}, strings.Repeat("a", 1023)}, wantVary: true},
		{name: "below minSize, held", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{200, []string{"Content-Type", "text/plain"}, strings.Repeat("a", 1023)}, wantVary: true},
		{name: "at minSize, held", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: resp{200, []string{"Content-Type", "text/plain"}, strings.Repeat("a", 1024)}, wantCE: "gzip", wantVary: true},
		{name: "Vary kept and extended", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Vary", "Origin"), wantCE: "gzip", wantVary: true},
		{name: "Vary already there", reqHdr: []string{"Accept-Encoding", "gzip"}, resp: ok("Vary", "origin, accept-encoding"), wantCE: "gzip", wantVary: true},
	}
	cfg := newConfig(t, 1024, 6, "gzip", "br", "zstd")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "/", nil)
			for i := 0; i < len(tt.reqHdr); i += 2 {
				req.Header.Set(tt.reqHdr[i], tt.reqHdr[i+1])
			}
			rec := httptest.NewRecorder()
			w := cfg.Wrap(rec, req)
			for i := 0; i < len(tt.resp.hdr); i += 2 {
				w.Header().Set(tt.resp.hdr[i], tt.resp.hdr[i+1])
			}
			w.WriteHeader(tt.resp.status)
			// Several writes, as a proxy copies.
			for b := []byte(tt.resp.body); len(b) > 0; {
				n := min(len(b), 700)
				if _, err := w.Write(b[:n]); err != nil {
					t.Fatal(err)
				}
				b = b[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res := rec.Result()
			if res.StatusCode != tt.resp.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.resp.status)
			}
			ce := res.Header.Get("Content-Encoding")
			if ce != tt.wantCE {
				t.Errorf("Content-Encoding %q, want %q", ce, tt.wantCE)
			}
			vary := strings.Join(res.Header.Values("Vary"), ",")
			if got := strings.Count(strings.ToLower(vary), "accept-encoding"); got != map[bool]int{true: 1}[tt.wantVary] {
				t.Errorf("Vary %q: Accept-Encoding %d times, want it: %v", vary, got, tt.wantVary)
			}
			if ce == "br" && tt.wantCE == "br" && tt.resp.hdr[len(tt.resp.hdr)-1] == "br" {
				return // the handler's own encoding: not ours to decode
			}
			body := rec.Body.Bytes()
			if got := decode(t, ce, body); string(got) != tt.resp.body {
				t.Errorf("decoded body differs: %d bytes, want %d", len(got), len(tt.resp.body))
			}
			cl := res.Header.Get("Content-Length")
			switch {
			case ce != "" && cl != "":
				t.Errorf("encoded with Content-Length %s", cl)
			case ce == "" && cl != "" && cl != fmt.Sprint(len(body)):
				t.Errorf("Content-Length %s for %d bytes", cl, len(body))
			}
			if ce == "" && tt.name == "below minSize, held" && cl != "1023" {
				t.Errorf("a held body should go out with its length, got Content-Length %q", cl)
			}
			if ce == tt.wantCE && ce != "" && len(body) >= len(tt.resp.body) {
				t.Errorf("%s made %d bytes of %d", ce, len(body), len(tt.resp.body))
			}
		})
	}
}

func TestWriterHeaders(t *testing.T) {
	cfg := newConfig(t, 0, 6, "gzip")
	for _, tt := range []struct{ etag, want string }{
		{`"v1"`, `W/"v1"`},
		{`W/"v1"`, `W/"v1"`},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		w := cfg.Wrap(rec, req)
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Etag", tt.etag)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", "5")
		w.Write([]byte("hello"))
		w.Close()
		res := rec.Result()
		if got := res.Header.Get("Etag"); got != tt.want {
			t.Errorf("ETag %s became %s, want %s", tt.etag, got, tt.want)
		}
		if res.Header.Get("Accept-Ranges") != "" || res.Header.Get("Content-Length") != "" {
			t.Errorf("Accept-Ranges %q and Content-Length %q should be gone", res.Header.Get("Accept-Ranges"), res.Header.Get("Content-Length"))
		}
		if got := decode(t, res.Header.Get("Content-Encoding"), rec.Body.Bytes()); string(got) != "hello" {
			t.Errorf("body %q", got)
		}
	}
	// An empty body is never encoded, even with minSize 0.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	w := cfg.Wrap(rec, req)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(200)
	w.Close()
	if ce, cl := rec.Result().Header.Get("Content-Encoding"), rec.Result().Header.Get("Content-Length"); ce != "" || cl != "0" {
		t.Errorf("empty body: Content-Encoding %q, Content-Length %q", ce, cl)
	}
}

// flushRecorder records what reached the client at each Flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	atFlush []int
}

func (f *flushRecorder) Flush() {
	f.ResponseRecorder.Flush()
	f.atFlush = append(f.atFlush, f.Body.Len())
}

func TestWriterFlush(t *testing.T) {
	for _, alg := range []string{"gzip", "br", "zstd"} {
		t.Run(alg, func(t *testing.T) {
			cfg := newConfig(t, 1024, 6, alg)
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", alg)
			rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
			w := cfg.Wrap(rec, req)
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.Flush() // the headers of a stream go out at once
			if !rec.Flushed || rec.Header().Get("Content-Encoding") != alg {
				t.Fatalf("after the first Flush: flushed %v, Content-Encoding %q", rec.Flushed, rec.Header().Get("Content-Encoding"))
			}
			var sent strings.Builder
			for i := range 3 {
				ev := fmt.Sprintf("data: event %d\n\n", i)
				sent.WriteString(ev)
				w.Write([]byte(ev))
				w.Flush()
				// Everything written so far decodes from what the client has.
				got := decodePrefix(t, alg, rec.Body.Bytes())
				if got != sent.String() {
					t.Fatalf("after event %d the client can decode %q, want %q", i, got, sent.String())
				}
			}
			w.Close()
			if got := decode(t, alg, rec.Body.Bytes()); string(got) != sent.String() {
				t.Errorf("whole stream %q", got)
			}
		})
	}
}

// decodePrefix decodes as much of an unfinished stream as it can.
func decodePrefix(t *testing.T, alg string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch alg {
	case "gzip":
		gz, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var out bytes.Buffer
	io.Copy(&out, r) // ends with an unexpected EOF: the stream goes on
	return out.String()
}

func TestWriterFlushWhileHolding(t *testing.T) {
	cfg := newConfig(t, 1024, 6, "gzip")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := cfg.Wrap(rec, req)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Write([]byte(`{"a":1}` + "\n"))
	if rec.Body.Len() != 0 || len(rec.atFlush) != 0 {
		t.Fatalf("a short body should be held until a flush, minSize or the end")
	}
	w.Flush()
	if got := decodePrefix(t, "gzip", rec.Body.Bytes()); got != `{"a":1}`+"\n" {
		t.Fatalf("after Flush the client has %q", got)
	}
	w.Close()
}

func TestWriterAbort(t *testing.T) {
	cfg := newConfig(t, 0, 6, "gzip")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	w := cfg.Wrap(rec, req)
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(jsonBody))
	Abort(w)
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("a write after Abort succeeded")
	}
	w.Close()
	if _, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes())); err == nil {
		gz, _ := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
		if _, err := io.ReadAll(gz); err == nil {
			t.Error("an aborted stream decodes as complete")
		}
	}
}

func TestWriterUnwrapAndInformational(t *testing.T) {
	cfg := newConfig(t, 0, 6, "gzip")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := &codesRecorder{h: http.Header{}}
	w := cfg.Wrap(rec, req)
	if w.Unwrap() != rec {
		t.Error("Unwrap does not return the underlying writer")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusEarlyHints) // passes, undecided
	w.WriteHeader(200)
	w.Write([]byte("hello"))
	if w.Encoding() != Gzip {
		t.Errorf("Encoding() = %v after a 103 then 200", w.Encoding())
	}
	w.Close()
	if fmt.Sprint(rec.codes) != "[103 200]" {
		t.Errorf("statuses sent %v, want [103 200]", rec.codes)
	}
	if got := decode(t, rec.h.Get("Content-Encoding"), rec.body.Bytes()); string(got) != "hello" {
		t.Errorf("body %q", got)
	}
}

// codesRecorder records every status written (httptest.ResponseRecorder
// keeps only the first, and takes a 1xx for the final one).
type codesRecorder struct {
	h     http.Header
	codes []int
	body  bytes.Buffer
}

func (c *codesRecorder) Header() http.Header         { return c.h }
func (c *codesRecorder) Write(p []byte) (int, error) { return c.body.Write(p) }
func (c *codesRecorder) WriteHeader(code int)        { c.codes = append(c.codes, code) }

// TestWriterAllocations: a compressed response, once the pools are warm,
// allocates nothing in the Writer (the one allocation counted is the
// test's own Content-Type value).
func TestWriterAllocations(t *testing.T) {
	if raceOn {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, alg := range []string{"gzip", "br", "zstd"} {
		cfg := newConfig(t, 1024, 6, alg)
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Encoding", alg)
		body := []byte(jsonBody)
		h := http.Header{}
		rw := &discardWriter{h: h}
		run := func() {
			clear(h)
			h["Content-Type"] = []string{"application/json"}
			w := cfg.Wrap(rw, req)
			w.WriteHeader(200)
			w.Write(body)
			w.Close()
		}
		for range 3 {
			run()
		}
		if n := testing.AllocsPerRun(50, run); n > 1 {
			t.Errorf("%s: %v allocations per response, want 1 (the test's)", alg, n)
		}
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
