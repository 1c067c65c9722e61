package wasm

import (
	"context"
	"net/http"

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
	name, ok1 := read(mem, arg(st, 0), arg(st, 1))
	args, ok2 := read(mem, arg(st, 2), arg(st, 3))
	if !ok1 || !ok2 || !writable(mem, arg(st, 4), 4) || !writable(mem, arg(st, 5), 4) {
		return statusInvalidMemoryAccess
	}
	f := v.p.rt.opts.Foreign[string(name)] // no copy for the lookup
	if f == nil {
		return statusNotFound
	}
	c := &caller{name: v.p.opts.Name}
	if s := v.cur; s != nil && s.attached && s.reqHeaders != nil {
		c.req = s.reqHeaders
	}
	res, err := f(context.WithValue(ctx, callerKey{}, c), append([]byte(nil), args...))
	if err != nil {
		v.log.Debug("wasm: foreign function failed", "name", string(name), "err", err)
		return statusInternalFailure
	}
	return v.writeOut(ctx, mem, res, arg(st, 4), arg(st, 5))
}

type callerKey struct{}

// caller is what a ForeignFunc may know of its caller.
type caller struct {
	name string
	req  http.Header // the effective stream's request headers, if any
}

// CallerName returns, inside a ForeignFunc, the name (PluginOptions.Name)
// of the plugin that called it.
func CallerName(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return ""
	}
	return c.name
}

// CallerRequestHeader returns, inside a ForeignFunc, the first value of
// the named request header of the stream whose callback called it (the
// effective context), as proxy_get_header_map_value would give it to the
// plugin: a host function can then read a header that is large, such as
// a bearer token, without the plugin copying it into the VM and back. It
// reports false when the header is absent or the effective context is not
// a stream whose request headers the plugin may read. Pseudo-headers are
// not served.
func CallerRequestHeader(ctx context.Context, name string) (string, bool) {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil || c.req == nil || name == "" || name[0] == ':' {
		return "", false
	}
	return headerMap{h: c.req}.get([]byte(name))
}
