// Package upstream is NovaEdge's view of the services behind the gateway:
// one Backend per ProxyBackend, holding its endpoints, the load-balancing
// policy that picks among them, active health checks, passive outlier
// detection, the concurrency limits of its circuit breaker, and the
// client that carries requests to it.
//
// # Request path
//
// The proxy drives one request through a Backend like this:
//
//	release, err := b.Acquire(ctx)     // circuit breaker; ErrOverloaded when full
//	if err != nil { /* 503 */ }
//	defer release()
//	key := b.HashKey(r, clientIP)      // 0 unless RingHash or Maglev
//	var tried []*upstream.Endpoint     // a stack array in practice
//	for try := 0; try <= maxRetries; try++ {
//		ep, err := b.Pick(key, tried) // fails only with ErrNoEndpoints
//		if err != nil { /* 503 */ }
//		a := ep.Begin()
//		start := time.Now()
//		// send to "http://"+ep.Addr() over b.Transport(), classify the outcome
//		a.End(result, time.Since(start)) // Success, Failure, ConnectFailure, Reset, Timeout, Canceled
//		if !retryable { break }
//		tried = append(tried, ep)
//	}
//
// Acquire (when not saturated), HashKey, Pick, Begin and End do not
// allocate, and Pick takes no lock: the endpoint set and the policy's
// tables are an immutable snapshot swapped through an atomic pointer, and
// per-endpoint counters are atomics. (End of a failed attempt takes a
// lock of its endpoint, and an ejection the backend's.)
//
// # Endpoints
//
// A backend's endpoints are its spec's explicit "host:port" addresses (a
// host that is a name is left to the transport to dial), or the A and
// AAAA records of its serviceRef's name, each at the ref's port with
// weight 1, resolved at Start and again every refreshInterval, as a
// Kubernetes Service's DNS name works. The name is resolved as written if
// it has a dot or the ref no namespace, else as "name.namespace". On each
// resolution, addresses that stay keep their Endpoint and its state
// (health, ejection, in-flight count, latency); vanished ones are dropped;
// a failed resolution keeps the last known set.
//
// # Availability and panic mode
//
// An endpoint is available when it passes active health checks and is not
// ejected by outlier detection. Every policy picks among available
// endpoints only. When none is available, the backend is in panic mode,
// as in Envoy: Pick chooses among all endpoints with the same policy
// rather than failing, because a health signal that condemns every
// endpoint is more likely wrong (a broken health endpoint, a network
// blip between the gateway and the checks) than every endpoint being
// down, and serving some requests beats serving none.
//
// Within the candidates (available endpoints, or all in panic mode),
// Pick skips the endpoints in tried as long as an untried candidate
// remains; once every candidate was tried it picks among them again.
//
// # Policies
//
//   - RoundRobin: smooth weighted round robin (nginx's sequence),
//     precomputed per availability snapshot and walked with one atomic
//     counter, so it is lock-free.
//   - LeastConn: fewest in-flight requests relative to weight; ties are
//     broken at random in proportion to weight (so an idle backend is
//     spread by weight).
//   - P2C: two endpoints drawn at random in proportion to weight; the one
//     with fewer in-flight requests relative to weight wins, then the one
//     with the lower latency EWMA, then the first drawn.
//   - Random: weighted random.
//   - RingHash: a consistent-hash ring of xxhash points, 128 per unit of
//     weight (more for small backends, so the ring has at least 1024); an
//     unavailable endpoint is skipped by walking to the next point, so
//     only its keys move.
//   - Maglev: a Maglev lookup table of 65537 slots, filled with weights as
//     Envoy does, rebuilt over the available endpoints whenever
//     availability changes (off the request path).
//
// # Health
//
// Active checks GET a path on every endpoint each interval, the first
// probe of each endpoint at a random point of the first interval so that
// endpoints are not probed in lockstep. An endpoint starts healthy: a
// gateway that starts (or reloads) would otherwise refuse every request
// until the first probes came back, a self-inflicted outage, whereas a
// dead endpoint is soon caught by the checks and, meanwhile, by outlier
// detection and retries. It turns unhealthy after unhealthyThreshold
// consecutive failed probes and healthy again after healthyThreshold
// consecutive good ones.
//
// Passive outlier detection counts consecutive failed attempts (5xx or
// gateway errors, connect failures, resets, timeouts; any success resets
// the count). consecutiveFailures of them within interval eject the
// endpoint for baseEjectionTime times the number of times it has been
// ejected, capped at ten times the base (and at five minutes unless the
// base itself is longer). No more than maxEjectionPercent (at most 50%)
// of the endpoints are ejected at once. An endpoint that stays un-ejected
// for the longest ejection time has one past ejection forgiven.
//
// # Transport
//
// An HTTP backend's requests go through a native HTTP/1.1 client
// (h1client.go, h1wire.go) that writes a request and reads its response
// on the caller's goroutine: no reading and writing goroutine per
// connection and no channel hand-off between them, as net/http's
// Transport has (a request with a body has its body written on a
// goroutine of its own while the response is read, so that an endpoint
// may answer before it has read the body). Idle keep-alive connections
// are pooled per endpoint, most recently used first, bounded by the
// connectionPool settings, closed after idleConnTimeout, when their
// endpoint leaves the backend, and at Close. A connection goes back to
// the pool only when its response was read to the end and neither side
// asked to close it. The context's end sets a past deadline on the
// connection (context.AfterFunc), which aborts the I/O and closes it.
// Responses are parsed strictly (FuzzReadResponse checks that the parser
// accepts nothing net/http's refuses); what the client cannot frame
// exactly (an Upgrade, Expect: 100-continue, request trailers, a body of
// length 0, an extension method, a field net/http would refuse) and H2C
// backends use the net/http Transport tuned for proxying.
//
// # Time
//
// Every timer of a Backend (probes, DNS refreshes, ejections) runs on the
// Clock of its Options, so tests drive them with a fake clock. Start
// starts them and Close stops them and waits for the running ones.
package upstream
