package upstream

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// Health check defaults, for a block whose fields are zero.
const (
	defaultHealthInterval     = 10 * time.Second
	defaultHealthTimeout      = 5 * time.Second
	defaultHealthyThreshold   = 2
	defaultUnhealthyThreshold = 3
	defaultHealthPath         = "/"
	// probeBodyLimit is how much of a probe's response body is read (so
	// the connection can be reused); the rest is dropped with the
	// connection.
	probeBodyLimit = 64 << 10
)

// healthConfig is a healthCheck block with its defaults applied.
type healthConfig struct {
	interval           time.Duration
	timeout            time.Duration
	healthyThreshold   int
	unhealthyThreshold int
	path               string
	expected           []int // empty: 200–399
}

func newHealthConfig(hc *configs.HealthCheck) *healthConfig {
	c := &healthConfig{
		interval:           hc.Interval.D(defaultHealthInterval),
		timeout:            hc.Timeout.D(defaultHealthTimeout),
		healthyThreshold:   hc.HealthyThreshold,
		unhealthyThreshold: hc.UnhealthyThreshold,
		path:               hc.HTTPPath,
		expected:           hc.ExpectedStatuses,
	}
	if c.interval <= 0 {
		c.interval = defaultHealthInterval
	}
	if c.timeout <= 0 {
		c.timeout = defaultHealthTimeout
	}
	if c.healthyThreshold < 1 {
		c.healthyThreshold = defaultHealthyThreshold
	}
	if c.unhealthyThreshold < 1 {
		c.unhealthyThreshold = defaultUnhealthyThreshold
	}
	if c.path == "" {
		c.path = defaultHealthPath
	} else if !strings.HasPrefix(c.path, "/") {
		c.path = "/" + c.path
	}
	return c
}

// healthyStatus reports whether a probe's status code means healthy.
func (c *healthConfig) healthyStatus(code int) bool {
	if len(c.expected) == 0 {
		return code >= 200 && code <= 399
	}
	for _, s := range c.expected {
		if s == code {
			return true
		}
	}
	return false
}

// healthMachine is the health state of one endpoint under active checks.
// It starts healthy (see the package doc: no start-up blackout), turns
// unhealthy after fall consecutive failed probes and healthy again after
// rise consecutive good ones; a probe agreeing with the current state
// clears the streak against it.
type healthMachine struct {
	rise, fall int
	healthy    bool
	streak     int // consecutive probes against the current state
}

func newHealthMachine(rise, fall int) healthMachine {
	return healthMachine{rise: rise, fall: fall, healthy: true}
}

// observe records one probe result and reports whether the state flipped.
func (m *healthMachine) observe(ok bool) (changed bool) {
	if ok == m.healthy {
		m.streak = 0
		return false
	}
	m.streak++
	need := m.fall
	if !m.healthy {
		need = m.rise
	}
	if m.streak < need {
		return false
	}
	m.healthy = ok
	m.streak = 0
	return true
}

// startProbe schedules the endpoint's health checks, the first one at a
// random point of the first interval (so endpoints, and backends, do not
// probe in lockstep). Call with b.mu held.
func (b *Backend) startProbe(ep *Endpoint) {
	if b.health == nil || b.closed || ep.probe != nil {
		return
	}
	ep.probe = newJob(b.clock, &b.wg, func() { b.runProbe(ep) })
	ep.probe.schedule(rand.N(b.health.interval))
}

// runProbe probes the endpoint once, feeds the state machine, and
// schedules the next probe one interval after this one ended (so a slow
// endpoint is never probed twice at once).
func (b *Backend) runProbe(ep *Endpoint) {
	err := b.probe(b.ctx, ep)
	if b.ctx.Err() != nil {
		return // closing: the failure is ours, not the endpoint's
	}
	if ep.health.observe(err == nil) {
		if ep.health.healthy {
			ep.state.And(^stateUnhealthy)
			b.log.Info("endpoint healthy", "endpoint", ep.addr,
				"consecutiveProbes", b.health.healthyThreshold)
		} else {
			ep.state.Or(stateUnhealthy)
			b.log.Warn("endpoint unhealthy", "endpoint", ep.addr,
				"consecutiveProbes", b.health.unhealthyThreshold, "error", err)
		}
		b.rebuild()
	}
	ep.probe.schedule(b.health.interval)
}

// httpProbe is the health check: GET the endpoint's probe URL within the
// timeout; healthy if the status is expected. A redirect is judged by
// its own status, not followed.
func (b *Backend) httpProbe(ctx context.Context, ep *Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, b.health.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.probeURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "novaedge-health-check")
	resp, err := b.probeClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, probeBodyLimit))
	_ = resp.Body.Close()
	if !b.health.healthyStatus(resp.StatusCode) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
