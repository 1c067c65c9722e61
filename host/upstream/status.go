package upstream

import "time"

// BackendStatus is a point-in-time view of a Backend, for the admin API
// and `novaedge status`.
type BackendStatus struct {
	Name     string `json:"name"`
	LBPolicy string `json:"lbPolicy"`
	Protocol string `json:"protocol"`
	// Total is the number of endpoints; Healthy of those passing active
	// health checks; Available of those healthy and not ejected.
	Total     int `json:"total"`
	Healthy   int `json:"healthy"`
	Available int `json:"available"`
	// Panic is true when endpoints exist but none is available: picks
	// then go to any endpoint (see the package doc).
	Panic bool `json:"panic"`
	// Active and Pending are the requests holding and waiting for a
	// circuit-breaker slot (both 0 without a limit).
	Active  int64 `json:"active"`
	Pending int64 `json:"pending"`
	// EjectionsTotal counts the ejections by outlier detection, and
	// BreakerRejections the requests the circuit breaker refused, since
	// the backend started.
	EjectionsTotal    uint64           `json:"ejectionsTotal"`
	BreakerRejections uint64           `json:"breakerRejections"`
	Endpoints         []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is a point-in-time view of one endpoint.
type EndpointStatus struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Healthy  bool   `json:"healthy"`
	Ejected  bool   `json:"ejected"`
	Inflight int64  `json:"inflight"`
	// LatencyEWMA is the moving average of successful attempts' latency
	// (0 before the first).
	LatencyEWMA time.Duration `json:"latencyEWMA"`
	// Ejections is how many times outlier detection ejected the
	// endpoint, after decay: it sets the length of the next ejection.
	Ejections int `json:"ejections"`
	// EjectedUntil is when the current ejection ends (zero when not
	// ejected).
	EjectedUntil time.Time `json:"ejectedUntil,omitzero"`
}

// Status returns the backend's current state.
func (b *Backend) Status() BackendStatus {
	st := BackendStatus{
		Name:     b.name,
		LBPolicy: b.policy.String(),
		Protocol: b.protocol,
	}
	if b.breaker != nil {
		st.Active, st.Pending = b.breaker.inUse()
		st.BreakerRejections = b.breaker.rejected.Load()
	}
	st.EjectionsTotal = b.ejectionsTotal.Load()
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	st.Total = len(b.eps)
	st.Endpoints = make([]EndpointStatus, 0, len(b.eps))
	for _, ep := range b.eps {
		s := ep.state.Load()
		es := EndpointStatus{
			Address:     ep.addr,
			Weight:      ep.weight,
			Healthy:     s&stateUnhealthy == 0,
			Ejected:     s&stateEjected != 0,
			Inflight:    ep.inflight.Load(),
			LatencyEWMA: time.Duration(ep.ewma.Load()),
			Ejections:   ep.ejections,
		}
		if es.Ejected {
			es.EjectedUntil = ep.ejectedUntil
		} else if b.outlier != nil {
			es.Ejections = b.outlier.decayed(ep.ejections, ep.lastUnejected, now)
		}
		if es.Healthy {
			st.Healthy++
		}
		if s == 0 {
			st.Available++
		}
		st.Endpoints = append(st.Endpoints, es)
	}
	st.Panic = st.Total > 0 && st.Available == 0
	return st
}
