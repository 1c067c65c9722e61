// Package cache is NovaEdge's HTTP response cache: a shared cache in the
// sense of RFC 9111, held in memory by ristretto (its cost is an entry's
// size in bytes, headers included), with Vary support, purging by key
// prefix and request coalescing. It knows nothing of routes or policies:
// host/proxy decides which requests reach it (see freshness.go for the
// rules it applies).
//
// Keys. A primary key is a scope (the proxy uses the route's fingerprint
// and the rule, so a changed route never serves what its previous version
// cached) and a public part, "host/path?query", which is what Purge
// matches prefixes against. A response that varies has a small marker
// under its primary key naming the fields it varies on, and lives under a
// secondary key made of the primary key and the request's values of
// those fields.
package cache

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Config sizes a Cache.
type Config struct {
	MaxSize      int64 // bytes held at most
	MaxEntrySize int64 // bytes of body above which a response is not stored
	Policy
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Hooks, if set, follow what the cache holds (for metrics).
	Hooks Hooks
}

// Hooks are told of entries going in and out; any may be nil. They run
// under the cache's locks: they must be quick and not call the cache.
type Hooks struct {
	Stored  func(bytes int64) // an entry of this cost went in
	Removed func(bytes int64) // an entry of this cost went out (any reason)
	Evicted func()            // ristretto evicted an entry to make room
}

// Cache is a response cache. Safe for concurrent use.
type Cache struct {
	cfg Config
	rc  *ristretto.Cache[string, *Entry]

	storeMu sync.Mutex // one store at a time: see set

	mu      sync.Mutex
	index   map[string]map[string]*Entry // public key → key → entry held by rc
	flights map[string]*Flight
}

// Entry is a stored response, or the marker of a response that varies.
// It is never modified once stored.
type Entry struct {
	key     string // ristretto key
	primary string
	public  string
	marker  bool
	vary    []string // fields the response varies on (canonical, sorted)
	held    int64    // what it counts against MaxSize

	Status int
	Header http.Header // as the upstream sent it, less hop-by-hop fields
	Body   []byte

	responseTime time.Time
	initialAge   time.Duration
	Lifetime     time.Duration
	// StaleWindow is how long past Lifetime the entry may be served while
	// it is refreshed (stale-while-revalidate).
	StaleWindow time.Duration
	// ErrorWindow is how long past Lifetime the entry may be served when
	// the upstream fails (stale-if-error).
	ErrorWindow time.Duration
}

// Age is the entry's current age (RFC 9111 §4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	return e.initialAge + max(now.Sub(e.responseTime), 0)
}

// entryOverhead is what an entry costs besides its bytes: the structs and
// map slots around it, roughly.
const entryOverhead = 256

// New makes a cache; Close releases it.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxSize <= 0 {
		return nil, fmt.Errorf("cache maxSize must be positive, not %d", cfg.MaxSize)
	}
	if cfg.MaxEntrySize <= 0 || cfg.MaxEntrySize > cfg.MaxSize {
		cfg.MaxEntrySize = cfg.MaxSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{cfg: cfg, index: map[string]map[string]*Entry{}, flights: map[string]*Flight{}}
	// Ten counters per entry the cache may hold, reckoning 1 KiB an entry.
	counters := min(max(cfg.MaxSize/1024*10, 10_000), 10_000_000)
	rc, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxSize,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnExit:             c.forget,
		OnEvict: func(*ristretto.Item[*Entry]) {
			if c.cfg.Hooks.Evicted != nil {
				c.cfg.Hooks.Evicted()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	return c, nil
}

// Close releases the cache's memory and goroutines.
func (c *Cache) Close() { c.rc.Close() }

// MaxEntrySize is the largest body stored.
func (c *Cache) MaxEntrySize() int64 { return c.cfg.MaxEntrySize }

// Now is the cache's clock.
func (c *Cache) Now() time.Time { return c.cfg.Now() }

// Key is the primary key of a request: scope, then the public part.
func Key(scope, host, path, rawQuery string) (key, public string) {
	public = host + path
	if rawQuery != "" {
		public += "?" + rawQuery
	}
	return scope + "\x00" + public, public
}

// variantKey is the secondary key of a request for a response varying on
// fields.
func variantKey(primary string, fields []string, req http.Header) string {
	var b strings.Builder
	b.WriteString(primary)
	b.WriteString("\x00vary")
	for _, f := range fields {
		var vals []string
		for _, line := range req[f] {
			for _, v := range strings.Split(line, ",") {
				vals = append(vals, strings.TrimSpace(v))
			}
		}
		b.WriteString("\x00")
		b.WriteString(f)
		b.WriteString("=")
		if vals == nil {
			b.WriteString("-") // absent differs from empty
		} else {
			b.WriteString(strconv.Quote(strings.Join(vals, ",")))
		}
	}
	return b.String()
}

// Lookup returns the entry stored for a request: under the primary key,
// or under the secondary key of the request if the response varies. It
// does not check freshness.
func (c *Cache) Lookup(primary string, req http.Header) *Entry {
	e, ok := c.rc.Get(primary)
	if !ok || e == nil || e.key != primary {
		return nil
	}
	if !e.marker {
		return e
	}
	vk := variantKey(primary, e.vary, req)
	v, ok := c.rc.Get(vk)
	if !ok || v == nil || v.key != vk {
		return nil
	}
	return v
}

// Matches tells whether the entry answers a request with this header: the
// same values of the fields it varies on.
func (e *Entry) Matches(primary string, req http.Header) bool {
	if len(e.vary) == 0 {
		return e.key == primary
	}
	return e.key == variantKey(primary, e.vary, req)
}

// Response is an upstream response offered to the cache.
type Response struct {
	Request http.Header // the request's header as it went upstream, before the gateway's own edits
	// Authenticated: the request passed an authentication policy (see
	// Storable).
	Authenticated bool
	Status        int
	Header        http.Header // owned by the cache from now on
	Body          []byte
	RequestTime   time.Time // when the request went upstream
	ResponseTime  time.Time // when the response's header came back
}

// Store stores a response under a primary key if the rules allow (see
// freshness.go). It returns the entry, or nil and why not. The entry is
// visible to Lookup when Store returns, unless the cache's admission
// policy turned it away.
func (c *Cache) Store(primary, public string, r *Response) (*Entry, string) {
	if why := Storable(r.Request, r.Status, r.Header, r.Authenticated); why != "" {
		return nil, why
	}
	if int64(len(r.Body)) > c.cfg.MaxEntrySize {
		return nil, "larger than maxEntrySize"
	}
	e := c.newEntry(primary, public, r)
	// An entry with a validator is kept past its freshness, for Keep, to
	// be revalidated with a conditional request.
	ttl := e.Lifetime + max(e.StaleWindow, e.ErrorWindow) - e.Age(c.cfg.Now())
	if _, v := Validator(r.Header); v != "" {
		ttl += c.cfg.Keep
	}
	if ttl <= 0 {
		return nil, reasonExpired
	}
	if fields := VaryFields(r.Header); len(fields) > 0 {
		e.vary = fields
		e.key = variantKey(primary, fields, r.Request)
		m := &Entry{key: primary, primary: primary, public: public, marker: true, vary: fields}
		// The marker outlives any of its variants: freshness and stale
		// window are capped by MaxTTL.
		markerTTL := c.cfg.MaxTTL
		if markerTTL > 0 {
			markerTTL = 2*markerTTL + c.cfg.Keep
		}
		c.set(slot{m, int64(len(primary) + entryOverhead), markerTTL}, slot{e, e.cost(), ttl})
	} else {
		c.set(slot{e, e.cost(), ttl})
	}
	return e, ""
}

// newEntry makes the entry of a response, without storing it. A response
// that says no-cache has no freshness: it is revalidated before each use.
func (c *Cache) newEntry(primary, public string, r *Response) *Entry {
	e := &Entry{
		key: primary, primary: primary, public: public,
		Status: r.Status, Header: r.Header, Body: r.Body,
		responseTime: r.ResponseTime,
		initialAge:   InitialAge(r.Header, r.RequestTime, r.ResponseTime),
		StaleWindow:  c.cfg.StaleWindow(r.Header),
		ErrorWindow:  c.cfg.ErrorWindow(r.Header),
	}
	if !ParseCacheControl(r.Header["Cache-Control"]).NoCache {
		e.Lifetime = c.cfg.Lifetime(r.Header, r.ResponseTime)
	}
	return e
}

// Revalidated updates a stored entry with the 304 (Not Modified) its
// revalidation got (RFC 9111 §4.3.4): r holds the 304's header and the
// times of the conditional request; its Status and Body are not used.
// The updated entry is old's status and body with the 304's header
// fields merged in (MergeNotModified), its age counted from the 304. It
// replaces old if the rules still allow storing it; if not (the 304 says
// no-store, private, sets a cookie, …), old is removed and the updated
// entry is returned all the same, to answer the request that revalidated
// it, with why it was not stored.
func (c *Cache) Revalidated(primary, public string, old *Entry, r *Response) (*Entry, string) {
	nr := *r
	nr.Status, nr.Body = old.Status, old.Body
	nr.Header = MergeNotModified(old.Header, r.Header, r.ResponseTime)
	e, why := c.Store(primary, public, &nr)
	if e != nil {
		return e, ""
	}
	if cur, ok := c.rc.Get(old.key); ok && cur == old {
		c.rc.Del(old.key)
	}
	e = c.newEntry(primary, public, &nr)
	e.key = old.key
	return e, why
}

// cost is what an entry counts against maxSize.
func (e *Entry) cost() int64 {
	return int64(len(e.Body)+len(e.key)+entryOverhead) + headerSize(e.Header)
}

// slot is an entry to put into ristretto with its cost and time to live
// (0: none).
type slot struct {
	e    *Entry
	cost int64
	ttl  time.Duration
}

// set puts entries into ristretto and waits until they are in. Stores
// are serialized: ristretto applies a set of a key it does not hold yet
// asynchronously and turns away a second one racing it, which would
// leave the index wrong.
func (c *Cache) set(slots ...slot) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	for _, s := range slots {
		c.put(s.e, s.cost, s.ttl)
	}
	c.rc.Wait()
}

func (c *Cache) put(e *Entry, cost int64, ttl time.Duration) {
	if ttl < 0 {
		return
	}
	e.held = cost
	c.mu.Lock()
	m := c.index[e.public]
	if m == nil {
		m = map[string]*Entry{}
		c.index[e.public] = m
	}
	if old := m[e.key]; old != nil && old != e && c.cfg.Hooks.Removed != nil {
		c.cfg.Hooks.Removed(old.held) // replaced: its forget finds e, not it
	}
	m[e.key] = e
	if c.cfg.Hooks.Stored != nil {
		c.cfg.Hooks.Stored(cost)
	}
	c.mu.Unlock()
	if !c.rc.SetWithTTL(e.key, e, cost, ttl) {
		c.forget(e)
	}
}

// forget drops an entry ristretto let go of (evicted, expired, replaced,
// deleted or turned away) from the index.
func (c *Cache) forget(e *Entry) {
	if e == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.index[e.public]
	if m[e.key] != e {
		return // replaced
	}
	delete(m, e.key)
	if len(m) == 0 {
		delete(c.index, e.public)
	}
	if c.cfg.Hooks.Removed != nil {
		c.cfg.Hooks.Removed(e.held)
	}
}

func headerSize(h http.Header) int64 {
	var n int64
	for k, vv := range h {
		for _, v := range vv {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// Invalidate removes what is stored for a public key ("host/path?query"),
// whatever its scope, every variant included (after an unsafe request to
// its URI, RFC 9111 §4.4).
func (c *Cache) Invalidate(public string) {
	c.mu.Lock()
	m := c.index[public]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.rc.Del(k)
	}
}

// Purge removes the responses whose public key ("host/path?query")
// starts with prefix ("" for all) and returns how many went (markers of
// varying responses are not counted).
func (c *Cache) Purge(prefix string) int {
	var keys []string
	n := 0
	c.mu.Lock()
	for _, m := range c.index {
		for k, e := range m {
			if strings.HasPrefix(e.public, prefix) {
				keys = append(keys, k)
				if !e.marker {
					n++
				}
			}
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.rc.Del(k)
	}
	c.rc.Wait()
	return n
}

// Flight is one upstream request that concurrent misses of a key wait
// for.
type Flight struct {
	done    chan struct{}
	entry   *Entry
	waiters int // under Cache.mu
}

// Join makes the caller the leader of the flight for a primary key (true:
// it goes upstream, then calls Finish) or a follower of the flight under
// way (false: it calls Wait).
func (c *Cache) Join(primary string) (*Flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[primary]; f != nil {
		f.waiters++
		return f, false
	}
	f := &Flight{done: make(chan struct{})}
	c.flights[primary] = f
	return f, true
}

// Finish ends the leader's flight, handing its followers the entry it
// stored, or nil if the response was not stored (they then go upstream
// themselves).
func (c *Cache) Finish(primary string, f *Flight, e *Entry) {
	c.mu.Lock()
	if c.flights[primary] == f {
		delete(c.flights, primary)
	}
	c.mu.Unlock()
	f.entry = e
	close(f.done)
}

// Wait waits for the leader; false if ctx ended first.
func (f *Flight) Wait(ctx context.Context) (*Entry, bool) {
	select {
	case <-f.done:
		return f.entry, true
	case <-ctx.Done():
		return nil, false
	}
}

// Lead makes the caller the leader of a flight for a primary key if none
// is under way (a background refresh: nobody waits for it).
func (c *Cache) Lead(primary string) (*Flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flights[primary] != nil {
		return nil, false
	}
	f := &Flight{done: make(chan struct{})}
	c.flights[primary] = f
	return f, true
}

// Waiting is how many followers joined the flight under way for a
// primary key (tests, to know that requests are coalesced).
func (c *Cache) Waiting(primary string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[primary]; f != nil {
		return f.waiters
	}
	return 0
}
