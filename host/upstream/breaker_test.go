package upstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/novaedge/novaedge/configs"
)

func breakerSpec(maxConns, maxPending int) *configs.BackendSpec {
	spec := explicitSpec("RoundRobin", 1)
	spec.CircuitBreaker = &configs.CircuitBreaker{MaxConnections: maxConns, MaxPendingRequests: maxPending}
	return spec
}

type acquired struct {
	release func()
	err     error
}

// acquireAsync calls Acquire in a goroutine and returns its outcome's
// channel once the call is waiting (or done).
func acquireAsync(ctx context.Context, b *Backend, queued <-chan struct{}) <-chan acquired {
	out := make(chan acquired, 1)
	go func() {
		r, err := b.Acquire(ctx)
		out <- acquired{r, err}
	}()
	select {
	case <-queued:
	case <-ctx.Done():
	}
	return out
}

func TestBreakerLimitsAndQueues(t *testing.T) {
	b := newTestBackend(t, breakerSpec(2, 1), Options{})
	queued := make(chan struct{}, 10)
	b.breaker.queued = func() { queued <- struct{}{} }
	ctx := t.Context()

	r1, err1 := b.Acquire(ctx)
	r2, err2 := b.Acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatalf("first two Acquire: %v, %v", err1, err2)
	}
	third := acquireAsync(ctx, b, queued) // waits: the one pending slot
	if st := b.Status(); st.Active != 2 || st.Pending != 1 {
		t.Errorf("status: active %d, pending %d; want 2, 1", st.Active, st.Pending)
	}
	if _, err := b.Acquire(ctx); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("4th Acquire: %v, want ErrOverloaded at once", err)
	}
	select {
	case r := <-third:
		t.Fatalf("3rd Acquire returned before a release: %v", r.err)
	default:
	}

	r1()
	r3 := <-third
	if r3.err != nil {
		t.Fatalf("3rd Acquire after a release: %v", r3.err)
	}
	if st := b.Status(); st.Active != 2 || st.Pending != 0 {
		t.Errorf("status: active %d, pending %d; want 2, 0", st.Active, st.Pending)
	}
	r2()
	r3.release()
	if st := b.Status(); st.Active != 0 || st.Pending != 0 {
		t.Errorf("status after all releases: active %d, pending %d", st.Active, st.Pending)
	}
}

func TestBreakerPendingGivesUpWithContext(t *testing.T) {
	b := newTestBackend(t, breakerSpec(1, 5), Options{})
	queued := make(chan struct{}, 10)
	b.breaker.queued = func() { queued <- struct{}{} }
	r1, err := b.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pending := acquireAsync(ctx, b, queued)
	cancel()
	if r := <-pending; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("canceled pending Acquire: %v, want context.Canceled", r.err)
	}
	if st := b.Status(); st.Active != 1 || st.Pending != 0 {
		t.Errorf("status: active %d, pending %d; want 1, 0", st.Active, st.Pending)
	}
	r1()
	r2, err := b.Acquire(t.Context())
	if err != nil {
		t.Fatalf("Acquire after the cancel: %v", err)
	}
	r2()
}

func TestBreakerServesWaitersInOrder(t *testing.T) {
	b := newTestBackend(t, breakerSpec(1, 0), Options{}) // no limit on waiters
	queued := make(chan struct{}, 10)
	b.breaker.queued = func() { queued <- struct{}{} }
	held, err := b.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var waits []<-chan acquired
	for range 5 {
		waits = append(waits, acquireAsync(t.Context(), b, queued))
	}
	for i, w := range waits {
		held()
		r := <-w
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		for j := i + 1; j < len(waits); j++ {
			select {
			case <-waits[j]:
				t.Fatalf("waiter %d served before waiter %d", j, i+1)
			default:
			}
		}
		held = r.release
	}
	held()
}

func TestBreakerUnlimited(t *testing.T) {
	for name, cb := range map[string]*configs.CircuitBreaker{
		"no block":         nil,
		"maxConnections 0": {ConsecutiveFailures: 3},
	} {
		spec := explicitSpec("RoundRobin", 1)
		spec.CircuitBreaker = cb
		b := newTestBackend(t, spec, Options{})
		if b.breaker != nil {
			t.Errorf("%s: a breaker was built", name)
		}
		for range 1000 {
			if _, err := b.Acquire(t.Context()); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

// Many goroutines contend; some give up. The limit holds, and every
// request that does not give up gets through.
func TestBreakerHammer(t *testing.T) {
	const maxConns, workers, rounds = 4, 16, 300
	b := newTestBackend(t, breakerSpec(maxConns, 0), Options{})
	var inside, peak atomic.Int64
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if (w+i)%7 == 0 {
					cancel() // gives up at once if it has to wait
				}
				release, err := b.Acquire(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						failures.Add(1)
					}
					continue
				}
				n := inside.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				inside.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d unexpected Acquire errors", failures.Load())
	}
	if p := peak.Load(); p > maxConns {
		t.Errorf("%d requests inside at once, limit %d", p, maxConns)
	}
	if st := b.Status(); st.Active != 0 || st.Pending != 0 {
		t.Errorf("after the hammer: active %d, pending %d", st.Active, st.Pending)
	}
}
