package proxy

import (
	"io"
	"net/http"
	"time"

	"github.com/novaedge/novaedge/host/cache"
	"github.com/novaedge/novaedge/host/observe"
)

// Storing: the cache's part in a request that goes upstream, which
// captures a storable response's body as the response path reads it and
// stores it once the whole body came through.

// cacheCapture is the cache's part in one request that goes upstream:
// forward hands it the upstream's response before writing it.
type cacheCapture struct {
	c       *cache.Cache
	xcache  string
	metrics *observe.Metrics // nil: none
	store   bool             // a GET miss: capture the response to store it
	// invalidate is the public key an unsafe request removes on success.
	invalidate string
	reqHeader  http.Header // the client's, before forward edits it
	// authenticated: the rule runs an authentication policy.
	authenticated bool
	requestTime   time.Time
	// reval is the stored entry the request revalidates (nil: none);
	// own: the conditional field sent upstream is the cache's, not the
	// client's. primary and public are the entry's keys.
	reval           *cache.Entry
	own             bool
	primary, public string
	revalidated     *cache.Entry // reval updated by a 304 and stored
	// fallback is the stale entry served if the upstream fails
	// (stale-if-error), or nil.
	fallback *cache.Entry

	status       int
	header       http.Header
	responseTime time.Time
	body         *captureBody
}

// begin marks the response and, if it may be stored, starts capturing
// its body as the response path reads it.
func (cc *cacheCapture) begin(resp *http.Response) {
	if cc.invalidate != "" && resp.StatusCode < 400 {
		cc.c.Invalidate(cc.invalidate)
	}
	if cc.fallback != nil && upstreamFailed(resp.StatusCode) {
		orig, method := resp.Body, http.MethodGet
		if resp.Request != nil {
			method = resp.Request.Method
		}
		cc.xcache = cacheStale
		entryResponse(resp, cc.reqHeader, method, cc.fallback, cc.c.Now(), cacheStale)
		drain(orig)
		return
	}
	if cc.reval != nil && resp.StatusCode == http.StatusNotModified &&
		(cc.own || cache.SameStrongETag(resp.Header, cc.reval.Header)) {
		cc.notModified(resp)
		return
	}
	if cc.store && len(resp.Trailer) == 0 && resp.ContentLength <= cc.c.MaxEntrySize() {
		h := resp.Header.Clone()
		removeHopHeaders(h)
		delete(h, "X-Cache")
		if cache.Storable(cc.reqHeader, resp.StatusCode, h, cc.authenticated) == "" {
			cc.status, cc.header, cc.responseTime = resp.StatusCode, h, cc.c.Now()
			b := &captureBody{rc: resp.Body, max: cc.c.MaxEntrySize()}
			if resp.ContentLength > 0 {
				b.buf = make([]byte, 0, resp.ContentLength)
			}
			cc.body = b
			resp.Body = b
		}
	}
	resp.Header["X-Cache"] = []string{cc.xcache}
}

// commit stores the response if its whole body came through.
func (cc *cacheCapture) commit(primary, public string) *cache.Entry {
	if cc.revalidated != nil {
		return cc.revalidated
	}
	b := cc.body
	if b == nil || !b.complete || b.over {
		return nil
	}
	e, _ := cc.c.Store(primary, public, &cache.Response{
		Request: cc.reqHeader, Authenticated: cc.authenticated, Status: cc.status, Header: cc.header, Body: b.buf,
		RequestTime: cc.requestTime, ResponseTime: cc.responseTime,
	})
	if e != nil && cc.metrics != nil {
		cc.metrics.Cache.Stores.Inc()
	}
	return e
}

// captureBody keeps a copy of what is read from the upstream's body, up
// to max bytes; past that it drops the copy and only passes bytes on.
type captureBody struct {
	rc       io.ReadCloser
	max      int64
	buf      []byte
	over     bool
	complete bool
}

func (b *captureBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if !b.over && n > 0 {
		if int64(len(b.buf)+n) > b.max {
			b.over, b.buf = true, nil
		} else {
			b.buf = append(b.buf, p[:n]...)
		}
	}
	if err == io.EOF {
		b.complete = true
	}
	return n, err
}

func (b *captureBody) Close() error { return b.rc.Close() }
