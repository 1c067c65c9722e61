package wasm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Callback deadlines that a stalled process does not trip.
//
// A callback's time limit (PluginOptions.CallTimeout) exists to stop a
// plugin that loops or hangs, and it is measured on the wall clock. But the
// wall clock also runs while the whole process cannot run: CPU throttling
// by a container's CPU limit (CFS periods of 100 ms), a noisy neighbour
// holding the cores, a stop-the-world pause. A trivial header callback
// caught in such a stall would be killed, its VM discarded and its request
// failed, for nothing the plugin did.
//
// So each Runtime keeps a heartbeat: a goroutine that wakes every
// heartbeat period, queues once behind the runnable goroutines
// (runtime.Gosched), and adds up, in stalled, how late it got through. A
// late heartbeat means the process could not run a goroutine on time —
// frozen, throttled, or with more runnable goroutines than cores — which a
// callback's goroutine would have waited through as well. When a
// callback's timer fires, the time the process was stalled since the
// callback began is not counted against it: the timer is set again for
// what remains. A plugin that really loops keeps using its time while the
// heartbeat stays on time, and is stopped at its limit; and however stalled
// the process, no callback runs past stallCap times its limit.

// heartbeat is the period of the stall detector.
const heartbeat = 5 * time.Millisecond

// stallCap bounds a callback at this many times its limit, stalls or not.
const stallCap = 10

// clock measures the process's stalls.
type clock struct {
	start    time.Time     // monotonic origin of the values below
	stalled  atomic.Int64  // total lateness of heartbeats, ns
	lastBeat atomic.Int64  // ns since start of the last heartbeat
	stop     chan struct{} // closes the heartbeat goroutine
	done     chan struct{}
}

func newClock() *clock {
	c := &clock{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *clock) now() int64 { return int64(time.Since(c.start)) }

func (c *clock) run() {
	defer close(c.done)
	t := time.NewTimer(heartbeat)
	defer t.Stop()
	last := c.now()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// A timer's goroutine runs ahead of the run queue; going through
		// it measures how long a runnable goroutine, such as a callback's,
		// waits for a core.
		runtime.Gosched()
		now := c.now()
		if late := now - last - int64(heartbeat); late > int64(time.Millisecond) {
			c.stalled.Add(late)
		}
		last = now
		c.lastBeat.Store(now)
		t.Reset(heartbeat)
	}
}

// stalledSince returns how long the process has been stalled since the
// stalled counter read s0, counting a heartbeat that is late right now.
func (c *clock) stalledSince(s0, now int64) int64 {
	s := c.stalled.Load() - s0
	if late := now - c.lastBeat.Load() - int64(heartbeat); late > int64(time.Millisecond) {
		s += late
	}
	return s
}

func (c *clock) close() {
	close(c.stop)
	<-c.done
}

// deadline bounds the calls of one VM: armed before a call, disarmed
// after, it cancels the VM when a call has run longer than its limit on
// the process's own time.
type deadline struct {
	clock  *clock
	expire func() // cancels the VM

	mu      sync.Mutex
	timer   *time.Timer
	calling bool
	start   int64 // clock ns at arm
	stall0  int64 // clock.stalled at arm
	limit   time.Duration
	expired bool
}

func newDeadline(c *clock, expire func()) *deadline {
	d := &deadline{clock: c, expire: expire}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// arm starts bounding a call to limit.
func (d *deadline) arm(limit time.Duration) {
	d.mu.Lock()
	d.calling, d.expired, d.limit = true, false, limit
	d.start, d.stall0 = d.clock.now(), d.clock.stalled.Load()
	d.timer.Reset(limit)
	d.mu.Unlock()
}

// disarm ends the call and reports whether its deadline expired (the VM's
// context was cancelled).
func (d *deadline) disarm() (expired bool) {
	d.mu.Lock()
	d.calling = false
	d.timer.Stop()
	expired = d.expired
	d.mu.Unlock()
	return expired
}

// fire runs when the timer goes off: the current call has used up its
// limit unless the process was stalled meanwhile, then it gets that time
// back, up to stallCap times its limit in all.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.calling || d.expired {
		return // a late timer of a call that ended
	}
	now := d.clock.now()
	elapsed := now - d.start
	used := elapsed - d.clock.stalledSince(d.stall0, now)
	limit := int64(d.limit)
	if used < limit && elapsed < stallCap*limit {
		d.timer.Reset(time.Duration(min(limit-used, stallCap*limit-elapsed)))
		return
	}
	d.expired = true
	d.expire()
}

func (d *deadline) stop() { d.timer.Stop() }
