package wasm

import (
	"context"
	"slices"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// proxy_http_call(i32 upstream_data, i32 upstream_size, i32 headers_data,
// i32 headers_size, i32 body_data, i32 body_size, i32 trailers_data,
// i32 trailers_size, i32 timeout_ms, i32 return_call_id) -> i32 status
//
// Starts an HTTP call through Options.HTTPCaller on its own goroutine and
// stores the call's id (u32 LE, unique per VM) at return_call_id. Headers and
// trailers are serialized maps (pairs.go). The call belongs to the root
// context of the effective context, as in Envoy: when it ends,
// proxy_on_http_call_response(that root context, call_id, num_headers,
// body_size, num_trailers) runs on the same VM (not at all if the root
// context was deleted meanwhile); during it the response is readable as
// map 6/7 and buffer 4. A failed call is delivered with zero headers, body and
// trailers, as in Envoy. timeout_ms 0 means 30 s.
// Status: OK; Unimplemented (no HTTPCaller); NotFound (no root context yet,
// in the module's start-up function); BadArgument (empty upstream);
// SerializationFailure; InvalidMemoryAccess.
func proxyHTTPCall(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	caller := v.p.rt.opts.HTTPCaller
	if caller == nil {
		return statusUnimplemented
	}
	if v.root == nil { // the module's start-up function: no root context to answer
		return statusNotFound
	}
	up, ok1 := readString(mem, arg(st, 0), arg(st, 1))
	hb, ok2 := read(mem, arg(st, 2), arg(st, 3))
	body, ok3 := read(mem, arg(st, 4), arg(st, 5))
	tb, ok4 := read(mem, arg(st, 6), arg(st, 7))
	if !ok1 || !ok2 || !ok3 || !ok4 || !writable(mem, arg(st, 9), 4) {
		return statusInvalidMemoryAccess
	}
	if up == "" {
		return statusBadArgument
	}
	headers, err1 := decodePairs(hb)
	trailers, err2 := decodePairs(tb)
	if err1 != nil || err2 != nil {
		return statusSerializationFailure
	}
	timeout := time.Duration(arg(st, 8)) * time.Millisecond
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	v.nextCall++
	id := v.nextCall
	req := HTTPCallRequest{Upstream: up, Headers: headers, Body: slices.Clone(body), Trailers: trailers, Timeout: timeout}
	p, root := v.p, v.root
	p.wg.Add(1)
	go func() { // owned by the root context: root.ctx ends when it is deleted or the VM closes
		defer p.wg.Done()
		cctx, cancel := context.WithTimeout(root.ctx, timeout)
		resp, err := caller.Call(cctx, req)
		cancel()
		if err != nil {
			v.log.Debug("wasm: http call failed", "upstream", up, "err", err)
			resp = HTTPCallResponse{}
		}
		v.post(p, func(r *rootCtx) {
			nh := len(resp.Headers)
			if resp.Status != 0 {
				nh++
			}
			v.httpResp = &resp
			_, _ = v.call(v.fn.httpCallResponse, uint64(r.id), uint64(id), uint64(nh), uint64(len(resp.Body)), uint64(len(resp.Trailers)))
			v.httpResp = nil
		})
	}()
	return putU32(mem, arg(st, 9), id)
}
