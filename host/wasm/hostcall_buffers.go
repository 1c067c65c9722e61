package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Buffers (proxy_buffer_type_t):
//
//	0 request body            the bytes buffered for the current body callback (writable);
//	                          empty and read-only in a root context
//	1 response body           idem
//	2 downstream data         always empty, read-only (no TCP filters)
//	3 upstream data           idem
//	4 http call response body read-only, during proxy_on_http_call_response
//	5 gRPC receive buffer     always empty, read-only (no gRPC calls)
//	6 VM configuration        read-only, PluginOptions.VMConfiguration
//	7 plugin configuration    read-only, PluginOptions.Configuration of the effective plugin
//	8 call data               always empty, read-only (no proxy_on_foreign_function)
//
// Unknown types return BadArgument. The statuses are those of
// proxy-wasm-cpp-host (src/exports.cc: get_buffer_bytes, get_buffer_status,
// set_buffer_bytes) over Envoy's buffers (source/extensions/common/wasm/
// context.cc: Context::getBuffer), not the spec's prose: a buffer that exists
// but has nothing in the range asked for is Ok with nothing written, never
// Empty; the buffers Envoy hands an HTTP filter empty (2, 3, 5) are empty
// here too. One deliberate difference: Envoy finds the plugin configuration
// only during proxy_on_configure (NotFound after it); it stays readable here.

// buffer resolves a buffer type for the effective context. dst is non-nil for
// writable buffers.
func (v *vm) buffer(bt uint32) (data []byte, dst *[]byte, st status) {
	s := v.cur
	switch bt {
	case bufferRequestBody, bufferResponseBody:
		switch {
		case s == nil:
			return nil, nil, statusOK // a root context: empty, read-only, as in Envoy
		case !s.attached:
			return nil, nil, statusNotFound // a stream outside its callbacks
		case bt == bufferRequestBody:
			return s.reqBody, &s.reqBody, statusOK
		}
		return s.respBody, &s.respBody, statusOK
	case bufferHTTPCallResponse:
		if v.httpResp == nil {
			return nil, nil, statusNotFound
		}
		return v.httpResp.Body, nil, statusOK
	case bufferVMConfiguration:
		return v.g.opts.VMConfiguration, nil, statusOK
	case bufferPluginConfiguration:
		return v.p.opts.Configuration, nil, statusOK
	case bufferDownstreamData, bufferUpstreamData, bufferGRPCReceive, bufferForeignArguments:
		return nil, nil, statusOK // exists, empty, read-only
	}
	return nil, nil, statusBadArgument
}

// proxy_get_buffer_bytes(i32 buffer_type, i32 start, i32 max_size,
// i32 return_data, i32 return_size) -> i32 status
//
// Copies buffer[start : start+max_size] (clamped to the buffer's end) into
// guest memory allocated with proxy_on_memory_allocate and stores its
// address and size (u32 LE) at return_data and return_size:
//
//	return_data: [u32 LE address of the copy, 0 when nothing is copied]
//	return_size: [u32 LE bytes copied]
//
// An empty range (an empty buffer, start at or past the end, max_size 0) is
// Ok with 0 and 0 stored and nothing allocated, as proxy-wasm-cpp-host does;
// SDKs that check every status (the AssemblyScript one reads an empty plugin
// configuration so) abort on anything else.
// Status: OK; NotFound (buffer absent for this context); BadArgument
// (unknown type); InvalidMemoryAccess (bad return_data or return_size).
func proxyGetBufferBytes(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	data, _, s := v.buffer(arg(st, 0))
	if s != statusOK {
		return s
	}
	start, max := uint64(arg(st, 1)), uint64(arg(st, 2))
	start = min(start, uint64(len(data)))
	end := min(start+max, uint64(len(data)))
	return v.writeOut(ctx, mem, data[start:end], arg(st, 3), arg(st, 4))
}

// proxy_set_buffer_bytes(i32 buffer_type, i32 start, i32 size, i32 data,
// i32 data_size) -> i32 status
//
// Replaces buffer[start : start+size] (clamped to the end) with
// [data, +data_size): start 0 and size 0 prepends, start at or past the end
// appends (the SDKs append with start = INT32_MAX, as Envoy allows), start 0
// and size ≥ len replaces everything. (Envoy's Buffer::copyFrom refuses a
// range that starts inside the body with BadArgument; this host splices it.)
// Status: OK; NotFound; BadArgument (read-only buffer, or result above
// MaxBodyBytes); InvalidMemoryAccess.
func proxySetBufferBytes(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	data, dst, s := v.buffer(arg(st, 0))
	if s != statusOK {
		return s
	}
	if dst == nil {
		return statusBadArgument
	}
	in, ok := read(mem, arg(st, 3), arg(st, 4))
	if !ok {
		return statusInvalidMemoryAccess
	}
	start, size := uint64(arg(st, 1)), uint64(arg(st, 2))
	if start > uint64(len(data)) {
		start = uint64(len(data))
	}
	end := min(start+size, uint64(len(data)))
	if uint64(len(data))-(end-start)+uint64(len(in)) > uint64(v.p.opts.MaxBodyBytes) {
		return statusBadArgument
	}
	out := make([]byte, 0, len(data)-int(end-start)+len(in))
	out = append(out, data[:start]...)
	out = append(out, in...)
	out = append(out, data[end:]...)
	*dst = out
	return statusOK
}

// proxy_get_buffer_status(i32 buffer_type, i32 return_size, i32 return_flags) -> i32 status
//
// Stores the buffer's length at return_size and 0 at return_flags (u32 LE).
// Status: OK; NotFound; BadArgument; InvalidMemoryAccess.
func proxyGetBufferStatus(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	data, _, s := v.buffer(arg(st, 0))
	if s != statusOK {
		return s
	}
	if s := putU32(mem, arg(st, 1), uint32(len(data))); s != statusOK {
		return s
	}
	return putU32(mem, arg(st, 2), 0)
}
