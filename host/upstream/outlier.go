package upstream

import (
	"time"

	"github.com/novaedge/novaedge/configs"
)

// Outlier detection defaults, for a block whose fields are zero.
const (
	defaultOutlierInterval    = 10 * time.Second
	defaultBaseEjectionTime   = 30 * time.Second
	defaultMaxEjectionPercent = 50
	maxEjectionPercentCeiling = 50
	// An ejection lasts at most maxEjectionFactor × base, and no more than
	// maxEjectionCeiling unless the base itself is longer.
	maxEjectionFactor  = 10
	maxEjectionCeiling = 5 * time.Minute
)

// outlierConfig is the passive outlier detection of a circuitBreaker
// block with its defaults applied.
type outlierConfig struct {
	consecutive int32         // failures in a row that eject
	interval    time.Duration // the streak must fit in it (0: any length)
	base        time.Duration // first ejection time
	maxEjection time.Duration // longest ejection; also the decay period
	maxPercent  int           // of the endpoints, ejected at once
}

// newOutlierConfig returns nil (no outlier detection) without a
// circuitBreaker block or with consecutiveFailures 0.
func newOutlierConfig(cb *configs.CircuitBreaker) *outlierConfig {
	if cb == nil || cb.ConsecutiveFailures <= 0 {
		return nil
	}
	o := &outlierConfig{
		consecutive: int32(min(cb.ConsecutiveFailures, 1<<30)),
		interval:    cb.Interval.D(defaultOutlierInterval),
		base:        cb.BaseEjectionTime.D(defaultBaseEjectionTime),
		maxPercent:  cb.MaxEjectionPercent,
	}
	if o.base <= 0 {
		o.base = defaultBaseEjectionTime
	}
	if o.maxPercent <= 0 {
		o.maxPercent = defaultMaxEjectionPercent
	}
	o.maxPercent = min(o.maxPercent, maxEjectionPercentCeiling)
	o.maxEjection = min(maxEjectionFactor*o.base, max(maxEjectionCeiling, o.base))
	return o
}

// ejectionTime is how long the k-th ejection (k ≥ 1) lasts.
func (o *outlierConfig) ejectionTime(k int) time.Duration {
	if k <= 0 {
		k = 1
	}
	if time.Duration(k) > o.maxEjection/o.base {
		return o.maxEjection
	}
	return min(time.Duration(k)*o.base, o.maxEjection)
}

// decayed returns an ejection count after forgiving one ejection for each
// full maxEjection the endpoint has stayed un-ejected since lastUnejected.
func (o *outlierConfig) decayed(count int, lastUnejected, now time.Time) int {
	if count == 0 || lastUnejected.IsZero() {
		return count
	}
	forgiven := now.Sub(lastUnejected) / o.maxEjection
	if forgiven >= time.Duration(count) {
		return 0
	}
	return count - int(forgiven)
}

// recordFailure counts a failed attempt against ep and ejects it when the
// streak reaches the threshold within the interval.
func (b *Backend) recordFailure(ep *Endpoint) {
	o := b.outlier
	if o == nil {
		return
	}
	now := b.clock.Now()
	ep.failMu.Lock()
	n := ep.consecutive.Load()
	if n == 0 || (o.interval > 0 && now.Sub(ep.streakStart) > o.interval) {
		n = 0
		ep.streakStart = now
	}
	n++
	trip := n >= o.consecutive
	if trip {
		n = 0
	}
	ep.consecutive.Store(n)
	ep.failMu.Unlock()
	if trip {
		b.eject(ep, now)
	}
}

// eject takes ep out of the load balancer for its ejection time, unless
// that would eject more than maxPercent of the endpoints.
func (b *Backend) eject(ep *Endpoint, now time.Time) {
	o := b.outlier
	b.mu.Lock()
	if b.closed || ep.removed || ep.state.Load()&stateEjected != 0 {
		b.mu.Unlock()
		return
	}
	ejected := 0
	for _, e := range b.eps {
		if e.state.Load()&stateEjected != 0 {
			ejected++
		}
	}
	if total := len(b.eps); (ejected+1)*100 > o.maxPercent*total {
		b.mu.Unlock()
		b.log.Debug("endpoint not ejected: too many ejected", "endpoint", ep.addr,
			"ejected", ejected, "endpoints", total, "maxEjectionPercent", o.maxPercent)
		return
	}
	ep.ejections = o.decayed(ep.ejections, ep.lastUnejected, now) + 1
	d := o.ejectionTime(ep.ejections)
	ep.ejectedUntil = now.Add(d)
	ep.state.Or(stateEjected)
	ep.uneject.schedule(d)
	b.ejectionsTotal.Add(1)
	count := ep.ejections
	b.mu.Unlock()
	b.log.Warn("endpoint ejected", "endpoint", ep.addr,
		"consecutiveFailures", o.consecutive, "for", d, "ejections", count)
	b.rebuildAsync()
}

// endEjection returns ep to the load balancer once its ejection time has
// passed.
func (b *Backend) endEjection(ep *Endpoint) {
	now := b.clock.Now()
	b.mu.Lock()
	if ep.state.Load()&stateEjected == 0 || now.Before(ep.ejectedUntil) {
		b.mu.Unlock()
		return
	}
	ep.state.And(^stateEjected)
	ep.lastUnejected = now
	ep.consecutive.Store(0)
	b.mu.Unlock()
	b.log.Info("endpoint back from ejection", "endpoint", ep.addr)
	b.rebuild()
}
