package wasm

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Batching calls into the guest.
//
// Every call from Go into wasm has a fixed cost (about 0.1 µs with the
// meter; it was 1.4 µs with wazero's WithCloseOnContextDone, see doc.go),
// and a request with a TinyGo SDK plugin would make six. Two tiny helper
// modules, instantiated per VM and linked to that VM's exports, make
// several callbacks from wasm in one Go-to-wasm call:
//
//   - done_log_delete(id): proxy_on_done (result dropped), proxy_on_log,
//     proxy_on_delete. Stream.Done uses it: one call instead of three.
//   - create_request_headers(id, root, n, eos): proxy_on_context_create(id,
//     root), then proxy_set_effective_context(id) (the host function: the
//     root context is effective during the create, the stream's afterwards,
//     as with separate calls), then proxy_on_request_headers(id, n, eos).
//     NewStream defers proxy_on_context_create to the stream's first
//     callback; when that is OnRequestHeaders (as in every HTTP request) the
//     two go in one call.
//
// Termination is unchanged: the call runs under the VM's context (which
// names the VM), so the plugin's metered code, running on the helper's call
// stack, reaches refuel and is stopped at its limit as in a direct call.
// TestBatchInfiniteLoop checks both helpers. The VM is then discarded as
// for any timeout.
//
// A helper is used only when the plugin exports the callbacks it calls with
// the ABI's signatures; otherwise the host makes the calls one by one.

// batchImportModule is the module name under which the helpers import the
// plugin's exports; resolved with experimental.WithImportResolver, so the
// plugin's instance stays anonymous.
const batchImportModule = "p"

// A helper module: functions imported (from batchImportModule unless
// module is set) and one exported function.
type helperDef struct {
	imports []helperImport
	export  string
	params  int // i32 parameters of the export
	result  bool
	body    []byte // the export's code, without locals and end
}

type helperImport struct {
	module, name string
	params       int // i32s
	result       bool
}

var (
	// done_log_delete(i32 id)
	helperDoneLogDelete = helperDef{
		imports: []helperImport{
			{name: "proxy_on_done", params: 1, result: true},
			{name: "proxy_on_log", params: 1},
			{name: "proxy_on_delete", params: 1},
		},
		export: "done_log_delete", params: 1,
		body: []byte{
			0x20, 0, 0x10, 0, 0x1a, // local.get 0, call done, drop
			0x20, 0, 0x10, 1, // local.get 0, call log
			0x20, 0, 0x10, 2, // local.get 0, call delete
		},
	}
	// create_request_headers(i32 id, i32 root, i32 n, i32 eos) -> i32
	helperCreateRequestHeaders = helperDef{
		imports: []helperImport{
			{name: "proxy_on_context_create", params: 2},
			{module: "env", name: "proxy_set_effective_context", params: 1, result: true},
			{name: "proxy_on_request_headers", params: 3, result: true},
		},
		export: "create_request_headers", params: 4, result: true,
		body: []byte{
			0x20, 0, 0x20, 1, 0x10, 0, // call create(id, root)
			0x20, 0, 0x10, 1, 0x1a, // drop(call set_effective(id))
			0x20, 0, 0x20, 2, 0x20, 3, 0x10, 2, // call request_headers(id, n, eos)
		},
	}
)

// encode returns the helper's wasm binary. Every section is under 128 bytes.
func (d helperDef) encode() []byte {
	const i32 = 0x7f
	section := func(id byte, content []byte) []byte {
		return append([]byte{id, byte(len(content))}, content...)
	}
	name := func(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }
	sig := func(params int, result bool) []byte {
		b := []byte{0x60, byte(params)}
		for range params {
			b = append(b, i32)
		}
		if result {
			return append(b, 1, i32)
		}
		return append(b, 0)
	}
	// One type per function: imports first, the export last.
	types := []byte{byte(len(d.imports) + 1)}
	imports := []byte{byte(len(d.imports))}
	for i, im := range d.imports {
		types = append(types, sig(im.params, im.result)...)
		mod := im.module
		if mod == "" {
			mod = batchImportModule
		}
		imports = append(name(name(imports, mod), im.name), 0x00, byte(i))
	}
	types = append(types, sig(d.params, d.result)...)
	fn := byte(len(d.imports))
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(0x01, types)...)
	out = append(out, section(0x02, imports)...)
	out = append(out, section(0x03, []byte{1, fn})...)
	out = append(out, section(0x07, append(name([]byte{1}, d.export), 0x00, fn))...)
	body := append(append([]byte{0}, d.body...), 0x0b) // no locals, code, end
	out = append(out, section(0x0a, append([]byte{1, byte(len(body))}, body...))...)
	return out
}

// helperCode is a helper compiled once per engine (closed with the engine's
// wazero runtime).
type helperCode struct {
	once sync.Once
	cm   wazero.CompiledModule
}

// batcher holds an engine's compiled helpers.
type batcher struct {
	doneLogDelete, createRequestHeaders helperCode
}

// instantiateHelper links helper d, compiled in c, to mod's exports and
// returns its module and exported function, or nils when mod does not export
// what d calls with the ABI's signatures (or anything else fails: the caller
// then makes the calls one by one).
func (e *engine) instantiateHelper(ctx context.Context, mod api.Module, d *helperDef, c *helperCode) (api.Module, api.Function) {
	for _, im := range d.imports {
		if im.module != "" {
			continue
		}
		f := mod.ExportedFunction(im.name)
		if f == nil {
			return nil, nil
		}
		def := f.Definition()
		results := 0
		if im.result {
			results = 1
		}
		if !allI32(def.ParamTypes(), im.params) || !allI32(def.ResultTypes(), results) {
			return nil, nil
		}
	}
	c.once.Do(func() {
		c.cm, _ = e.r.CompileModule(context.Background(), d.encode())
	})
	if c.cm == nil {
		return nil, nil
	}
	ictx := experimental.WithImportResolver(ctx, func(name string) api.Module {
		if name == batchImportModule {
			return mod
		}
		return nil
	})
	hm, err := e.r.InstantiateModule(ictx, c.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, nil
	}
	return hm, hm.ExportedFunction(d.export)
}

// allI32 reports whether ts is n i32s.
func allI32(ts []api.ValueType, n int) bool {
	if len(ts) != n {
		return false
	}
	for _, t := range ts {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	return true
}

// startHelpers links the helpers the plugin's exports allow to the VM.
func (v *vm) startHelpers(ctx context.Context) {
	e := v.g.eng
	var m api.Module
	m, v.fnDoneLogDelete = e.instantiateHelper(ctx, v.mod, &helperDoneLogDelete, &e.batch.doneLogDelete)
	if m != nil {
		v.helpers = append(v.helpers, m)
	}
	m, v.fnCreateRequestHeaders = e.instantiateHelper(ctx, v.mod, &helperCreateRequestHeaders, &e.batch.createRequestHeaders)
	if m != nil {
		v.helpers = append(v.helpers, m)
	}
}

// closeHelpers closes the VM's helper modules.
func (v *vm) closeHelpers() {
	for _, m := range v.helpers {
		_ = m.Close(context.Background())
	}
	v.helpers = nil
}
