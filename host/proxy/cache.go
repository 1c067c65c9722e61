package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

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
//
// The files: cache.go (this overview, a gateway's cache across
// generations, purge, metrics), cache_serve.go (may a request use the
// cache, lookup, hits, misses), cache_store.go (capturing and storing
// what the upstream sends), cache_revalidate.go (revalidation,
// stale-while-revalidate, stale-if-error).

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
