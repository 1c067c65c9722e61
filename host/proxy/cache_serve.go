package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/novaedge/novaedge/host/cache"
)

// Serving from the cache: whether a request may use it, the lookup, a
// hit written through the response path, and a miss sent upstream (one
// request for concurrent misses of a key).

// authenticates tells whether a policy that authenticates
// (PolicyTraits.Authenticates: JWT, KeyAuth, a Wasm policy that declares
// wasm.authenticates) runs on the request: its response is then treated
// as one to a request with Authorization (the policy may have removed the
// credentials: KeyAuth does).
func authenticates(policies []*boundPolicy) bool {
	for _, bp := range policies {
		if bp.traits.Authenticates {
			return true
		}
	}
	return false
}

// cacheBypassed tells whether a GET or HEAD may not use the cache.
func cacheBypassed(r *http.Request) bool {
	if r.ContentLength != 0 || len(r.Header["Range"]) > 0 || len(r.Header["Upgrade"]) > 0 {
		return true
	}
	return cache.ParseCacheControl(r.Header["Cache-Control"]).NoStore
}

// serveCached serves a request on a route of a gateway with a cache:
// from the cache when it can, else upstream (one request for concurrent
// misses), storing what may be stored. ctx bounds the upstream request
// (the rule's timeout).
func (st *state) serveCached(ctx context.Context, w http.ResponseWriter, r *http.Request, fr *forwardReq, c *cache.Cache) {
	cc := &cacheCapture{c: c, xcache: cacheBypass, metrics: st.g.opts.Metrics}
	fr.capture = cc
	hit := false // serveEntry notes hits
	defer func() {
		if !hit {
			st.noteCache(w, cc.xcache)
		}
	}()
	primary, public := cache.Key(fr.rule.cacheScope, normalizeHost(r.Host), r.URL.EscapedPath(), r.URL.RawQuery)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		cc.invalidate = public
		fallthrough
	default:
		st.forward(ctx, w, r, fr)
		return
	}
	if cacheBypassed(r) {
		st.forward(ctx, w, r, fr)
		return
	}
	e := c.Lookup(primary, r.Header)
	if e != nil {
		now := c.Now()
		age := e.Age(now)
		if cache.Fits(r.Header, age, e.Lifetime) {
			hit = true
			st.serveEntry(w, r, fr, e, now)
			return
		}
		if cache.StaleFits(r.Header, age, e.Lifetime, e.StaleWindow) {
			st.refresh(r, fr, c, e, primary, public)
			hit = true
			st.serveEntry(w, r, fr, e, now)
			return
		}
	}
	if e != nil && cache.StaleFits(r.Header, e.Age(c.Now()), e.Lifetime, e.ErrorWindow) {
		cc.fallback = e // stale-if-error
	}
	if cache.ParseCacheControl(r.Header["Cache-Control"]).OnlyIfCached {
		writeError(w, http.StatusGatewayTimeout, "not in cache (only-if-cached)", fr.id)
		return
	}
	cc.xcache = cacheMiss
	if r.Method == http.MethodHead {
		st.forward(ctx, w, r, fr)
		return
	}
	cc.store = true
	cc.reqHeader = r.Header.Clone()
	cc.authenticated = authenticates(fr.match.policies)
	// revalidate adds the entry's validator to r's header: after the
	// wait, which may serve the entry to r as it is.
	revalidate := func() {
		if e != nil {
			cc.revalidate(r, e, primary, public)
		}
	}
	f, leader := c.Join(primary)
	if !leader {
		e, ok := f.Wait(r.Context())
		if !ok {
			return // the client went away
		}
		if e != nil && e.Matches(primary, r.Header) {
			hit = true
			st.serveEntry(w, r, fr, e, c.Now())
			return
		}
		cc.requestTime = c.Now()
		revalidate()
		st.forward(ctx, w, r, fr)
		cc.commit(primary, public)
		return
	}
	var stored *cache.Entry
	defer func() { c.Finish(primary, f, stored) }() // also when forward aborts
	cc.requestTime = c.Now()
	revalidate()
	st.forward(ctx, w, r, fr)
	stored = cc.commit(primary, public)
}

// serveEntry answers a request from a stored response, through the
// response path (the response policies and header edits apply).
func (st *state) serveEntry(w http.ResponseWriter, r *http.Request, fr *forwardReq, e *cache.Entry, now time.Time) {
	st.noteCache(w, cacheHit)
	resp := &http.Response{Request: r}
	entryResponse(resp, r.Header, r.Method, e, now, cacheHit)
	if err := st.writeResponse(w, r, resp, fr); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// notModifiedFields are the stored fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}

// entryResponse makes resp the stored response e as it answers a request
// with this header and method: 304 if the request's conditional fields
// match a stored 200, else the stored status, header and body (none for
// HEAD); with its Age at now and X-Cache.
func entryResponse(resp *http.Response, reqHeader http.Header, method string, e *cache.Entry, now time.Time, xcache string) {
	resp.StatusCode, resp.Body, resp.ContentLength = e.Status, http.NoBody, 0
	resp.TransferEncoding, resp.Trailer = nil, nil
	if e.Status == http.StatusOK && cache.NotModified(reqHeader, e.Header) {
		resp.StatusCode = http.StatusNotModified
		resp.Header = http.Header{}
		for _, k := range notModifiedFields {
			if v, ok := e.Header[k]; ok {
				resp.Header[k] = slices.Clone(v)
			}
		}
	} else {
		resp.Header = e.Header.Clone()
		if e.Status != http.StatusNoContent {
			resp.Header["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
		}
		resp.ContentLength = int64(len(e.Body))
		if method != http.MethodHead {
			resp.Body = io.NopCloser(bytes.NewReader(e.Body))
		}
	}
	resp.Header["Age"] = []string{strconv.FormatInt(int64(e.Age(now)/time.Second), 10)}
	resp.Header["X-Cache"] = []string{xcache}
}
