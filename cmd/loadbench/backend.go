package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"strconv"
)

// backendMain is the hidden subcommand `loadbench backend -addr ADDR -size
// N`: the upstream of every line, answering each request with the same N
// bytes of JSON.
func backendMain(args []string) int {
	fs := flag.NewFlagSet("loadbench backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	size := fs.Int("size", 1024, "response body size in bytes")
	_ = fs.Parse(args)
	return serve("backend", *addr, newBackend(*size))
}

// newBackend returns a handler answering every request with a JSON body of
// exactly size bytes.
func newBackend(size int) http.Handler {
	body := jsonBody(size)
	h := &backend{
		body:          body,
		contentType:   []string{"application/json"},
		contentLength: []string{strconv.Itoa(len(body))},
	}
	return h
}

type backend struct {
	body          []byte
	contentType   []string // shared, never modified
	contentLength []string
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	h := w.Header()
	h["Content-Type"] = b.contentType
	h["Content-Length"] = b.contentLength
	_, _ = w.Write(b.body)
}

// jsonBody returns size bytes of valid JSON ({"data":"xxx…"}) when size
// allows, or size spaces.
func jsonBody(size int) []byte {
	const prefix, suffix = `{"data":"`, `"}`
	if size < len(prefix)+len(suffix) {
		return bytes.Repeat([]byte(" "), size)
	}
	b := make([]byte, 0, size)
	b = append(b, prefix...)
	b = append(b, bytes.Repeat([]byte("x"), size-len(prefix)-len(suffix))...)
	return append(b, suffix...)
}
