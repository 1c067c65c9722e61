package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// rootContextID is the id of a VM's first root (plugin) context, as in Envoy.
// Context ids come from one counter per VM: the root contexts of plugins
// sharing the VM and the HTTP contexts take the next id when they are created.
const rootContextID = 1

// vmKey finds the VM of a host function call in its context.
type vmKey struct{}

// vm is one module instance with its own memory, hosting one root context
// per plugin of its group. Everything below mu is guarded by it; host
// functions run with mu held by the caller of the callback.
type vm struct {
	g   *vmGroup
	log *slog.Logger

	ctx    context.Context // carries vmKey; cancelled to stop a call or close the VM
	cancel context.CancelFunc
	dl     *deadline     // bounds each call (checked by the metered guest's refuel)
	limit  time.Duration // StartTimeout while starting, then CallTimeout

	closed   atomic.Bool
	retiring atomic.Bool
	active   atomic.Int32 // streams bound to the VM
	memBytes atomic.Uint32
	timedOut atomic.Bool
	work     int           // bytes of host work since the last check of the deadline (deadline.go)
	guestMem meteredMemory // the guest memory as host functions see it

	stop chan struct{} // closed when the VM closes: stops its goroutines

	evMu    sync.Mutex
	events  []event // async deliveries, run by loop under mu
	evSig   chan struct{}
	tickSig chan struct{} // a root context's tick period changed

	mu         sync.Mutex
	mod        api.Module
	mem        api.Memory
	stack      [8]uint64
	allocStack [1]uint64
	fnMalloc   api.Function
	fn         callbacks
	nextID     uint32
	streams    map[uint32]*Stream
	effective  uint32   // effective context id
	cur        *Stream  // stream of the effective context; nil for a root
	root       *rootCtx // root context of the effective context (its own or its stream's)
	p          *Plugin  // plugin of the effective context
	roots      map[uint32]*rootCtx
	rootOf     map[*Plugin]*rootCtx
	refused    map[*Plugin]error // plugins that refused their configuration when the VM started
	nextCall   uint32
	httpResp   *HTTPCallResponse // during proxy_on_http_call_response
	scratch    []byte
	keys       map[string]string // interned header names (hostcall_headers.go)
	failErr    error             // why the VM was closed

	// Helper modules linked to this VM's exports (batch.go) and their
	// functions; a nil function means making the callbacks one by one.
	helpers                                 []api.Module
	fnDoneLogDelete, fnCreateRequestHeaders api.Function
}

// rootCtx is one plugin's root context on one VM. Guarded by vm.mu.
type rootCtx struct {
	id    uint32
	p     *Plugin
	props map[string][]byte // proxy_set_property on the root context
	tick  time.Duration     // proxy_set_tick_period_milliseconds
	gone  bool              // deleted (plugin closed or configuration refused)
	// ctx ends when the root context is deleted or the VM closes: it bounds
	// the HTTP calls the plugin made on this VM.
	ctx    context.Context
	cancel context.CancelFunc
}

// event is an asynchronous delivery to plugin p's root context on the VM.
type event struct {
	p  *Plugin
	fn func(r *rootCtx)
}

// setRoot makes root context r effective. mu must be held.
func (v *vm) setRoot(r *rootCtx) {
	v.effective, v.cur, v.root, v.p = r.id, nil, r, r.p
}

// callbacks are the module's exports; a nil one is not exported.
type callbacks struct {
	contextCreate, vmStart, configure, done, log, delete,
	requestHeaders, requestBody, requestTrailers,
	responseHeaders, responseBody, responseTrailers,
	tick, queueReady, httpCallResponse api.Function
}

// startVM instantiates the module, runs its start-up function, and creates
// and configures a root context for each plugin, in order; the first root
// context runs proxy_on_vm_start. On error everything it created is closed.
func (g *vmGroup) startVM(ctx context.Context, plugins []*Plugin) (_ *vm, err error) {
	if len(plugins) == 0 {
		return nil, ErrClosed
	}
	v := &vm{
		g:       g,
		p:       plugins[0],
		log:     g.log,
		stop:    make(chan struct{}),
		evSig:   make(chan struct{}, 1),
		tickSig: make(chan struct{}, 1),
		streams: map[uint32]*Stream{},
		roots:   map[uint32]*rootCtx{},
		rootOf:  map[*Plugin]*rootCtx{},
		nextID:  rootContextID,
	}
	v.ctx, v.cancel = context.WithCancel(context.WithValue(context.Background(), vmKey{}, v))
	v.dl = &deadline{clock: g.rt.clock}
	v.mu.Lock()
	defer func() {
		if err != nil {
			v.closeLocked(err)
			if !errors.Is(err, errAttach) {
				err = fmt.Errorf("wasm: plugin %q: start VM: %w", plugins[0].opts.Name, err)
			}
		}
		v.mu.Unlock()
	}()

	out := &logWriter{log: g.log, vm: v, level: slog.LevelInfo, stream: "stdout"}
	errOut := &logWriter{log: g.log, vm: v, level: slog.LevelWarn, stream: "stderr"}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // called below, exactly one of them
		WithStdout(out).
		WithStderr(errOut).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(v.nanosleep). // bounded by the call's deadline (deadline.go)
		WithRandSource(&meteredRand{v: v, r: rand.Reader})
	cm, err := g.eng.compile(ctx, g.mod.hash, g.mod.code)
	if err != nil {
		return nil, err
	}
	// Start-up calls run under StartTimeout; a start section runs during
	// instantiation.
	v.limit = g.opts.StartTimeout
	v.dl.arm(v.limit)
	mod, err := g.eng.r.InstantiateModule(v.ctx, cm, cfg)
	if v.timedOut.Load() {
		return nil, ErrCallTimeout
	}
	if err != nil {
		return nil, err
	}
	v.mod = mod
	v.mem = mod.Memory()
	if v.mem == nil {
		return nil, errors.New("module has no memory")
	}
	v.memBytes.Store(v.mem.Size()) // Stats before any call
	v.fnMalloc = mod.ExportedFunction("proxy_on_memory_allocate")
	if v.fnMalloc == nil {
		v.fnMalloc = mod.ExportedFunction("malloc")
	}
	f := &v.fn
	for name, dst := range map[string]*api.Function{
		"proxy_on_context_create":     &f.contextCreate,
		"proxy_on_vm_start":           &f.vmStart,
		"proxy_on_configure":          &f.configure,
		"proxy_on_done":               &f.done,
		"proxy_on_log":                &f.log,
		"proxy_on_delete":             &f.delete,
		"proxy_on_request_headers":    &f.requestHeaders,
		"proxy_on_request_body":       &f.requestBody,
		"proxy_on_request_trailers":   &f.requestTrailers,
		"proxy_on_response_headers":   &f.responseHeaders,
		"proxy_on_response_body":      &f.responseBody,
		"proxy_on_response_trailers":  &f.responseTrailers,
		"proxy_on_tick":               &f.tick,
		"proxy_on_queue_ready":        &f.queueReady,
		"proxy_on_http_call_response": &f.httpCallResponse,
	} {
		*dst = mod.ExportedFunction(name)
	}
	v.startHelpers(ctx)

	g.wg.Add(1)
	go v.loop()

	v.effective, v.cur = rootContextID, nil
	if s := g.mod.startFn; s != "" {
		if _, err := v.call(mod.ExportedFunction(s)); err != nil {
			var exit *sys.ExitError
			if errors.As(err, &exit) && s == "_start" {
				return nil, fmt.Errorf("_start exited (code %d): build TinyGo plugins with -buildmode=wasi-legacy so that _start returns", exit.ExitCode())
			}
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	var refused error
	for _, p := range plugins {
		err := v.attachLocked(p)
		switch {
		case err == nil:
		case len(plugins) == 1:
			return nil, err
		case errors.Is(err, errRefused) && !v.closed.Load():
			// A plugin refusing its configuration on a rebuilt VM does not
			// take the VM from the others: its streams on it fail.
			refused = fmt.Errorf("%w: plugin %q: %w", errAttach, p.opts.Name, err)
			if v.refused == nil {
				v.refused = map[*Plugin]error{}
			}
			v.refused[p] = err
			v.log.Warn("wasm: plugin refused its configuration on a new VM", "plugin", p.opts.Name)
		default:
			return nil, fmt.Errorf("%w: plugin %q: %w", errAttach, p.opts.Name, err)
		}
	}
	if len(v.roots) == 0 && refused != nil {
		return nil, refused
	}
	v.limit = g.opts.CallTimeout
	return v, nil
}

// errAttach marks the failure of a plugin's root context while a shared VM
// starts for several plugins.
var errAttach = errors.New("wasm: start shared VM")

// errRefused: proxy_on_configure (or proxy_on_vm_start) returned false.
var (
	errRefused   = errors.New("proxy_on_configure returned false: the plugin refused its configuration")
	errVMRefused = refusal("proxy_on_vm_start returned false: the plugin refused its VM configuration")
)

// refusal is a refusal other than proxy_on_configure's; errors.Is matches
// it with errRefused.
type refusal string

func (r refusal) Error() string        { return string(r) }
func (r refusal) Is(target error) bool { return target == errRefused }

// attachLocked creates plugin p's root context on v, with the next context
// id: proxy_on_context_create(id, 0), proxy_on_vm_start(id, size) (for
// every root context, as proxy-wasm-cpp-host does), then
// proxy_on_configure(id, size) with p's configuration. A refused VM
// configuration or configuration deletes the root context again
// (proxy_on_done, proxy_on_delete) and leaves the VM to its other plugins;
// a trap or timeout closes the VM. The calls run under StartTimeout. mu must
// be held.
func (v *vm) attachLocked(p *Plugin) error {
	limit := v.limit
	v.limit = v.g.opts.StartTimeout
	defer func() { v.limit = limit }()
	r := &rootCtx{id: v.nextID, p: p}
	v.nextID++
	r.ctx, r.cancel = context.WithCancel(v.ctx)
	v.roots[r.id], v.rootOf[p] = r, r
	v.setRoot(r)
	f := &v.fn
	if _, err := v.call(f.contextCreate, uint64(r.id), 0); err != nil {
		return fmt.Errorf("proxy_on_context_create(root): %w", err)
	}
	ok, err := v.call(f.vmStart, uint64(r.id), uint64(len(v.g.opts.VMConfiguration)))
	if err != nil {
		return fmt.Errorf("proxy_on_vm_start: %w", err)
	}
	if f.vmStart != nil && api.DecodeU32(ok) == 0 {
		v.detachRootLocked(r)
		return errVMRefused
	}
	ok, err = v.call(f.configure, uint64(r.id), uint64(len(p.opts.Configuration)))
	if err != nil {
		return fmt.Errorf("proxy_on_configure: %w", err)
	}
	if f.configure != nil && api.DecodeU32(ok) == 0 {
		v.detachRootLocked(r)
		return errRefused
	}
	return nil
}

// detachRootLocked deletes root context r: the streams of its plugin on
// this VM are deleted (proxy_on_delete) and fail with ErrVMDiscarded, then
// proxy_on_done and proxy_on_delete run on r, as Envoy does for a removed
// root context; its ticks and HTTP calls stop. mu must be held.
func (v *vm) detachRootLocked(r *rootCtx) {
	for id, s := range v.streams {
		if s.root != r {
			continue
		}
		if !s.pendingCreate { // else the guest never heard of it
			v.effective, v.cur, v.root, v.p = id, s, r, r.p
			_, _ = v.call(v.fn.delete, uint64(id))
		}
		s.detached = true
		delete(v.streams, id)
		s.wake()
	}
	v.setRoot(r)
	_, _ = v.call(v.fn.done, uint64(r.id)) // result ignored, as for streams
	_, _ = v.call(v.fn.delete, uint64(r.id))
	r.gone = true
	r.cancel()
	delete(v.roots, r.id)
	delete(v.rootOf, r.p)
	if r.tick != 0 {
		r.tick = 0
		v.ticksChanged()
	}
}

// call runs one export with args under the call timeout and returns its first
// result (0 when it has none or fn is nil). mu must be held. On a trap or a
// timeout the VM is closed and the error returned.
func (v *vm) call(fn api.Function, args ...uint64) (uint64, error) {
	if fn == nil {
		return 0, nil
	}
	if v.closed.Load() {
		return 0, v.closedErr()
	}
	copy(v.stack[:], args)
	v.p.calls.Add(1)
	v.dl.arm(v.limit)
	err := fn.CallWithStack(v.ctx, v.stack[:])
	if v.mem != nil {
		v.memBytes.Store(v.mem.Size())
	}
	if err == nil {
		return v.stack[0], nil
	}
	v.p.failures.Add(1)
	if v.timedOut.Load() {
		err = ErrCallTimeout
	}
	v.countRebuildLocked()
	v.log.Warn("wasm: callback failed; VM discarded", "func", fn.Definition().Name(), "err", err)
	v.closeLocked(err)
	return 0, err
}

// closedErr is the error of calls on a closed VM.
func (v *vm) closedErr() error {
	if v.failErr != nil && !errors.Is(v.failErr, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrVMDiscarded, v.failErr)
	}
	return ErrVMDiscarded
}

// closeLocked closes the VM: the module, its goroutines (without waiting), and
// fails its paused streams. mu must be held. Idempotent.
func (v *vm) closeLocked(why error) {
	if v.closed.Swap(true) {
		return
	}
	v.failErr = why
	v.cancel()
	close(v.stop)
	v.closeHelpers()
	if v.mod != nil {
		_ = v.mod.Close(context.Background())
	}
	for _, s := range v.streams {
		s.wake()
	}
	v.g.rt.queues.dropVM(v)
}

// countRebuildLocked counts a discarded VM against every plugin on it.
func (v *vm) countRebuildLocked() {
	for _, r := range v.roots {
		r.p.rebuilds.Add(1)
	}
	if len(v.roots) == 0 && v.p != nil { // failed before its first root context
		v.p.rebuilds.Add(1)
	}
}

// post queues fn to run on the VM's goroutine with mu held and plugin p's
// root context effective; it is dropped if p has no root context on the VM
// by then. post never blocks.
func (v *vm) post(p *Plugin, fn func(r *rootCtx)) {
	v.evMu.Lock()
	v.events = append(v.events, event{p, fn})
	v.evMu.Unlock()
	select {
	case v.evSig <- struct{}{}:
	default:
	}
}

// ticksChanged tells the loop to re-read the root contexts' tick periods.
// It never blocks.
func (v *vm) ticksChanged() {
	select {
	case v.tickSig <- struct{}{}:
	default:
	}
}

// tickState is the loop's schedule of one root context's ticks.
type tickState struct {
	period time.Duration
	next   time.Time
}

// loop is the VM's goroutine: ticks of every root context and posted
// events. It ends when the VM closes.
func (v *vm) loop() {
	defer v.g.wg.Done()
	sched := map[*rootCtx]*tickState{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	arm := func() {
		var first time.Time
		for _, ts := range sched {
			if first.IsZero() || ts.next.Before(first) {
				first = ts.next
			}
		}
		if first.IsZero() {
			timer.Stop()
			return
		}
		timer.Reset(time.Until(first))
	}
	for {
		select {
		case <-v.stop:
			return
		case <-v.tickSig:
			now := time.Now()
			v.mu.Lock()
			for r := range sched {
				if r.gone || r.tick <= 0 {
					delete(sched, r)
				}
			}
			for _, r := range v.roots {
				if r.tick <= 0 {
					continue
				}
				if ts := sched[r]; ts == nil || ts.period != r.tick {
					sched[r] = &tickState{period: r.tick, next: now.Add(r.tick)}
				}
			}
			v.mu.Unlock()
			arm()
		case <-timer.C:
			now := time.Now()
			for r, ts := range sched {
				if now.Before(ts.next) {
					continue
				}
				if ts.next = ts.next.Add(ts.period); ts.next.Before(now) {
					ts.next = now.Add(ts.period)
				}
				v.runRoot(r, func(r *rootCtx) { _, _ = v.call(v.fn.tick, uint64(r.id)) })
			}
			arm()
		case <-v.evSig:
			v.evMu.Lock()
			evs := v.events
			v.events = nil
			v.evMu.Unlock()
			for _, ev := range evs {
				v.runEvent(ev)
			}
		}
	}
}

// runRoot runs fn with mu held and root context r effective, unless the VM
// is closed or r deleted.
func (v *vm) runRoot(r *rootCtx, fn func(r *rootCtx)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed.Load() || r == nil || r.gone {
		return
	}
	v.setRoot(r)
	fn(r)
	v.maybeRetireLocked()
}

// runEvent runs a posted event on its plugin's root context, if the plugin
// still has one on the VM.
func (v *vm) runEvent(ev event) {
	v.mu.Lock()
	r := v.rootOf[ev.p]
	v.mu.Unlock()
	v.runRoot(r, ev.fn)
}

// maybeRetireLocked retires a VM whose memory grew past 3/4 of the ceiling:
// it takes no new streams and closes when its last stream is done.
func (v *vm) maybeRetireLocked() {
	if v.closed.Load() || v.mem == nil {
		return
	}
	soft := uint64(v.g.opts.MaxMemoryPages) * 65536 * 3 / 4
	if uint64(v.mem.Size()) > soft {
		if !v.retiring.Swap(true) {
			v.countRebuildLocked()
			v.log.Info("wasm: VM memory above soft ceiling; retiring it", "bytes", v.mem.Size())
		}
	}
	if v.retiring.Load() && v.active.Load() == 0 {
		v.closeLocked(errors.New("retired: memory above soft ceiling"))
	}
}

// fromCtx returns the VM of a host function call.
func fromCtx(ctx context.Context) *vm {
	v, _ := ctx.Value(vmKey{}).(*vm)
	return v
}

// logWriter turns a guest's stdout or stderr into slog lines, tagged with the
// plugin whose context is effective (the guest writes during a callback, with
// vm.mu held).
type logWriter struct {
	log    *slog.Logger
	vm     *vm
	level  slog.Level
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	log := w.log
	if w.vm != nil && w.vm.p != nil {
		log = w.vm.p.log
	}
	if w.vm != nil {
		w.vm.hostWork(len(b))
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		log.Log(context.Background(), w.level, string(w.buf[:i]), "stream", w.stream)
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	if len(w.buf) > 4096 {
		log.Log(context.Background(), w.level, string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(b), nil
}
