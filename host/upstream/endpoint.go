package upstream

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one address of a Backend: an explicit endpoint of the spec
// or one record of its service's DNS name. The Backend owns it; the proxy
// gets it from Pick, sends to Addr, and accounts for the attempt with
// Begin and End.
type Endpoint struct {
	// Read on every pick, written rarely.
	addr    string
	weight  int
	backend *Backend
	state   atomic.Uint32 // stateUnhealthy | stateEjected; 0 means available

	// The counters every attempt writes live on their own cache lines, so
	// that picks on other cores do not miss on addr, weight and state.
	_           [64]byte
	inflight    atomic.Int64
	ewma        atomic.Int64 // latency EWMA in nanoseconds; 0 until the first sample
	consecutive atomic.Int32 // consecutive failed attempts (outlier detection)
	_           [64]byte

	// failMu guards streakStart (outlier detection's failure path only).
	failMu      sync.Mutex
	streakStart time.Time

	// Guarded by backend.mu.
	ejections     int       // times ejected, decayed lazily
	ejectedUntil  time.Time // end of the current ejection
	lastUnejected time.Time // end of the last ejection
	removed       bool      // no longer in the backend's set
	probe         *job      // active health check; nil without checks or before Start
	uneject       *job      // end of ejection; nil without outlier detection

	// health is owned by the probe job (its calls are serialized).
	health   healthMachine
	probeURL string
}

const (
	stateUnhealthy uint32 = 1 << iota // failed active health checks
	stateEjected                      // ejected by outlier detection
)

// ewmaShift sets the weight of a new latency sample: 1/8, as TCP's SRTT.
const ewmaShift = 3

// Addr returns the endpoint's "host:port", for the request URL.
func (ep *Endpoint) Addr() string { return ep.addr }

// Weight returns the endpoint's load-balancing weight (at least 1).
func (ep *Endpoint) Weight() int { return ep.weight }

// available reports whether the endpoint is healthy and not ejected.
func (ep *Endpoint) available() bool { return ep.state.Load() == 0 }

// Begin marks the start of one attempt on the endpoint: it counts as in
// flight (for LeastConn and P2C) until the returned Attempt's End.
func (ep *Endpoint) Begin() Attempt {
	ep.inflight.Add(1)
	return Attempt{ep: ep}
}

// observe folds one latency sample into the EWMA.
func (ep *Endpoint) observe(d time.Duration) {
	s := int64(d)
	if s <= 0 {
		s = 1 // 0 means "no sample yet"
	}
	for {
		old := ep.ewma.Load()
		v := s
		if old != 0 {
			v = old + (s-old)>>ewmaShift
		}
		if v <= 0 {
			v = 1
		}
		if v == old || ep.ewma.CompareAndSwap(old, v) {
			return
		}
	}
}

// Result is how an attempt on an endpoint ended.
type Result uint8

// The results of an attempt. Failure, ConnectFailure, Reset and Timeout
// count against the endpoint in outlier detection; Success resets that
// count; Canceled is neutral (the client, not the endpoint, gave up).
const (
	// Success: the endpoint answered with a status below 500.
	Success Result = iota
	// Failure: the endpoint answered 5xx, or the answer was unusable
	// (a gateway error).
	Failure
	// ConnectFailure: no connection could be made (refused, unreachable,
	// connect timeout).
	ConnectFailure
	// Reset: the connection broke before the response was complete.
	Reset
	// Timeout: the attempt's timeout expired while waiting on the endpoint.
	Timeout
	// Canceled: the client went away or the request's context ended for
	// a reason that is not the endpoint's.
	Canceled
)

var resultNames = [...]string{"Success", "Failure", "ConnectFailure", "Reset", "Timeout", "Canceled"}

// String returns the result's name.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Attempt is one attempt on an endpoint, from Begin to End. It is a small
// value: keep it on the stack and call End exactly once.
type Attempt struct {
	ep *Endpoint
}

// Endpoint returns the endpoint of the attempt (nil for the zero Attempt).
func (a Attempt) Endpoint() *Endpoint { return a.ep }

// End accounts for the end of the attempt: the endpoint is no longer in
// flight, and the result and latency feed the latency EWMA and outlier
// detection. Success and Timeout feed the EWMA (a timeout's latency is
// what the endpoint cost); the other results do not, as their latency
// (an instant refusal, a reset) says nothing about how fast the endpoint
// serves. End on the zero Attempt does nothing.
func (a Attempt) End(result Result, latency time.Duration) {
	ep := a.ep
	if ep == nil {
		return
	}
	ep.inflight.Add(-1)
	switch result {
	case Success:
		ep.observe(latency)
		if ep.consecutive.Load() != 0 {
			ep.consecutive.Store(0)
		}
	case Timeout:
		ep.observe(latency)
		ep.backend.recordFailure(ep)
	case Failure, ConnectFailure, Reset:
		ep.backend.recordFailure(ep)
	}
}
