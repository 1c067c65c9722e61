package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/host/compress"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/upstream"
)

// forwardReq is what the router decided about a request.
type forwardReq struct {
	id      string
	rule    *rule
	match   *matchEntry
	peer    netip.Addr
	client  netip.Addr
	trusted bool
	chain   *chainRun        // the request's policies, or nil
	backend *weightedBackend // the rule's backend chosen for this request
	capture *cacheCapture    // the response cache's part, or nil (cache.go)
	rec     *observe.Record  // nil: not observed
	hop     hopInfo          // what the client's hop-by-hop headers asked
	body    *clientBody      // the client's body, or nil
}

// maxReplayBody is the largest request body buffered so that a request
// with a body can be retried on another endpoint.
const maxReplayBody = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// outcome classifies one upstream attempt.
type outcome int

const (
	outcomeOK           outcome = iota // a response below 500
	outcome5xx                         // a 5xx response
	outcomeConnect                     // could not connect: nothing was sent
	outcomeReset                       // connection failed after the request went out
	outcomeTimeout                     // the route's deadline or the per-try timeout passed
	outcomeBodyTooLarge                // the client's body passed the limit
	outcomeClientGone                  // the client went away
	outcomeClientBody                  // the client's body was malformed or cut short
	outcomeBodyTimeout                 // the client stalled sending its body
)

// errHeaderTimeout ends an attempt whose endpoint sent no response
// headers within the backend's responseHeaderTimeout.
var errHeaderTimeout = fmt.Errorf("upstream sent no response headers within the response header timeout: %w", context.DeadlineExceeded)

// forward sends the request upstream, retrying as the rule allows, and
// copies the response back. Each attempt is one call of attempt (in the
// manner of Caddy's proxyLoopIteration), which ends what it started.
func (st *state) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, fr *forwardReq) {
	be := fr.backend.backend
	release, err := be.Acquire(ctx)
	if err != nil {
		if errors.Is(err, upstream.ErrOverloaded) {
			if st.staleOnError(w, r, fr) {
				return
			}
			writeError(w, http.StatusServiceUnavailable, "upstream overloaded", fr.id)
		} else {
			st.writeCtxError(w, r, fr.id)
		}
		return
	}
	defer release()

	rp := fr.rule.retry
	if rp != nil {
		rp.active.Add(1)
		defer rp.active.Add(-1)
	}
	ls := &attempts{hashKey: be.HashKey(r, fr.client), body: fr.body}
	if r.Body == nil || r.Body == http.NoBody {
		ls.body = nil // a request made from the client's (a cache refresh)
	}
	ls.tried = ls.triedBuf[:0]
	st.outgoing(ctx, r, fr, ls)
	if !st.attemptBody(ctx, w, r, fr, ls) {
		return
	}
	if ls.replay != nil {
		defer bufPool.Put(ls.pooled)
	}
	for n := 0; ; n++ {
		if !st.attempt(ctx, w, r, fr, ls, n) {
			return
		}
		ok := sleepCtx(ctx, rp.backoff(n+1))
		rp.doneRetry()
		if !ok {
			st.writeCtxError(w, r, fr.id)
			return
		}
	}
}

// attempts is what the attempts of one request share.
type attempts struct {
	out     *http.Request // the outgoing request, shared by the attempts
	u       *url.URL      // its URL; the host is the attempt's endpoint
	upgrade string        // the protocol the client asked to switch to, or ""
	replay  []byte        // the buffered body, for a retry (nil: none)
	pooled  *[]byte       // replay's pooled buffer
	guard   *onceBody     // a streamed body a retry may send if untouched
	body    *clientBody   // the client's body, whose errors are the client's

	hashKey  uint64
	triedBuf [4]*upstream.Endpoint
	tried    []*upstream.Endpoint
}

// outgoing prepares the request that goes upstream: its headers (the
// incoming request's map, edited in place, which costs no copy) and URL.
func (st *state) outgoing(ctx context.Context, r *http.Request, fr *forwardReq, ls *attempts) {
	rl := fr.rule
	h := r.Header
	// The client's hop-by-hop headers went before the policies (serve);
	// these are any a policy added.
	deleteHopHeaders(h)
	// Only the protocols the rule allows are asked for; any other
	// Upgrade is dropped and the request goes as a plain one (as Envoy
	// does without an upgrade_config for it).
	if up := allowedUpgrade(fr.hop.upgrade, rl.upgrades); up != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{up}
		ls.upgrade = up
	}
	if fr.hop.teTrailers {
		h["Te"] = []string{"trailers"}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	setForwarded(h, fr.peer, fr.trusted, r.Host, proto)
	rl.reqHeaders.apply(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // keep Go's client from adding its own
	}

	u := &url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out := r.WithContext(ctx)
	out.URL = u
	out.RequestURI = ""
	out.Close = false
	if rw := rl.rewrite; rw != nil {
		if rw.Hostname != "" {
			out.Host = rw.Hostname
		}
		if rw.Path != nil {
			u.Path = rewritePath(u.Path, rw.Path.Type, rw.Path.Value, fr.match)
			u.RawPath = ""
		}
	}
	ls.out, ls.u = out, u
}

// attemptBody decides whether the body can be sent more than once: a
// small body of a request that may be retried is buffered; a larger one
// may be offered again only if the first attempt never read it. It
// reports false if the request was answered (its body could not be read).
func (st *state) attemptBody(ctx context.Context, w http.ResponseWriter, r *http.Request, fr *forwardReq, ls *attempts) bool {
	rp := fr.rule.retry
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		ls.out.Body = http.NoBody
	case rp != nil && r.ContentLength > 0 && r.ContentLength <= maxReplayBody:
		bp := bufPool.Get().(*[]byte)
		buf := (*bp)[:0]
		if int64(cap(buf)) < r.ContentLength {
			buf = make([]byte, 0, r.ContentLength)
		}
		n, err := io.ReadFull(r.Body, buf[:r.ContentLength])
		if err != nil {
			bufPool.Put(bp)
			if !fr.answeredByPolicy(ctx, st, w, r) {
				writeClientError(w, r, err, fr.id)
			}
			return false
		}
		ls.replay, ls.pooled = buf[:n], bp
		ls.out.Body = io.NopCloser(bytes.NewReader(ls.replay))
	case rp != nil:
		ls.guard = &onceBody{rc: r.Body}
		ls.out.Body = ls.guard
	}
	return true
}

// request returns the request of attempt n: the outgoing request for the
// first, a copy with the body offered again for a retry.
func (ls *attempts) request(ctx context.Context, n int) *http.Request {
	if n == 0 {
		return ls.out
	}
	req := ls.out.Clone(ctx)
	req.URL = ls.u
	if ls.replay != nil {
		req.Body = io.NopCloser(bytes.NewReader(ls.replay))
	} else if ls.guard != nil {
		req.Body = ls.guard
	}
	return req
}

// attempt makes attempt n: it picks an endpoint, sends the request and
// either copies the response to the client or answers the failure. It
// reports true when the attempt failed and the request is to be retried
// (after the backoff, which the caller sleeps): the retry budget is then
// held until the caller's doneRetry. The endpoint's result, the attempt's
// record and its per-try timeout end when it returns.
func (st *state) attempt(ctx context.Context, w http.ResponseWriter, r *http.Request, fr *forwardReq, ls *attempts, n int) (retry bool) {
	be := fr.backend.backend
	rp := fr.rule.retry
	ep, err := be.Pick(ls.hashKey, ls.tried)
	if err != nil {
		if !st.staleOnError(w, r, fr) {
			writeError(w, http.StatusServiceUnavailable, "no healthy upstream", fr.id)
		}
		return false
	}
	ls.u.Host = ep.Addr()
	req := ls.request(ctx, n)
	if rp != nil && rp.perTry > 0 {
		actx, cancel := context.WithTimeout(ctx, rp.perTry)
		defer cancel()
		req = req.WithContext(actx)
	}
	var ht *headerTimer
	if d := fr.backend.headerTimeout; d > 0 {
		ht = newHeaderTimer(d)
		defer ht.stop()
		req = req.WithContext(ht.context(req.Context()))
	}
	at := fr.rec.StartAttempt(ep.Addr(), req.Header)
	defer at.End()
	a := ep.Begin()
	start := time.Now()
	result := upstream.Canceled
	defer func() { a.End(result, time.Since(start)) }()

	resp, err := be.Transport().RoundTrip(req)
	if ht.expired() {
		if resp != nil {
			resp.Body.Close()
			resp = nil
		}
		err = errHeaderTimeout
	}
	if err == nil && ls.body.failed() != nil {
		// The endpoint answered, but the client's body was bad: what
		// follows the body on the connection cannot be trusted.
		resp.Body.Close()
		resp, err = nil, ls.body.failed()
	}
	oc := classify(ctx, r, ls.body, resp, err)
	result = oc.result()
	if err != nil {
		at.Headers(0, err)
	} else {
		at.Headers(resp.StatusCode, nil)
	}

	if rp != nil && n < rp.maxRetries && rp.wants(oc, resp) && safeToReplay(r, oc, ls.replay != nil, ls.guard) && rp.allowRetry() {
		if resp != nil {
			drain(resp.Body)
		}
		fr.rec.Retry()
		ls.tried = append(ls.tried, ep)
		return true
	}

	if err != nil {
		if fr.answeredByPolicy(r.Context(), st, w, r) {
			result = upstream.Canceled
			return false
		}
		switch oc {
		case outcomeClientBody, outcomeBodyTimeout:
			writeClientError(w, r, ls.body.failed(), fr.id)
			return false
		case outcomeClientGone:
		default:
			if st.staleOnError(w, r, fr) {
				return false
			}
		}
		st.writeAttemptError(w, r, oc, fr.id)
		return false
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		st.upgrade(w, r, resp, ls.upgrade, fr)
		return false
	}
	if fr.capture != nil {
		fr.capture.begin(resp)
	}
	copyErr := st.writeResponse(w, r, resp, fr)
	resp.Body.Close()
	if copyErr != nil {
		// The status line is gone; the only honest signal left to the
		// client is a broken stream.
		compress.Abort(w)
		panic(http.ErrAbortHandler)
	}
	return false
}

// result maps an attempt's outcome to what the endpoint's health and
// outlier detection learn from it.
func (o outcome) result() upstream.Result {
	switch o {
	case outcomeOK:
		return upstream.Success
	case outcomeBodyTooLarge, outcomeClientGone, outcomeClientBody, outcomeBodyTimeout:
		return upstream.Canceled // the client's doing, not the endpoint's
	case outcome5xx:
		return upstream.Failure
	case outcomeTimeout:
		return upstream.Timeout
	case outcomeConnect:
		return upstream.ConnectFailure
	default:
		return upstream.Reset
	}
}

// classify names the outcome of an attempt: ctx is the request's (its
// route timeout), r the client's request, body its body (nil: none). An
// error reading the client's body is the client's, whatever the
// transport made of it; it is checked before the client's context, which
// net/http cancels when a read from the connection fails.
func classify(ctx context.Context, r *http.Request, body *clientBody, resp *http.Response, err error) outcome {
	if err == nil {
		if resp.StatusCode >= 500 {
			return outcome5xx
		}
		return outcomeOK
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return outcomeBodyTooLarge
	case body.failed() != nil:
		if err := body.failed(); errors.Is(err, errBodyTimeout) || errors.Is(err, errBodyTooSlow) {
			return outcomeBodyTimeout
		}
		return outcomeClientBody
	case r.Context().Err() != nil:
		return outcomeClientGone
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return outcomeConnect
	}
	return outcomeReset
}

// wants reports whether the policy retries this outcome.
func (p *retryPolicy) wants(oc outcome, resp *http.Response) bool {
	switch oc {
	case outcome5xx:
		if p.on&retryOn5xx != 0 {
			return true
		}
		c := resp.StatusCode
		return p.on&retryOnGatewayError != 0 && (c == 502 || c == 503 || c == 504)
	case outcomeConnect:
		return p.on&(retryOnConnectFailure|retryOn5xx|retryOnGatewayError) != 0
	case outcomeReset:
		return p.on&(retryOnReset|retryOn5xx|retryOnGatewayError) != 0
	case outcomeTimeout:
		return p.on&(retryOn5xx|retryOnGatewayError) != 0
	}
	return false
}

// safeToReplay decides whether a failed attempt may be sent again. A
// connection failure sent nothing, so any method may be retried as long as
// its body was not consumed. Anything else reached the backend, which may
// have acted on it: only idempotent methods (RFC 9110 §9.2.2) or requests
// carrying an Idempotency-Key are retried, and only if the body can be
// sent again.
func safeToReplay(r *http.Request, oc outcome, buffered bool, guard *onceBody) bool {
	bodyOK := r.Body == nil || r.Body == http.NoBody || buffered || (guard != nil && !guard.touched.Load())
	if !bodyOK {
		return false
	}
	if oc == outcomeConnect {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	return ok
}

// onceBody lets a streamed body be offered to a second attempt if the
// first never read from it (the connection could not be made).
type onceBody struct {
	rc      io.ReadCloser
	touched atomic.Bool
}

func (b *onceBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	return b.rc.Read(p)
}

// Close is a no-op: the server closes the request body when the handler
// returns, and an attempt's transport must not close it under a retry.
func (b *onceBody) Close() error { return nil }

func drain(body io.ReadCloser) {
	io.CopyN(io.Discard, body, 4<<10)
	body.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (st *state) writeCtxError(w http.ResponseWriter, r *http.Request, id string) {
	if r.Context().Err() != nil {
		return // the client is gone; nobody to answer
	}
	writeError(w, http.StatusGatewayTimeout, "upstream request timeout", id)
}

func (st *state) writeAttemptError(w http.ResponseWriter, r *http.Request, oc outcome, id string) {
	switch oc {
	case outcomeBodyTooLarge:
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large", id)
	case outcomeClientGone:
	case outcomeTimeout:
		writeError(w, http.StatusGatewayTimeout, "upstream request timeout", id)
	case outcomeConnect:
		writeError(w, http.StatusServiceUnavailable, "upstream connect error", id)
	default:
		writeError(w, http.StatusBadGateway, "upstream connection error", id)
	}
}

// writeResponse copies the upstream response to the client: headers less
// hop-by-hop ones, the rule's response header edits, the body (flushed as
// it arrives when the response streams), and trailers.
func (st *state) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, fr *forwardReq) error {
	rl := fr.rule
	h := w.Header()
	removeHopHeaders(resp.Header)
	var rb *responseBody
	if cr := fr.chain; cr != nil {
		eos := r.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
			resp.StatusCode == http.StatusNotModified || (resp.ContentLength == 0 && len(resp.Trailer) == 0)
		local, err := cr.runResponse(r.Context(), st, resp.StatusCode, resp.Header, eos, fr.id)
		if err != nil {
			st.g.log.Warn("policy failed on the response; failing closed", "request_id", fr.id, "error", err)
			writeError(w, http.StatusServiceUnavailable, "policy failed", fr.id)
			return nil
		}
		if local != nil {
			writeLocal(w, local.Status, local.Headers, local.Body)
			return nil
		}
		if !eos && cr.hasBody() {
			rb = &responseBody{st: st, cr: cr, w: w, id: fr.id, status: resp.StatusCode}
		}
	}
	id := h["X-Request-Id"]
	for k, vv := range resp.Header {
		h[k] = vv
	}
	h["X-Request-Id"] = id
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: the client gets what the backend sent
	}
	if n := len(resp.Trailer); n > 0 {
		names := make([]string, 0, n)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = names
	}
	rl.respHeaders.apply(h)

	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	var flusher http.Flusher
	if flush {
		flusher, _ = w.(http.Flusher)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	if rb != nil {
		rb.flusher = flusher
		if err := rb.copy(r.Context(), resp, buf); err != nil {
			return err
		}
		copyTrailers(h, resp.Trailer)
		return nil
	}
	w.WriteHeader(resp.StatusCode)
	if flusher != nil {
		flusher.Flush() // let the client see the headers of a stream at once
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; nothing to tell it
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	copyTrailers(h, resp.Trailer)
	return nil
}

// copyTrailers sets the upstream's trailers on the response to the client.
func copyTrailers(h, trailer http.Header) {
	if len(trailer) == 0 {
		return
	}
	announced := h["Trailer"]
	for k, vv := range trailer {
		if contains(announced, k) {
			h[k] = vv
		} else {
			h[http.TrailerPrefix+k] = vv
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && ct[0][:17] == "text/event-stream"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// headerTimer is an attempt's response header timeout: it starts when the
// transport has written the whole request (httptrace's WroteRequest; a
// slow client's body is not the endpoint's time) and cancels the
// attempt's context when it expires.
type headerTimer struct {
	d      time.Duration
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	t     *time.Timer
	fired bool
	done  bool
}

func newHeaderTimer(d time.Duration) *headerTimer { return &headerTimer{d: d} }

// context returns ctx with the timer's cancellation and the trace hook
// that starts it.
func (ht *headerTimer) context(ctx context.Context) context.Context {
	ctx, ht.cancel = context.WithCancelCause(ctx)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				return
			}
			ht.mu.Lock()
			defer ht.mu.Unlock()
			if ht.done {
				return
			}
			if ht.t != nil {
				ht.t.Reset(ht.d) // the transport sent the request again
				return
			}
			ht.t = time.AfterFunc(ht.d, func() {
				ht.mu.Lock()
				if ht.done { // the headers came first
					ht.mu.Unlock()
					return
				}
				ht.fired = true
				ht.mu.Unlock()
				ht.cancel(errHeaderTimeout)
			})
		},
	})
}

// expired stops the timer (the response headers are in, or the attempt
// failed) and reports whether it had fired: then the attempt is a
// timeout, whatever the transport returned. Safe on nil.
func (ht *headerTimer) expired() bool {
	if ht == nil {
		return false
	}
	ht.mu.Lock()
	defer ht.mu.Unlock()
	ht.done = true
	if ht.t != nil {
		ht.t.Stop()
	}
	return ht.fired
}

// stop ends the timer and the attempt's context.
func (ht *headerTimer) stop() {
	ht.expired()
	if ht.cancel != nil {
		ht.cancel(context.Canceled)
	}
}
