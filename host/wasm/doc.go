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
// A VM is one module instance with its own linear memory. Plugins share VMs
// as in Envoy, where plugin configurations that name the same vm_id share
// one VM: plugins created from the same [Module] with the same non-empty
// PluginOptions.VMID, the same VMConfiguration and the same MaxMemoryPages
// form a group with one pool of VMs, and every VM of the pool hosts one root
// context per plugin of the group. Unlike Envoy, a plugin with an empty VMID
// is isolated: its VMs are its own (Envoy shares VMs between all
// configurations with an empty vm_id and equal code and VM configuration).
//
// Context ids come from one counter per VM, as in Envoy and
// proxy-wasm-cpp-host: the first plugin's root context is 1; a plugin that
// joins a running VM gets the next id at that moment (2 if no stream has
// been created yet); HTTP contexts take the next ids and have their plugin's
// root context as parent (proxy_on_context_create(id, root)). Start-up runs
// once per VM: instantiation and the module's start function; then, for each
// plugin in attach order, proxy_on_context_create(root, 0),
// proxy_on_vm_start(root, size) with the VM configuration, and
// proxy_on_configure(root, size) with that plugin's configuration. As in
// proxy-wasm-cpp-host, proxy_on_vm_start runs for every root context, not
// once per instance.
//
// Everything per plugin is resolved from the context a call runs in (a root
// context or one of its streams): the plugin_name, plugin_root_id and
// plugin_vm_id properties, the PLUGIN_CONFIGURATION buffer, the plugin name
// on proxy_log lines and on the guest's stdout and stderr lines, Properties,
// MaxBodyBytes and the plugin's Stats counters. A tick period set with proxy_set_tick_period_milliseconds belongs
// to the root context of the context that set it, which alone gets its
// proxy_on_tick; HTTP calls belong to the root context of the context that
// made them and queues to the root context that registered them, which get
// proxy_on_http_call_response and proxy_on_queue_ready.
//
// NewPlugin creates and configures the plugin's root context on every live
// VM of its group (starting one if there is none); a plugin whose
// proxy_on_configure returns false fails NewPlugin, its root contexts are
// deleted again (proxy_on_done, proxy_on_delete), and the other plugins of
// the VMs are not disturbed. Plugin.Close detaches the plugin: on each VM its
// streams in flight are deleted (proxy_on_delete) and fail with
// ErrVMDiscarded, proxy_on_done and proxy_on_delete run on its root context,
// its ticks stop and its HTTP calls are cancelled; the VMs are closed when
// the last plugin of the group leaves.
//
// The pool holds up to the largest PluginOptions.MaxVMs of the group's open
// plugins; a new stream that finds no live VM while as many VMs are starting
// waits for one. CallTimeout and StartTimeout are those of the plugin that
// created the group. A [Stream] is bound to the least-loaded VM of the pool for its
// whole life. Calls into one VM are serialized by a mutex; a Stream that is
// paused waits without holding it.
//
// A trap or callback timeout discards the whole VM, with the root contexts
// and streams of every plugin on it. The next stream of any of those plugins
// starts a VM on which every plugin still open gets its root context again,
// created and configured in attach order (ids 1, 2, …). A plugin that
// refuses its configuration on such a VM has no root context there (its new
// streams on it fail with the refusal); the others keep the VM. A trap or a
// refused VM configuration during that start fails it for the whole group;
// streams that find no live VM then get that error for a second (the
// restart back-off) instead of starting VMs again.
//
// Shared data, shared queues and metrics live in the [Runtime], not in a VM:
// a VM can be discarded (after a trap, a callback timeout, or when its memory
// grew past its soft ceiling) and replaced without losing them.
//
// # Threads and goroutines
//
// Each VM owns one goroutine that delivers asynchronous callbacks
// (proxy_on_tick of every root context, proxy_on_queue_ready,
// proxy_on_http_call_response); it stops when the VM is discarded or the last
// plugin of its group is closed, and that Plugin.Close waits for it. Each
// outstanding proxy_http_call has a goroutine of its plugin, stopped when the
// plugin's root context is deleted or the VM discarded; Plugin.Close waits
// for the plugin's.
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
// Each callback runs under PluginOptions.CallTimeout (start-up ones under
// StartTimeout). Every module is rewritten when it is compiled so that its
// code meters itself (meter.go): a fuel counter charged at function entries
// and loop headers calls back into the host about every millisecond of
// work, on the guest's own goroutine, and the host stops the guest there
// once the callback is past its limit (deadline.go), which discards the VM.
// An infinite loop, with or without host calls in it, is stopped that way;
// unbounded recursion by wazero's stack limit; a memory bomb by the memory
// ceiling. A module cannot reach the meter: it may not import its
// namespace, and the rewrite refuses indices the module did not have.
//
// # Cost of a call
//
// wazero's own way to interrupt a guest, WithCloseOnContextDone, starts a
// goroutine and allocates a channel and a closure on every call from Go
// into wasm (about 1.4 µs, more than a short callback), and leaves
// compiled code for Go at every loop back-edge. The meter replaces it: a
// call into the guest costs about 0.1 µs, and a loop pays a few
// instructions per iteration. The host still makes as few calls as it can:
// a stream's proxy_on_context_create goes with its first callback, in the
// same call when that is OnRequestHeaders, and proxy_on_done, proxy_on_log
// and proxy_on_delete go in one call (helper modules linked to each VM's
// exports, see batch.go). A whole request is then three calls: request
// headers, response headers, Done.
//
// # Statuses
//
// The buffer, header and property functions answer with the statuses of
// proxy-wasm-cpp-host (src/exports.cc) over Envoy's context
// (source/extensions/common/wasm/context.cc), not the spec's prose, because
// SDKs are written against them (TestStatusesMatchCppHost checks them case
// by case): an empty range of a buffer is Ok with 0 and 0 stored, never
// Empty (the AssemblyScript SDK aborts in proxy_on_configure otherwise); a
// header map not present is BadArgument, and an empty map from
// proxy_get_header_map_pairs; a missing key or property path NotFound.
// Deliberate differences, each documented at its function: the plugin
// configuration stays readable after proxy_on_configure, root contexts
// keep properties set on them, proxy_set_header_map_pairs refuses a
// malformed map (SerializationFailure) instead of emptying the map, and
// proxy_set_buffer_bytes may replace any range of a body.
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
