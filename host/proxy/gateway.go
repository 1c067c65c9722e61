// Package proxy is NovaEdge's data plane: listeners, the router, and the
// request path from a client to a backend and back.
//
// A Gateway serves one generation (a state) built from a configs.Snapshot
// at a time. Apply builds the next generation completely, binds any new
// listeners, swaps one pointer, and retires the old generation, which
// closes its backends once the requests it was serving have finished.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/cache"
	"github.com/novaedge/novaedge/host/compress"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/tlsconf"
	"github.com/novaedge/novaedge/host/upstream"
)

// Options configure a Gateway.
type Options struct {
	Logger *slog.Logger
	// Resolver resolves backends' serviceRefs (default: the system's).
	Resolver upstream.Resolver
	// Policies builds the ProxyPolicies (nil: no policy is active).
	Policies PolicyBuilder
	// SecretsDir holds the TLS secrets of HTTPS listeners:
	// <SecretsDir>/<namespace>/<name>/tls.crt and tls.key.
	SecretsDir string
	// TLS tunes how certificates are watched and OCSP-stapled.
	TLS TLSOptions
	// Metrics counts requests (nil: no metrics).
	Metrics *observe.Metrics
	// AccessLog is where access log lines go (default: os.Stdout).
	AccessLog io.Writer
}

// Gateway owns the listeners and the current generation of routing state.
type Gateway struct {
	log  *slog.Logger
	opts Options

	cur atomic.Pointer[state]

	mu      sync.Mutex // serializes Apply and Shutdown
	servers map[string]*server
	closed  bool

	connMu sync.Mutex
	conns  map[net.Conn]struct{} // hijacked (upgraded) connections

	// What generations share by fingerprint (see kept).
	keptBackends kept[*upstream.Backend]
	keptPolicies kept[Policy]
	keptCerts    kept[*tlsconf.Cert] // by secret directory
	keptCaches   kept[*cache.Cache]  // by gateway and cache settings (cache.go)
	// epochs counts the forced rebuilds of each policy (ApplyOptions.Rebuild):
	// part of its key, so a rebuilt plugin is not the kept one.
	epochs map[string]int

	sink    *observe.Sink  // access log writer, started on first use
	flushes sync.WaitGroup // retired generations' tracers exporting
}

// New returns a Gateway that serves nothing until Apply.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{
		log:     opts.Logger,
		opts:    opts,
		servers: map[string]*server{},
		conns:   map[net.Conn]struct{}{},
		epochs:  map[string]int{},
	}
	if opts.Metrics != nil {
		opts.Metrics.SetBackends(g.backendStatuses)
	}
	return g
}

// state is one generation: everything a request needs, built from one
// snapshot and never modified once it serves.
type state struct {
	g        *Gateway
	snap     *configs.Snapshot
	ports    map[string]*portRouter
	backends map[string]*upstream.Backend
	order    []string // backend keys, sorted
	policies []*boundPolicy

	// The keys of the kept backends and policies this generation holds a
	// reference to, released when it closes.
	heldBackends, heldPolicies []string
	heldCerts                  []string
	heldCaches                 []string
	// What the build reused from the previous generations.
	keptB, keptP int

	// Observability by gateway (nil: none asked for); observed is true
	// when requests are recorded (metrics, or some gateway's).
	obs      map[*configs.Gateway]*observe.Gateway
	observed bool

	// refs counts the requests using this state, plus one for being
	// current. When it reaches zero the state closes its backends.
	refs    atomic.Int64
	drained chan struct{}
}

// portRouter routes the requests of one bound address.
type portRouter struct {
	key    string
	hosts  *hostRouter
	limits configs.ClientLimits
	tls    *tlsconf.SNI     // nil for plain HTTP
	obs    *observe.Gateway // for requests no listener's hostname takes
}

// acquire returns the current state with a reference taken, or nil after
// Shutdown.
func (g *Gateway) acquire() *state {
	for {
		st := g.cur.Load()
		if st == nil {
			return nil
		}
		for {
			n := st.refs.Load()
			if n <= 0 {
				break // retired: load the new one
			}
			if st.refs.CompareAndSwap(n, n+1) {
				return st
			}
		}
		if g.cur.Load() == st {
			return nil // retired and not replaced: shutting down
		}
	}
}

func (st *state) release() {
	if st.refs.Add(-1) == 0 {
		st.close()
	}
}

// close drops the generation's references to its backends and policies;
// those no newer generation uses close now (their VMs, health checks and
// connection pools).
func (st *state) close() {
	for _, k := range st.heldPolicies {
		st.g.keptPolicies.put(k)
	}
	for _, k := range st.heldBackends {
		st.g.keptBackends.put(k)
	}
	for _, k := range st.heldCerts {
		st.g.keptCerts.put(k)
	}
	st.releaseCaches()
	st.closeObserve()
	close(st.drained)
}

// Snapshot returns the snapshot being served, or nil.
func (g *Gateway) Snapshot() *configs.Snapshot {
	if st := g.cur.Load(); st != nil {
		return st.snap
	}
	return nil
}

// ApplyOptions change how Apply builds a generation.
type ApplyOptions struct {
	// Rebuild names policies ("namespace/name") whose plugins are built
	// anew even if their configuration and module did not change: fresh
	// VMs, the module read again.
	Rebuild []string
}

// Apply builds a generation from snap and makes it current. On error the
// running generation is untouched.
//
// What did not change is kept, by fingerprint: a backend whose spec is
// the same keeps its connection pools, endpoints' health and outlier
// state; a policy whose spec and module files are the same keeps its
// running plugin (VMs and their state); a listener whose address is the
// same keeps its socket. Requests in flight finish on the generation they
// started on; a plugin or backend no longer used closes when the last of
// them has.
func (g *Gateway) Apply(ctx context.Context, snap *configs.Snapshot) error {
	return g.ApplyWith(ctx, snap, ApplyOptions{})
}

// ApplyWith is Apply with options.
func (g *Gateway) ApplyWith(ctx context.Context, snap *configs.Snapshot, opts ApplyOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("gateway is shut down")
	}
	for _, name := range opts.Rebuild {
		g.epochs[name]++
	}
	st, err := g.build(ctx, snap)
	if err != nil {
		for _, name := range opts.Rebuild {
			g.epochs[name]-- // keep serving, and keeping, the running plugin
		}
		return err
	}
	// Bind what is new before anything changes, so a port in use fails
	// the whole change.
	var started []*server
	for key, pr := range st.ports {
		if _, ok := g.servers[key]; ok {
			continue
		}
		s, err := g.bind(key, limitsOf(pr.limits))
		if err != nil {
			for _, s := range started {
				s.ln.Close()
				delete(g.servers, s.key)
			}
			st.close()
			return fmt.Errorf("listen on %s: %w", key, err)
		}
		started = append(started, s)
		g.servers[key] = s
	}
	old := g.cur.Swap(st)
	for key, s := range g.servers {
		pr, ok := st.ports[key]
		switch {
		case !ok:
			delete(g.servers, key)
			go func() {
				sctx, cancel := context.WithTimeout(context.Background(), drainGrace)
				defer cancel()
				s.stop(sctx)
			}()
		case limitsOf(pr.limits) != s.limits && !slices.Contains(started, s):
			g.log.Info("client limits changed: new connections get them", "address", key)
			g.setLimits(s, limitsOf(pr.limits), drainGrace)
		}
	}
	for _, s := range started {
		g.start(s)
	}
	if old != nil {
		old.release()
	}
	g.log.Info("configuration applied", "hash", snap.Hash, "listeners", len(st.ports),
		"backends", len(st.backends), "backends_kept", st.keptB,
		"policies", len(st.heldPolicies), "policies_kept", st.keptP)
	return nil
}

// drainGrace bounds how long the connections of a listener that a change
// removed (or whose client limits it changed) may finish their requests.
const drainGrace = 30 * time.Second

// Addrs returns the bound addresses by configured key (useful when a
// listener asked for port 0 in tests).
func (g *Gateway) Addrs() map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := make(map[string]string, len(g.servers))
	for k, s := range g.servers {
		m[k] = s.ln.Addr().String()
	}
	return m
}

// Shutdown stops accepting connections, lets in-flight requests finish
// until ctx is done, then closes what remains: connections, upgraded
// streams, backends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	servers := g.servers
	g.servers = map[string]*server{}
	g.mu.Unlock()

	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.stop(ctx); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Upgraded connections are invisible to http.Server.Shutdown.
	g.connMu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.connMu.Unlock()
	if st := g.cur.Swap(nil); st != nil {
		st.release()
		select {
		case <-st.drained:
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = ctx.Err()
			}
		}
	}
	g.closeObservers(ctx)
	return firstErr
}

func (g *Gateway) trackConn(c net.Conn) (untrack func()) {
	g.connMu.Lock()
	g.conns[c] = struct{}{}
	g.connMu.Unlock()
	return func() {
		g.connMu.Lock()
		delete(g.conns, c)
		g.connMu.Unlock()
	}
}

// bindKey is the address a listener binds.
func bindKey(l *configs.Listener) string {
	return net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
}

// build makes a generation from a snapshot: it starts the backends and
// compiles the routing tables. Nothing is bound or swapped here.
func (g *Gateway) build(ctx context.Context, snap *configs.Snapshot) (st *state, err error) {
	st = &state{
		g:        g,
		snap:     snap,
		ports:    map[string]*portRouter{},
		backends: map[string]*upstream.Backend{},
		drained:  make(chan struct{}),
	}
	st.refs.Store(1)
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	for _, b := range snap.Backends {
		key := b.Metadata.Namespace + "/" + b.Metadata.Name
		fp := b.Fingerprint()
		be, reused, err := g.keptBackends.get(fp, func() (*upstream.Backend, error) {
			be, err := upstream.New(key, &b.Spec, upstream.Options{Resolver: g.opts.Resolver, Logger: g.log})
			if err != nil {
				return nil, err
			}
			if err := be.Start(ctx); err != nil {
				be.Close()
				return nil, err
			}
			return be, nil
		}, (*upstream.Backend).Close)
		if err != nil {
			return st, fmt.Errorf("backend %s: %w", key, err)
		}
		st.heldBackends = append(st.heldBackends, fp)
		if reused {
			st.keptB++
		}
		st.backends[key] = be
		st.order = append(st.order, key)
	}
	if g.opts.Policies != nil {
		for _, p := range snap.Policies {
			name := p.Metadata.Namespace + "/" + p.Metadata.Name
			fp := p.Fingerprint()
			if n := g.epochs[name]; n > 0 {
				fp += "#" + strconv.Itoa(n)
			}
			impl, reused, err := g.keptPolicies.get(fp, func() (Policy, error) {
				return g.opts.Policies(ctx, p)
			}, func(impl Policy) {
				if impl != nil {
					impl.Close()
				}
			})
			if err != nil {
				return st, fmt.Errorf("policy %s: %w", name, err)
			}
			st.heldPolicies = append(st.heldPolicies, fp)
			if reused {
				st.keptP++
			}
			if impl != nil {
				st.policies = append(st.policies, &boundPolicy{cfg: p, impl: impl, failOpen: p.Spec.FailurePolicy == "FailOpen"})
			}
		}
	}
	headerTimeouts := map[string]time.Duration{}
	for _, b := range snap.Backends {
		headerTimeouts[b.Metadata.Namespace+"/"+b.Metadata.Name] = b.Spec.ResponseHeaderTimeout.D(0)
	}
	rules := map[*configs.Route][]*rule{}
	for _, rt := range snap.Routes {
		rs, err := compileRules(rt, st.backends)
		if err != nil {
			return st, err
		}
		for _, rl := range rs {
			for i := range rl.backends {
				rl.backends[i].headerTimeout = headerTimeouts[rl.backends[i].name]
			}
		}
		setCacheScopes(rt, rs)
		rules[rt] = rs
	}

	if err := st.buildObserve(snap); err != nil {
		return st, err
	}
	byPort := map[string][]*listenerRoutes{}
	limits := map[string]configs.ClientLimits{}
	snis := map[string]*tlsconf.SNI{}
	for _, gw := range snap.Gateways {
		cz, err := compress.New(gw.Spec.Compression)
		if err != nil {
			return st, fmt.Errorf("gateway %s: compression: %w", key(gw.Metadata), err)
		}
		if m := g.opts.Metrics; cz != nil && m != nil {
			cz.OnDone(func(alg compress.Algorithm, in, out int64) {
				m.Compression.Responses.WithLabelValues(alg.String()).Inc()
				m.Compression.BytesIn.Add(float64(in))
				m.Compression.BytesOut.Add(float64(out))
			})
		}
		gc, err := g.cacheFor(st, gw)
		if err != nil {
			return st, err
		}
		identity := compileIdentityHeaders(gw.Spec.IdentityHeaders, snap.Policies)
		for i := range gw.Spec.Listeners {
			l := &gw.Spec.Listeners[i]
			if !listenerActive(l) {
				continue
			}
			lr := &listenerRoutes{listener: l, gateway: gw, redirect: schemeRedirectFor(gw, l), compress: cz, cache: gc, identity: identity}
			if l.Protocol == "HTTPS" {
				sni := snis[bindKey(l)]
				if sni == nil {
					sni = &tlsconf.SNI{}
					snis[bindKey(l)] = sni
				}
				if err := g.loadListenerTLS(st, gw, l, sni); err != nil {
					return st, err
				}
			}
			for _, rt := range snap.Routes {
				if !attaches(rt, gw, l) {
					continue
				}
				hosts := effectiveHosts(l.Hostnames, rt.Spec.Hostnames)
				if len(hosts) == 0 {
					continue
				}
				ar := attachedRoute{route: rt, rules: rules[rt], hosts: hosts}
				if len(st.policies) > 0 {
					for _, rl := range ar.rules {
						ar.policies = append(ar.policies, policiesFor(st.policies, gw, rt, rl.section))
					}
				}
				lr.routes = append(lr.routes, ar)
			}
			key := bindKey(l)
			byPort[key] = append(byPort[key], lr)
			if _, ok := limits[key]; !ok && gw.Spec.ClientLimits != nil {
				limits[key] = *gw.Spec.ClientLimits
			}
		}
	}
	for key, ls := range byPort {
		st.ports[key] = &portRouter{key: key, hosts: buildHostRouter(ls), limits: limits[key], tls: snis[key], obs: st.portObserve(ls)}
	}
	return st, nil
}

// listenerActive reports whether this build serves the listener.
func listenerActive(l *configs.Listener) bool { return l.Protocol == "HTTP" || l.Protocol == "HTTPS" }

// attaches reports whether a route attaches to a gateway's listener:
// through a parentRef naming the gateway (and the listener, if it names
// one), or, for a route with no parentRefs, by living in the gateway's
// namespace.
func attaches(rt *configs.Route, gw *configs.Gateway, l *configs.Listener) bool {
	if len(rt.Spec.ParentRefs) == 0 {
		return rt.Metadata.Namespace == gw.Metadata.Namespace
	}
	for _, pr := range rt.Spec.ParentRefs {
		ns := pr.Namespace
		if ns == "" {
			ns = rt.Metadata.Namespace
		}
		if pr.Name == gw.Metadata.Name && ns == gw.Metadata.Namespace && (pr.SectionName == "" || pr.SectionName == l.Name) {
			return true
		}
	}
	return false
}

// effectiveHosts intersects a listener's hostnames with a route's, as the
// Gateway API does: the more specific of each matching pair survives. An
// empty list on either side accepts everything of the other; [""] stands
// for "any host".
func effectiveHosts(listener, route []string) []string {
	switch {
	case len(listener) == 0 && len(route) == 0:
		return []string{""}
	case len(route) == 0:
		return append([]string(nil), listener...)
	case len(listener) == 0:
		return append([]string(nil), route...)
	}
	seen := map[string]bool{}
	var out []string
	for _, rh := range route {
		for _, lh := range listener {
			h := ""
			switch {
			case hostMatches(lh, rh) || lh == rh:
				h = rh
			case hostMatches(rh, lh):
				h = lh
			default:
				continue
			}
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// slogWriter sends net/http's server log lines to slog at debug level
// (they are client-side noise: bad handshakes, broken connections).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "message", string(p))
	return len(p), nil
}

// ErrNoSuchBackend is returned by CallBackend for a name the running
// configuration does not have.
var ErrNoSuchBackend = errors.New("no such backend")

// CallBackend sends an out-of-band request (a plugin's HTTP callout) to a
// backend of the running configuration, named "namespace/name" or, if
// unique across namespaces, "name": an endpoint is picked as for any
// request, under the backend's circuit breaker. The caller closes the
// response body; the generation stays alive until it does.
func (g *Gateway) CallBackend(ctx context.Context, name string, req *http.Request) (*http.Response, error) {
	st := g.acquire()
	if st == nil {
		return nil, errors.New("gateway is shutting down")
	}
	be := st.backends[name]
	if be == nil && !strings.Contains(name, "/") {
		for _, k := range st.order {
			if _, n, _ := strings.Cut(k, "/"); n == name {
				if be != nil {
					st.release()
					return nil, fmt.Errorf("backend %q: ambiguous, name it as namespace/name", name)
				}
				be = st.backends[k]
			}
		}
	}
	if be == nil {
		st.release()
		return nil, fmt.Errorf("%w: %q", ErrNoSuchBackend, name)
	}
	release, err := be.Acquire(ctx)
	if err != nil {
		st.release()
		return nil, err
	}
	ep, err := be.Pick(0, nil)
	if err != nil {
		release()
		st.release()
		return nil, err
	}
	req = req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = "http", ep.Addr()
	req.URL = &u
	a := ep.Begin()
	start := time.Now()
	resp, err := be.Transport().RoundTrip(req)
	if err != nil {
		a.End(upstream.ConnectFailure, time.Since(start))
		release()
		st.release()
		return nil, err
	}
	result := upstream.Success
	if resp.StatusCode >= 500 {
		result = upstream.Failure
	}
	a.End(result, time.Since(start))
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { release(); st.release() }}
	return resp, nil
}

// releasingBody runs release once when the body is closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
