// Package wasm is NovaEdge's proxy-wasm ABI host (ABI versions 0.2.0 and
// 0.2.1) on the wazero runtime.
//
// The life of a policy module:
//
//	rt, _ := wasm.NewRuntime(ctx, wasm.Options{CacheDir: dir, Logger: log})
//	mod, _ := rt.Compile(ctx, code)               // once per distinct code (sha256)
//	plug, _ := mod.NewPlugin(ctx, wasm.PluginOptions{Name: "jwt", Configuration: cfg})
//	s, _ := plug.NewStream(ctx, wasm.StreamInfo{Request: req})
//	v, err := s.OnRequestHeaders(ctx, req.Header, false)
//	...
//	s.Done()
//	plug.Close(ctx); mod.Close(ctx); rt.Close(ctx)
//
// Lifetimes: a Module is reference-counted (one reference per Compile call
// and per open Plugin); its compiled code is dropped when the last goes.
// Runtime.Close closes the Plugins still open. Nothing relies on finalizers.
//
// # VM model
//
// A [Plugin] owns up to PluginOptions.MaxVMs VMs. A VM is one module
// instance with its own linear memory, its own root context (id 1) and HTTP
// contexts numbered 2, 3, … in creation order, as in Envoy. A [Stream] is
// bound to the least-loaded VM for its whole life. Calls into one VM are
// serialized by a mutex; a Stream that is paused waits without holding it.
//
// Envoy lets several plugin configurations that name the same vm_id share one
// VM (their root contexts get ids 1, 2, …). Here every Plugin has its own
// VMs, but everything that is keyed by vm_id on the host side (shared data,
// shared queues) is already keyed by PluginOptions.VMID, and a VM keeps its
// contexts in a table rather than assuming one root, so sharing can be added
// without changing the host functions.
//
// Shared data, shared queues and metrics live in the [Runtime], not in a VM:
// a VM can be discarded (after a trap, a callback timeout, or when its memory
// grew past its soft ceiling) and replaced without losing them.
//
// # Threads and goroutines
//
// Each VM owns one goroutine that delivers asynchronous callbacks
// (proxy_on_tick, proxy_on_queue_ready, proxy_on_http_call_response), plus one
// goroutine per outstanding proxy_http_call. All of them stop when the VM is
// discarded or its Plugin is closed; Plugin.Close waits for them.
//
// # Limits
//
// PluginOptions.MaxMemoryPages caps every VM's memory: memory.grow past it
// fails (returns -1), which guest allocators turn into a trap, and a module
// that declares more initial memory fails to start. Because wazero applies
// the memory limit per wazero runtime, the Runtime keeps one wazero runtime
// per distinct limit, all sharing one compilation cache. A VM whose memory
// exceeds 3/4 of the ceiling is retired once its streams are done.
//
// Each callback runs under PluginOptions.CallTimeout. The deadline is enforced
// with wazero's WithCloseOnContextDone: the VM's context is cancelled by one
// reusable timer per VM, which terminates even an infinite loop and discards
// the VM.
//
// # Cost of a call
//
// WithCloseOnContextDone has two costs in wazero v1.12, whatever the
// context: every call from Go into wasm starts a goroutine and allocates a
// channel and a closure (about 1 µs on a 2-core machine, more than a no-op
// callback), and compiled code leaves to Go at every loop back-edge to check
// whether the module was closed (about 60 ns per loop iteration). Neither
// can be turned off without losing termination. The host therefore makes as
// few calls as it can: a stream's proxy_on_context_create goes with its
// first callback, in the same call when that is OnRequestHeaders, and
// proxy_on_done, proxy_on_log and proxy_on_delete go in one call (helper
// modules linked to each VM's exports, see batch.go). A whole request is
// then three calls: request headers, response headers, Done.
//
// # Unimplemented ABI functions
//
// Every env import of ABI 0.2.1 is defined, each documented in the
// hostcall_*.go file of its area with its memory layout and status codes.
// These are defined (so modules that import every proxy_* function
// link) but return Unimplemented (12): proxy_grpc_call, proxy_grpc_stream,
// proxy_grpc_send, proxy_grpc_cancel, proxy_grpc_close, proxy_get_status.
// proxy_continue_stream and proxy_close_stream return Unimplemented for the
// L4 stream types (downstream, upstream). ABI 0.1.0 modules are refused.
package wasm
