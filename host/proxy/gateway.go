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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/cache"
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

// slogWriter sends net/http's server log lines to slog at debug level
// (they are client-side noise: bad handshakes, broken connections).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "message", string(p))
	return len(p), nil
}
