package observe

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Record is what is known about one request in flight. The proxy starts
// it when the request arrives (Start), tells it what it decides through
// its setters, and finishes it when the handler returns (Finish). Every
// method is safe on a nil *Record, which stands for "not observed".
//
// A Record belongs to the request's handler goroutine: its setters must
// not be called from elsewhere (a request body's reader on the
// transport's goroutine, for instance), nor after Finish.
type Record struct {
	rw responseWriter

	start time.Time
	m     *Metrics
	gw    *Gateway
	req   *http.Request
	body  *countingBody // nil: no request body

	requestID  string
	client     netip.Addr
	route      string
	backend    string
	endpoint   string
	cache      string
	rejectedBy string
	clientErr  string
	attempts   int
	retries    int
	upFirst    time.Time // the first attempt was sent
	upLast     time.Duration

	ctx       context.Context // carries span; nil without tracing
	span      trace.Span
	recording bool // span is sampled: its children are made
	trace     trace.TraceID
}

var recordPool = sync.Pool{New: func() any {
	rec := &Record{}
	rec.rw.rec = rec
	return rec
}}

// Start begins observing r, with m (nil: no metrics); fallback is the
// gateway whose access log takes the request if Begin never names one
// (the request matched no listener). The handler writes its response to
// the returned ResponseWriter, which keeps http.Flusher and
// http.Hijacker (and http.ResponseController) working.
func Start(m *Metrics, fallback *Gateway, w http.ResponseWriter, r *http.Request) (*Record, http.ResponseWriter) {
	rec := recordPool.Get().(*Record)
	rec.start = time.Now()
	rec.m = m
	rec.gw = fallback
	rec.req = r
	rec.rw.w = w
	if r.Body != nil && r.Body != http.NoBody {
		rec.body = &countingBody{rc: r.Body}
		r.Body = rec.body
	}
	if m != nil {
		m.inflight.Inc()
	}
	return rec, &rec.rw
}

// RecordOf returns the Record whose ResponseWriter w is, or wraps
// through Unwrap methods (as a compressing writer's), or nil.
func RecordOf(w http.ResponseWriter) *Record {
	for range 8 {
		switch v := w.(type) {
		case *responseWriter:
			return v.rec
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// Unwrap returns the ResponseWriter a Record's writer wraps, or w.
func Unwrap(w http.ResponseWriter) http.ResponseWriter {
	if rw, ok := w.(*responseWriter); ok {
		return rw.w
	}
	return w
}

// Begin tells the record which gateway's settings (access log, tracing)
// apply, once the request's listener is known, and starts the server
// span when that gateway traces: its parent is the request's traceparent,
// if any, and it starts when the request arrived.
func (rec *Record) Begin(gw *Gateway, requestID string, client netip.Addr) {
	if rec == nil {
		return
	}
	rec.gw = gw
	rec.requestID = requestID
	rec.client = client
	if gw == nil || gw.tracer == nil || rec.span != nil {
		return
	}
	ctx := propagator.Extract(context.Background(), headerCarrier(rec.req.Header))
	// The name and the attributes are set at Finish, at once.
	rec.ctx, rec.span = gw.tracer.Start(ctx, rec.req.Method,
		kindServer,
		trace.WithTimestamp(rec.start))
	rec.trace = rec.span.SpanContext().TraceID()
	rec.recording = rec.span.IsRecording()
}

// SetRoute records the route ("namespace/name") and backend
// ("namespace/name", or "" for a route without one) the request goes to.
func (rec *Record) SetRoute(route, backend string) {
	if rec == nil {
		return
	}
	rec.route, rec.backend = route, backend
}

// SetCacheStatus records what the response cache did for the request
// (for example "hit", "miss", "bypass"); it appears as "cache" in the
// access log line.
func (rec *Record) SetCacheStatus(s string) {
	if rec != nil {
		rec.cache = s
	}
}

// SetRejectedBy records the policy ("namespace/name") that answered the
// request itself or failed closed. The first one recorded is kept.
func (rec *Record) SetRejectedBy(policy string) {
	if rec != nil && rec.rejectedBy == "" {
		rec.rejectedBy = policy
	}
}

// SetClientError records that the request failed through the client's
// fault, not the upstream's: kind names it ("malformed_body",
// "body_timeout", "header_limits"); it appears as "client_error" in the
// access log line. The first one recorded is kept.
func (rec *Record) SetClientError(kind string) {
	if rec != nil && rec.clientErr == "" {
		rec.clientErr = kind
	}
}

// Rejected reports whether SetRejectedBy was called.
func (rec *Record) Rejected() bool { return rec != nil && rec.rejectedBy != "" }

// Retry records that an attempt is retried.
func (rec *Record) Retry() {
	if rec != nil {
		rec.retries++
	}
}

// TraceID returns the request's trace ID, or the zero ID without tracing.
func (rec *Record) TraceID() trace.TraceID {
	if rec == nil {
		return trace.TraceID{}
	}
	return rec.trace
}

// Finish ends the request's observation: the metrics, the server span,
// the access log line. The record is reused afterwards.
func (rec *Record) Finish() {
	if rec == nil {
		return
	}
	end := time.Now()
	d := end.Sub(rec.start)
	status := rec.rw.status
	if rec.m != nil {
		rec.m.inflight.Dec()
		rec.m.observeRequest(rec.route, rec.backend, status, d, rec.retries)
	}
	if rec.span != nil {
		rec.endSpan(status, end)
	}
	if gw := rec.gw; gw != nil && gw.log != nil && gw.log.wants(rec.req.URL.Path) {
		if rec.requestID == "" {
			if ids := rec.req.Header["X-Request-Id"]; len(ids) > 0 {
				rec.requestID = ids[0]
			}
		}
		if !rec.client.IsValid() {
			ap, _ := netip.ParseAddrPort(rec.req.RemoteAddr)
			rec.client = ap.Addr().Unmap()
		}
		gw.log.write(rec, end, d)
	}
	*rec = Record{rw: responseWriter{rec: rec}}
	recordPool.Put(rec)
}

// endSpan names the server span after the route, sets its attributes
// (HTTP semantic conventions, and novaedge.* for the rest) and ends it.
func (rec *Record) endSpan(status int, end time.Time) {
	if !rec.span.IsRecording() {
		rec.span.End()
		return
	}
	r := rec.req
	if rec.route != "" {
		rec.span.SetName(r.Method + " " + rec.route)
	}
	var a [12]attribute.KeyValue
	kv := append(a[:0],
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host),
		attribute.String("network.protocol.version", r.Proto),
		attribute.String("client.address", rec.client.String()),
		attribute.String("novaedge.request_id", rec.requestID),
		attribute.Int("http.response.status_code", status),
		attribute.Int64("http.response.body.size", rec.rw.bytes),
	)
	if rec.route != "" {
		kv = append(kv, attribute.String("http.route", rec.route), attribute.String("novaedge.backend", rec.backend))
	}
	if rec.rejectedBy != "" {
		kv = append(kv, attribute.String("novaedge.rejected_by", rec.rejectedBy))
	}
	rec.span.SetAttributes(kv...)
	if status >= 500 || status == 0 {
		rec.span.SetStatus(codes.Error, "")
	}
	rec.span.End(trace.WithTimestamp(end))
}

// bytesIn is the request body's size as read from the client so far.
func (rec *Record) bytesIn() int64 {
	if rec.body == nil {
		return 0
	}
	return rec.body.n.Load()
}

// upstreamDuration is from the first attempt's send to the last
// attempt's response headers (0 when nothing went upstream).
func (rec *Record) upstreamDuration() time.Duration { return rec.upLast }

// responseWriter captures the status and the body bytes of a response.
type responseWriter struct {
	w      http.ResponseWriter
	rec    *Record
	status int // 0 until the final status is written
	bytes  int64
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.status = code
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (rw *responseWriter) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker: a protocol switch (the proxy writes
// the 101 itself on the hijacked connection).
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil && rw.status == 0 {
		rw.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// countingBody counts the bytes read from a request body. The transport
// may read it after the handler returned, hence the atomic count.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
)
