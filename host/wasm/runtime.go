package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// DefaultMaxMemoryPages is the default per-VM memory ceiling: 512 pages of
// 64 KiB = 32 MiB.
const DefaultMaxMemoryPages = 512

// Options configures a [Runtime].
type Options struct {
	// CacheDir is wazero's file compilation cache directory. Empty means an
	// in-memory cache that lives as long as the Runtime.
	CacheDir string
	// Logger receives guest logs (proxy_log, stdout, stderr) and host
	// diagnostics. Nil means slog.Default().
	Logger *slog.Logger
	// HTTPCaller performs proxy_http_call. Nil makes proxy_http_call return
	// Unimplemented.
	HTTPCaller HTTPCaller
	// Foreign holds the functions reachable through
	// proxy_call_foreign_function, by name.
	Foreign map[string]ForeignFunc
}

// ForeignFunc is a host function a plugin calls by name through
// proxy_call_foreign_function. Its result is copied into guest memory.
type ForeignFunc func(ctx context.Context, arg []byte) ([]byte, error)

// HTTPCaller performs the out-of-band HTTP calls that plugins start with
// proxy_http_call. Call is made on its own goroutine; ctx is cancelled when
// the VM that made the call goes away.
type HTTPCaller interface {
	Call(ctx context.Context, req HTTPCallRequest) (HTTPCallResponse, error)
}

// HTTPCallRequest is one proxy_http_call as the plugin made it. Headers
// include the pseudo-headers (":method", ":path", ":authority") the plugin set.
type HTTPCallRequest struct {
	Upstream string
	Headers  [][2]string
	Body     []byte
	Trailers [][2]string
	Timeout  time.Duration
}

// HTTPCallResponse is what the plugin sees in proxy_on_http_call_response.
// Status is presented to the plugin as the ":status" header, first.
type HTTPCallResponse struct {
	Status   int
	Headers  [][2]string
	Body     []byte
	Trailers [][2]string
}

// Runtime is the process-wide proxy-wasm host: wazero runtimes (one per memory
// ceiling, sharing one compilation cache), the compiled modules by content
// hash, and the host-side state that survives VMs: shared data, shared
// queues and metrics. It is safe for concurrent use.
type Runtime struct {
	opts  Options
	log   *slog.Logger
	cache wazero.CompilationCache

	mu      sync.Mutex
	closed  bool
	engines map[uint32]*engine // by memory limit in pages
	modules map[string]*Module // by sha256 hex
	plugins map[*Plugin]struct{}
	groups  map[groupKey]*vmGroup // plugins sharing VMs, by (code, vm_id, VM configuration, memory ceiling)

	shared  sharedData
	queues  queues
	metrics metricRegistry
	clock   *clock // the stall detector behind callbacks' deadlines
}

// engine is one wazero runtime with its host modules, for one memory limit.
type engine struct {
	r        wazero.Runtime
	mu       sync.Mutex
	compiled map[string]*compileResult
	batch    batcher // helper modules, see batch.go
}

type compileResult struct {
	done chan struct{}
	cm   wazero.CompiledModule
	err  error
}

// NewRuntime returns a Runtime using wazero's compiler engine. Close it to
// release its compiled code and caches.
func NewRuntime(ctx context.Context, opts Options) (*Runtime, error) {
	r := &Runtime{
		opts:    opts,
		log:     opts.Logger,
		engines: map[uint32]*engine{},
		modules: map[string]*Module{},
		plugins: map[*Plugin]struct{}{},
		groups:  map[groupKey]*vmGroup{},
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %q: %w", opts.CacheDir, err)
		}
		r.cache = c
	} else {
		r.cache = wazero.NewCompilationCache()
	}
	r.shared.init()
	r.queues.init()
	r.metrics.init()
	r.clock = newClock()
	if _, err := r.engine(ctx, DefaultMaxMemoryPages); err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// engine returns the wazero runtime for a memory limit, creating it and its
// host modules (env, wasi_snapshot_preview1, wasi_unstable) on first use.
func (r *Runtime) engine(ctx context.Context, pages uint32) (*engine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if e := r.engines[pages]; e != nil {
		return e, nil
	}
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(pages)
	wr := wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := instantiateHostModules(ctx, wr); err != nil {
		_ = wr.Close(ctx)
		return nil, err
	}
	e := &engine{r: wr, compiled: map[string]*compileResult{}}
	r.engines[pages] = e
	return e, nil
}

// instantiateHostModules defines "env" (the proxy-wasm ABI) and WASI preview
// 1 under both wasi_snapshot_preview1 and its older name wasi_unstable.
func instantiateHostModules(ctx context.Context, wr wazero.Runtime) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wr); err != nil {
		return fmt.Errorf("wasm: instantiate wasi_snapshot_preview1: %w", err)
	}
	b := wr.NewHostModuleBuilder("wasi_unstable")
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: instantiate wasi_unstable: %w", err)
	}
	meter := wr.NewHostModuleBuilder(meterModule)
	meter.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(refuel), nil, []api.ValueType{api.ValueTypeI64}).
		WithName(meterRefuel).
		Export(meterRefuel)
	if _, err := meter.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: instantiate %s: %w", meterModule, err)
	}
	env := wr.NewHostModuleBuilder("env")
	for _, f := range hostFunctions {
		env.NewFunctionBuilder().
			WithGoModuleFunction(f.fn, f.params, f.results).
			WithName(f.name).
			Export(f.name)
	}
	if _, err := env.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: instantiate env: %w", err)
	}
	return nil
}

// compile compiles code in e once; concurrent callers wait for the first.
func (e *engine) compile(ctx context.Context, hash string, code []byte) (wazero.CompiledModule, error) {
	e.mu.Lock()
	c := e.compiled[hash]
	if c == nil {
		c = &compileResult{done: make(chan struct{})}
		e.compiled[hash] = c
		e.mu.Unlock()
		c.cm, c.err = e.r.CompileModule(ctx, code)
		if c.err != nil {
			e.mu.Lock()
			delete(e.compiled, hash) // let a later call retry
			e.mu.Unlock()
		}
		close(c.done)
	} else {
		e.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.cm, c.err
}

// ResetSharedData forgets the shared data (proxy_set_shared_data) of the
// VMs with vmID, for a plugin whose state is to start afresh. The data of
// the default, empty vm_id, which every VM without one shares, cannot be
// reset: it would be another plugin's.
func (r *Runtime) ResetSharedData(vmID string) {
	if vmID != "" {
		r.shared.reset(vmID)
	}
}

// Close closes the plugins still open, every wazero runtime and the
// compilation cache. Close is idempotent.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	engines := r.engines
	r.engines = nil
	plugins := r.plugins
	r.plugins = nil
	r.mu.Unlock()
	var errs []error
	for p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	for _, e := range engines {
		errs = append(errs, e.r.Close(ctx))
	}
	if r.cache != nil {
		errs = append(errs, r.cache.Close(ctx))
	}
	r.clock.close()
	return errors.Join(errs...)
}

// Module is compiled proxy-wasm code, identified by the sha256 of its bytes.
type Module struct {
	rt      *Runtime
	hash    string
	code    []byte // as compiled: metered (meter.go)
	refs    int    // Compile calls not yet Closed + open Plugins; guarded by rt.mu
	abi     string
	startFn string // "_initialize", "_start" or "" (start section or none)
}

// Hash returns the hex sha256 of the module's code.
func (m *Module) Hash() string { return m.hash }

// Compile compiles code, or returns the Module already compiled from the same
// bytes. It refuses code that does not export a supported proxy_abi_version_*
// function (0.2.0 or 0.2.1), or that imports env functions this host does not
// define.
func (r *Runtime) Compile(ctx context.Context, code []byte) (*Module, error) {
	sum := sha256.Sum256(code)
	hash := hex.EncodeToString(sum[:])
	r.mu.Lock()
	if m := r.modules[hash]; m != nil {
		m.refs++
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	e, err := r.engine(ctx, DefaultMaxMemoryPages)
	if err != nil {
		return nil, err
	}
	// The meter reads the whole module first; wazero only ever sees what
	// it accepted (see checkCount).
	metered, err := meter(code)
	if err != nil {
		return nil, fmt.Errorf("wasm: module %s: %w", hash[:12], err)
	}
	cm, err := e.compile(ctx, hash, metered)
	if err != nil {
		return nil, fmt.Errorf("wasm: compile module %s: %w", hash[:12], err)
	}
	m := &Module{rt: r, hash: hash, code: metered}
	if err := m.validate(cm); err != nil {
		e.forget(ctx, hash)
		return nil, fmt.Errorf("wasm: module %s: %w", hash[:12], err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if prev := r.modules[hash]; prev != nil {
		prev.refs++
		return prev, nil
	}
	m.refs = 1
	r.modules[hash] = m
	return m, nil
}

// Close releases the reference that one Compile call returned. The compiled
// code is dropped when every Compile of the same bytes has been matched by a
// Close and every Plugin of the Module is closed; Plugins keep it alive.
// Call Close once per Compile.
func (m *Module) Close(ctx context.Context) error {
	return m.release(ctx)
}

// release drops one reference; the last one removes the module from the
// Runtime and closes its compiled code in every engine.
func (m *Module) release(ctx context.Context) error {
	r := m.rt
	r.mu.Lock()
	m.refs--
	if m.refs > 0 || r.closed || r.modules[m.hash] != m {
		r.mu.Unlock()
		return nil
	}
	delete(r.modules, m.hash)
	engines := make([]*engine, 0, len(r.engines))
	for _, e := range r.engines {
		engines = append(engines, e)
	}
	r.mu.Unlock()
	var errs []error
	for _, e := range engines {
		errs = append(errs, e.forget(ctx, m.hash))
	}
	return errors.Join(errs...)
}

// forget closes and drops the code compiled from hash, if any.
func (e *engine) forget(ctx context.Context, hash string) error {
	e.mu.Lock()
	c := e.compiled[hash]
	delete(e.compiled, hash)
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	<-c.done
	if c.cm == nil {
		return nil
	}
	return c.cm.Close(ctx)
}

// validate checks the ABI version export, the start-up exports and the env
// imports of a compiled module.
func (m *Module) validate(cm wazero.CompiledModule) error {
	exports := cm.ExportedFunctions()
	switch {
	case exports[abiVersion021] != nil:
		m.abi = abiVersion021
	case exports[abiVersion020] != nil:
		m.abi = abiVersion020
	case exports[abiVersion010] != nil:
		return errors.New("proxy-wasm ABI 0.1.0 (proxy_abi_version_0_1_0) is not supported; rebuild with an SDK for ABI 0.2.x")
	default:
		var found []string
		for name := range exports {
			if strings.HasPrefix(name, "proxy_abi_version_") {
				found = append(found, name)
			}
		}
		if len(found) > 0 {
			sort.Strings(found)
			return fmt.Errorf("unsupported proxy-wasm ABI version export %s (want %s or %s)", strings.Join(found, ", "), abiVersion020, abiVersion021)
		}
		return fmt.Errorf("not a proxy-wasm module: no proxy_abi_version_* export (want %s or %s)", abiVersion020, abiVersion021)
	}
	switch {
	case exports["_initialize"] != nil:
		m.startFn = "_initialize"
	case exports["_start"] != nil:
		m.startFn = "_start"
	}
	if exports["proxy_on_memory_allocate"] == nil && exports["malloc"] == nil {
		return errors.New("module exports neither proxy_on_memory_allocate nor malloc")
	}
	var missing []string
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if mod == "env" && hostFunctionNames[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("imports env functions this host does not define: %s", strings.Join(missing, ", "))
	}
	return nil
}

// hostFunc is one function of the "env" host module.
type hostFunc struct {
	name    string
	fn      api.GoModuleFunc
	params  []api.ValueType
	results []api.ValueType
}

var hostFunctionNames = func() map[string]*hostFunc {
	m := make(map[string]*hostFunc, len(hostFunctions))
	for i := range hostFunctions {
		m[hostFunctions[i].name] = &hostFunctions[i]
	}
	return m
}()

// i32s returns n i32 value types.
func i32s(n int) []api.ValueType {
	t := make([]api.ValueType, n)
	for i := range t {
		t[i] = api.ValueTypeI32
	}
	return t
}
