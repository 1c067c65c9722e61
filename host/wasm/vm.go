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

// rootContextID is the id of a VM's root (plugin) context, as in Envoy.
const rootContextID = 1

// vmKey finds the VM of a host function call in its context.
type vmKey struct{}

// vm is one module instance with its own memory. Everything below mu is
// guarded by it; host functions run with mu held by the caller of the
// callback.
type vm struct {
	p   *Plugin
	log *slog.Logger

	ctx    context.Context // carries vmKey; cancelled to stop a call or close the VM
	cancel context.CancelFunc
	timer  *time.Timer   // fires cancel after limit; reused for every call
	limit  time.Duration // StartTimeout while starting, then CallTimeout

	closed   atomic.Bool
	retiring atomic.Bool
	active   atomic.Int32 // streams bound to the VM
	memBytes atomic.Uint32
	timedOut atomic.Bool

	stop chan struct{} // closed when the VM closes: stops its goroutines

	evMu   sync.Mutex
	events []func() // async deliveries, run by loop under mu
	evSig  chan struct{}
	tickCh chan time.Duration

	mu         sync.Mutex
	mod        api.Module
	mem        api.Memory
	stack      [8]uint64
	allocStack [1]uint64
	fnMalloc   api.Function
	fn         callbacks
	nextID     uint32
	streams    map[uint32]*Stream
	effective  uint32  // effective context id
	cur        *Stream // stream of the effective context; nil for the root
	nextCall   uint32
	httpResp   *HTTPCallResponse // during proxy_on_http_call_response
	scratch    []byte
	rootProps  map[string][]byte // proxy_set_property on the root context
	failErr    error             // why the VM was closed

	// Helper modules linked to this VM's exports (batch.go) and their
	// functions; a nil function means making the callbacks one by one.
	helpers                                 []api.Module
	fnDoneLogDelete, fnCreateRequestHeaders api.Function
}

// callbacks are the module's exports; a nil one is not exported.
type callbacks struct {
	contextCreate, vmStart, configure, done, log, delete,
	requestHeaders, requestBody, requestTrailers,
	responseHeaders, responseBody, responseTrailers,
	tick, queueReady, httpCallResponse api.Function
}

// startVM instantiates the module and runs it up to a configured root
// context. On error everything it created is closed.
func (p *Plugin) startVM(ctx context.Context) (_ *vm, err error) {
	v := &vm{
		p:       p,
		log:     p.log,
		stop:    make(chan struct{}),
		evSig:   make(chan struct{}, 1),
		tickCh:  make(chan time.Duration, 1),
		streams: map[uint32]*Stream{},
		nextID:  rootContextID + 1,
	}
	v.ctx, v.cancel = context.WithCancel(context.WithValue(context.Background(), vmKey{}, v))
	v.timer = time.AfterFunc(time.Hour, func() { v.timedOut.Store(true); v.cancel() })
	v.timer.Stop()
	v.mu.Lock()
	defer func() {
		if err != nil {
			v.closeLocked(err)
			err = fmt.Errorf("wasm: plugin %q: start VM: %w", p.opts.Name, err)
		}
		v.mu.Unlock()
	}()

	out := &logWriter{log: p.log, level: slog.LevelInfo, stream: "stdout"}
	errOut := &logWriter{log: p.log, level: slog.LevelWarn, stream: "stderr"}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // called below, exactly one of them
		WithStdout(out).
		WithStderr(errOut).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	cm, err := p.eng.compile(ctx, p.mod.hash, p.mod.code)
	if err != nil {
		return nil, err
	}
	// Start-up calls run under StartTimeout; a start section runs during
	// instantiation.
	v.limit = p.opts.StartTimeout
	v.timer.Reset(v.limit)
	mod, err := p.eng.r.InstantiateModule(v.ctx, cm, cfg)
	if !v.timer.Stop() {
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

	p.wg.Add(1)
	go v.loop()

	v.effective, v.cur = rootContextID, nil
	if s := p.mod.startFn; s != "" {
		if _, err := v.call(mod.ExportedFunction(s)); err != nil {
			var exit *sys.ExitError
			if errors.As(err, &exit) && s == "_start" {
				return nil, fmt.Errorf("_start exited (code %d): build TinyGo plugins with -buildmode=wasi-legacy so that _start returns", exit.ExitCode())
			}
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	if _, err := v.call(f.contextCreate, rootContextID, 0); err != nil {
		return nil, fmt.Errorf("proxy_on_context_create(root): %w", err)
	}
	ok, err := v.call(f.vmStart, rootContextID, uint64(len(p.opts.VMConfiguration)))
	if err != nil {
		return nil, fmt.Errorf("proxy_on_vm_start: %w", err)
	}
	if f.vmStart != nil && api.DecodeU32(ok) == 0 {
		return nil, errors.New("proxy_on_vm_start returned false: the plugin refused its VM configuration")
	}
	ok, err = v.call(f.configure, rootContextID, uint64(len(p.opts.Configuration)))
	if err != nil {
		return nil, fmt.Errorf("proxy_on_configure: %w", err)
	}
	if f.configure != nil && api.DecodeU32(ok) == 0 {
		return nil, errors.New("proxy_on_configure returned false: the plugin refused its configuration")
	}
	v.limit = p.opts.CallTimeout
	return v, nil
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
	v.timer.Reset(v.limit)
	err := fn.CallWithStack(v.ctx, v.stack[:])
	fired := !v.timer.Stop()
	if v.mem != nil {
		v.memBytes.Store(v.mem.Size())
	}
	if err == nil && !fired {
		return v.stack[0], nil
	}
	v.p.failures.Add(1)
	if fired || v.timedOut.Load() {
		err = ErrCallTimeout
	}
	v.p.rebuilds.Add(1)
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
	v.timer.Stop()
	v.cancel()
	close(v.stop)
	v.closeHelpers()
	if v.mod != nil {
		_ = v.mod.Close(context.Background())
	}
	for _, s := range v.streams {
		s.wake()
	}
	v.p.rt.queues.dropVM(v)
}

// post queues fn to run on the VM's goroutine with mu held and the root
// context effective. It never blocks and never drops.
func (v *vm) post(fn func()) {
	v.evMu.Lock()
	v.events = append(v.events, fn)
	v.evMu.Unlock()
	select {
	case v.evSig <- struct{}{}:
	default:
	}
}

// loop is the VM's goroutine: ticks and posted events. It ends when the VM
// closes.
func (v *vm) loop() {
	defer v.p.wg.Done()
	var ticker *time.Ticker
	var tick <-chan time.Time
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-v.stop:
			return
		case d := <-v.tickCh:
			if ticker != nil {
				ticker.Stop()
				ticker, tick = nil, nil
			}
			if d > 0 {
				ticker = time.NewTicker(d)
				tick = ticker.C
			}
		case <-tick:
			v.runRoot(func() { _, _ = v.call(v.fn.tick, rootContextID) })
		case <-v.evSig:
			v.evMu.Lock()
			evs := v.events
			v.events = nil
			v.evMu.Unlock()
			for _, ev := range evs {
				v.runRoot(ev)
			}
		}
	}
}

// runRoot runs fn with mu held and the root context effective.
func (v *vm) runRoot(fn func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed.Load() {
		return
	}
	v.effective, v.cur = rootContextID, nil
	fn()
	v.maybeRetireLocked()
}

// maybeRetireLocked retires a VM whose memory grew past 3/4 of the ceiling:
// it takes no new streams and closes when its last stream is done.
func (v *vm) maybeRetireLocked() {
	if v.closed.Load() || v.mem == nil {
		return
	}
	soft := uint64(v.p.opts.MaxMemoryPages) * 65536 * 3 / 4
	if uint64(v.mem.Size()) > soft {
		if !v.retiring.Swap(true) {
			v.p.rebuilds.Add(1)
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

// logWriter turns a guest's stdout or stderr into slog lines.
type logWriter struct {
	log    *slog.Logger
	level  slog.Level
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Log(context.Background(), w.level, string(w.buf[:i]), "stream", w.stream)
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	if len(w.buf) > 4096 {
		w.log.Log(context.Background(), w.level, string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(b), nil
}
