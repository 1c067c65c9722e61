package compress

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
)

// Writer is the http.ResponseWriter a handler writes a response through
// (Config.Wrap). It decides at WriteHeader — or, for a body of unknown
// length, once minSize bytes are written, at a Flush, or at Close —
// whether the response is compressed (see the package doc), then either
// passes everything through or encodes the body. It supports Flush
// (FlushError) and Unwrap, so http.ResponseController reaches the
// underlying writer (Hijack for upgrades, deadlines).
type Writer struct {
	rw   http.ResponseWriter
	cfg  *Config
	alg  Algorithm // negotiated; Identity if the client accepts none offered
	asIs bool      // HEAD or Range: never encoded

	state  writerState
	status int
	buf    *[]byte // held body while deciding
	enc    *encoder
	in     int64 // body bytes encoded
}

type writerState uint8

const (
	statePending  writerState = iota // no status yet
	stateHolding                     // status held, body held until the decision
	statePlain                       // passing through
	stateEncoding                    // encoding the body
	stateAborted                     // broken off: nothing more goes out
)

var writerPool = sync.Pool{New: func() any { return new(Writer) }}

// bufPool holds the buffers of held bodies; buffers that grew past
// maxPooledBuf are left to the garbage collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledBuf = 64 << 10

var errDone = errors.New("compress: the response was aborted")

// Header returns the underlying writer's header map.
func (w *Writer) Header() http.Header { return w.rw.Header() }

// Unwrap returns the underlying writer (for http.ResponseController).
func (w *Writer) Unwrap() http.ResponseWriter { return w.rw }

// WriteHeader records the status and decides what it can from the
// headers. Informational statuses (1xx but 101) pass straight through.
func (w *Writer) WriteHeader(code int) {
	if w.state != statePending {
		if w.state == statePlain {
			w.rw.WriteHeader(code) // superfluous: net/http says so
		}
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	w.status = code
	h := w.rw.Header()
	if !eligible(code, h) {
		w.pass()
		return
	}
	addVary(h)
	if w.alg == Identity || w.asIs {
		w.pass()
		return
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n == 0 || n < w.cfg.minSize {
			w.pass()
			return
		}
		w.encode()
		return
	}
	if _, trailers := h["Trailer"]; trailers {
		w.encode() // a stream: its length cannot be known
		return
	}
	w.state = stateHolding
	w.buf = bufPool.Get().(*[]byte)
}

// Write writes body bytes: held, encoded or passed through.
func (w *Writer) Write(p []byte) (int, error) {
	if w.state == statePending {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case statePlain:
		return w.rw.Write(p)
	case stateHolding:
		b := *w.buf
		if len(p) == 0 {
			return 0, nil
		}
		if int64(len(b)+len(p)) < w.cfg.minSize {
			*w.buf = append(b, p...)
			return len(p), nil
		}
		if err := w.encode(); err != nil {
			return 0, err
		}
		n, err := w.enc.c.Write(p)
		w.in += int64(n)
		return n, err
	case stateEncoding:
		n, err := w.enc.c.Write(p)
		w.in += int64(n)
		return n, err
	}
	return 0, errDone
}

// Flush sends what was written so far to the client.
func (w *Writer) Flush() { w.FlushError() }

// FlushError is Flush that reports the error (http.ResponseController
// uses it). A Flush while the body is held decides: the response is a
// stream and is encoded.
func (w *Writer) FlushError() error {
	if w.state == statePending {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stateHolding:
		if err := w.encode(); err != nil {
			return err
		}
		fallthrough
	case stateEncoding:
		if err := w.enc.c.Flush(); err != nil {
			return err
		}
	case stateAborted:
		return errDone
	}
	return flush(w.rw)
}

// Close ends the response: it sends a held body as is (with its length),
// or finishes the encoded stream, and releases what the Writer holds. It
// must be called exactly once, after Abort too; the Writer must not be
// used after it.
func (w *Writer) Close() error {
	var err error
	switch w.state {
	case stateHolding:
		h := w.rw.Header()
		b := *w.buf
		if _, trailers := h["Trailer"]; !trailers {
			h["Content-Length"] = []string{strconv.Itoa(len(b))}
		}
		w.rw.WriteHeader(w.status)
		if len(b) > 0 {
			_, err = w.rw.Write(b)
		}
	case stateEncoding:
		err = w.enc.c.Close()
		if w.cfg.onDone != nil {
			w.cfg.onDone(w.alg, w.in, w.enc.sink.n)
		}
	}
	w.drop()
	*w = Writer{}
	writerPool.Put(w)
	return err
}

// Abort breaks the response off: an encoded stream gets no end, so a
// client cannot take a truncated body for a whole one, and nothing more
// is written. Close must still be called.
func (w *Writer) Abort() {
	w.drop()
	w.state = stateAborted
}

// Abort aborts rw if it is a *Writer; other writers are left alone.
func Abort(rw http.ResponseWriter) {
	if w, ok := rw.(*Writer); ok {
		w.Abort()
	}
}

// drop returns the encoder and the held body's buffer to their pools.
func (w *Writer) drop() {
	if w.enc != nil {
		w.enc.put()
		w.enc = nil
	}
	if w.buf != nil {
		if cap(*w.buf) <= maxPooledBuf {
			*w.buf = (*w.buf)[:0]
			bufPool.Put(w.buf)
		}
		w.buf = nil
	}
}

// pass sends the status and lets the body through.
func (w *Writer) pass() {
	w.state = statePlain
	w.rw.WriteHeader(w.status)
}

// encode commits to encoding: it rewrites the headers, sends the status,
// and encodes a held body.
func (w *Writer) encode() error {
	h := w.rw.Header()
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	h["Content-Encoding"] = encodingValues[w.alg]
	if et := h["Etag"]; len(et) > 0 && len(et[0]) > 0 && et[0][0] == '"' {
		h["Etag"] = []string{"W/" + et[0]}
	}
	w.rw.WriteHeader(w.status)
	w.state = stateEncoding
	w.enc = w.cfg.pools[w.alg].get(w.rw)
	if w.buf != nil {
		b := *w.buf
		if len(b) > 0 {
			if _, err := w.enc.c.Write(b); err != nil {
				return err
			}
			w.in += int64(len(b))
		}
	}
	return nil
}

// eligible reports whether a response with this status and these headers
// may be compressed at all, whatever the request.
func eligible(code int, h http.Header) bool {
	switch {
	case code < 200, code == http.StatusNoContent, code == http.StatusPartialContent, code == http.StatusNotModified:
		return false
	}
	if _, ok := h["Content-Range"]; ok {
		return false
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && (len(ce) > 1 || !equalFold(trimOWS(ce[0]), "identity")) {
		return false
	}
	for _, v := range h["Cache-Control"] {
		if hasToken(v, "no-transform") {
			return false
		}
	}
	ct := h["Content-Type"]
	return len(ct) > 0 && Compressible(ct[0])
}

// addVary adds Accept-Encoding to Vary unless it is there (or Vary is *).
// The header's slice may be shared with the upstream response: it is
// copied, not appended to in place.
func addVary(h http.Header) {
	vv := h["Vary"]
	for _, v := range vv {
		if hasToken(v, "accept-encoding") || hasToken(v, "*") {
			return
		}
	}
	if len(vv) == 0 {
		h["Vary"] = varyValue
		return
	}
	h["Vary"] = append(vv[:len(vv):len(vv)], "Accept-Encoding")
}

// Header values shared by every response, read-only (full slices: an
// append copies them).
var (
	varyValue      = []string{"Accept-Encoding"}
	encodingValues = [numAlgorithms][]string{{"identity"}, {"gzip"}, {"br"}, {"zstd"}}
)

// hasToken reports whether a comma-separated list holds token (lower
// case), ignoring case and a directive's "=value".
func hasToken(list, token string) bool {
	for len(list) > 0 {
		var elem string
		elem, list = nextElement(list)
		elem = trimOWS(elem)
		for i := 0; i < len(elem); i++ {
			if elem[i] == '=' {
				elem = trimOWS(elem[:i])
				break
			}
		}
		if equalFold(elem, token) {
			return true
		}
	}
	return false
}

func flush(rw http.ResponseWriter) error {
	switch f := rw.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.ErrNotSupported
}

var (
	_ http.ResponseWriter = (*Writer)(nil)
	_ http.Flusher        = (*Writer)(nil)
)
