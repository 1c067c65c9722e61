package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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
	// and shared queues, as in Envoy.
	Name, RootID, VMID string
	// Configuration is read by proxy_on_configure through get_buffer_bytes
	// (PLUGIN_CONFIGURATION).
	Configuration []byte
	// VMConfiguration is read by proxy_on_vm_start (VM_CONFIGURATION).
	VMConfiguration []byte
	// MaxVMs bounds the number of VMs. Default runtime.GOMAXPROCS(0).
	MaxVMs int
	// MaxMemoryPages is the per-VM memory ceiling in 64 KiB pages.
	// Default 512 (32 MiB). A VM above 3/4 of it is retired between requests.
	MaxMemoryPages uint32
	// CallTimeout bounds every callback. Default 100ms.
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

// PluginStats are a plugin's counters.
type PluginStats struct {
	VMs         int    // live VMs
	MemoryBytes uint64 // sum of the live VMs' memory sizes
	Calls       uint64 // callbacks made
	Failures    uint64 // callbacks that trapped or timed out
	VMRebuilds  uint64 // VMs discarded (trap, timeout, memory) and so replaced on demand
}

// Plugin is a started plugin: a Module with a configuration and its VMs.
type Plugin struct {
	mod  *Module
	rt   *Runtime
	eng  *engine
	opts PluginOptions
	log  *slog.Logger

	mu         sync.Mutex
	closed     bool
	vms        []*vm
	starting   int
	startErr   error // last failed VM start, returned without retrying for restartBackoff
	startErrAt time.Time

	wg sync.WaitGroup // VM goroutines: event loops and HTTP calls

	calls, failures, rebuilds atomic.Uint64
}

// NewPlugin starts a plugin and its first VM: instantiation, the module's
// start-up function, proxy_on_context_create for the root context,
// proxy_on_vm_start and proxy_on_configure. A false result from either of the
// last two is an error.
func (m *Module) NewPlugin(ctx context.Context, opts PluginOptions) (*Plugin, error) {
	opts.setDefaults()
	eng, err := m.rt.engine(ctx, opts.MaxMemoryPages)
	if err != nil {
		return nil, err
	}
	p := &Plugin{
		mod:  m,
		rt:   m.rt,
		eng:  eng,
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
	m.rt.mu.Unlock()
	if _, err := eng.compile(ctx, m.hash, m.code); err != nil {
		_ = p.Close(ctx)
		return nil, fmt.Errorf("wasm: plugin %q: compile: %w", opts.Name, err)
	}
	v, err := p.startVM(ctx)
	if err != nil {
		_ = p.Close(ctx)
		return nil, err
	}
	p.mu.Lock()
	if p.closed { // the Runtime was closed meanwhile
		p.mu.Unlock()
		v.mu.Lock()
		v.closeLocked(ErrClosed)
		v.mu.Unlock()
		p.wg.Wait()
		return nil, ErrClosed
	}
	p.vms = append(p.vms, v)
	p.mu.Unlock()
	return p, nil
}

// Close closes every VM of the plugin and waits for their goroutines. Streams
// still in flight fail with ErrVMDiscarded. Close is idempotent.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	vms := p.vms
	p.vms = nil
	p.mu.Unlock()
	for _, v := range vms {
		v.mu.Lock()
		v.closeLocked(ErrClosed)
		v.mu.Unlock()
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
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PluginStats{
		Calls:      p.calls.Load(),
		Failures:   p.failures.Load(),
		VMRebuilds: p.rebuilds.Load(),
	}
	for _, v := range p.vms {
		if v.closed.Load() {
			continue
		}
		s.VMs++
		s.MemoryBytes += uint64(v.memBytes.Load())
	}
	return s
}

// restartBackoff: after a VM fails to start, streams that find no live VM
// get the same error for this long instead of each trying again, so a
// plugin that crashes on start does not turn every request into a VM start
// (the spec's "crash loop" consideration).
const restartBackoff = time.Second

// pick binds a new stream to the least-loaded live VM, starting a VM when
// every live one is busy and there is room.
func (p *Plugin) pick(ctx context.Context) (*vm, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	live := p.vms[:0]
	var best *vm
	for _, v := range p.vms {
		if v.closed.Load() || v.retiring.Load() {
			continue
		}
		live = append(live, v)
		if best == nil || v.active.Load() < best.active.Load() {
			best = v
		}
	}
	clear(p.vms[len(live):])
	p.vms = live
	if best == nil && p.startErr != nil && time.Since(p.startErrAt) < restartBackoff {
		err := p.startErr
		p.mu.Unlock()
		return nil, err
	}
	if best == nil || (best.active.Load() > 0 && len(p.vms)+p.starting < p.opts.MaxVMs) {
		p.starting++
		p.mu.Unlock()
		v, err := p.startVM(ctx)
		p.mu.Lock()
		p.starting--
		if err != nil {
			p.startErr, p.startErrAt = err, time.Now()
		} else {
			p.startErr = nil
		}
		switch {
		case err == nil && p.closed:
			p.mu.Unlock()
			v.mu.Lock()
			v.closeLocked(ErrClosed)
			v.mu.Unlock()
			p.wg.Wait()
			return nil, ErrClosed
		case err == nil:
			p.vms = append(p.vms, v)
			best = v
		case best == nil:
			p.mu.Unlock()
			return nil, err
		default:
			p.log.Warn("wasm: starting another VM failed", "err", err)
		}
	}
	best.active.Add(1)
	p.mu.Unlock()
	return best, nil
}
