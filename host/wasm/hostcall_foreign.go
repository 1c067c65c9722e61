package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// proxy_call_foreign_function(i32 name_data, i32 name_size,
// i32 arguments_data, i32 arguments_size, i32 return_results_data,
// i32 return_results_size) -> i32 status
//
// Calls Options.Foreign[name] synchronously with a copy of the arguments,
// copies its result into guest memory allocated with
// proxy_on_memory_allocate and stores its address and size (u32 LE).
// The function runs inside the callback: it counts against CallTimeout.
// CallerName(ctx) is the calling plugin's name: host state a function keeps
// per plugin cannot be reached by another plugin.
// Status: OK; NotFound (no such function); InternalFailure (it returned an
// error); InvalidMemoryAccess.
func proxyCallForeignFunction(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	name, ok1 := readString(mem, arg(st, 0), arg(st, 1))
	args, ok2 := read(mem, arg(st, 2), arg(st, 3))
	if !ok1 || !ok2 || !writable(mem, arg(st, 4), 4) || !writable(mem, arg(st, 5), 4) {
		return statusInvalidMemoryAccess
	}
	f := v.p.rt.opts.Foreign[name]
	if f == nil {
		return statusNotFound
	}
	res, err := f(context.WithValue(ctx, callerKey{}, v.p.opts.Name), append([]byte(nil), args...))
	if err != nil {
		v.log.Debug("wasm: foreign function failed", "name", name, "err", err)
		return statusInternalFailure
	}
	return v.writeOut(ctx, mem, res, arg(st, 4), arg(st, 5))
}

type callerKey struct{}

// CallerName returns, inside a ForeignFunc, the name (PluginOptions.Name)
// of the plugin that called it.
func CallerName(ctx context.Context) string {
	name, _ := ctx.Value(callerKey{}).(string)
	return name
}
