package wasm

import (
	"context"
	"net/http"

	"github.com/tetratelabs/wazero/api"
)

// proxy_send_local_response(i32 status_code, i32 details_data,
// i32 details_size, i32 body_data, i32 body_size, i32 headers_data,
// i32 headers_size, i32 grpc_status) -> i32 status
//
// Makes the effective stream answer with a local response: the current
// callback's Verdict carries it, or a paused stream resumes with it. Headers
// are a serialized map (pairs.go). grpc_status is ignored.
// Status: OK; NotFound (the effective context is not a stream);
// BadArgument (status outside 100–999); SerializationFailure;
// InvalidMemoryAccess.
func proxySendLocalResponse(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	s := v.cur
	if s == nil {
		return statusNotFound
	}
	code := arg(st, 0)
	if code < 100 || code > 999 {
		return statusBadArgument
	}
	details, ok1 := readString(mem, arg(st, 1), arg(st, 2))
	body, ok2 := read(mem, arg(st, 3), arg(st, 4))
	hb, ok3 := read(mem, arg(st, 5), arg(st, 6))
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	pairs, err := decodePairs(hb)
	if err != nil {
		return statusSerializationFailure
	}
	h := make(http.Header, len(pairs))
	for _, p := range pairs {
		h.Add(p[0], p[1])
	}
	s.local = &LocalResponse{Status: int(code), Headers: h, Body: append([]byte(nil), body...), Details: details}
	s.wake()
	return statusOK
}

// proxy_continue_stream(i32 stream_type) -> i32 status
//
// Resumes the effective stream paused in the request (0) or response (1)
// direction. Continuing a stream that is not paused is a no-op.
// Status: OK; NotFound (no effective stream); Unimplemented (L4 types);
// BadArgument.
func proxyContinueStream(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return streamOp(v, arg(st, 0), false)
}

// proxy_close_stream(i32 stream_type) -> i32 status
//
// Ends the effective stream: its current or paused callback returns
// ErrStreamClosed (the proxy resets the request). Status: as
// proxy_continue_stream.
func proxyCloseStream(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return streamOp(v, arg(st, 0), true)
}

func streamOp(v *vm, typ uint32, closeIt bool) status {
	switch typ {
	case streamRequest, streamResponse:
	case 2, 3:
		return statusUnimplemented
	default:
		return statusBadArgument
	}
	s := v.cur
	if s == nil {
		return statusNotFound
	}
	if closeIt {
		s.closeErr = ErrStreamClosed
	}
	s.wake()
	return statusOK
}

// proxy_done() -> i32 status
//
// Signals that a context that returned false from proxy_on_done finished.
// This host never waits for it (proxy_on_done's result is ignored), so it
// only returns OK.
func proxyDone(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	return statusOK
}

// proxy_set_effective_context(i32 context_id) -> i32 status
//
// Makes context_id (a root context or a live stream of this VM, of any of
// the plugins sharing it) the target of the following host calls in this
// callback. Status: OK; BadArgument (unknown context).
func proxySetEffectiveContext(ctx context.Context, v *vm, mem api.Memory, st []uint64) status {
	id := arg(st, 0)
	if r := v.roots[id]; r != nil {
		v.setRoot(r)
		return statusOK
	}
	s := v.streams[id]
	if s == nil || s.deleted {
		return statusBadArgument
	}
	v.effective, v.cur, v.root, v.p = id, s, s.root, s.p
	return statusOK
}
