package upstream

import (
	"fmt"
	"slices"
)

// policy is a load-balancing policy.
type policy uint8

const (
	policyRoundRobin policy = iota
	policyLeastConn
	policyP2C
	policyRandom
	policyRingHash
	policyMaglev
)

var policyNames = [...]string{
	policyRoundRobin: "RoundRobin",
	policyLeastConn:  "LeastConn",
	policyP2C:        "P2C",
	policyRandom:     "Random",
	policyRingHash:   "RingHash",
	policyMaglev:     "Maglev",
}

func (p policy) String() string { return policyNames[p] }

// parsePolicy reads spec.lbPolicy; empty means RoundRobin.
func parsePolicy(s string) (policy, error) {
	if s == "" {
		return policyRoundRobin, nil
	}
	for p, name := range policyNames {
		if s == name {
			return policy(p), nil
		}
	}
	return 0, fmt.Errorf("lbPolicy %q is not one of RoundRobin, LeastConn, P2C, Random, RingHash, Maglev", s)
}

// lbState is what Pick reads: one endpoint set, the endpoints that were
// available when it was built, and a picker for each. It is immutable and
// replaced whole by rebuild. Availability is checked again at pick time,
// so an endpoint that turned unavailable since the build is skipped until
// the next rebuild lands.
type lbState struct {
	version     uint64      // of the endpoint set
	all         []*Endpoint // every endpoint
	avail       []*Endpoint // the available ones, at build time
	allPicker   *picker     // over all: panic mode
	availPicker *picker     // over avail; nil when none is available
}

// picker is one policy's structure over a list of endpoints. One struct
// with a switch, rather than an interface, keeps the pick path free of
// dynamic calls and lets escape analysis prove it allocation-free.
type picker struct {
	policy  policy
	eps     []*Endpoint
	weights weightTable  // Random, P2C
	rr      *roundRobin  // RoundRobin
	ring    *hashRing    // RingHash
	maglev  *maglevTable // Maglev
}

func newPicker(p policy, eps []*Endpoint) *picker {
	pk := &picker{policy: p, eps: eps}
	switch p {
	case policyRoundRobin:
		pk.rr = newRoundRobin(eps)
	case policyRandom, policyP2C:
		pk.weights = newWeightTable(eps)
	case policyRingHash:
		pk.ring = newHashRing(eps)
	case policyMaglev:
		pk.maglev = newMaglevTable(eps)
	}
	return pk
}

// pick returns an endpoint that f accepts, or nil if there is none.
func (pk *picker) pick(key uint64, f filter) *Endpoint {
	if len(pk.eps) == 0 {
		return nil
	}
	switch pk.policy {
	case policyRoundRobin:
		return pk.rr.pick(pk.eps, f)
	case policyLeastConn:
		return pickLeastConn(pk.eps, f)
	case policyP2C:
		return pickP2C(pk.eps, &pk.weights, f)
	case policyRandom:
		return pickRandom(pk.eps, &pk.weights, f)
	case policyRingHash:
		return pk.ring.pick(pk.eps, key, f)
	case policyMaglev:
		return pk.maglev.pick(pk.eps, key, f)
	}
	return nil
}

// filter says which endpoints a pick may return: available ones (unless
// any is set, in panic mode) that are not in tried.
type filter struct {
	tried []*Endpoint
	any   bool
}

func (f filter) ok(ep *Endpoint) bool {
	if !f.any && !ep.available() {
		return false
	}
	for _, t := range f.tried {
		if t == ep {
			return false
		}
	}
	return true
}

// firstOK returns the first endpoint f accepts, scanning from start and
// wrapping around, or nil.
func firstOK(eps []*Endpoint, start int, f filter) *Endpoint {
	n := len(eps)
	for i := range n {
		if ep := eps[(start+i)%n]; f.ok(ep) {
			return ep
		}
	}
	return nil
}

// Pick chooses the endpoint for one attempt. hashKey is HashKey's result
// (ignored by policies other than RingHash and Maglev). The candidates
// are the available endpoints, or every endpoint in panic mode (when none
// is available); among them Pick avoids those in tried as long as an
// untried one remains. It fails only with ErrNoEndpoints, when the
// backend has no endpoint at all. It neither allocates nor locks.
func (b *Backend) Pick(hashKey uint64, tried []*Endpoint) (*Endpoint, error) {
	st := b.lb.Load()
	if len(st.all) == 0 {
		return nil, ErrNoEndpoints
	}
	if st.availPicker != nil {
		if ep := st.availPicker.pick(hashKey, filter{tried: tried}); ep != nil {
			return ep, nil
		}
		if len(tried) > 0 {
			if ep := st.availPicker.pick(hashKey, filter{}); ep != nil {
				return ep, nil
			}
		}
	}
	// Panic mode: nothing is available (or nothing was when the state
	// was built and what was has gone since).
	if ep := st.allPicker.pick(hashKey, filter{tried: tried, any: true}); ep != nil {
		return ep, nil
	}
	return st.allPicker.pick(hashKey, filter{any: true}), nil
}

// rebuild builds the lbState from the current endpoint set and
// availability, and publishes it. The picker over all endpoints is kept
// while the set does not change; the one over available endpoints is
// kept while they stay the same. Call it after changing either, without
// holding b.mu; it runs in the caller, so callers on the request path use
// rebuildAsync.
func (b *Backend) rebuild() {
	b.buildMu.Lock()
	defer b.buildMu.Unlock()
	b.mu.Lock()
	all, version := b.eps, b.version
	b.mu.Unlock()

	prev := b.lb.Load()
	st := &lbState{version: version, all: all}
	if prev != nil && prev.version == version {
		st.allPicker = prev.allPicker
	} else {
		st.allPicker = newPicker(b.policy, all)
	}
	st.avail = make([]*Endpoint, 0, len(all))
	for _, ep := range all {
		if ep.available() {
			st.avail = append(st.avail, ep)
		}
	}
	switch {
	case len(st.avail) == 0:
		// Panic mode: availPicker stays nil.
	case len(st.avail) == len(all) || b.policy == policyRingHash:
		// The ring is built over every endpoint and skips unavailable
		// ones by walking on, which keeps keys where they were.
		st.availPicker = st.allPicker
	case prev != nil && prev.availPicker != nil && prev.availPicker != prev.allPicker &&
		prev.version == version && slices.Equal(prev.avail, st.avail):
		st.availPicker = prev.availPicker
	default:
		st.availPicker = newPicker(b.policy, st.avail)
	}
	b.lb.Store(st)
}

// rebuildAsync has rebuild run soon in a goroutine of the backend, so a
// caller on the request path (an ejection in Attempt.End) does not pay
// for it. Requests made while one runs are coalesced into one more run.
func (b *Backend) rebuildAsync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rebuildDirty = true
	if b.rebuildRunning || b.closed {
		return
	}
	b.rebuildRunning = true
	b.rebuildDone = make(chan struct{})
	b.wg.Add(1)
	go b.rebuildLoop(b.rebuildDone)
}

func (b *Backend) rebuildLoop(done chan struct{}) {
	defer b.wg.Done()
	defer close(done)
	for {
		b.mu.Lock()
		if !b.rebuildDirty || b.closed {
			b.rebuildRunning = false
			b.mu.Unlock()
			return
		}
		b.rebuildDirty = false
		b.mu.Unlock()
		b.rebuild()
	}
}
