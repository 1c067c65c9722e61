package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/wasm"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// The RateLimit policy (plugins/ratelimit) keeps its token buckets here, in
// the host, so that every VM of a plugin shares one bucket per key. The
// plugin calls the host function RateLimitTake once per request.

// RateLimitTake is the host function that takes tokens from a bucket. Its
// encoding is sdk/firstparty's (RateLimitTakeArgs, RateLimitTakeResult),
// shared with the plugin; the host accepts these ranges.
//
// Arguments (compact, every integer an unsigned LEB128 varint):
//
//	byte    version (1)
//	uvarint rate: refill rate in thousandths of a token per second (1..1e12)
//	uvarint burst: the bucket's capacity in tokens (1..1e9)
//	uvarint cost: tokens to take (0..burst; 0 only reads the bucket)
//	bytes   key: the rest of the arguments (any length, may be empty)
//
// Result:
//
//	byte    flags: 1 allowed (the tokens were taken); 2 overflow (the
//	        caller's table was full: the key shares the overflow bucket)
//	uvarint remaining: whole tokens left
//	uvarint retry after: milliseconds until cost tokens are there (0 if allowed)
//	uvarint reset: milliseconds until the bucket is full again
//
// Buckets are per calling plugin (wasm.CallerName: "namespace/name"): one
// plugin cannot reach another's. They live as long as the runtime, across
// configuration reloads; a bucket whose rate or burst changed keeps its
// tokens (at most the new burst).
const RateLimitTake = firstparty.RateLimitTake

const (
	// Token amounts are kept in nano-tokens and time in microseconds: a rate
	// of r thousandths of a token per second adds exactly r nano-tokens per
	// microsecond, so refills are integer arithmetic without drift.
	nanoTokens  = 1_000_000_000
	rlMaxRate   = 1_000_000_000_000 // 1e9 tokens/s, in milli-tokens
	rlMaxBurst  = 1_000_000_000
	rlMaxRawKey = 64 // longer keys are stored as their SHA-256
	// DefaultRateLimitBuckets bounds the buckets one plugin keeps. Beyond
	// it, once the buckets that have refilled are gone, a request whose
	// key has no bucket is counted in the plugin's one overflow bucket
	// (same rate and burst), shared by every such key: a flood of distinct
	// keys cannot grow memory, evict a busy key's bucket (which would give
	// it a fresh burst) or get through unlimited; the keys that already
	// have a bucket are unaffected.
	DefaultRateLimitBuckets = 100_000
)

// RateLimit runs after authentication (it may key on a JWT claim or an
// API key's consumer) and before users' Wasm policies.
func init() {
	Register(Type{
		Name: configs.PolicyRateLimit, Module: "ratelimit", Order: 40, HeadersOnly: true, Config: ratelimitPluginConfig,
		HostFuncs: func(m map[string]wasm.ForeignFunc) func(string) {
			l := newRateLimiter(monotonicClock(), DefaultRateLimitBuckets)
			m[RateLimitTake] = l.foreign
			return l.reset
		},
	})
}

// monotonicClock returns nanoseconds on the monotonic clock.
func monotonicClock() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}

// takeArgs are RateLimitTake's decoded arguments.
type takeArgs struct {
	rate  uint64 // milli-tokens per second
	burst uint64 // tokens
	cost  uint64 // tokens
	key   []byte
}

var errTakeArgs = firstparty.ErrRateLimitTake

// decodeTake decodes RateLimitTake's arguments (firstparty's decoder) and
// checks their ranges. It never panics; key aliases b.
func decodeTake(b []byte) (takeArgs, error) {
	w, err := firstparty.DecodeRateLimitTake(b)
	if err != nil {
		return takeArgs{}, err
	}
	a := takeArgs{rate: w.Rate, burst: w.Burst, cost: w.Cost, key: w.Key}
	for _, f := range []struct {
		name   string
		v      uint64
		lo, hi uint64
	}{{"rate", a.rate, 1, rlMaxRate}, {"burst", a.burst, 1, rlMaxBurst}, {"cost", a.cost, 0, rlMaxBurst}} {
		if f.v < f.lo || f.v > f.hi {
			return takeArgs{}, fmt.Errorf("%w: %s %d out of range", errTakeArgs, f.name, f.v)
		}
	}
	if a.cost > a.burst {
		return takeArgs{}, fmt.Errorf("%w: cost %d over burst %d", errTakeArgs, a.cost, a.burst)
	}
	return a, nil
}

// takeResult is what a take answers.
type takeResult struct {
	allowed, overflow bool
	remaining         uint64 // whole tokens
	retryAfter        uint64 // milliseconds
	reset             uint64 // milliseconds
}

func (r takeResult) encode(dst []byte) []byte {
	return firstparty.AppendRateLimitTakeResult(dst, &firstparty.RateLimitTakeResult{
		Allowed: r.allowed, Overflow: r.overflow, Remaining: r.remaining, RetryAfter: r.retryAfter, Reset: r.reset,
	})
}

// rateLimiter holds the token buckets of one wasm runtime, a table per
// calling plugin.
type rateLimiter struct {
	now        func() int64 // monotonic nanoseconds
	maxBuckets int          // per plugin

	mu     sync.RWMutex
	tables map[string]*bucketTable
}

func newRateLimiter(now func() int64, maxBuckets int) *rateLimiter {
	return &rateLimiter{now: now, maxBuckets: maxBuckets, tables: map[string]*bucketTable{}}
}

// foreign is the wasm.ForeignFunc RateLimitTake.
func (l *rateLimiter) foreign(ctx context.Context, arg []byte) ([]byte, error) {
	a, err := decodeTake(arg)
	if err != nil {
		return nil, err
	}
	r := l.take(wasm.CallerName(ctx), a)
	return r.encode(make([]byte, 0, 16)), nil
}

// take takes a.cost tokens from the caller's bucket for a.key.
func (l *rateLimiter) take(caller string, a takeArgs) takeResult {
	l.mu.RLock()
	t := l.tables[caller]
	l.mu.RUnlock()
	if t == nil {
		l.mu.Lock()
		if t = l.tables[caller]; t == nil {
			t = &bucketTable{buckets: map[string]*bucket{}, max: l.maxBuckets}
			l.tables[caller] = t
		}
		l.mu.Unlock()
	}
	return t.take(l.now(), a)
}

// reset forgets the caller's buckets.
func (l *rateLimiter) reset(caller string) {
	l.mu.Lock()
	delete(l.tables, caller)
	l.mu.Unlock()
}

// bucketTable is one plugin's buckets, with a least-recently-used list:
// the front bucket is the one idle longest.
type bucketTable struct {
	mu       sync.Mutex
	buckets  map[string]*bucket
	lru      bucket // sentinel of the circular list
	overflow *bucket
	max      int
}

// bucket is a token bucket: tokens (nano-tokens) as of last (ns).
type bucket struct {
	tokens     uint64
	last       int64
	rate       uint64 // milli-tokens per second = nano-tokens per µs
	capacity   uint64 // nano-tokens
	key        string
	prev, next *bucket
}

func (t *bucketTable) take(now int64, a takeArgs) takeResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lru.next == nil {
		t.lru.next, t.lru.prev = &t.lru, &t.lru
	}
	t.expire(now)
	var b *bucket
	var key string
	overflow := false
	if len(a.key) <= rlMaxRawKey {
		b = t.buckets[string(a.key)] // no allocation
	} else {
		sum := sha256.Sum256(a.key)
		key = "sha256:" + hex.EncodeToString(sum[:]) // longer than any raw key
		b = t.buckets[key]
	}
	switch {
	case b != nil:
		t.unlink(b)
	case len(t.buckets) < t.max:
		if key == "" {
			key = string(a.key)
		}
		b = &bucket{key: key, last: now, tokens: a.burst * nanoTokens, rate: a.rate, capacity: a.burst * nanoTokens}
		t.buckets[key] = b
	default:
		if t.overflow == nil {
			t.overflow = &bucket{last: now, tokens: a.burst * nanoTokens, rate: a.rate, capacity: a.burst * nanoTokens}
		}
		b, overflow = t.overflow, true
	}
	r := b.take(now, a)
	r.overflow = overflow
	if !overflow {
		t.pushBack(b)
	}
	return r
}

// expire drops the buckets, idlest first, that have refilled: a full
// bucket is the same as none.
func (t *bucketTable) expire(now int64) {
	for b := t.lru.next; b != &t.lru; b = t.lru.next {
		if !b.fullAt(now) {
			return
		}
		t.unlink(b)
		delete(t.buckets, b.key)
	}
}

func (t *bucketTable) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (t *bucketTable) pushBack(b *bucket) {
	b.prev, b.next = t.lru.prev, &t.lru
	t.lru.prev.next = b
	t.lru.prev = b
}

// refill adds the tokens earned since last, in whole microseconds (the
// remainder stays for the next refill).
func (b *bucket) refill(now int64) {
	if now <= b.last {
		return
	}
	if b.tokens >= b.capacity {
		b.tokens, b.last = b.capacity, now
		return
	}
	us := uint64(now-b.last) / 1000
	if us == 0 {
		return
	}
	if missing := b.capacity - b.tokens; us >= (missing+b.rate-1)/b.rate {
		b.tokens, b.last = b.capacity, now
		return
	}
	b.tokens += us * b.rate
	b.last += int64(us) * 1000
}

// fullAt reports whether the bucket is full at now.
func (b *bucket) fullAt(now int64) bool {
	if b.tokens >= b.capacity {
		return true
	}
	if now <= b.last {
		return false
	}
	us := uint64(now-b.last) / 1000
	return us >= (b.capacity-b.tokens+b.rate-1)/b.rate
}

func (b *bucket) take(now int64, a takeArgs) takeResult {
	if b.rate != a.rate || b.capacity != a.burst*nanoTokens {
		b.refill(now) // at the old rate until now
		b.rate, b.capacity = a.rate, a.burst*nanoTokens
		b.tokens = min(b.tokens, b.capacity)
	}
	b.refill(now)
	need := a.cost * nanoTokens
	r := takeResult{}
	if b.tokens >= need {
		b.tokens -= need
		r.allowed = true
	} else {
		r.retryAfter = microsToMillis(divUp(need-b.tokens, b.rate))
	}
	r.remaining = b.tokens / nanoTokens
	r.reset = microsToMillis(divUp(b.capacity-b.tokens, b.rate))
	return r
}

func divUp(a, b uint64) uint64 { return a/b + min(a%b, 1) }

func microsToMillis(us uint64) uint64 { return divUp(us, 1000) }

// ------------------------------------------------------------ configuration

// ratelimitPluginConfig converts spec.rateLimit, as is.
func ratelimitPluginConfig(p *configs.Policy) (any, error) {
	r := p.Spec.RateLimit
	if r == nil {
		return nil, fmt.Errorf("spec.rateLimit: required for type RateLimit")
	}
	if math.IsNaN(r.RequestsPerSecond) || math.IsInf(r.RequestsPerSecond, 0) {
		return nil, fmt.Errorf("spec.rateLimit.requestsPerSecond: not a number")
	}
	return firstparty.RateLimit{
		RequestsPerSecond: r.RequestsPerSecond,
		Burst:             r.Burst,
		Key:               r.Key,
		OnMissingKey:      r.OnMissingKey,
	}, nil
}
