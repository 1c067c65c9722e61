package wasm

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestDeadline: a call is stopped at its limit while the process runs; the
// time the process was stalled is given back, up to stallCap times the
// limit; a call that ends in time is never cancelled, even by a late timer.
func TestDeadline(t *testing.T) {
	c := newClock()
	defer c.close()
	var expired atomic.Int64 // ns after arm
	var armed time.Time
	d := newDeadline(c, func() { expired.Store(int64(time.Since(armed))) })
	defer d.stop()
	const limit = 30 * time.Millisecond

	wait := func(max time.Duration) time.Duration {
		t.Helper()
		for end := time.Now().Add(max); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if e := expired.Load(); e != 0 {
				return time.Duration(e)
			}
		}
		return 0
	}

	// No stall: expires at the limit.
	armed = time.Now()
	d.arm(limit)
	if got := wait(2 * time.Second); got < limit {
		t.Fatalf("expired after %v, limit %v", got, limit)
	}
	if !d.disarm() {
		t.Error("disarm does not report the expiry")
	}

	// A stall of 100ms during the call: given back.
	expired.Store(0)
	armed = time.Now()
	d.arm(limit)
	c.stalled.Add(int64(100 * time.Millisecond))
	if got := wait(2 * time.Second); got < 100*time.Millisecond+limit {
		t.Errorf("with 100ms stalled, expired after %v", got)
	}
	d.disarm()

	// Endless stalls: stopped at stallCap × limit anyway.
	expired.Store(0)
	armed = time.Now()
	d.arm(limit)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				c.stalled.Add(int64(10 * time.Millisecond))
			}
		}
	}()
	got := wait(5 * time.Second)
	close(stop)
	if got < stallCap*limit || got == 0 {
		t.Errorf("under endless stalls, expired after %v, want %v", got, stallCap*limit)
	}
	d.disarm()

	// A call that ends in time: no expiry, however late the timer.
	expired.Store(0)
	for range 100 {
		d.arm(time.Microsecond)
		if d.disarm() {
			// The timer may legitimately win a 1µs race; then it must
			// have cancelled.
			if expired.Load() == 0 {
				t.Fatal("disarm reported an expiry that did not cancel")
			}
			expired.Store(0)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if expired.Load() != 0 {
		t.Error("a late timer cancelled after the call ended")
	}
}
