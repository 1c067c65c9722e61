package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/host/observe"
)

// clientBody is a client's request body as the gateway reads it (and the
// transport, which sends it upstream). It keeps the client to the
// body-read idle timeout and records the first error reading the body:
// a malformed chunk, a body shorter than its Content-Length, a stall.
// Such an error is the client's doing, never the backend's: the request
// is answered 400 (408 for a stall) on a connection that then closes,
// and the endpoint that was receiving the body is not blamed.
type clientBody struct {
	rc   io.ReadCloser
	ctl  *http.ResponseController // sets the read deadline; nil: neither an idle timeout nor a rate
	idle time.Duration

	// minRate is the least average rate (bytes per second) the client
	// must keep once minRateGrace of waiting on it has passed; 0: none.
	// waited is the time spent in reads of the client's body (time the
	// backend takes to read is not the client's), got what they returned.
	minRate int64
	waited  atomic.Int64 // nanoseconds
	got     atomic.Int64

	// armed is the read deadline last set (Unix nanoseconds, 0: none),
	// byRate whether it was the minimum rate's rather than the idle
	// timeout's. Atomic: when a backend answers before the body is sent,
	// the server's discarding of the rest may read while the transport
	// still does.
	armed  atomic.Int64
	byRate atomic.Bool

	mu   sync.Mutex
	err  error
	done bool // the handler returned: the deadline is the server's again
}

// newClientBody wraps r.Body. idle is the body-read idle timeout (0:
// none), minRate the least body rate in bytes per second (0: none); w is
// the response writer whose connection the deadline is set on.
func newClientBody(w http.ResponseWriter, r *http.Request, idle time.Duration, minRate int64) *clientBody {
	b := &clientBody{rc: r.Body, idle: idle, minRate: minRate}
	if idle > 0 || minRate > 0 {
		b.ctl = http.NewResponseController(w)
	}
	return b
}

// errBodyTimeout is recorded when the client sent no body bytes for the
// idle timeout.
var errBodyTimeout = errors.New("client sent no request body bytes within the body-read timeout")

// errBodyTooSlow is recorded when the client sent its body slower than
// the minimum rate.
var errBodyTooSlow = errors.New("client sent the request body slower than the minimum rate")

// minRateGrace is how long a client is waited on before its body's rate
// is judged (Kestrel's grace period).
const minRateGrace = 5 * time.Second

func (b *clientBody) Read(p []byte) (int, error) {
	if b.ctl == nil {
		n, err := b.rc.Read(p)
		b.noteErr(err, false)
		return n, err
	}
	start := time.Now()
	var deadline time.Time
	if b.idle > 0 {
		deadline = start.Add(b.idle)
	}
	byRate := false
	if b.minRate > 0 {
		// The client may take allow for its next bytes: what it is ahead
		// of the rate (or the rest of the grace period), and a second.
		// The read is capped to half of what the rate asks in that time:
		// a chunked body's reader returns only once p is full, so a large
		// read would wait past the deadline on a client keeping the rate
		// (and, without a deadline, forever on one that does not).
		allow := b.allowance()
		if rd := start.Add(allow); deadline.IsZero() || rd.Before(deadline) {
			deadline, byRate = rd, true
		}
		if most := int(float64(b.minRate) * allow.Seconds() / 2); most < len(p) {
			p = p[:max(most, 1)]
		}
	}
	b.arm(deadline, byRate)
	n, err := b.rc.Read(p)
	if b.minRate > 0 && err == nil && b.tooSlow(n, time.Since(start)) {
		b.fail(errBodyTooSlow)
		// net/http discards what is left of an unread body before it
		// answers: a deadline already passed keeps it from waiting on
		// the trickle.
		b.setDeadline(start)
		return n, errBodyTooSlow
	}
	if err == io.EOF {
		// The server reads on in the background once the body is done
		// (to notice a client going away); an expired deadline then
		// would end the request. After an error the deadline stays:
		// what the server still reads of the body (it discards the rest
		// before it closes) must not wait on the client either.
		b.setDeadline(time.Time{})
	}
	b.noteErr(err, b.byRate.Load())
	return n, err
}

// noteErr records an error reading the body that is the client's: a
// deadline passed (the rate's if byRate, else the idle timeout's) or a
// malformed body; the end of the body and reads after the server closed
// it (the response started) are not.
func (b *clientBody) noteErr(err error, byRate bool) {
	switch {
	case err == nil, err == io.EOF, errors.Is(err, http.ErrBodyReadAfterClose):
	case errors.Is(err, os.ErrDeadlineExceeded) && byRate:
		b.fail(errBodyTooSlow)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.fail(errBodyTimeout)
	default:
		b.fail(err)
	}
}

// allowance is how long the client may take for its next bytes before
// its body falls below the minimum rate: the rest of the grace period or
// the time it is ahead of the rate, whichever is longer, and a second.
func (b *clientBody) allowance() time.Duration {
	waited := time.Duration(b.waited.Load())
	ahead := time.Duration(float64(b.got.Load())/float64(b.minRate)*float64(time.Second)) - waited
	return max(minRateGrace-waited, ahead, 0) + time.Second
}

// arm sets the read deadline (zero: none) unless it is within 100ms of
// the one set: on HTTP/2 each change is a message to the connection's
// goroutine, and a body read at speed moves it on every read.
func (b *clientBody) arm(deadline time.Time, byRate bool) {
	var d int64
	if !deadline.IsZero() {
		d = deadline.UnixNano()
	}
	const near = int64(100 * time.Millisecond)
	if cur := b.armed.Load(); d == cur || d != 0 && cur != 0 && d-cur < near && cur-d < near {
		return
	}
	b.armed.Store(d)
	b.byRate.Store(byRate)
	b.setDeadline(deadline)
}

func (b *clientBody) Close() error { return b.rc.Close() }

// tooSlow adds a read of n bytes that waited d on the client, and reports
// whether the client's body has fallen below the minimum rate: past the
// grace period, fewer bytes than minRate per second of waiting.
func (b *clientBody) tooSlow(n int, d time.Duration) bool {
	waited := time.Duration(b.waited.Add(int64(d)))
	got := b.got.Add(int64(n))
	return waited > minRateGrace && float64(got) < float64(b.minRate)*waited.Seconds()
}

// setDeadline sets the connection's (or HTTP/2 stream's) read deadline,
// unless the handler has returned: the transport may still read the body
// then (and find it closed), and the connection may be serving the next
// request, whose deadlines are the server's.
func (b *clientBody) setDeadline(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.ctl.SetReadDeadline(t)
	}
}

// finish is called when the handler returns; safe on nil.
func (b *clientBody) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

func (b *clientBody) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}

// failed returns the error reading the client's body, or nil.
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// isGRPC tells a gRPC request by its content type (application/grpc,
// application/grpc+proto, …).
func isGRPC(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}

// clientBodyError classifies an error reading a client's body: the
// status it gets (408 for a stall, 400 otherwise) and the access log's
// name for it.
func clientBodyError(err error) (status int, kind string) {
	if errors.Is(err, errBodyTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return http.StatusRequestTimeout, "body_timeout"
	}
	if errors.Is(err, errBodyTooSlow) {
		return http.StatusRequestTimeout, "body_too_slow"
	}
	return http.StatusBadRequest, "malformed_body"
}

// closeAfter asks the server to close an HTTP/1.x connection once the
// response is written (Connection: close; net/http then closes it). An
// HTTP/2 stream's errors do not desynchronize its connection.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor < 2 {
		w.Header()["Connection"] = []string{"close"}
	}
}

// writeClientError answers a request whose body the client got wrong,
// and closes the connection: what follows on it cannot be trusted to be
// a request.
func writeClientError(w http.ResponseWriter, r *http.Request, err error, id string) {
	status, kind := clientBodyError(err)
	observe.RecordOf(w).SetClientError(kind)
	closeAfter(w, r)
	if status == http.StatusRequestTimeout {
		writeError(w, status, "request body timeout", id)
		return
	}
	writeError(w, status, "malformed or incomplete request body", id)
}
