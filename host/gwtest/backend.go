package gwtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// Backend is a real HTTP server on 127.0.0.1 that records every request
// it saw, body included, until the test ends.
type Backend struct {
	*httptest.Server
	// Addr is the server's "127.0.0.1:port".
	Addr string

	hits     atomic.Int64
	inflight atomic.Int64
	mu       sync.Mutex
	seen     []Seen
	last     *http.Request
}

// Seen is a request as a backend saw it.
type Seen struct {
	Method     string
	RequestURI string // as on the request line
	Path       string // decoded
	Host       string
	Proto      string
	Header     http.Header
	Body       []byte
	// BodyErr is the error reading the body ended with (nil when the
	// body was complete): an aborted body.
	BodyErr error
}

// NewBackend starts a Backend. It reads each request's body in full, then
// calls h with the body readable again; a nil h answers 200 "hello from
// METHOD URI".
func NewBackend(t testing.TB, h http.HandlerFunc) *Backend {
	t.Helper()
	b := &Backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.inflight.Add(1)
		defer b.inflight.Add(-1)
		body, err := io.ReadAll(r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, Seen{
			Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, Host: r.Host, Proto: r.Proto,
			Header: r.Header.Clone(), Body: body, BodyErr: err,
		})
		b.last = r.Clone(context.Background())
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprintf(w, "hello from %s %s", r.Method, r.URL.RequestURI())
	}))
	b.Addr = b.Listener.Addr().String()
	t.Cleanup(b.Close)
	return b
}

// Hits is how many requests reached the backend.
func (b *Backend) Hits() int64 { return b.hits.Load() }

// Inflight is how many requests the backend is handling now (reading
// their bodies included).
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// Seen returns the requests the backend saw, oldest first.
func (b *Backend) Seen() []Seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Seen(nil), b.seen...)
}

// Last returns the last request the backend saw (a clone, its body
// drained) and its body; nil before the first.
func (b *Backend) Last() (*http.Request, []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return nil, nil
	}
	return b.last, b.seen[len(b.seen)-1].Body
}
