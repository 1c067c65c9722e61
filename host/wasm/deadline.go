package wasm

import (
	"context"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
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
// callback's goroutine would have waited through as well. When a callback
// is checked against its limit, the time the process was stalled since it
// began is not counted against it. A plugin that really loops keeps using
// its time while the heartbeat stays on time, and is stopped at its limit;
// and however stalled the process, no callback runs past stallCap times
// its limit.

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

// deadline bounds the calls of one VM. It has no timer: the metered guest
// code (meter.go) calls refuel about every millisecond of work, and refuel
// asks the deadline whether the call is over its limit. arm and exceeded
// run on the goroutine making the call, with the VM's mu held.
//
// A call's time is counted from its first refuel, not from arm: reading
// the clock on every call would cost more than a short callback, and what
// runs before the first refuel is at most one allowance of fuel.
type deadline struct {
	clock *clock
	seq   uint64 // calls armed
	seen  uint64 // the call that start and stall0 belong to
	start int64  // clock ns at the call's first refuel
	stal0 int64  // clock.stalled then
	limit int64  // ns
}

// arm starts bounding a call to limit.
func (d *deadline) arm(limit time.Duration) {
	d.seq++
	d.limit = int64(limit)
}

// exceeded reports whether the current call has used up its limit: the
// time since its first refuel, without the time the process was stalled,
// up to stallCap times the limit in all.
func (d *deadline) exceeded() bool {
	now := d.clock.now()
	if d.seen != d.seq {
		d.seen, d.start, d.stal0 = d.seq, now, d.clock.stalled.Load()
		return false
	}
	elapsed := now - d.start
	used := elapsed - d.clock.stalledSince(d.stal0, now)
	return used >= d.limit || elapsed >= stallCap*d.limit
}

// refuel is the host function novaedge_meter.refuel, called by metered code
// when its fuel runs out: it grants another allowance, or, when the
// callback is past its limit, stops the guest (a panic wazero turns into
// the call's error; the VM is then discarded).
func refuel(ctx context.Context, _ api.Module, stack []uint64) {
	if v := fromCtx(ctx); v != nil {
		v.checkDeadline()
	}
	stack[0] = meterAllowance
}

// checkDeadline stops the guest (a panic wazero turns into the call's
// error; the VM is then discarded) when the current call is past its
// limit. It runs on the goroutine of the call, inside a host function.
func (v *vm) checkDeadline() {
	if v.dl.exceeded() {
		v.timedOut.Store(true)
		panic(ErrCallTimeout)
	}
}

// Host work that the meter cannot see.
//
// The meter charges a call to a host function a fixed cost, but some host
// functions do work in proportion to a length the guest chooses: proxy_log
// of the whole memory, WASI random_get or fd_write of it. A loop of those
// would run for seconds between two checks of the clock. So the host
// functions count the bytes they take from or give to the guest
// (hostWork), and check the deadline every hostWorkQuantum bytes. And a
// guest that sleeps (WASI poll_oneoff with a clock, which TinyGo's
// time.Sleep uses) sleeps in slices of at most sleepSlice, with the
// deadline checked before and after each: a callback cannot sleep past its
// limit.

// hostWorkQuantum is how many bytes of host work go between two checks of
// the deadline: well under a millisecond of copying or hashing.
const hostWorkQuantum = 1 << 20

// sleepSlice is the longest a guest's sleep runs without a check of the
// deadline.
const sleepSlice = 5 * time.Millisecond

// hostWork counts n bytes of host work done for the guest and checks the
// deadline when a quantum is full.
func (v *vm) hostWork(n int) {
	v.work += n
	if v.work >= hostWorkQuantum {
		v.work = 0
		v.checkDeadline()
	}
}

// nanosleep is the guest's WASI sleep (wazero's sys.Nanosleep): ns
// nanoseconds, stopped at the call's deadline.
func (v *vm) nanosleep(ns int64) {
	v.checkDeadline() // also starts the call's clock when nothing has yet
	for ns > 0 {
		step := min(ns, int64(sleepSlice))
		time.Sleep(time.Duration(step))
		ns -= step
		v.checkDeadline()
	}
}

// meteredMemory is the guest memory as host functions see it: every Read
// counts as host work.
type meteredMemory struct {
	api.Memory
	v *vm
}

// Read implements api.Memory, counting size bytes of host work.
func (m *meteredMemory) Read(offset, size uint32) ([]byte, bool) {
	m.v.hostWork(int(size))
	return m.Memory.Read(offset, size)
}

// meteredRand is the guest's WASI random source (random_get): reads count
// as host work.
type meteredRand struct {
	v *vm
	r io.Reader
}

func (m *meteredRand) Read(p []byte) (int, error) {
	m.v.hostWork(len(p))
	return m.r.Read(p)
}
