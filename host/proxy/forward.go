package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
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
)

// forward sends the request upstream, retrying as the rule allows, and
// copies the response back.
func (st *state) forward(w http.ResponseWriter, r *http.Request, ctx context.Context, fr *forwardReq) {
	rl := fr.rule
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

	rp := rl.retry
	if rp != nil {
		rp.active.Add(1)
		defer rp.active.Add(-1)
	}

	// The outgoing request shares the incoming one's header map: it is
	// edited in place, which costs no copy.
	h := r.Header
	upgrade, teTrailers := removeHopHeaders(h)
	if upgrade != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{upgrade}
	}
	if teTrailers {
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

	// Can the body be sent more than once?
	var replay []byte
	var guard *onceBody
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		out.Body = http.NoBody
	case rp != nil && r.ContentLength > 0 && r.ContentLength <= maxReplayBody:
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := (*bp)[:0]
		if int64(cap(buf)) < r.ContentLength {
			buf = make([]byte, 0, r.ContentLength)
		}
		n, err := io.ReadFull(r.Body, buf[:r.ContentLength])
		if err != nil {
			if !fr.answeredByPolicy(r.Context(), st, w, r) {
				writeError(w, http.StatusBadRequest, "could not read request body", fr.id)
			}
			return
		}
		replay = buf[:n]
		out.Body = io.NopCloser(bytes.NewReader(replay))
	case rp != nil:
		guard = &onceBody{rc: r.Body}
		out.Body = guard
	}

	hashKey := be.HashKey(r, fr.client)
	var triedBuf [4]*upstream.Endpoint
	tried := triedBuf[:0]
	attemptReq := out
	for attempt := 0; ; attempt++ {
		ep, err := be.Pick(hashKey, tried)
		if err != nil {
			if !st.staleOnError(w, r, fr) {
				writeError(w, http.StatusServiceUnavailable, "no healthy upstream", fr.id)
			}
			return
		}
		u.Host = ep.Addr()
		var cancel context.CancelFunc
		if rp != nil && rp.perTry > 0 {
			var actx context.Context
			actx, cancel = context.WithTimeout(ctx, rp.perTry)
			attemptReq = out.WithContext(actx)
		}
		at := fr.rec.StartAttempt(ep.Addr(), attemptReq.Header)
		a := ep.Begin()
		start := time.Now()
		resp, err := be.Transport().RoundTrip(attemptReq)
		oc := classify(r, ctx, resp, err)
		if err != nil {
			at.Headers(0, err)
		} else {
			at.Headers(resp.StatusCode, nil)
		}

		if rp != nil && attempt < rp.maxRetries && rp.wants(oc, resp) && safeToReplay(r, oc, replay != nil, guard) {
			if rp.allowRetry() {
				a.End(oc.result(), time.Since(start))
				if resp != nil {
					drain(resp.Body)
				}
				at.End()
				fr.rec.Retry()
				if cancel != nil {
					cancel()
				}
				if !sleepCtx(ctx, rp.backoff(attempt+1)) {
					rp.doneRetry()
					st.writeCtxError(w, r, fr.id)
					return
				}
				tried = append(tried, ep)
				attemptReq = out.Clone(ctx)
				attemptReq.URL = u
				if replay != nil {
					attemptReq.Body = io.NopCloser(bytes.NewReader(replay))
				} else if guard != nil {
					attemptReq.Body = guard
				}
				rp.doneRetry()
				continue
			}
		}

		if err != nil {
			at.End()
			if cancel != nil {
				cancel()
			}
			if fr.answeredByPolicy(r.Context(), st, w, r) {
				a.End(upstream.Canceled, time.Since(start))
				return
			}
			a.End(oc.result(), time.Since(start))
			if oc != outcomeClientGone && st.staleOnError(w, r, fr) {
				return
			}
			st.writeAttemptError(w, r, oc, fr.id)
			return
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			a.End(upstream.Success, time.Since(start))
			at.End()
			st.upgrade(w, r, resp, upgrade, fr)
			if cancel != nil {
				cancel()
			}
			return
		}
		if fr.capture != nil {
			fr.capture.begin(resp)
		}
		copyErr := st.writeResponse(w, r, resp, fr)
		a.End(oc.result(), time.Since(start))
		at.End()
		resp.Body.Close()
		if cancel != nil {
			cancel()
		}
		if copyErr != nil {
			// The status line is gone; the only honest signal left to the
			// client is a broken stream.
			compress.Abort(w)
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// result maps an attempt's outcome to what the endpoint's health and
// outlier detection learn from it.
func (o outcome) result() upstream.Result {
	switch o {
	case outcomeOK:
		return upstream.Success
	case outcomeBodyTooLarge, outcomeClientGone:
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

func classify(r *http.Request, ctx context.Context, resp *http.Response, err error) outcome {
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
