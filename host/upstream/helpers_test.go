package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// fakeClock is a Clock that moves only when told. AfterFunc calls run in
// the goroutine that calls Advance, at their due time (Now returns it
// during the call), in order of due time then of scheduling; calls
// scheduled by them run too if due within the advance. So a test that
// advances the clock finds every due probe, refresh and ejection done
// when Advance returns: no sleeping, no polling.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  uint64
	f    func()
	done bool // ran or stopped
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *fakeTimer) bool { return x == t })
	return true
}

// Advance moves the clock d forward, running the calls that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for range 1_000_000 {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) ||
				(t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		if next.when.After(c.now) {
			c.now = next.when
		}
		next.done = true
		c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == next })
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.mu.Unlock()
	panic("fakeClock.Advance: timers keep falling due")
}

// pending returns the number of scheduled calls.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fakeResolver answers from a table that tests edit.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	err     error
	lookups []string
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string][]netip.Addr{}
	}
	r.answers[host] = nil
	for _, a := range addrs {
		r.answers[host] = append(r.answers[host], netip.MustParseAddr(a))
	}
	r.err = nil
}

func (r *fakeResolver) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, network+" "+host)
	if r.err != nil {
		return nil, r.err
	}
	addrs, ok := r.answers[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return slices.Clone(addrs), nil
}

// logRecorder is a slog.Handler that keeps the messages it gets.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func dur(d time.Duration) *configs.Duration { return &configs.Duration{Duration: d} }

func intp(n int) *int { return &n }

// explicitSpec returns a spec with explicit endpoints 10.0.0.1:80,
// 10.0.0.2:80, … of the given weights.
func explicitSpec(policy string, weights ...int) *configs.BackendSpec {
	spec := &configs.BackendSpec{
		LBPolicy:       policy,
		Protocol:       "HTTP",
		ConnectTimeout: dur(2 * time.Second),
		ConnectionPool: &configs.ConnectionPool{},
	}
	if policy == "RingHash" || policy == "Maglev" {
		spec.ConsistentHash = &configs.ConsistentHash{Header: "X-User"}
	}
	for i, w := range weights {
		spec.Endpoints = append(spec.Endpoints, configs.Endpoint{
			Address: fmt.Sprintf("10.0.0.%d:80", i+1),
			Weight:  intp(w),
		})
	}
	return spec
}

func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// newTestBackend builds a backend with a fake clock (unless opts has a
// clock) and a quiet logger, closed at the end of the test.
func newTestBackend(t testing.TB, spec *configs.BackendSpec, opts Options) *Backend {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = newFakeClock()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	b, err := New("test/backend", spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// endpoints returns the backend's current endpoints.
func endpoints(b *Backend) []*Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.eps)
}

// setState sets or clears state bits of ep and publishes the change.
func setState(b *Backend, ep *Endpoint, bits uint32, on bool) {
	if on {
		ep.state.Or(bits)
	} else {
		ep.state.And(^bits)
	}
	b.rebuild()
}

// settle waits until no asynchronous rebuild runs.
func settle(b *Backend) {
	b.mu.Lock()
	running, done := b.rebuildRunning, b.rebuildDone
	b.mu.Unlock()
	if running {
		<-done
	}
}

// pickCounts picks n times (each attempt ended at once) and counts the
// endpoints picked, by address.
func pickCounts(t testing.TB, b *Backend, n int, key func(i int) uint64, tried []*Endpoint) map[string]int {
	t.Helper()
	settle(b)
	counts := map[string]int{}
	for i := range n {
		ep, err := b.Pick(key(i), tried)
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		ep.Begin().End(Success, time.Millisecond)
		counts[ep.Addr()]++
	}
	return counts
}

func slogOf(h slog.Handler) *slog.Logger { return slog.New(h) }
