package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a callback can return. Any error means the caller applies the
// policy's failure policy.
var (
	// ErrClosed: the Runtime or Plugin is closed.
	ErrClosed = errors.New("wasm: closed")
	// ErrCallTimeout: a callback ran longer than PluginOptions.CallTimeout;
	// its VM was discarded.
	ErrCallTimeout = errors.New("wasm: callback timed out")
	// ErrPauseTimeout: a paused stream was not continued within
	// PluginOptions.PauseTimeout.
	ErrPauseTimeout = errors.New("wasm: paused stream not continued in time")
	// ErrBodyTooLarge: buffering a body would exceed PluginOptions.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("wasm: buffered body exceeds limit")
	// ErrVMDiscarded: the stream's VM was discarded (after a trap or a
	// timeout of another callback) while the stream was in flight.
	ErrVMDiscarded = errors.New("wasm: VM discarded")
	// ErrStreamClosed: the plugin called proxy_close_stream.
	ErrStreamClosed = errors.New("wasm: plugin closed the stream")
)

// PluginOptions configures one plugin (one configuration of a Module).
type PluginOptions struct {
	// Name, RootID and VMID are what the plugin reads as the plugin_name,
	// plugin_root_id and plugin_vm_id properties. VMID also scopes shared data
	// and shared queues, as in Envoy. Plugins of the same Module with the
	// same non-empty VMID, VMConfiguration and MaxMemoryPages share their VMs
	// (see "VM model" in the package documentation); an empty VMID gives the
	// plugin VMs of its own.
	Name, RootID, VMID string
	// Configuration is read by proxy_on_configure through get_buffer_bytes
	// (PLUGIN_CONFIGURATION).
	Configuration []byte
	// VMConfiguration is read by proxy_on_vm_start (VM_CONFIGURATION).
	VMConfiguration []byte
	// MaxVMs bounds the number of VMs. Default runtime.GOMAXPROCS(0).
	// Plugins that share VMs share one pool, bounded by the largest MaxVMs
	// of its open plugins.
	MaxVMs int
	// MaxMemoryPages is the per-VM memory ceiling in 64 KiB pages.
	// Default 512 (32 MiB). A VM above 3/4 of it is retired between requests.
	MaxMemoryPages uint32
	// CallTimeout bounds every callback. Default 100ms. Shared VMs use the
	// CallTimeout and StartTimeout of the plugin that created the group.
	CallTimeout time.Duration
	// StartTimeout bounds each call of a VM's start-up (start function,
	// root context creation, proxy_on_vm_start, proxy_on_configure):
	// a runtime's initialization (Go's, in a 2.5 MB module) takes far
	// longer than a request callback. Default 10s, and never less than
	// CallTimeout.
	StartTimeout time.Duration
	// PauseTimeout bounds how long a paused stream waits for
	// proxy_continue_stream. Default 30s.
	PauseTimeout time.Duration
	// MaxBodyBytes bounds a body buffered on the plugin's behalf. Default 1 MiB.
	MaxBodyBytes int
	// Properties, when set, answers proxy_get_property paths the host does
	// not know.
	Properties func(path []string) ([]byte, bool)
}

func (o *PluginOptions) setDefaults() {
	if o.MaxVMs <= 0 {
		o.MaxVMs = runtime.GOMAXPROCS(0)
	}
	if o.MaxMemoryPages == 0 {
		o.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 100 * time.Millisecond
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.StartTimeout < o.CallTimeout {
		o.StartTimeout = o.CallTimeout
	}
	if o.PauseTimeout <= 0 {
		o.PauseTimeout = 30 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
}

// PluginStats are a plugin's counters. On shared VMs, VMs and MemoryBytes
// describe the shared pool; the other counters are the plugin's own.
type PluginStats struct {
	VMs         int    // live VMs
	MemoryBytes uint64 // sum of the live VMs' memory sizes
	Calls       uint64 // callbacks made in the plugin's contexts
	Failures    uint64 // callbacks of the plugin that trapped or timed out
	VMRebuilds  uint64 // VMs discarded (trap, timeout, memory) and so replaced on demand
}

// Plugin is a started plugin: a Module with a configuration, and one root
// context on each VM of its group.
type Plugin struct {
	mod  *Module
	rt   *Runtime
	g    *vmGroup
	opts PluginOptions
	log  *slog.Logger

	mu     sync.Mutex
	closed bool

	wg sync.WaitGroup // the plugin's HTTP call goroutines

	calls, failures, rebuilds atomic.Uint64
}

// groupKey identifies the plugins that share VMs: same code, same non-empty
// vm_id, same VM configuration and same memory ceiling.
type groupKey struct {
	hash, vmID, vmConfig string
	pages                uint32
}

// vmGroup is a pool of VMs and the plugins that have a root context on each
// of them: the plugins of one groupKey, or one plugin with an empty VMID.
type vmGroup struct {
	rt   *Runtime
	mod  *Module
	eng  *engine
	key  groupKey
	opts PluginOptions // the first plugin's: VM configuration, memory ceiling, start timeout
	log  *slog.Logger
	refs int // plugins joined and not yet left; guarded by rt.mu

	// members is held for writing while a plugin attaches or detaches and
	// for reading while a VM starts: a VM start sees a fixed set of plugins,
	// and an attach or detach sees every VM started before it.
	members sync.RWMutex

	mu         sync.Mutex
	plugins    []*Plugin // attached, in attach order
	vms        []*vm
	starting   int
	started    chan struct{} // closed (and replaced) when a VM start ends
	startErr   error         // last failed VM start, returned without retrying for restartBackoff
	startErrAt time.Time

	wg sync.WaitGroup // VM event loops
}

// joinGroupLocked finds or creates the group of p and counts p in it.
// rt.mu must be held.
func (r *Runtime) joinGroupLocked(m *Module, eng *engine, p *Plugin) *vmGroup {
	o := &p.opts
	key := groupKey{hash: m.hash, vmID: o.VMID, vmConfig: string(o.VMConfiguration), pages: o.MaxMemoryPages}
	if o.VMID != "" {
		if g := r.groups[key]; g != nil {
			g.refs++
			return g
		}
	}
	g := &vmGroup{rt: r, mod: m, eng: eng, key: key, opts: *o, log: p.log, refs: 1, started: make(chan struct{})}
	if o.VMID != "" {
		g.log = r.log.With("vm_id", o.VMID)
		r.groups[key] = g
	}
	return g
}

// leaveGroup uncounts p and reports whether it was the group's last plugin.
func (r *Runtime) leaveGroup(g *vmGroup) (last bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g.refs--
	if g.refs > 0 {
		return false
	}
	if r.groups[g.key] == g {
		delete(r.groups, g.key)
	}
	return true
}

// NewPlugin starts a plugin: it joins the VMs of the plugins it shares them
// with, or starts its first VM (instantiation, the module's start-up
// function, proxy_on_vm_start), and creates and configures its root context
// on each (proxy_on_context_create, proxy_on_configure). A false result from
// proxy_on_vm_start or proxy_on_configure is an error; a plugin refusing its
// configuration leaves the other plugins of a shared VM as they were.
func (m *Module) NewPlugin(ctx context.Context, opts PluginOptions) (*Plugin, error) {
	opts.setDefaults()
	eng, err := m.rt.engine(ctx, opts.MaxMemoryPages)
	if err != nil {
		return nil, err
	}
	p := &Plugin{
		mod:  m,
		rt:   m.rt,
		opts: opts,
		log:  m.rt.log.With("plugin", opts.Name),
	}
	m.rt.mu.Lock()
	switch {
	case m.rt.closed:
		m.rt.mu.Unlock()
		return nil, ErrClosed
	case m.rt.modules[m.hash] != m:
		m.rt.mu.Unlock()
		return nil, fmt.Errorf("wasm: plugin %q: module %s is closed", opts.Name, m.hash[:12])
	}
	m.rt.plugins[p] = struct{}{}
	m.refs++
	p.g = m.rt.joinGroupLocked(m, eng, p)
	m.rt.mu.Unlock()
	if _, err := eng.compile(ctx, m.hash, m.code); err != nil {
		_ = p.Close(ctx)
		return nil, fmt.Errorf("wasm: plugin %q: compile: %w", opts.Name, err)
	}
	if err := p.g.attach(ctx, p); err != nil {
		_ = p.Close(ctx)
		return nil, err
	}
	p.mu.Lock()
	closed := p.closed // the Runtime was closed meanwhile
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return p, nil
}

// Close detaches the plugin from its VMs: on each, its streams in flight
// fail with ErrVMDiscarded, proxy_on_done and proxy_on_delete run on its
// root context, and its ticks and HTTP calls stop. The last plugin of a group
// closes the VMs. Close waits for the goroutines it stops and is idempotent.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	if g := p.g; g != nil {
		g.detach(p, p.rt.leaveGroup(g))
	}
	p.wg.Wait()
	p.rt.queues.dropOwner(p)
	p.rt.mu.Lock()
	_, registered := p.rt.plugins[p]
	delete(p.rt.plugins, p)
	p.rt.mu.Unlock()
	if registered {
		return p.mod.release(ctx)
	}
	return nil
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() PluginStats {
	s := PluginStats{
		Calls:      p.calls.Load(),
		Failures:   p.failures.Load(),
		VMRebuilds: p.rebuilds.Load(),
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return s
	}
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range g.vms {
		if v.closed.Load() {
			continue
		}
		s.VMs++
		s.MemoryBytes += uint64(v.memBytes.Load())
	}
	return s
}

func (p *Plugin) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// attach creates and configures p's root context on every live VM of the
// group, starting a VM (with the plugins already attached) when there is
// none, then counts p among the plugins that later VMs start with. On error
// p's root contexts are deleted again and nothing else changes.
func (g *vmGroup) attach(ctx context.Context, p *Plugin) error {
	g.members.Lock()
	defer g.members.Unlock()
	for attempt := 0; ; attempt++ {
		g.mu.Lock()
		var live []*vm
		for _, v := range g.vms {
			if !v.closed.Load() && !v.retiring.Load() {
				live = append(live, v)
			}
		}
		plugins := slices.Clone(g.plugins)
		g.mu.Unlock()
		if len(live) == 0 {
			if len(plugins) == 0 { // the group's first plugin: starts the VM
				v, err := g.startVM(ctx, []*Plugin{p})
				if err != nil {
					return err
				}
				g.mu.Lock()
				g.vms = append(g.vms, v)
				g.plugins = append(g.plugins, p)
				g.mu.Unlock()
				return nil
			}
			v, err := g.startVM(ctx, plugins)
			if err != nil {
				return err
			}
			g.mu.Lock()
			g.vms = append(g.vms, v)
			g.mu.Unlock()
			live = []*vm{v}
		}
		var done []*vm
		for _, v := range live {
			v.mu.Lock()
			var err error
			if !v.closed.Load() {
				err = v.attachLocked(p)
			}
			v.mu.Unlock()
			if err != nil {
				for _, d := range done {
					d.mu.Lock()
					if r := d.rootOf[p]; r != nil && !d.closed.Load() {
						d.detachRootLocked(r)
					}
					d.mu.Unlock()
				}
				return fmt.Errorf("wasm: plugin %q: %w", p.opts.Name, err)
			}
			if !v.closed.Load() {
				done = append(done, v)
			}
		}
		if len(done) == 0 && attempt < 3 { // every VM was discarded meanwhile
			continue
		}
		if len(done) == 0 {
			return fmt.Errorf("wasm: plugin %q: %w", p.opts.Name, ErrVMDiscarded)
		}
		g.mu.Lock()
		g.plugins = append(g.plugins, p)
		g.mu.Unlock()
		return nil
	}
}

// detach removes p's root context from every VM of the group; the last
// plugin closes the VMs and waits for their goroutines.
func (g *vmGroup) detach(p *Plugin, last bool) {
	g.members.Lock()
	g.mu.Lock()
	if i := slices.Index(g.plugins, p); i >= 0 {
		g.plugins = slices.Delete(g.plugins, i, i+1)
	}
	vms := slices.Clone(g.vms)
	if last {
		g.vms = nil
	}
	g.mu.Unlock()
	for _, v := range vms {
		v.mu.Lock()
		if r := v.rootOf[p]; r != nil && !v.closed.Load() {
			v.detachRootLocked(r)
		}
		if last {
			v.closeLocked(ErrClosed)
		}
		v.mu.Unlock()
	}
	g.members.Unlock()
	if last {
		g.wg.Wait()
	}
}

// maxVMs is the pool's bound: the largest MaxVMs of the open plugins. g.mu
// must be held.
func (g *vmGroup) maxVMsLocked() int {
	n := 0
	for _, p := range g.plugins {
		n = max(n, p.opts.MaxVMs)
	}
	if n == 0 {
		n = g.opts.MaxVMs
	}
	return n
}

// restartBackoff: after a VM fails to start, streams that find no live VM
// get the same error for this long instead of each trying again, so a
// plugin that crashes on start does not turn every request into a VM start
// (the spec's "crash loop" consideration).
const restartBackoff = time.Second

// pick binds a new stream of p to the least-loaded live VM of its group,
// starting a VM when every live one is busy and there is room. When no VM is
// live and the pool is full of VMs being started, it waits for one.
func (p *Plugin) pick(ctx context.Context) (*vm, error) {
	if p.isClosed() {
		return nil, ErrClosed
	}
	g := p.g
	for {
		g.mu.Lock()
		best := g.liveLocked()
		if best == nil && g.startErr != nil && time.Since(g.startErrAt) < restartBackoff {
			err := g.startErr
			g.mu.Unlock()
			return nil, err
		}
		room := len(g.vms)+g.starting < g.maxVMsLocked()
		if best != nil && (best.active.Load() == 0 || !room) {
			best.active.Add(1)
			g.mu.Unlock()
			return best, nil
		}
		if !room { // no live VM, and as many are starting as the pool holds
			started := g.started
			g.mu.Unlock()
			select {
			case <-started:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		g.starting++
		g.mu.Unlock()
		g.members.RLock()
		g.mu.Lock()
		if g.liveLocked(); len(g.vms)+g.starting > g.maxVMsLocked() { // an attach started one meanwhile
			g.startEndedLocked()
			g.mu.Unlock()
			g.members.RUnlock()
			continue
		}
		plugins := slices.Clone(g.plugins)
		g.mu.Unlock()
		v, err := g.startVM(ctx, plugins)
		g.mu.Lock()
		g.startEndedLocked()
		if err != nil {
			g.startErr, g.startErrAt = err, time.Now()
		} else {
			g.startErr = nil
		}
		switch {
		case err == nil:
			g.vms = append(g.vms, v) // published before members is released: a detach sees it
			best = v
		case best == nil:
			g.mu.Unlock()
			g.members.RUnlock()
			return nil, err
		default:
			p.log.Warn("wasm: starting another VM failed", "err", err)
		}
		best.active.Add(1)
		g.mu.Unlock()
		g.members.RUnlock()
		return best, nil
	}
}

// liveLocked drops the closed and retiring VMs from g.vms and returns the
// least-loaded of the others (nil if none). g.mu must be held.
func (g *vmGroup) liveLocked() *vm {
	live := g.vms[:0]
	var best *vm
	for _, v := range g.vms {
		if v.closed.Load() || v.retiring.Load() {
			continue
		}
		live = append(live, v)
		if best == nil || v.active.Load() < best.active.Load() {
			best = v
		}
	}
	clear(g.vms[len(live):])
	g.vms = live
	return best
}

// startEndedLocked ends a VM start: it wakes the picks waiting for one.
// g.mu must be held.
func (g *vmGroup) startEndedLocked() {
	g.starting--
	close(g.started)
	g.started = make(chan struct{})
}
