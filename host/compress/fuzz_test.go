package compress

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzCompressible checks the media-type parse: case and parameters do
// not matter, and the answer agrees with a plain reference.
func FuzzCompressible(f *testing.F) {
	for _, s := range []string{"text/html; charset=utf-8", "application/problem+json", "image/svg+xml",
		"image/png", "application/octet-stream", " Application/JSON ", "font/woff2", "application/+json", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		got := Compressible(ct)
		if up := Compressible(asciiUpper(ct)); up != got {
			t.Fatalf("%q: %v, upper-cased: %v", ct, got, up)
		}
		if !strings.Contains(ct, ";") {
			if p := Compressible(ct + "; charset=utf-8"); p != got {
				t.Fatalf("%q: %v, with a parameter: %v", ct, got, p)
			}
		}
		if want := refCompressible(ct); got != want {
			t.Fatalf("Compressible(%q) = %v, the reference says %v", ct, got, want)
		}
	})
}

func refCompressible(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.Trim(mt, " \t"))
	major, minor, ok := strings.Cut(mt, "/")
	if !ok || major == "" || minor == "" {
		return false
	}
	if !tokenRE.MatchString(major) || !tokenRE.MatchString(minor) {
		return false
	}
	switch major {
	case "text":
		return true
	case "application":
		for _, s := range compressibleApplication {
			if minor == s {
				return true
			}
		}
		for _, suf := range []string{"+json", "+xml", "+yaml"} {
			if len(minor) > len(suf) && strings.HasSuffix(minor, suf) {
				return true
			}
		}
	case "image":
		switch minor {
		case "svg+xml", "bmp", "x-ms-bmp", "x-icon", "vnd.microsoft.icon":
			return true
		}
	case "font":
		switch minor {
		case "ttf", "otf", "collection":
			return true
		}
	}
	return false
}

// FuzzHasToken checks the comma-list scan of Vary and Cache-Control
// against a plain reference.
func FuzzHasToken(f *testing.F) {
	for _, s := range []string{"public, no-transform", "Origin,Accept-Encoding", "max-age=5, No-Transform=x", "*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		for _, tok := range []string{"no-transform", "accept-encoding", "*"} {
			want := false
			for _, e := range strings.Split(list, ",") {
				name, _, _ := strings.Cut(e, "=")
				if equalFold(strings.Trim(name, " \t"), tok) {
					want = true
				}
			}
			if got := hasToken(list, tok); got != want {
				t.Fatalf("hasToken(%q, %q) = %v, want %v", list, tok, got, want)
			}
		}
	})
}

// FuzzWriter drives a Writer with a sequence of operations taken from
// the input — headers, a status, writes of various sizes, flushes — and
// checks what the client gets: the body written, once decoded; the
// headers the decision implies.
func FuzzWriter(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, "gzip", uint16(200))
	f.Add([]byte{9, 9, 9, 3, 3, 3}, "br", uint16(404))
	f.Add([]byte{1, 3, 1, 3, 255}, "zstd;q=0.5, gzip;q=0.4", uint16(200))
	f.Add([]byte{}, "identity", uint16(204))
	f.Add([]byte{7, 7, 7, 7}, "*", uint16(206))
	cfg := newConfig(f, 700, 1, "zstd", "br", "gzip")
	types := []string{"application/json", "image/png", "", "text/event-stream"}
	f.Fuzz(func(t *testing.T, ops []byte, accept string, status uint16) {
		code := 200 + int(status)%400
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Encoding", accept)
		rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
		w := cfg.Wrap(rec, req)
		var sent bytes.Buffer
		knownLength := -1
		wroteHeader := false
		for i, op := range ops {
			if i > 64 {
				break
			}
			switch {
			case !wroteHeader && op < 16:
				h := w.Header()
				switch op % 4 {
				case 0:
					h.Set("Content-Type", types[int(op/4)%len(types)])
				case 1:
					h.Set("Etag", `"e`+strconv.Itoa(int(op))+`"`)
				case 2:
					knownLength = int(op) * 100
					h.Set("Content-Length", strconv.Itoa(knownLength))
				case 3:
					h.Set("Cache-Control", "no-transform")
				}
			case !wroteHeader && op < 32:
				w.WriteHeader(code)
				wroteHeader = true
			case op < 200:
				n := int(op) * 13
				if knownLength >= 0 {
					n = min(n, knownLength-sent.Len())
				}
				p := bytes.Repeat([]byte{'a' + op%26}, n)
				w.Write(p)
				sent.Write(p)
				wroteHeader = true
			default:
				w.Flush()
				wroteHeader = true
			}
		}
		if knownLength >= 0 && sent.Len() < knownLength {
			p := bytes.Repeat([]byte{'z'}, knownLength-sent.Len())
			w.Write(p)
			sent.Write(p)
		}
		enc := w.Encoding()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		res := rec.Result()
		ce := res.Header.Get("Content-Encoding")
		if ce != "" && ce != enc.String() {
			t.Fatalf("Content-Encoding %q, Encoding() %v", ce, enc)
		}
		if ce == "" {
			if !bodyAllowed(res.StatusCode) {
				return
			}
			if !bytes.Equal(rec.Body.Bytes(), sent.Bytes()) {
				t.Fatalf("identity body differs: %d bytes, sent %d", rec.Body.Len(), sent.Len())
			}
			return
		}
		if !Compressible(res.Header.Get("Content-Type")) || res.Header.Get("Cache-Control") != "" {
			t.Fatalf("compressed a %q response with Cache-Control %q", res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
		}
		if res.Header.Get("Content-Length") != "" {
			t.Fatal("compressed with the upstream's Content-Length")
		}
		if et := res.Header.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
			t.Fatalf("compressed with the strong ETag %s", et)
		}
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept-Encoding") {
			t.Fatal("compressed without Vary")
		}
		if got := decode(t, ce, rec.Body.Bytes()); !bytes.Equal(got, sent.Bytes()) {
			t.Fatalf("decoded %d bytes, sent %d", len(got), sent.Len())
		}
	})
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified && code >= 200
}
