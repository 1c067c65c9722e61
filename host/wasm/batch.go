package wasm

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Batching the end of a stream.
//
// With WithCloseOnContextDone (which enforces CallTimeout), wazero v1.12
// starts a goroutine and makes a channel for every call from Go into wasm,
// whatever the context: about 1 µs per call on a 2-core machine, more than a
// no-op callback itself. Stream.Done makes three calls (proxy_on_done,
// proxy_on_log, proxy_on_delete). A tiny helper module, instantiated per VM
// and linked to that VM's exports, makes the three calls from wasm, so Done
// costs one Go-to-wasm call instead of three.
//
// Termination is unchanged: the call runs under the VM's context and
// timer; when the context is cancelled wazero closes the helper module, and
// the plugin's code, running on the helper's call stack, stops at its next
// loop or function-entry check (wazero checks the module of the outermost
// call). The VM is then discarded as for any timeout.
//
// The helper is used only when the plugin exports all three callbacks with
// the ABI's signatures; otherwise Done makes the calls one by one.

// batchImportModule is the module name under which the helper imports the
// plugin's exports; resolved with experimental.WithImportResolver, so the
// plugin's instance stays anonymous.
const batchImportModule = "p"

// batchDoneExport is the helper's export: (i32 context_id) -> ().
const batchDoneExport = "done_log_delete"

// batchWasm is the helper module:
//
//	(module
//	  (import "p" "proxy_on_done"   (func $done (param i32) (result i32)))
//	  (import "p" "proxy_on_log"    (func $log (param i32)))
//	  (import "p" "proxy_on_delete" (func $delete (param i32)))
//	  (func (export "done_log_delete") (param $id i32)
//	    (drop (call $done (local.get $id)))
//	    (call $log (local.get $id))
//	    (call $delete (local.get $id))))
var batchWasm = func() []byte {
	section := func(id byte, content ...byte) []byte {
		return append([]byte{id, byte(len(content))}, content...) // every section < 128 bytes
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	imp := func(field string, typ byte) []byte {
		b := append(name(batchImportModule), name(field)...)
		return append(b, 0x00, typ) // func import of type typ
	}
	const i32 = 0x7f
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(0x01, // types
		2,
		0x60, 1, i32, 1, i32, // 0: (i32) -> i32
		0x60, 1, i32, 0, // 1: (i32) -> ()
	)...)
	imports := []byte{3}
	imports = append(imports, imp("proxy_on_done", 0)...)
	imports = append(imports, imp("proxy_on_log", 1)...)
	imports = append(imports, imp("proxy_on_delete", 1)...)
	out = append(out, section(0x02, imports...)...)
	out = append(out, section(0x03, 1, 1)...) // one function of type 1
	exports := append([]byte{1}, name(batchDoneExport)...)
	exports = append(exports, 0x00, 3) // func index 3 (after 3 imports)
	out = append(out, section(0x07, exports...)...)
	body := []byte{
		0,                      // no locals
		0x20, 0, 0x10, 0, 0x1a, // local.get 0, call $done, drop
		0x20, 0, 0x10, 1, // local.get 0, call $log
		0x20, 0, 0x10, 2, // local.get 0, call $delete
		0x0b, // end
	}
	out = append(out, section(0x0a, append([]byte{1, byte(len(body))}, body...)...)...)
	return out
}()

// batcher compiles the helper once per engine (closed with the engine's
// wazero runtime).
type batcher struct {
	once sync.Once
	cm   wazero.CompiledModule
}

// instantiateBatch links a helper module to mod's exports and returns it and
// its done_log_delete function, or nils when mod does not export the three
// callbacks with the ABI's signatures (or anything else fails: the caller
// then makes the calls one by one).
func (e *engine) instantiateBatch(ctx context.Context, mod api.Module) (api.Module, api.Function) {
	want := map[string]int{"proxy_on_done": 1, "proxy_on_log": 0, "proxy_on_delete": 0}
	for name, results := range want {
		f := mod.ExportedFunction(name)
		if f == nil {
			return nil, nil
		}
		d := f.Definition()
		if len(d.ParamTypes()) != 1 || d.ParamTypes()[0] != api.ValueTypeI32 || len(d.ResultTypes()) != results ||
			(results == 1 && d.ResultTypes()[0] != api.ValueTypeI32) {
			return nil, nil
		}
	}
	b := &e.batch
	b.once.Do(func() {
		b.cm, _ = e.r.CompileModule(context.Background(), batchWasm)
	})
	if b.cm == nil {
		return nil, nil
	}
	ictx := experimental.WithImportResolver(ctx, func(name string) api.Module {
		if name == batchImportModule {
			return mod
		}
		return nil
	})
	bm, err := e.r.InstantiateModule(ictx, b.cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, nil
	}
	return bm, bm.ExportedFunction(batchDoneExport)
}
