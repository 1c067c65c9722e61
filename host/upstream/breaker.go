package upstream

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/novaedge/novaedge/configs"
)

// breaker is the concurrency limit of a circuit breaker: at most max
// requests run at once, at most maxPending more wait (first come, first
// served) for one to finish, and beyond that requests are refused at
// once. Admission while below max is one CAS; only waiting takes the
// mutex.
type breaker struct {
	max        int64
	maxPending int // < 0: no limit on waiters

	active   atomic.Int64  // admitted requests
	waiting  atomic.Int64  // len(queue), readable without mu
	rejected atomic.Uint64 // requests refused: too many waiting

	mu    sync.Mutex
	queue []*waiter // FIFO

	release func() // releaseSlot as a func value, made once

	// queued, when set (by tests), is called when a request starts
	// waiting.
	queued func()
}

// waiter is a request queued for a slot; the slot is handed over by a
// send on ch.
type waiter struct{ ch chan struct{} }

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

// newBreaker returns the breaker of a circuitBreaker block, or nil for
// no limit (no block, or maxConnections 0). maxPendingRequests 0 means
// no limit on waiters (they still give up when their context ends).
func newBreaker(cb *configs.CircuitBreaker) *breaker {
	if cb == nil || cb.MaxConnections <= 0 {
		return nil
	}
	br := &breaker{max: int64(cb.MaxConnections), maxPending: cb.MaxPendingRequests}
	if br.maxPending <= 0 {
		br.maxPending = -1
	}
	br.release = br.releaseSlot
	return br
}

func noRelease() {}

// Acquire admits one request to the backend under its circuit breaker:
// while fewer than maxConnections requests hold a slot it returns at
// once; otherwise the request waits, first come first served, for a
// slot, unless maxPendingRequests requests already wait, in which case
// it fails at once with ErrOverloaded. A waiting request gives up with
// ctx's error when ctx ends. Call release exactly once when the request
// is over (its response body closed), after all its attempts.
//
// Without a circuitBreaker block, or with maxConnections 0, there is no
// limit and Acquire costs nothing. It does not allocate unless it waits.
func (b *Backend) Acquire(ctx context.Context) (release func(), err error) {
	br := b.breaker
	if br == nil {
		return noRelease, nil
	}
	return br.acquire(ctx)
}

// tryTake takes a slot if one is free.
func (br *breaker) tryTake() bool {
	for {
		n := br.active.Load()
		if n >= br.max {
			return false
		}
		if br.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (br *breaker) acquire(ctx context.Context) (func(), error) {
	// Newcomers do not overtake waiters.
	if br.waiting.Load() == 0 && br.tryTake() {
		return br.release, nil
	}
	br.mu.Lock()
	// Announce before the last try: a release that misses the slot we
	// fail to take here will see us waiting (see releaseSlot).
	br.waiting.Add(1)
	if br.tryTake() {
		br.waiting.Add(-1)
		br.mu.Unlock()
		return br.release, nil
	}
	if br.maxPending >= 0 && len(br.queue) >= br.maxPending {
		br.waiting.Add(-1)
		br.mu.Unlock()
		br.rejected.Add(1)
		return nil, ErrOverloaded
	}
	w := waiterPool.Get().(*waiter)
	br.queue = append(br.queue, w)
	br.mu.Unlock()
	if br.queued != nil {
		br.queued()
	}

	select {
	case <-w.ch:
		waiterPool.Put(w)
		return br.release, nil
	case <-ctx.Done():
		br.mu.Lock()
		if i := slices.Index(br.queue, w); i >= 0 {
			br.queue = slices.Delete(br.queue, i, i+1)
			br.waiting.Add(-1)
			br.mu.Unlock()
			waiterPool.Put(w)
			return nil, ctx.Err()
		}
		br.mu.Unlock()
		// A slot was handed to us as we gave up: pass it on.
		<-w.ch
		waiterPool.Put(w)
		br.releaseSlot()
		return nil, ctx.Err()
	}
}

// releaseSlot gives a slot back, or hands it to the first waiter.
func (br *breaker) releaseSlot() {
	if br.waiting.Load() == 0 {
		br.active.Add(-1)
		if br.waiting.Load() == 0 {
			return
		}
		// A request queued after failing to take the slot we were
		// freeing: take a free slot back (if still free) and hand it over.
		br.mu.Lock()
		if len(br.queue) > 0 && br.tryTake() {
			br.handOff()
			return
		}
		br.mu.Unlock()
		return
	}
	br.mu.Lock()
	if len(br.queue) > 0 {
		br.handOff() // our slot passes to the waiter
		return
	}
	br.active.Add(-1) // under mu: a waiter's last try is ordered with it
	br.mu.Unlock()
}

// handOff gives a held slot to the first waiter. Call with mu held; it
// unlocks.
func (br *breaker) handOff() {
	w := br.queue[0]
	br.queue[0] = nil
	br.queue = br.queue[1:]
	br.waiting.Add(-1)
	br.mu.Unlock()
	w.ch <- struct{}{}
}

// inUse returns the admitted and waiting request counts.
func (br *breaker) inUse() (active, waiting int64) {
	return br.active.Load(), br.waiting.Load()
}
