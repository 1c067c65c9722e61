package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/cache"
	"github.com/novaedge/novaedge/host/observe"
)

// The response cache of a ProxyGateway (spec.cache)
//
// Where it sits: after the request's policies (a request that fails JWT
// or is over its rate limit never reaches it) and before the upstream.
// A hit is written through the same response path as an upstream
// response, so the response policies (CORS, security headers, rate-limit
// headers), the rule's response header edits and compression apply to it
// per request; what is stored is what the backend sent, before any of
// those, less hop-by-hop fields.
//
// X-Cache on the response: HIT (served from the cache, including a
// request that waited for a concurrent miss of the same key), MISS (the
// cache was consulted and the request went upstream), BYPASS (the request
// may not use the cache: a method other than GET and HEAD, a request
// body, Range, Upgrade, or Cache-Control: no-store). HEAD is served from
// stored GET responses; a HEAD miss goes upstream and is not stored. A
// conditional request (If-None-Match, If-Modified-Since) that a fresh
// stored 200 satisfies is answered 304. A successful unsafe request
// (POST, PUT, PATCH, DELETE) removes what is stored for its URI.
// Request Cache-Control only-if-cached with nothing fresh stored gets 504.
// A stale entry within its stale-while-revalidate window is served (HIT,
// its Age past its freshness) while one background request refreshes it.
//
// Revalidation (RFC 9111 §4.3): an entry with a validator that may not be
// served as it is (stale, stored with no-cache, or the request says
// no-cache, max-age=0, …) is revalidated: the request goes upstream with
// If-None-Match (the entry's ETag) or else If-Modified-Since (its
// Last-Modified). A 304 updates the entry (the 304's fields, a new age)
// and stores it again; the client gets the stored response, 200 with
// its body (or 304 if its own conditional fields match it), with
// X-Cache: REVALIDATED (access log cache "revalidated", counted in
// novaedge_cache_hits_total: the body came from the cache; the re-store
// is not counted in novaedge_cache_stores_total). Any other answer goes
// to the client as a MISS and replaces the entry if it may be stored. A
// client that sent conditional fields of its own gets them passed
// through, not the cache's: the upstream's 304 answers the client's
// validators, and updates the entry only if it carries the entry's
// strong ETag (which then selects it, RFC 9111 §4.3.4); a 304 is never
// stored as a response. Revalidations of one key are coalesced like
// misses, and the stale-while-revalidate refresh is conditional too.
//
// stale-if-error (RFC 5861 §4): a stale entry within the window its
// response gives is served, X-Cache: STALE (access log "stale", counted
// as a hit), when the upstream answers 500, 502, 503 or 504 or gives no
// response (refused, reset, timed out, no healthy endpoint, overloaded),
// unless the request asks for a fresh response (no-cache, max-age,
// min-fresh) or the response said must-revalidate, proxy-revalidate,
// s-maxage or no-cache.
//
// Concurrent misses of one key make one upstream request: the first goes
// upstream, the others wait for it and are served its response if it was
// stored (and they vary like it); otherwise each goes upstream itself, so
// a response that was not stored (private, Set-Cookie, to a request with
// Authorization, …) never reaches another client.
//
// Lifetimes: the cache of a gateway is kept across configuration changes
// as long as the gateway's name and cache settings stay the same (like
// backends, see keep.go). Entries are keyed by their route's fingerprint
// and rule: a changed route never serves what its previous version
// cached; those entries go when their freshness ends or ristretto evicts
// them. POST /cache/purge on the admin API removes entries by key prefix.

// Values of X-Cache.
const (
	cacheHit    = "HIT"
	cacheMiss   = "MISS"
	cacheBypass = "BYPASS"
	// cacheRevalidated: the stored response was served after the
	// upstream confirmed it with a 304 to a conditional request.
	cacheRevalidated = "REVALIDATED"
	// cacheStale: a stale entry served because the upstream failed
	// (stale-if-error).
	cacheStale = "STALE"
)

// cacheKeyOf is the key under which generations share a gateway's cache.
func cacheKeyOf(gw *configs.Gateway) string {
	c := gw.Spec.Cache
	return fmt.Sprintf("%s/%s maxSize=%d maxEntrySize=%d defaultTTL=%s maxTTL=%s",
		gw.Metadata.Namespace, gw.Metadata.Name, c.MaxSize.B(0), c.MaxEntrySize.B(0), c.DefaultTTL.D(0), c.MaxTTL.D(0))
}

// cacheFor returns the cache of a gateway (nil if it has none), kept from
// the previous generation if its settings did not change; st holds a
// reference to it.
func (g *Gateway) cacheFor(st *state, gw *configs.Gateway) (*cache.Cache, error) {
	cfg := gw.Spec.Cache
	if cfg == nil || !cfg.Enabled {
		return nil, nil
	}
	key := cacheKeyOf(gw)
	c, _, err := g.keptCaches.get(key, func() (*cache.Cache, error) {
		// Entries with a validator are kept maxTTL past their freshness,
		// for revalidation.
		return cache.New(cache.Config{
			MaxSize:      cfg.MaxSize.B(0),
			MaxEntrySize: cfg.MaxEntrySize.B(0),
			Policy:       cache.Policy{DefaultTTL: cfg.DefaultTTL.D(0), MaxTTL: cfg.MaxTTL.D(0), Keep: cfg.MaxTTL.D(0)},
			Hooks:        cacheHooks(g.opts.Metrics),
		})
	}, (*cache.Cache).Close)
	if err != nil {
		return nil, fmt.Errorf("gateway %s/%s: cache: %w", gw.Metadata.Namespace, gw.Metadata.Name, err)
	}
	st.heldCaches = append(st.heldCaches, key)
	return c, nil
}

// releaseCaches drops the generation's references to its caches.
func (st *state) releaseCaches() {
	for _, k := range st.heldCaches {
		st.g.keptCaches.put(k)
	}
}

// setCacheScopes gives each rule of a route the scope of its cache keys:
// the route's fingerprint and the rule's index.
func setCacheScopes(rt *configs.Route, rules []*rule) {
	fp := rt.Fingerprint()
	for _, rl := range rules {
		rl.cacheScope = fp + "#" + strconv.Itoa(rl.index)
	}
}

// PurgeCache removes the cached responses whose key ("host/path?query")
// starts with prefix ("" for all) from the caches of the gateway named
// "namespace/name" ("" for every gateway), and returns how many went.
func (g *Gateway) PurgeCache(gateway, prefix string) (int, error) {
	// A reference on each cache keeps a generation that retires it
	// meanwhile from closing it under the purge.
	g.keptCaches.mu.Lock()
	var keys []string
	var caches []*cache.Cache
	for k, e := range g.keptCaches.m {
		name, _, _ := strings.Cut(k, " ")
		if gateway == "" || name == gateway {
			e.refs++
			keys = append(keys, k)
			caches = append(caches, e.v)
		}
	}
	g.keptCaches.mu.Unlock()
	defer func() {
		for _, k := range keys {
			g.keptCaches.put(k)
		}
	}()
	if gateway != "" && len(keys) == 0 {
		return 0, fmt.Errorf("%w: %q", ErrNoSuchCache, gateway)
	}
	n := 0
	for _, c := range caches {
		n += c.Purge(prefix)
	}
	return n, nil
}

// ErrNoSuchCache is returned by PurgeCache for a gateway without a cache.
var ErrNoSuchCache = errors.New("no gateway with a cache")

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

// cacheHooks feed the cache metrics: entries and bytes held (all caches
// together) and evictions.
func cacheHooks(m *observe.Metrics) cache.Hooks {
	if m == nil {
		return cache.Hooks{}
	}
	return cache.Hooks{
		Stored:  func(n int64) { m.Cache.Entries.Inc(); m.Cache.Bytes.Add(float64(n)) },
		Removed: func(n int64) { m.Cache.Entries.Dec(); m.Cache.Bytes.Sub(float64(n)) },
		Evicted: m.Cache.Evictions.Inc,
	}
}

// noteCache records a response's cache status (HIT, MISS, BYPASS,
// REVALIDATED) in its access log line and the cache metrics: a
// revalidated response counts as a hit (served from the cache, its body
// not fetched again), logged as "revalidated".
func (st *state) noteCache(w http.ResponseWriter, status string) {
	var logged string
	hit := true
	switch status {
	case cacheHit:
		logged = "hit"
	case cacheStale:
		logged = "stale"
	case cacheRevalidated:
		logged = "revalidated"
	case cacheMiss:
		logged, hit = "miss", false
	default:
		observe.RecordOf(w).SetCacheStatus("bypass")
		return
	}
	observe.RecordOf(w).SetCacheStatus(logged)
	if m := st.g.opts.Metrics; m != nil {
		if hit {
			m.Cache.Hits.Inc()
		} else {
			m.Cache.Misses.Inc()
		}
	}
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
// misses), storing what may be stored.
func (st *state) serveCached(w http.ResponseWriter, r *http.Request, ctx context.Context, fr *forwardReq, c *cache.Cache) {
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
		st.forward(w, r, ctx, fr)
		return
	}
	if cacheBypassed(r) {
		st.forward(w, r, ctx, fr)
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
		st.forward(w, r, ctx, fr)
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
		st.forward(w, r, ctx, fr)
		cc.commit(primary, public)
		return
	}
	var stored *cache.Entry
	defer func() { c.Finish(primary, f, stored) }() // also when forward aborts
	cc.requestTime = c.Now()
	revalidate()
	st.forward(w, r, ctx, fr)
	stored = cc.commit(primary, public)
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
		st.forward(discardWriter{h: http.Header{}}, out, ctx, &bfr)
		stored = cc.commit(primary, public)
	}()
}

// discardWriter is the ResponseWriter of a background refresh.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

// notModifiedFields are the stored fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}

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
