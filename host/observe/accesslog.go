package observe

import (
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/novaedge/novaedge/configs"
)

// accessLog is a gateway's accessLog settings.
//
// excludePaths: an entry excludes the path equal to it and every path
// below it ("/healthz" excludes "/healthz" and "/healthz/live", not
// "/healthzz"); an entry ending in "/" excludes the paths starting with
// it. Paths are compared after the proxy cleaned them (no "//", no dot
// segments), without the query. Excluded and sampled-out requests are
// still counted in the metrics and traced.
type accessLog struct {
	text    bool
	exclude []string
	rate    float64 // percent
	sink    *Sink
}

func newAccessLog(a *configs.AccessLog, sink *Sink) *accessLog {
	l := &accessLog{text: a.Format == "text", exclude: a.ExcludePaths, rate: 100, sink: sink}
	if a.SampleRate != nil {
		l.rate = *a.SampleRate
	}
	return l
}

// wants reports whether the request of path gets a line: not excluded,
// and drawn by the sample rate.
func (l *accessLog) wants(path string) bool {
	if excluded(l.exclude, path) {
		return false
	}
	switch {
	case l.rate >= 100:
		return true
	case l.rate <= 0:
		return false
	}
	return rand.Float64()*100 < l.rate
}

func excluded(list []string, path string) bool {
	for _, e := range list {
		if !strings.HasPrefix(path, e) {
			continue
		}
		if len(path) == len(e) || e[len(e)-1] == '/' || path[len(e)] == '/' {
			return true
		}
	}
	return false
}

// write formats rec's line into a pooled buffer and hands it to the sink.
func (l *accessLog) write(rec *Record, end time.Time, d time.Duration) {
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	if l.text {
		b = appendText(b, rec, end, d)
	} else {
		b = appendJSON(b, rec, end, d)
	}
	*bp = b
	l.sink.put(bp)
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// The access log line's fields, in order (JSON keys and text keys alike):
//
//	time         when the request ended, RFC 3339 with nanoseconds, UTC
//	request_id   X-Request-Id (the client's if acceptable, else a new one)
//	trace_id     32 hex digits, "" when the gateway does not trace
//	client_ip    the client, through the gateway's trusted proxies
//	method, host, path, protocol
//	status       0 when no response was sent (the client went away)
//	bytes_in     request body bytes read from the client
//	bytes_out    response body bytes sent to the client
//	duration_ms  from the request's arrival to the handler's end
//	upstream_ms  from the first attempt's send to the last one's response headers
//	route, backend ("namespace/name"), endpoint (the address that answered last)
//	attempts     upstream attempts (retries + 1; 0 when nothing went upstream)
//	client_error what the client got wrong, if the request failed through it
//	             (malformed_body, body_timeout, header_limits), else ""
//	cache        what the response cache did, "" without one
//	rejected_by  the policy that answered the request or failed closed, if any
func appendJSON(b []byte, rec *Record, end time.Time, d time.Duration) []byte {
	r := rec.req
	b = append(b, `{"time":"`...)
	b = end.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, rec.requestID)
	b = append(b, `,"trace_id":"`...)
	if rec.trace.IsValid() {
		b = hex.AppendEncode(b, rec.trace[:])
	}
	b = append(b, `","client_ip":"`...)
	if rec.client.IsValid() {
		b = rec.client.AppendTo(b)
	}
	b = append(b, `","method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.URL.Path)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.rw.status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, rec.bytesIn(), 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, rec.rw.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, d)
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, rec.upstreamDuration())
	b = append(b, `,"route":`...)
	b = appendJSONString(b, rec.route)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, rec.backend)
	b = append(b, `,"endpoint":`...)
	b = appendJSONString(b, rec.endpoint)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(rec.attempts), 10)
	b = append(b, `,"client_error":`...)
	b = appendJSONString(b, rec.clientErr)
	b = append(b, `,"cache":`...)
	b = appendJSONString(b, rec.cache)
	b = append(b, `,"rejected_by":`...)
	b = appendJSONString(b, rec.rejectedBy)
	return append(b, "}\n"...)
}

// appendText writes the line as logfmt: key=value, values quoted (Go
// syntax) when they are empty or hold a space, a quote, '=' or anything
// but printable ASCII.
func appendText(b []byte, rec *Record, end time.Time, d time.Duration) []byte {
	r := rec.req
	b = append(b, "time="...)
	b = end.UTC().AppendFormat(b, time.RFC3339Nano)
	b = appendTextField(b, "request_id", rec.requestID)
	b = append(b, " trace_id="...)
	if rec.trace.IsValid() {
		b = hex.AppendEncode(b, rec.trace[:])
	} else {
		b = append(b, `""`...)
	}
	b = append(b, " client_ip="...)
	if rec.client.IsValid() {
		b = rec.client.AppendTo(b)
	} else {
		b = append(b, `""`...)
	}
	b = appendTextField(b, "method", r.Method)
	b = appendTextField(b, "host", r.Host)
	b = appendTextField(b, "path", r.URL.Path)
	b = appendTextField(b, "protocol", r.Proto)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(rec.rw.status), 10)
	b = append(b, " bytes_in="...)
	b = strconv.AppendInt(b, rec.bytesIn(), 10)
	b = append(b, " bytes_out="...)
	b = strconv.AppendInt(b, rec.rw.bytes, 10)
	b = append(b, " duration_ms="...)
	b = appendMillis(b, d)
	b = append(b, " upstream_ms="...)
	b = appendMillis(b, rec.upstreamDuration())
	b = appendTextField(b, "route", rec.route)
	b = appendTextField(b, "backend", rec.backend)
	b = appendTextField(b, "endpoint", rec.endpoint)
	b = append(b, " attempts="...)
	b = strconv.AppendInt(b, int64(rec.attempts), 10)
	b = appendTextField(b, "client_error", rec.clientErr)
	b = appendTextField(b, "cache", rec.cache)
	b = appendTextField(b, "rejected_by", rec.rejectedBy)
	return append(b, '\n')
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

func appendTextField(b []byte, key, v string) []byte {
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	if needsQuote(v) {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\' {
			return true
		}
	}
	return false
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD; control characters, '"' and '\' are escaped, and so are '<',
// '>', '&', U+2028 and U+2029, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Sink writes access log lines to a writer (stdout by default) from its
// own goroutine. Requests append their lines to a shared buffer (a copy
// under a mutex); the writer takes the buffer every flushInterval, or as
// soon as wakeBytes wait, and writes it in one call. (Waking the writer
// for every line would cost each request a goroutine switch.)
// A request never waits for the writer: when maxPending bytes already
// wait (the writer is slow), its line is dropped and counted
// (novaedge_access_log_dropped_total); a batch the writer fails to write
// is counted too (novaedge_access_log_write_errors_total).
type Sink struct {
	w    io.Writer
	m    *Metrics
	wake chan struct{} // capacity 1: the writer has something to do
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	pending []byte // lines waiting for the writer
	spare   []byte // the writer's last batch, emptied, for reuse
	closed  bool
	limit   int // of pending bytes
}

const (
	// maxPending bounds the bytes waiting for the writer (some
	// thousands of lines).
	maxPending = 4 << 20
	// wakeBytes waiting wake the writer before its interval.
	wakeBytes = 64 << 10
	// flushInterval is the longest a line waits to be written.
	flushInterval = 100 * time.Millisecond
)

// NewSink starts a sink writing to w; m (may be nil) counts the lines
// dropped and the failed writes. Close stops it.
func NewSink(w io.Writer, m *Metrics) *Sink { return newSink(w, m, maxPending) }

func newSink(w io.Writer, m *Metrics, limit int) *Sink {
	s := &Sink{w: w, m: m, limit: limit, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// put queues the line in *bp and gives bp back to the pool.
func (s *Sink) put(bp *[]byte) {
	line := *bp
	s.mu.Lock()
	if s.closed || len(s.pending)+len(line) > s.limit {
		s.mu.Unlock()
		if s.m != nil {
			s.m.logDropped.Inc()
		}
		linePool.Put(bp)
		return
	}
	before := len(s.pending)
	s.pending = append(s.pending, line...)
	s.mu.Unlock()
	linePool.Put(bp)
	if before < wakeBytes && before+len(line) >= wakeBytes {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Sink) run() {
	defer close(s.done)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.wake:
			s.flush()
		case <-tick.C:
			s.flush()
		case <-s.quit:
			s.flush()
			return
		}
	}
}

// flush writes what waits, batch after batch, until nothing does.
func (s *Sink) flush() {
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = s.spare[:0]
		s.spare = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			s.mu.Lock()
			s.spare = batch
			s.mu.Unlock()
			return
		}
		if _, err := s.w.Write(batch); err != nil && s.m != nil {
			s.m.logWriteErrors.Inc()
		}
		s.mu.Lock()
		if cap(batch) <= s.limit {
			s.spare = batch[:0]
		}
		s.mu.Unlock()
	}
}

// Close writes the lines still waiting and stops the sink. Lines put
// after Close are dropped.
func (s *Sink) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
	})
	<-s.done
}
