package wasm

import (
	"context"
	"encoding/binary"
	"net/http"
	"testing"
)

// The situations a host function can be called in (abiCase.in).
const (
	inStream   = iota // a request callback: request headers, body "hello", no response yet
	inResponse        // a response callback: response headers too, request trailers
	inRoot            // the plugin's root context (proxy_on_configure, proxy_on_tick)
	inHTTPCall        // proxy_on_http_call_response: headers, body "pong", no trailers
)

// What a row checks in the return slots ret0/ret1 after the call.
const (
	outNone      = iota // nothing
	outPair             // [ret0]=address, [ret1]=size of out; out "" means 0 and 0
	outUntouched        // ret0 and ret1 still hold the sentinel: nothing written
	outU32              // [ret0]=n
)

// bad is a guest address past the end of the module's memory.
const bad = 0xffff_fff0

// sentinel fills the return slots before each call.
const sentinel = 0xa5a5_a5a5

type abiCase struct {
	name string
	call string
	in   int
	mem  map[uint32]string // guest memory written before the call
	args []uint64
	want status
	out  int
	data string // outPair: the bytes written
	n    uint32 // outU32
}

// abiHost is a plugin of the "filter" module with an empty plugin
// configuration and the VM configuration "vmconf", and one stream of it.
type abiHost struct {
	p *Plugin
	s *Stream
}

func newABIHost(t *testing.T) *abiHost {
	t.Helper()
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{Name: "abi", VMConfiguration: []byte("vmconf"), MaxVMs: 1})
	s, err := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/t")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Done)
	return &abiHost{p: p, s: s}
}

// run calls tc's host function as a guest would in tc.in, with the VM locked.
func (h *abiHost) run(t *testing.T, tc abiCase) {
	t.Helper()
	f := hostFunctionNames[tc.call]
	if f == nil {
		t.Fatalf("no host function %s", tc.call)
	}
	v, s := h.s.vm, h.s
	v.mu.Lock()
	defer v.mu.Unlock()
	for addr, b := range tc.mem {
		if !v.mem.Write(addr, []byte(b)) {
			t.Fatalf("write %#x", addr)
		}
	}
	for _, a := range []uint32{ret0, ret1, ret2} {
		v.mem.WriteUint32Le(a, sentinel)
	}
	root := v.rootOf[h.p]
	saved := *s
	defer func() {
		s.attached, s.reqHeaders, s.respHeaders, s.reqTrailers, s.reqBody, s.status =
			saved.attached, saved.reqHeaders, saved.respHeaders, saved.reqTrailers, saved.reqBody, saved.status
		s.local, s.closeErr = nil, nil
		v.httpResp = nil
	}()
	switch tc.in {
	case inStream, inResponse:
		v.effective, v.cur, v.root = s.id, s, root
		s.attached = true
		s.reqHeaders = http.Header{"Accept": {"*/*"}, "X-Empty": {""}}
		s.reqBody = []byte("hello")
		s.respHeaders, s.reqTrailers = nil, nil
		if tc.in == inResponse {
			s.respHeaders, s.status = http.Header{"Server": {"x"}}, 200
			s.reqTrailers = http.Header{"X-T": {"1"}}
		}
	case inRoot, inHTTPCall:
		v.effective, v.cur, v.root = root.id, nil, root
		if tc.in == inHTTPCall {
			v.httpResp = &HTTPCallResponse{Status: 200, Headers: [][2]string{{"x-h", "1"}}, Body: []byte("pong")}
		}
	}
	stack := make([]uint64, max(len(f.params), 1))
	copy(stack, tc.args)
	f.fn(v.ctx, v.mod, stack)
	if got := status(stack[0]); got != tc.want {
		t.Errorf("status %d, want %d", got, tc.want)
	}
	p, _ := v.mem.ReadUint32Le(ret0)
	n, _ := v.mem.ReadUint32Le(ret1)
	switch tc.out {
	case outPair:
		if tc.data == "" {
			if p != 0 || n != 0 {
				t.Errorf("wrote address %#x size %d, want 0 and 0", p, n)
			}
			return
		}
		b, ok := v.mem.Read(p, n)
		if !ok || string(b) != tc.data {
			t.Errorf("wrote %q (address %#x size %d), want %q", b, p, n, tc.data)
		}
	case outUntouched:
		if p != sentinel || n != sentinel {
			t.Errorf("wrote %#x, %#x; want nothing", p, n)
		}
	case outU32:
		if p != tc.n {
			t.Errorf("wrote %d, want %d", p, tc.n)
		}
	}
}

// TestStatusesMatchCppHost checks the buffer, header and property host
// functions against proxy-wasm-cpp-host, case by case: each row is a call,
// the situation it is made in, the status cpp-host returns and what it
// writes. cpp-host's src/exports.cc checks the type, then the guest ranges,
// then asks the embedding host; the embedding's answers are Envoy's
// (source/extensions/common/wasm/context.cc), the host cpp-host is built for.
// Rows marked "differs" are deliberate differences, documented in the host
// function.
func TestStatusesMatchCppHost(t *testing.T) {
	requestPairs := appendPairs(nil, [][2]string{{":authority", "example.com"}, {":path", "/t"}, {":method", "GET"},
		{":scheme", "http"}, {"accept", "*/*"}, {"x-empty", ""}})
	malformed := string([]byte{2, 0, 0, 0, 1, 0})
	tests := []abiCase{
		// proxy_get_buffer_bytes — exports.cc get_buffer_bytes: NotFound
		// when getBuffer has no buffer; an empty range (start past the
		// end, length clamped to 0) stores 0 and 0 and is Ok.
		{name: "get_buffer_bytes: empty plugin configuration", call: "proxy_get_buffer_bytes", in: inRoot,
			args: []uint64{bufferPluginConfiguration, 0, 0, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: empty plugin configuration, any range", call: "proxy_get_buffer_bytes", in: inRoot,
			args: []uint64{bufferPluginConfiguration, 0, 1 << 31, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: whole buffer", call: "proxy_get_buffer_bytes", in: inRoot,
			args: []uint64{bufferVMConfiguration, 0, 100, ret0, ret1}, want: statusOK, out: outPair, data: "vmconf"},
		{name: "get_buffer_bytes: range inside", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 2, 2, ret0, ret1}, want: statusOK, out: outPair, data: "co"},
		{name: "get_buffer_bytes: offset at the end", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 6, 10, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: offset past the end", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 100, 10, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: max size 0", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 0, 0, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: request body in its callback", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferRequestBody, 1, 3, ret0, ret1}, want: statusOK, out: outPair, data: "ell"},
		// Envoy: a root context's body buffers are empty buffers.
		{name: "get_buffer_bytes: request body in a root context", call: "proxy_get_buffer_bytes", in: inRoot,
			args: []uint64{bufferRequestBody, 0, 10, ret0, ret1}, want: statusOK, out: outPair},
		// Envoy: getBuffer(HttpCallResponseBody) is nullptr outside the callback.
		{name: "get_buffer_bytes: buffer absent for this context", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferHTTPCallResponse, 0, 10, ret0, ret1}, want: statusNotFound, out: outUntouched},
		{name: "get_buffer_bytes: http call response body in its callback", call: "proxy_get_buffer_bytes", in: inHTTPCall,
			args: []uint64{bufferHTTPCallResponse, 0, 10, ret0, ret1}, want: statusOK, out: outPair, data: "pong"},
		// Envoy: an HTTP filter's network buffers exist and are empty.
		{name: "get_buffer_bytes: downstream data in an HTTP stream", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferDownstreamData, 0, 10, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_buffer_bytes: unknown buffer type", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{9, 0, 10, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_buffer_bytes: bad pointer", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 0, 10, bad, ret1}, want: statusInvalidMemoryAccess},
		{name: "get_buffer_bytes: bad pointer, empty range", call: "proxy_get_buffer_bytes", in: inStream,
			args: []uint64{bufferVMConfiguration, 6, 10, ret0, bad}, want: statusInvalidMemoryAccess},

		// proxy_get_buffer_status — exports.cc get_buffer_status.
		{name: "get_buffer_status: buffer", call: "proxy_get_buffer_status", in: inRoot,
			args: []uint64{bufferVMConfiguration, ret0, ret1}, want: statusOK, out: outU32, n: 6},
		{name: "get_buffer_status: empty plugin configuration", call: "proxy_get_buffer_status", in: inRoot,
			args: []uint64{bufferPluginConfiguration, ret0, ret1}, want: statusOK, out: outU32, n: 0},
		{name: "get_buffer_status: buffer absent for this context", call: "proxy_get_buffer_status", in: inStream,
			args: []uint64{bufferHTTPCallResponse, ret0, ret1}, want: statusNotFound, out: outUntouched},
		{name: "get_buffer_status: unknown buffer type", call: "proxy_get_buffer_status", in: inStream,
			args: []uint64{9, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_buffer_status: bad pointer", call: "proxy_get_buffer_status", in: inStream,
			args: []uint64{bufferVMConfiguration, bad, ret1}, want: statusInvalidMemoryAccess},

		// proxy_set_buffer_bytes — exports.cc set_buffer_bytes; read-only
		// buffers refuse (BufferBase::copyFrom, Envoy's Buffer::copyFrom).
		{name: "set_buffer_bytes: request body", call: "proxy_set_buffer_bytes", in: inStream, mem: map[uint32]string{in0: "HE"},
			args: []uint64{bufferRequestBody, 0, 2, in0, 2}, want: statusOK},
		{name: "set_buffer_bytes: read-only plugin configuration", call: "proxy_set_buffer_bytes", in: inRoot,
			mem: map[uint32]string{in0: "x"}, args: []uint64{bufferPluginConfiguration, 0, 0, in0, 1}, want: statusBadArgument},
		{name: "set_buffer_bytes: downstream data in an HTTP stream", call: "proxy_set_buffer_bytes", in: inStream,
			mem: map[uint32]string{in0: "x"}, args: []uint64{bufferDownstreamData, 0, 0, in0, 1}, want: statusBadArgument},
		{name: "set_buffer_bytes: request body in a root context", call: "proxy_set_buffer_bytes", in: inRoot,
			mem: map[uint32]string{in0: "x"}, args: []uint64{bufferRequestBody, 0, 0, in0, 1}, want: statusBadArgument},
		{name: "set_buffer_bytes: buffer absent for this context", call: "proxy_set_buffer_bytes", in: inStream,
			mem: map[uint32]string{in0: "x"}, args: []uint64{bufferHTTPCallResponse, 0, 0, in0, 1}, want: statusNotFound},
		{name: "set_buffer_bytes: unknown buffer type", call: "proxy_set_buffer_bytes", in: inStream,
			mem: map[uint32]string{in0: "x"}, args: []uint64{9, 0, 0, in0, 1}, want: statusBadArgument},
		{name: "set_buffer_bytes: bad pointer", call: "proxy_set_buffer_bytes", in: inStream,
			args: []uint64{bufferRequestBody, 0, 0, bad, 100}, want: statusInvalidMemoryAccess},

		// proxy_get_header_map_value — exports.cc get_header_map_value:
		// BadArgument above HttpCallResponseTrailers, InvalidMemoryAccess for
		// the key; Envoy's getHeaderMapValue: BadArgument when the map is
		// not present, NotFound for a missing key (ABI 0.2).
		{name: "get_header_map_value: key", call: "proxy_get_header_map_value", in: inStream, mem: map[uint32]string{in0: "accept"},
			args: []uint64{mapRequestHeaders, in0, 6, ret0, ret1}, want: statusOK, out: outPair, data: "*/*"},
		{name: "get_header_map_value: key in upper case", call: "proxy_get_header_map_value", in: inStream, mem: map[uint32]string{in0: "ACCEPT"},
			args: []uint64{mapRequestHeaders, in0, 6, ret0, ret1}, want: statusOK, out: outPair, data: "*/*"},
		{name: "get_header_map_value: empty value", call: "proxy_get_header_map_value", in: inStream, mem: map[uint32]string{in0: "x-empty"},
			args: []uint64{mapRequestHeaders, in0, 7, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_header_map_value: missing key", call: "proxy_get_header_map_value", in: inStream, mem: map[uint32]string{in0: "x-none"},
			args: []uint64{mapRequestHeaders, in0, 6, ret0, ret1}, want: statusNotFound, out: outUntouched},
		{name: "get_header_map_value: response headers before they arrive", call: "proxy_get_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "server"}, args: []uint64{mapResponseHeaders, in0, 6, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: request headers in a root context", call: "proxy_get_header_map_value", in: inRoot,
			mem: map[uint32]string{in0: "accept"}, args: []uint64{mapRequestHeaders, in0, 6, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: request trailers before they arrive", call: "proxy_get_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-t"}, args: []uint64{mapRequestTrailers, in0, 3, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: request trailers", call: "proxy_get_header_map_value", in: inResponse,
			mem: map[uint32]string{in0: "x-t"}, args: []uint64{mapRequestTrailers, in0, 3, ret0, ret1}, want: statusOK, out: outPair, data: "1"},
		{name: "get_header_map_value: gRPC metadata", call: "proxy_get_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x"}, args: []uint64{mapGRPCInitialMetadata, in0, 1, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: http call response headers in its callback", call: "proxy_get_header_map_value", in: inHTTPCall,
			mem: map[uint32]string{in0: "x-h"}, args: []uint64{mapHTTPCallResponseHeaders, in0, 3, ret0, ret1}, want: statusOK, out: outPair, data: "1"},
		{name: "get_header_map_value: http call response trailers, none", call: "proxy_get_header_map_value", in: inHTTPCall,
			mem: map[uint32]string{in0: "x-h"}, args: []uint64{mapHTTPCallResponseTrailer, in0, 3, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: unknown map type", call: "proxy_get_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "accept"}, args: []uint64{8, in0, 6, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_value: bad key pointer", call: "proxy_get_header_map_value", in: inStream,
			args: []uint64{mapRequestHeaders, bad, 100, ret0, ret1}, want: statusInvalidMemoryAccess, out: outUntouched},
		{name: "get_header_map_value: bad key pointer, map not present", call: "proxy_get_header_map_value", in: inRoot,
			args: []uint64{mapRequestHeaders, bad, 100, ret0, ret1}, want: statusInvalidMemoryAccess, out: outUntouched},
		{name: "get_header_map_value: bad return pointer", call: "proxy_get_header_map_value", in: inStream, mem: map[uint32]string{in0: "accept"},
			args: []uint64{mapRequestHeaders, in0, 6, ret0, bad}, want: statusInvalidMemoryAccess},

		// proxy_get_header_map_pairs — exports.cc get_header_map_pairs: an
		// empty map stores 0 and 0; Envoy's getHeaderMapPairs turns a map
		// not present into an empty one.
		{name: "get_header_map_pairs: request headers", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapRequestHeaders, ret0, ret1}, want: statusOK, out: outPair, data: string(requestPairs)},
		{name: "get_header_map_pairs: response headers before they arrive", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapResponseHeaders, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_header_map_pairs: request trailers before they arrive", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapRequestTrailers, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_header_map_pairs: request headers in a root context", call: "proxy_get_header_map_pairs", in: inRoot,
			args: []uint64{mapRequestHeaders, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_header_map_pairs: gRPC metadata", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapGRPCTrailingMetadata, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_header_map_pairs: unknown map type", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{8, ret0, ret1}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_pairs: bad pointer", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapRequestHeaders, ret0, bad}, want: statusInvalidMemoryAccess},
		{name: "get_header_map_pairs: bad pointer, empty map", call: "proxy_get_header_map_pairs", in: inStream,
			args: []uint64{mapResponseHeaders, bad, ret1}, want: statusInvalidMemoryAccess},

		// proxy_get_header_map_size — exports.cc get_header_map_size; Envoy's
		// getHeaderMapSize: BadArgument when the map is not present. (The
		// value written differs: see proxyGetHeaderMapSize.)
		{name: "get_header_map_size: request headers", call: "proxy_get_header_map_size", in: inStream,
			args: []uint64{mapRequestHeaders, ret0}, want: statusOK, out: outU32, n: uint32(len(requestPairs))},
		{name: "get_header_map_size: response headers before they arrive", call: "proxy_get_header_map_size", in: inStream,
			args: []uint64{mapResponseHeaders, ret0}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_size: unknown map type", call: "proxy_get_header_map_size", in: inStream,
			args: []uint64{8, ret0}, want: statusBadArgument, out: outUntouched},
		{name: "get_header_map_size: bad pointer", call: "proxy_get_header_map_size", in: inStream,
			args: []uint64{mapRequestHeaders, bad}, want: statusInvalidMemoryAccess},

		// add, replace, remove, set pairs — exports.cc; Envoy's getMap:
		// BadArgument for a map not present and for read-only maps.
		{name: "add_header_map_value: request headers", call: "proxy_add_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-a", in1: "1"}, args: []uint64{mapRequestHeaders, in0, 3, in1, 1}, want: statusOK},
		{name: "add_header_map_value: response headers before they arrive", call: "proxy_add_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-a", in1: "1"}, args: []uint64{mapResponseHeaders, in0, 3, in1, 1}, want: statusBadArgument},
		{name: "add_header_map_value: read-only http call response headers", call: "proxy_add_header_map_value", in: inHTTPCall,
			mem: map[uint32]string{in0: "x-a", in1: "1"}, args: []uint64{mapHTTPCallResponseHeaders, in0, 3, in1, 1}, want: statusBadArgument},
		{name: "add_header_map_value: unknown map type", call: "proxy_add_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-a", in1: "1"}, args: []uint64{8, in0, 3, in1, 1}, want: statusBadArgument},
		{name: "add_header_map_value: bad value pointer", call: "proxy_add_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-a"}, args: []uint64{mapRequestHeaders, in0, 3, bad, 100}, want: statusInvalidMemoryAccess},
		{name: "replace_header_map_value: request headers in a root context", call: "proxy_replace_header_map_value", in: inRoot,
			mem: map[uint32]string{in0: "x-a", in1: "1"}, args: []uint64{mapRequestHeaders, in0, 3, in1, 1}, want: statusBadArgument},
		{name: "replace_header_map_value: response headers", call: "proxy_replace_header_map_value", in: inResponse,
			mem: map[uint32]string{in0: "server", in1: "y"}, args: []uint64{mapResponseHeaders, in0, 6, in1, 1}, want: statusOK},
		{name: "remove_header_map_value: missing key", call: "proxy_remove_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-none"}, args: []uint64{mapRequestHeaders, in0, 6}, want: statusOK},
		{name: "remove_header_map_value: trailers before they arrive", call: "proxy_remove_header_map_value", in: inStream,
			mem: map[uint32]string{in0: "x-t"}, args: []uint64{mapResponseTrailers, in0, 3}, want: statusBadArgument},
		{name: "remove_header_map_value: bad key pointer", call: "proxy_remove_header_map_value", in: inStream,
			args: []uint64{mapRequestHeaders, bad, 100}, want: statusInvalidMemoryAccess},
		{name: "set_header_map_pairs: request headers", call: "proxy_set_header_map_pairs", in: inStream,
			mem: map[uint32]string{in0: string(requestPairs)}, args: []uint64{mapRequestHeaders, in0, uint64(len(requestPairs))}, want: statusOK},
		{name: "set_header_map_pairs: response headers before they arrive", call: "proxy_set_header_map_pairs", in: inStream,
			mem: map[uint32]string{in0: string(requestPairs)}, args: []uint64{mapResponseHeaders, in0, uint64(len(requestPairs))}, want: statusBadArgument},
		// differs: cpp-host's PairsUtil::toPairs reads a malformed map as an
		// empty one, and Envoy then empties the map with Ok.
		{name: "set_header_map_pairs: malformed map", call: "proxy_set_header_map_pairs", in: inStream,
			mem: map[uint32]string{in0: malformed}, args: []uint64{mapRequestHeaders, in0, uint64(len(malformed))}, want: statusSerializationFailure},
		{name: "set_header_map_pairs: bad pointer", call: "proxy_set_header_map_pairs", in: inStream,
			args: []uint64{mapRequestHeaders, bad, 100}, want: statusInvalidMemoryAccess},

		// proxy_get_property — exports.cc get_property; Envoy's
		// Context::getProperty: NotFound for a path it cannot resolve.
		{name: "get_property: request path", call: "proxy_get_property", in: inStream, mem: map[uint32]string{in0: "request\x00path"},
			args: []uint64{in0, 12, ret0, ret1}, want: statusOK, out: outPair, data: "/t"},
		{name: "get_property: path not found", call: "proxy_get_property", in: inStream, mem: map[uint32]string{in0: "no\x00such"},
			args: []uint64{in0, 7, ret0, ret1}, want: statusNotFound, out: outUntouched},
		{name: "get_property: request path in a root context", call: "proxy_get_property", in: inRoot, mem: map[uint32]string{in0: "request\x00path"},
			args: []uint64{in0, 12, ret0, ret1}, want: statusNotFound, out: outUntouched},
		{name: "get_property: empty value (plugin_root_id)", call: "proxy_get_property", in: inRoot, mem: map[uint32]string{in0: "plugin_root_id"},
			args: []uint64{in0, 14, ret0, ret1}, want: statusOK, out: outPair},
		{name: "get_property: plugin_name", call: "proxy_get_property", in: inRoot, mem: map[uint32]string{in0: "plugin_name"},
			args: []uint64{in0, 11, ret0, ret1}, want: statusOK, out: outPair, data: "abi"},
		{name: "get_property: bad path pointer", call: "proxy_get_property", in: inStream,
			args: []uint64{bad, 100, ret0, ret1}, want: statusInvalidMemoryAccess, out: outUntouched},
		{name: "get_property: bad return pointer", call: "proxy_get_property", in: inStream, mem: map[uint32]string{in0: "request\x00path"},
			args: []uint64{in0, 12, bad, ret1}, want: statusInvalidMemoryAccess},

		// proxy_set_property — exports.cc set_property.
		{name: "set_property: in a stream", call: "proxy_set_property", in: inStream, mem: map[uint32]string{in0: "my\x00key", in1: "v"},
			args: []uint64{in0, 6, in1, 1}, want: statusOK},
		{name: "set_property: bad value pointer", call: "proxy_set_property", in: inStream, mem: map[uint32]string{in0: "my\x00key"},
			args: []uint64{in0, 6, bad, 100}, want: statusInvalidMemoryAccess},
	}
	h := newABIHost(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { h.run(t, tc) })
	}
}

// TestEmptyHeaderMapPairsWriteNothing: proxy_get_header_map_pairs on a
// present but empty map stores 0 and 0, as cpp-host's get_header_map_pairs
// does for empty pairs, rather than a serialized count of zero.
func TestEmptyHeaderMapPairsWriteNothing(t *testing.T) {
	h := newABIHost(t)
	v, s := h.s.vm, h.s
	v.mu.Lock()
	defer v.mu.Unlock()
	v.effective, v.cur, v.root = s.id, s, v.rootOf[h.p]
	s.attached, s.respTrailers = true, http.Header{}
	defer func() { s.attached, s.respTrailers = false, nil }()
	v.mem.WriteUint32Le(ret1, sentinel)
	stack := []uint64{mapResponseTrailers, ret0, ret1}
	hostFunctionNames["proxy_get_header_map_pairs"].fn(v.ctx, v.mod, stack)
	n, _ := v.mem.ReadUint32Le(ret1)
	if stack[0] != uint64(statusOK) || n != 0 {
		t.Fatalf("status %d, size %d (%x)", stack[0], n, binary.LittleEndian.AppendUint32(nil, n))
	}
}
