package wasm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Buffers (proxy_buffer_type_t):
//
//	0 request body            the bytes buffered for the current body callback (writable)
//	1 response body           idem (writable)
//	4 http call response body read-only, during proxy_on_http_call_response
//	6 VM configuration        read-only, PluginOptions.VMConfiguration
//	7 plugin configuration    read-only, PluginOptions.Configuration of the effective plugin
//
// Downstream/upstream data (2, 3), gRPC (5) and foreign-function arguments (8)
// return Unimplemented; unknown types BadArgument.

// buffer resolves a buffer type for the effective context. dst is non-nil for
// writable buffers.
func (v *vm) buffer(bt uint32) (data []byte, dst *[]byte, st status) {
	s := v.cur
	switch bt {
	case bufferRequestBody:
		if s == nil || !s.attached {
			return nil, nil, statusNotFound
		}
		return s.reqBody, &s.reqBody, statusOK
	case bufferResponseBody:
		if s == nil || !s.attached {
			return nil, nil, statusNotFound
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
		return nil, nil, statusUnimplemented
	}
	return nil, nil, statusBadArgument
}

// proxy_get_buffer_bytes(i32 buffer_type, i32 start, i32 max_size,
// i32 return_data, i32 return_size) -> i32 status
//
// Copies buffer[start : start+max_size] (clamped to the buffer's end) into
// guest memory allocated with proxy_on_memory_allocate and stores its
// address and size (u32 LE) at return_data and return_size.
// Status: OK; NotFound (buffer unavailable); Empty (start at or past the end,
// or nothing to return); BadArgument; Unimplemented; InvalidMemoryAccess.
func proxyGetBufferBytes(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	data, _, s := v.buffer(arg(st, 0))
	if s != statusOK {
		return s
	}
	start, max := uint64(arg(st, 1)), uint64(arg(st, 2))
	if start >= uint64(len(data)) || max == 0 {
		return statusEmpty
	}
	end := min(start+max, uint64(len(data)))
	return v.writeOut(ctx, mem, data[start:end], arg(st, 3), arg(st, 4))
}

// proxy_set_buffer_bytes(i32 buffer_type, i32 start, i32 size, i32 data,
// i32 data_size) -> i32 status
//
// Replaces buffer[start : start+size] (clamped to the end) with
// [data, +data_size): start 0 and size 0 prepends, start at or past the end
// appends (the SDKs append with start = INT32_MAX, as Envoy allows), start 0
// and size ≥ len replaces everything.
// Status: OK; NotFound; BadArgument (read-only buffer, or result above
// MaxBodyBytes); Unimplemented; InvalidMemoryAccess.
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
// Status: OK; NotFound; BadArgument; Unimplemented; InvalidMemoryAccess.
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
