package upstream

import (
	"sync"
	"time"
)

// Clock is the time source of a Backend. Health probes, DNS refreshes and
// the end of ejections are scheduled with AfterFunc, and outlier detection
// reads Now, so a test can drive a Backend with a fake clock instead of
// sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once d has elapsed, as time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call scheduled by Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It reports whether the call was cancelled
	// before it started, as (*time.Timer).Stop does.
	Stop() bool
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// job is a callback on a Clock that can be scheduled again (by itself or
// by others), stopped for good, and waited for. While a call of it is
// pending or running it counts one in wg, so the owner can stop its jobs
// and then wait on wg until none of them runs.
type job struct {
	clock Clock
	wg    *sync.WaitGroup
	f     func()

	mu      sync.Mutex
	stopped bool
	timer   Timer // the last scheduled call
}

func newJob(clock Clock, wg *sync.WaitGroup, f func()) *job {
	return &job{clock: clock, wg: wg, f: f}
}

// schedule arranges for f to run after d, replacing a call that is still
// pending. It does nothing once the job is stopped.
func (j *job) schedule(d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return
	}
	if j.timer != nil && j.timer.Stop() {
		j.wg.Done() // the replaced call will not run
	}
	j.wg.Add(1)
	j.timer = j.clock.AfterFunc(d, j.run)
}

func (j *job) run() {
	defer j.wg.Done()
	j.mu.Lock()
	stopped := j.stopped
	j.mu.Unlock()
	if !stopped {
		j.f()
	}
}

// stop cancels the pending call and every later schedule. A call that is
// already running finishes; the owner's wg.Wait waits for it.
func (j *job) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return
	}
	j.stopped = true
	if j.timer != nil && j.timer.Stop() {
		j.wg.Done()
	}
}

var (
	_ Clock = systemClock{}
	_ Timer = (*time.Timer)(nil)
)
