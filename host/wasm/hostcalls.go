package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// hostFunctions is the "env" host module: every proxy_* import of ABI 0.2.1.
// The functions of each area are documented in their own file.
var hostFunctions = []hostFunc{
	// hostcall_log.go
	hf("proxy_log", 3, proxyLog),
	hf("proxy_get_log_level", 1, proxyGetLogLevel),
	// hostcall_headers.go
	hf("proxy_get_header_map_value", 5, proxyGetHeaderMapValue),
	hf("proxy_add_header_map_value", 5, proxyAddHeaderMapValue),
	hf("proxy_replace_header_map_value", 5, proxyReplaceHeaderMapValue),
	hf("proxy_remove_header_map_value", 3, proxyRemoveHeaderMapValue),
	hf("proxy_get_header_map_pairs", 3, proxyGetHeaderMapPairs),
	hf("proxy_set_header_map_pairs", 3, proxySetHeaderMapPairs),
	hf("proxy_get_header_map_size", 2, proxyGetHeaderMapSize),
	// hostcall_buffers.go
	hf("proxy_get_buffer_bytes", 5, proxyGetBufferBytes),
	hf("proxy_set_buffer_bytes", 5, proxySetBufferBytes),
	hf("proxy_get_buffer_status", 3, proxyGetBufferStatus),
	// hostcall_stream.go
	hf("proxy_send_local_response", 8, proxySendLocalResponse),
	hf("proxy_continue_stream", 1, proxyContinueStream),
	hf("proxy_close_stream", 1, proxyCloseStream),
	hf("proxy_done", 0, proxyDone),
	hf("proxy_set_effective_context", 1, proxySetEffectiveContext),
	// hostcall_properties.go
	hf("proxy_get_property", 4, proxyGetProperty),
	hf("proxy_set_property", 4, proxySetProperty),
	// hostcall_time.go
	hf("proxy_get_current_time_nanoseconds", 1, proxyGetCurrentTimeNanoseconds),
	hf("proxy_set_tick_period_milliseconds", 1, proxySetTickPeriodMilliseconds),
	// hostcall_shared_data.go
	hf("proxy_get_shared_data", 5, proxyGetSharedData),
	hf("proxy_set_shared_data", 5, proxySetSharedData),
	// hostcall_queue.go
	hf("proxy_register_shared_queue", 3, proxyRegisterSharedQueue),
	hf("proxy_resolve_shared_queue", 5, proxyResolveSharedQueue),
	hf("proxy_enqueue_shared_queue", 3, proxyEnqueueSharedQueue),
	hf("proxy_dequeue_shared_queue", 3, proxyDequeueSharedQueue),
	// hostcall_metrics.go
	hf("proxy_define_metric", 4, proxyDefineMetric),
	hfTyped("proxy_increment_metric", []api.ValueType{api.ValueTypeI32, api.ValueTypeI64}, proxyIncrementMetric),
	hfTyped("proxy_record_metric", []api.ValueType{api.ValueTypeI32, api.ValueTypeI64}, proxyRecordMetric),
	hf("proxy_get_metric", 2, proxyGetMetric),
	// hostcall_http_call.go
	hf("proxy_http_call", 10, proxyHTTPCall),
	// hostcall_foreign.go
	hf("proxy_call_foreign_function", 6, proxyCallForeignFunction),
	// Unimplemented (12): gRPC and proxy_get_status.
	hf("proxy_grpc_call", 12, unimplemented),
	hf("proxy_grpc_stream", 9, unimplemented),
	hf("proxy_grpc_send", 4, unimplemented),
	hf("proxy_grpc_cancel", 1, unimplemented),
	hf("proxy_grpc_close", 1, unimplemented),
	hf("proxy_get_status", 3, unimplemented),
}

// hostImpl is the body of a host function: the calling VM (its mu is held),
// the guest memory and the wazero stack (arguments in, the status out).
type hostImpl func(ctx context.Context, v *vm, mem api.Memory, stack []uint64) status

// hf defines a host function of n i32 parameters returning an i32 status.
func hf(name string, n int, impl hostImpl) hostFunc {
	return hfTyped(name, i32s(n), impl)
}

func hfTyped(name string, params []api.ValueType, impl hostImpl) hostFunc {
	return hostFunc{
		name:    name,
		params:  params,
		results: i32s(1),
		fn: func(ctx context.Context, mod api.Module, stack []uint64) {
			v := fromCtx(ctx)
			mem := mod.Memory()
			if v == nil || mem == nil {
				stack[0] = uint64(statusInternalFailure)
				return
			}
			// Reads of guest memory count as host work (deadline.go).
			if v.guestMem.Memory != mem {
				v.guestMem = meteredMemory{Memory: mem, v: v}
			}
			stack[0] = uint64(impl(ctx, v, &v.guestMem, stack))
		},
	}
}

// arg decodes i32 argument i: wazero passes i32s in 64-bit slots whose upper
// bits may be garbage.
func arg(stack []uint64, i int) uint32 { return api.DecodeU32(stack[i]) }

func unimplemented(context.Context, *vm, api.Memory, []uint64) status { return statusUnimplemented }
