package wasm

import (
	"testing"
	"time"
)

// TestDeadline: a call is over its limit once it has run that long (from
// its first check) while the process runs; the time the process was
// stalled is given back, up to stallCap times the limit; a new call starts
// afresh.
func TestDeadline(t *testing.T) {
	c := newClock()
	defer c.close()
	d := &deadline{clock: c}
	const limit = 30 * time.Millisecond

	// until polls exceeded as refuel would and returns how long it took
	// to say yes (0: not within max).
	until := func(max time.Duration, each func()) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < max {
			if d.exceeded() {
				return time.Since(start)
			}
			if each != nil {
				each()
			}
			time.Sleep(time.Millisecond)
		}
		return 0
	}

	// No stall: over at the limit, not before.
	d.arm(limit)
	if got := until(2*time.Second, nil); got < limit {
		t.Fatalf("exceeded after %v, limit %v", got, limit)
	}

	// A new call starts afresh.
	d.arm(limit)
	if d.exceeded() {
		t.Fatal("a new call starts exceeded")
	}

	// A stall of 100ms during the call: given back.
	d.arm(limit)
	d.exceeded()
	c.stalled.Add(int64(100 * time.Millisecond))
	if got := until(2*time.Second, nil); got < 100*time.Millisecond+limit-5*time.Millisecond {
		t.Errorf("with 100ms stalled, exceeded after %v", got)
	}

	// Endless stalls: stopped at stallCap × limit anyway.
	d.arm(limit)
	got := until(5*time.Second, func() { c.stalled.Add(int64(10 * time.Millisecond)) })
	if got == 0 || got < stallCap*limit-5*time.Millisecond {
		t.Errorf("under endless stalls, exceeded after %v, want %v", got, stallCap*limit)
	}
}
