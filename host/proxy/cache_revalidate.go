package proxy

import (
	"context"
	"io"
	"net/http"

	"github.com/novaedge/novaedge/host/cache"
)

// Revalidation (RFC 9111 §4.3), the stale-while-revalidate refresh and
// stale-if-error (RFC 5861): what the cache does with an entry that may
// not be served as it is.

// revalidate makes the request one that revalidates a stored entry with
// a validator: unless the client sent conditional fields of its own, the
// entry's validator goes upstream (r's header is the one forward sends;
// cc.reqHeader keeps the client's). A 304 then serves the entry; the
// client's own conditional request gets the upstream's answer, and its
// 304 updates the entry only if it names the entry's strong ETag.
func (cc *cacheCapture) revalidate(r *http.Request, e *cache.Entry, primary, public string) {
	field, value := cache.Validator(e.Header)
	if value == "" {
		return
	}
	cc.reval, cc.primary, cc.public = e, primary, public
	if !cache.Conditional(r.Header) {
		r.Header[field] = []string{value}
		cc.own = true
	}
}

// notModified turns the upstream's 304 to a revalidation into the stored
// response, updated by the 304 and stored again (RFC 9111 §4.3.4): 200
// with its body, or 304 if the client's own conditional fields match it.
func (cc *cacheCapture) notModified(resp *http.Response) {
	h := resp.Header.Clone()
	removeHopHeaders(h)
	delete(h, "X-Cache")
	now := cc.c.Now()
	e, why := cc.c.Revalidated(cc.primary, cc.public, cc.reval, &cache.Response{
		Request: cc.reqHeader, Authenticated: cc.authenticated, Header: h,
		RequestTime: cc.requestTime, ResponseTime: now,
	})
	if why == "" {
		cc.revalidated = e
	}
	cc.xcache = cacheRevalidated
	orig := resp.Body
	entryResponse(resp, cc.reqHeader, http.MethodGet, e, now, cacheRevalidated)
	resp.Body = struct {
		io.Reader
		io.Closer
	}{resp.Body, orig}
}

// refresh fetches a stale entry's replacement in the background
// (stale-while-revalidate), unless a request for the key is already
// upstream. The refresh is the client's request without its policies'
// response side, bounded by the rule's timeout (or drainGrace); it holds
// a reference to the generation, which therefore waits for it to end.
func (st *state) refresh(r *http.Request, fr *forwardReq, c *cache.Cache, e *cache.Entry, primary, public string) {
	f, ok := c.Lead(primary)
	if !ok {
		return
	}
	st.refs.Add(1) // the request holds one: the generation is alive
	out := r.Clone(context.Background())
	out.Body, out.ContentLength = http.NoBody, 0
	cc := &cacheCapture{c: c, xcache: cacheMiss, store: true, reqHeader: out.Header.Clone(), requestTime: c.Now(),
		authenticated: authenticates(fr.match.policies), metrics: st.g.opts.Metrics}
	cc.revalidate(out, e, primary, public)
	bfr := *fr
	bfr.chain, bfr.capture = nil, cc
	timeout := fr.rule.timeout
	if timeout <= 0 {
		timeout = drainGrace
	}
	go func() {
		defer st.release()
		var stored *cache.Entry
		defer func() { c.Finish(primary, f, stored) }()
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				panic(p)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		st.forward(ctx, discardWriter{h: http.Header{}}, out, &bfr)
		stored = cc.commit(primary, public)
	}()
}

// discardWriter is the ResponseWriter of a background refresh.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// upstreamFailed tells whether an upstream status lets a stale entry be
// served in its stead (stale-if-error, RFC 5861 §4).
func upstreamFailed(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// staleOnError serves the stale entry of a request that may fall back on
// it (stale-if-error) when the upstream gave no response; false if there
// is none.
func (st *state) staleOnError(w http.ResponseWriter, r *http.Request, fr *forwardReq) bool {
	cc := fr.capture
	if cc == nil || cc.fallback == nil {
		return false
	}
	cc.xcache = cacheStale
	resp := &http.Response{Request: r}
	entryResponse(resp, cc.reqHeader, r.Method, cc.fallback, cc.c.Now(), cacheStale)
	if err := st.writeResponse(w, r, resp, fr); err != nil {
		panic(http.ErrAbortHandler)
	}
	return true
}
