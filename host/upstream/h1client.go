package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Client is the HTTP/1.1 client of plain-HTTP endpoints. Unlike
// net/http's Transport, which gives every connection a reading and a
// writing goroutine and hands each request and response between them
// over channels, it writes the request and reads the response on the
// caller's goroutine: a connection is taken from the endpoint's idle pool
// (the most recently used first) or dialled, used, and put back once its
// response body has been read to the end. Buffers come from pools and
// stay with a connection only while it is in use.
//
// Requests it cannot send exactly as net/http would (another scheme, an
// Upgrade or Expect: 100-continue, trailers, a body of unknown framing,
// fields net/http would refuse) go to fallback, the backend's
// net/http Transport, unchanged.
type h1Client struct {
	fallback    *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxPerHost  int           // idle connections kept per endpoint
	maxIdle     int           // idle connections kept in all (0: no limit)
	idleTimeout time.Duration // an idle connection is closed after this

	mu     sync.Mutex // guards what follows
	hosts  map[string]*idlePool
	idle   int // idle connections in all pools
	closed bool
}

// idlePool is an endpoint's idle connections, oldest first, and the timer
// that closes those idle for longer than the idle timeout.
type idlePool struct {
	conns []*h1Conn
	timer *time.Timer // nil until a connection is first pooled
}

// h1Conn is one connection to an endpoint.
type h1Conn struct {
	c      *h1Client
	addr   string
	nc     net.Conn
	br     *bufio.Reader // while in use; pooled while idle
	idleAt time.Time     // when it was last pooled
	reused bool          // it served a request before this one
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
	chunkPool  = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
)

// newH1Client builds the native client of a backend whose transport is t
// (its dialer and idle connection settings are the client's).
func newH1Client(t *http.Transport) *h1Client {
	perHost := t.MaxIdleConnsPerHost
	if perHost <= 0 {
		perHost = http.DefaultMaxIdleConnsPerHost
	}
	return &h1Client{
		fallback:    t,
		dial:        t.DialContext,
		maxPerHost:  perHost,
		maxIdle:     t.MaxIdleConns,
		idleTimeout: t.IdleConnTimeout,
		hosts:       make(map[string]*idlePool),
	}
}

// native reports whether the client sends req itself, and if so fills rh.
func (c *h1Client) native(req *http.Request, rh *requestHead) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.User != nil || len(req.Trailer) > 0 {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodTrace:
	default:
		return false // CONNECT, extension methods: net/http's checks
	}
	h := req.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	if !validHeaders(h) {
		return false
	}
	rh.host = req.Host
	if rh.host == "" {
		rh.host = u.Host
	}
	if !validHost(rh.host) {
		return false
	}
	rh.uri = u.RequestURI()
	if rh.uri == "" || rh.uri[0] != '/' || !validURI(rh.uri) {
		return false // net/http refuses a control character or space in it
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	switch te := req.TransferEncoding; {
	case !hasBody:
		rh.chunked, rh.length = false, 0
	case len(te) == 1 && te[0] == "chunked", len(te) == 0 && req.ContentLength == -1:
		rh.chunked, rh.length = true, -1
	case len(te) == 0 && req.ContentLength > 0:
		rh.chunked, rh.length = false, req.ContentLength
	default:
		return false // a body of length 0 or another coding: net/http probes or refuses
	}
	return true
}

// validURI reports whether a request target holds no space or control
// character (which would end the request line early).
func validURI(uri string) bool {
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether host is a plain host[:port] of the characters
// net/http writes without change.
func validHost(host string) bool {
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return host != ""
}

// RoundTrip sends req and returns the response, whose body must be read
// and closed by one goroutine at a time. A pooled connection that fails
// before any byte of a response came back (the endpoint closed it while
// idle) is replaced by a new one once, if the request can be sent again:
// no body was read, and either nothing was written or the method is
// idempotent (or the request has an Idempotency-Key), as net/http does.
func (c *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	var rh requestHead
	if !c.native(req, &rh) {
		return c.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	hasBody := rh.chunked || rh.length > 0
	for try := 0; ; try++ {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, err
		}
		pc, err := c.get(ctx, req.URL.Host, try > 0)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, again, err := pc.roundTrip(ctx, req, &rh)
		if err == nil {
			return resp, nil
		}
		if try == 0 && again && pc.reused && ctx.Err() == nil {
			continue
		}
		if !hasBody {
			closeBody(req) // else its writer closes it
		}
		return nil, err
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// replayable reports whether a request that reached a stale connection
// may be sent again though some of it was written (net/http's rule).
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// aLongTimeAgo is a deadline in the past: it ends any blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// bodyWrite is the outcome of writing a request's body.
type bodyWrite struct {
	done     chan struct{} // closed when the writer returned
	err      error         // set before done is closed
	fromBody bool          // err came from reading the client's body
}

// roundTrip sends req on pc and reads the response head. again reports
// that the request may be sent again on another connection (nothing of a
// response came back, and no byte of the body was read). On error pc is
// closed.
func (pc *h1Conn) roundTrip(ctx context.Context, req *http.Request, rh *requestHead) (resp *http.Response, again bool, err error) {
	nc := pc.nc
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	trace := httptrace.ContextClientTrace(ctx)
	hasBody := rh.chunked || rh.length > 0

	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(nc)
	writeHead(bw, req, rh)
	var bwr *bodyWrite
	if !hasBody {
		err = bw.Flush()
		bw.Reset(nil)
		writerPool.Put(bw)
		if trace != nil && trace.WroteRequest != nil {
			trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
		}
		if err != nil {
			stop()
			pc.close()
			return nil, true, pc.ioErr(ctx, err) // nothing of the request reached the endpoint
		}
	} else {
		// The body goes on its own goroutine while this one reads the
		// response: an endpoint may answer (413, 401…) before it has read
		// the whole body, and a blocked write must not keep its answer
		// from being read (net/http does the same with its write loop).
		bwr = &bodyWrite{done: make(chan struct{})}
		go pc.writeBody(bw, req, rh, bwr, trace)
	}

	hr := headReader{br: pc.br, left: defaultMaxResponseHeaderBytes, first: true}
	resp, f, keep, err := readResponse(&hr, req.Method)
	if err != nil {
		stop()
		pc.close()
		nothing := hr.first && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET))
		again = nothing && !hasBody && (pc.reused && replayable(req))
		if bwr != nil {
			// The writer ends on its next write to the closed connection,
			// or when the client's body ends. It is waited for briefly, not
			// longer (the body may be a slow client's): when the client's
			// connection fails, net/http's server cancels the context
			// before the body's read returns the error, and the error is
			// the client's, not the endpoint's (as net/http's Transport
			// reports its writer's error).
			if waitDone(bwr.done, maxWriteWait) && bwr.fromBody {
				err = bwr.err
			}
		}
		return nil, again, pc.ioErr(ctx, err)
	}
	resp.Request = req
	keep = keep && !req.Close && !httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close")
	if f == framingNone {
		resp.Body = http.NoBody
		pc.done(stop, bwr, keep && pc.br.Buffered() == 0)
		return resp, false, nil
	}
	b := &h1Body{pc: pc, ctx: ctx, stop: stop, bw: bwr, resp: resp, f: f, keep: keep, left: resp.ContentLength}
	if f == framingChunked {
		b.cr = newChunkedReader(pc.br)
	}
	resp.Body = b
	return resp, false, nil
}

// writeBody writes req's body after its head (in bw), then reports to
// bwr. If the client's body fails it closes the connection: the endpoint
// waits for the rest, and what it answers to a body cut short cannot be
// trusted. If writing fails, the connection is left to the reader: the
// endpoint may have answered before it stopped reading (a 413).
func (pc *h1Conn) writeBody(bw *bufio.Writer, req *http.Request, rh *requestHead, bwr *bodyWrite, trace *httptrace.ClientTrace) {
	var err error
	var fromBody bool
	bp := chunkPool.Get().(*[]byte)
	if rh.chunked {
		fromBody, err = writeChunked(bw, req.Body, *bp)
	} else {
		fromBody, err = writeFixed(bw, req.Body, rh.length, *bp)
	}
	chunkPool.Put(bp)
	req.Body.Close()
	bw.Reset(nil)
	writerPool.Put(bw)
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	bwr.err, bwr.fromBody = err, fromBody
	close(bwr.done)
	if fromBody {
		pc.nc.Close() // after done: the reader it wakes sees err
	}
}

// ioErr names an I/O error: the context's error if it ended the I/O.
func (pc *h1Conn) ioErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("upstream %s: %w", pc.addr, err)
}

// maxWriteWait is how long a finished response waits on the writing of
// its request's body before the connection is given up (net/http waits
// as long).
const maxWriteWait = 50 * time.Millisecond

// done ends pc's use after a response: it goes back to the pool if it is
// reusable, the context's watch ended in time, and the body was written
// whole; otherwise it is closed.
func (pc *h1Conn) done(stop func() bool, bwr *bodyWrite, reuse bool) {
	if !stop() {
		reuse = false // the context ended: the deadline may be set
	}
	if bwr != nil && reuse {
		reuse = waitDone(bwr.done, maxWriteWait) && bwr.err == nil
	}
	if !reuse {
		pc.close()
		return
	}
	pc.c.put(pc)
}

// waitDone waits up to d for done to be closed and reports whether it
// was.
func waitDone(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// close closes the connection and returns its reader to the pool.
func (pc *h1Conn) close() {
	pc.nc.Close()
	if pc.br != nil {
		pc.br.Reset(nil)
		readerPool.Put(pc.br)
		pc.br = nil
	}
}

// h1Body is a response body read from its connection. Read and Close
// are called by one goroutine at a time.
type h1Body struct {
	pc   *h1Conn
	ctx  context.Context
	stop func() bool
	bw   *bodyWrite
	resp *http.Response
	f    responseFraming
	cr   io.Reader // the chunked reader
	left int64     // bytes left of a Content-Length body
	keep bool
	err  error // sticky: io.EOF at the end
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch b.f {
	case framingLength:
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err = b.pc.br.Read(p)
		b.left -= int64(n)
		if b.left == 0 {
			err = io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	case framingChunked:
		n, err = b.cr.Read(p)
		if err == io.EOF {
			hr := headReader{br: b.pc.br, left: defaultMaxResponseHeaderBytes}
			if terr := readTrailer(&hr, b.resp); terr != nil {
				err = terr
			}
		}
	default: // framingClose
		n, err = b.pc.br.Read(p)
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.err = io.EOF
		b.pc.done(b.stop, b.bw, b.keep && b.f != framingClose && b.pc.br.Buffered() == 0)
		b.pc = nil
		return n, io.EOF
	}
	if cerr := b.ctx.Err(); cerr != nil {
		err = cerr
	}
	b.err = err
	b.stop()
	b.pc.close()
	b.pc = nil
	return n, err
}

// Close gives the connection up if the body was not read to its end
// (what is left is not drained: it may be long).
func (b *h1Body) Close() error {
	if b.pc != nil {
		b.stop()
		b.pc.close()
		b.pc = nil
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	return nil
}

var errBodyClosed = errors.New("upstream: read on a closed response body")

// get returns an idle connection to addr (the most recently used), or
// dials one; fresh forces a dial. Every idle connection is checked first
// (see alive), at the cost of a system call: one the endpoint closed
// meanwhile is not used, and one on which the endpoint sent anything
// unasked — bytes after a response taken as complete (past its
// Content-Length or last chunk, a body to a HEAD, 204 or 304), arriving
// after it was pooled — is closed, or they would be read as the next
// request's response: another client's (net/http's reading goroutine
// closes such a connection, "Unsolicited response received on idle HTTP
// channel").
func (c *h1Client) get(ctx context.Context, addr string, fresh bool) (*h1Conn, error) {
	for !fresh {
		c.mu.Lock()
		p := c.hosts[addr]
		if p == nil || len(p.conns) == 0 {
			c.mu.Unlock()
			break
		}
		pc := p.conns[len(p.conns)-1]
		p.conns[len(p.conns)-1] = nil
		p.conns = p.conns[:len(p.conns)-1]
		c.idle--
		c.mu.Unlock()
		if !alive(pc.nc) {
			pc.nc.Close()
			continue
		}
		pc.reused = true
		pc.br = readerPool.Get().(*bufio.Reader)
		pc.br.Reset(pc.nc)
		return pc, nil
	}
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(nc)
	return &h1Conn{c: c, addr: addr, nc: nc, br: br}, nil
}

// put pools pc, idle, or closes it if the pools are full or closed.
func (c *h1Client) put(pc *h1Conn) {
	pc.br.Reset(nil)
	readerPool.Put(pc.br)
	pc.br = nil
	now := time.Now()
	pc.idleAt = now
	c.mu.Lock()
	if c.closed || (c.maxIdle > 0 && c.idle >= c.maxIdle) {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	p := c.hosts[pc.addr]
	if p == nil {
		p = &idlePool{}
		c.hosts[pc.addr] = p
	}
	if len(p.conns) >= c.maxPerHost {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	p.conns = append(p.conns, pc)
	c.idle++
	switch {
	case c.idleTimeout <= 0: // kept until closed
	case p.timer == nil:
		addr := pc.addr
		p.timer = time.AfterFunc(c.idleTimeout, func() { c.expire(addr) })
	case len(p.conns) == 1:
		p.timer.Reset(c.idleTimeout)
	}
	c.mu.Unlock()
}

// expire closes addr's connections idle for the idle timeout or longer
// and sets the timer for the next oldest one.
func (c *h1Client) expire(addr string) {
	now := time.Now()
	var stale []*h1Conn
	c.mu.Lock()
	p := c.hosts[addr]
	if p == nil {
		c.mu.Unlock()
		return
	}
	n := 0
	for n < len(p.conns) && now.Sub(p.conns[n].idleAt) >= c.idleTimeout {
		n++
	}
	stale = append(stale, p.conns[:n]...)
	rest := copy(p.conns, p.conns[n:])
	clear(p.conns[rest:])
	p.conns = p.conns[:rest]
	c.idle -= n
	if rest > 0 {
		p.timer.Reset(c.idleTimeout - now.Sub(p.conns[0].idleAt))
	}
	c.mu.Unlock()
	for _, pc := range stale {
		pc.nc.Close()
	}
}

// CloseIdleConnections closes every idle connection, the native ones and
// the fallback's.
func (c *h1Client) CloseIdleConnections() {
	c.closeIdle(func(string) bool { return true })
	c.fallback.CloseIdleConnections()
}

// closeIdleHost closes the idle connections to addr (an endpoint that
// left the backend).
func (c *h1Client) closeIdleHost(addr string) {
	c.closeIdle(func(a string) bool { return a == addr })
}

func (c *h1Client) closeIdle(match func(string) bool) {
	var idle []*h1Conn
	c.mu.Lock()
	for addr, p := range c.hosts {
		if !match(addr) {
			continue
		}
		idle = append(idle, p.conns...)
		c.idle -= len(p.conns)
		if p.timer != nil {
			p.timer.Stop()
		}
		delete(c.hosts, addr)
	}
	c.mu.Unlock()
	for _, pc := range idle {
		pc.nc.Close()
	}
}

// close closes the idle connections and makes the client close every
// connection in use when its response ends.
func (c *h1Client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
}

var _ http.RoundTripper = (*h1Client)(nil)
