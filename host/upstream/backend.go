package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/novaedge/novaedge/configs"
)

// Errors returned on the request path. They carry no backend name (the
// path does not allocate); the caller adds it.
var (
	// ErrNoEndpoints: the backend has no endpoint at all (an empty or
	// not yet resolved service).
	ErrNoEndpoints = errors.New("upstream: no endpoints")
	// ErrOverloaded: the circuit breaker's concurrency limit and its
	// queue of pending requests are both full.
	ErrOverloaded = errors.New("upstream: overloaded")
)

// Options are a Backend's collaborators. The zero value is ready to use.
type Options struct {
	// Resolver resolves a serviceRef's name (default net.DefaultResolver).
	Resolver Resolver
	// Clock schedules probes, DNS refreshes and ejections (default the
	// real clock).
	Clock Clock
	// Logger receives health, ejection and DNS events (default
	// slog.Default()).
	Logger *slog.Logger
}

// Backend is a running ProxyBackend: its endpoints, load balancer, health
// checks, outlier detection, circuit breaker and transport. Build it with
// New, start its background work with Start, stop it with Close. Pick,
// HashKey, Acquire and the accounting of attempts are safe for any number
// of concurrent callers.
type Backend struct {
	name     string
	policy   policy
	protocol string
	log      *slog.Logger
	clock    Clock
	resolver Resolver

	transport *http.Transport
	native    *h1Client // the HTTP/1.1 client of the request path; nil for H2C
	hash      hashSource
	breaker   *breaker       // nil: no concurrency limit
	outlier   *outlierConfig // nil: no passive outlier detection
	health    *healthConfig  // nil: no active health checks
	service   *serviceConfig // nil: explicit endpoints

	// probe checks one endpoint once; tests replace it.
	probe          func(ctx context.Context, ep *Endpoint) error
	probeClient    *http.Client
	probeTransport *http.Transport

	ctx    context.Context // ends with Close; bounds probes and lookups
	cancel context.CancelFunc
	wg     sync.WaitGroup // every job and goroutine the Backend started

	lb      atomic.Pointer[lbState] // what Pick reads
	buildMu sync.Mutex              // serializes rebuilds of lb

	ejectionsTotal atomic.Uint64 // endpoints ejected by outlier detection

	mu             sync.Mutex // guards what follows and the ejection state of endpoints
	eps            []*Endpoint
	version        uint64 // of eps
	started        bool
	closed         bool
	dns            *job
	dnsFailing     bool
	rebuildDirty   bool
	rebuildRunning bool
	rebuildDone    chan struct{} // closed when the running rebuildLoop ends

	closeOnce sync.Once
}

// endpointSpec is an endpoint to have: an address and its weight.
type endpointSpec struct {
	addr   string
	weight int
}

// New builds the Backend named name ("namespace/name") from a validated,
// defaulted spec. It checks what it relies on (a known policy and
// protocol, one source of endpoints, well-formed addresses and weights)
// and builds the transport, but starts nothing: explicit endpoints can be
// picked right away, a serviceRef has no endpoint until Start resolves it.
func New(name string, spec *configs.BackendSpec, opts Options) (*Backend, error) {
	if spec == nil {
		return nil, fmt.Errorf("backend %q: no spec", name)
	}
	pol, err := parsePolicy(spec.LBPolicy)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	proto, err := parseProtocol(spec.Protocol)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	b := &Backend{
		name:     name,
		policy:   pol,
		protocol: proto,
		log:      opts.Logger,
		clock:    opts.Clock,
		resolver: opts.Resolver,
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("backend", name)
	if b.clock == nil {
		b.clock = systemClock{}
	}
	if b.resolver == nil {
		b.resolver = net.DefaultResolver
	}

	var explicit []endpointSpec
	switch {
	case spec.ServiceRef != nil && len(spec.Endpoints) > 0:
		return nil, fmt.Errorf("backend %q: both serviceRef and endpoints are set", name)
	case spec.ServiceRef != nil:
		if b.service, err = newServiceConfig(spec.ServiceRef); err != nil {
			return nil, fmt.Errorf("backend %q: serviceRef: %w", name, err)
		}
	case len(spec.Endpoints) > 0:
		if explicit, err = parseEndpoints(spec.Endpoints); err != nil {
			return nil, fmt.Errorf("backend %q: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("backend %q: neither serviceRef nor endpoints is set", name)
	}

	b.hash = newHashSource(pol, spec.ConsistentHash)
	b.transport = newTransport(spec, proto)
	if proto == protocolHTTP {
		b.native = newH1Client(b.transport)
	}
	b.breaker = newBreaker(spec.CircuitBreaker)
	b.outlier = newOutlierConfig(spec.CircuitBreaker)
	if spec.HealthCheck != nil {
		b.health = newHealthConfig(spec.HealthCheck)
		b.probeTransport = newProbeTransport(spec, proto)
		b.probeClient = &http.Client{
			Transport: b.probeTransport,
			// A redirect is an answer: judge its status, do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		b.probe = b.httpProbe
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.setEndpoints(explicit)
	return b, nil
}

// parseEndpoints checks explicit endpoints: "host:port" with a port in
// 1–65535, a weight of at least 1 (default 1), no address twice.
func parseEndpoints(in []configs.Endpoint) ([]endpointSpec, error) {
	out := make([]endpointSpec, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, e := range in {
		host, port, err := net.SplitHostPort(e.Address)
		if err != nil || host == "" {
			return nil, fmt.Errorf("endpoints[%d]: address %q is not host:port", i, e.Address)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("endpoints[%d]: address %q: port must be 1–65535", i, e.Address)
		}
		addr := net.JoinHostPort(host, port)
		if seen[addr] {
			return nil, fmt.Errorf("endpoints[%d]: address %q is listed twice", i, e.Address)
		}
		seen[addr] = true
		w := 1
		if e.Weight != nil {
			w = *e.Weight
		}
		if w < 1 || w > maxWeight {
			return nil, fmt.Errorf("endpoints[%d]: weight %d is out of range 1–%d", i, w, maxWeight)
		}
		out = append(out, endpointSpec{addr: addr, weight: w})
	}
	return out, nil
}

// maxWeight bounds an endpoint's weight, so that the policies' tables
// (round-robin schedule, ring) keep a sane size.
const maxWeight = 10000

// Name returns the backend's "namespace/name".
func (b *Backend) Name() string { return b.name }

// Start starts the backend's background work: it resolves a serviceRef
// once (a failure is logged and leaves the backend without endpoints,
// to be retried every refresh interval, as the name may not exist yet),
// then schedules the DNS refreshes and the active health checks. ctx
// bounds the first resolution only; the background work lasts until
// Close. Start returns an error when called twice, after Close, or when
// ctx ends during the first resolution (the caller should then Close).
func (b *Backend) Start(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return fmt.Errorf("backend %q: Start after Close", b.name)
	case b.started:
		b.mu.Unlock()
		return fmt.Errorf("backend %q: already started", b.name)
	}
	b.started = true
	for _, ep := range b.eps {
		b.startProbe(ep)
	}
	b.mu.Unlock()

	if b.service == nil {
		return nil
	}
	b.resolve(ctx)
	b.mu.Lock()
	if !b.closed {
		b.dns = newJob(b.clock, &b.wg, b.refreshDNS)
		b.dns.schedule(b.service.refresh)
	}
	b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backend %q: resolving %q: %w", b.name, b.service.host, err)
	}
	return nil
}

// Close stops every timer and goroutine the backend started and waits for
// those running, then closes the idle connections of its transports.
// Requests in flight on the transport finish. Close is idempotent and
// safe after a partial Start or none.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		if b.dns != nil {
			b.dns.stop()
		}
		for _, ep := range b.eps {
			ep.stopJobs()
		}
		b.mu.Unlock()
		b.cancel()
		b.wg.Wait()
		if b.native != nil {
			b.native.close()
		}
		b.transport.CloseIdleConnections()
		if b.probeTransport != nil {
			b.probeTransport.CloseIdleConnections()
		}
	})
}

// Transport returns the backend's round tripper, shared by every request
// to the backend: for HTTP endpoints the native HTTP/1.1 client (see
// h1Client), which leaves what it does not handle to the net/http
// Transport tuned for proxying (see newTransport); for H2C that
// Transport.
func (b *Backend) Transport() http.RoundTripper {
	if b.native != nil {
		return b.native
	}
	return b.transport
}

// setEndpoints makes specs the endpoint set. Endpoints whose address
// stays keep their state (health, ejection, in-flight count, EWMA); new
// ones start healthy and get a health check if the backend has started;
// vanished ones stop theirs. Then the load balancer is rebuilt.
func (b *Backend) setEndpoints(specs []endpointSpec) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	old := make(map[string]*Endpoint, len(b.eps))
	for _, ep := range b.eps {
		old[ep.addr] = ep
	}
	next := make([]*Endpoint, 0, len(specs))
	for _, s := range specs {
		if ep, ok := old[s.addr]; ok && ep.weight == s.weight {
			next = append(next, ep)
			delete(old, s.addr)
			continue
		}
		ep := b.newEndpoint(s)
		next = append(next, ep)
		if b.started {
			b.startProbe(ep)
		}
	}
	for _, ep := range old {
		ep.removed = true
		ep.stopJobs()
	}
	b.eps = next
	b.version++
	b.mu.Unlock()
	if b.native != nil {
		// Idle connections to endpoints that left are closed; one in use
		// goes back to the pool and expires with the idle timeout.
		for addr := range old {
			if !slices.ContainsFunc(specs, func(s endpointSpec) bool { return s.addr == addr }) {
				b.native.closeIdleHost(addr)
			}
		}
	}
	b.rebuild()
}

func (b *Backend) newEndpoint(s endpointSpec) *Endpoint {
	ep := &Endpoint{addr: s.addr, weight: s.weight, backend: b}
	if b.outlier != nil {
		ep.uneject = newJob(b.clock, &b.wg, func() { b.endEjection(ep) })
	}
	if b.health != nil {
		ep.health = newHealthMachine(b.health.healthyThreshold, b.health.unhealthyThreshold)
		ep.probeURL = "http://" + ep.addr + b.health.path
	}
	return ep
}

// stopJobs stops the endpoint's timers. Call with backend.mu held.
func (ep *Endpoint) stopJobs() {
	if ep.probe != nil {
		ep.probe.stop()
	}
	if ep.uneject != nil {
		ep.uneject.stop()
	}
}
