package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// Guest addresses the tests use: inputs at in0/in1, return slots at ret0..2.
const (
	in0, in1         = 0x1000, 0x1800
	ret0, ret1, ret2 = 0x100, 0x104, 0x108
)

// hc calls the host function name with args as the guest would, inside a
// callback of the harness's stream.
func (h *fuzzHost) hc(t *testing.T, name string, args ...uint64) uint32 {
	t.Helper()
	f := hostFunctionNames[name]
	if f == nil {
		t.Fatalf("no host function %s", name)
	}
	return uint32(h.call(t, f, args))
}

func (h *fuzzHost) put(t *testing.T, addr uint32, b []byte) {
	t.Helper()
	if !h.s.vm.mem.Write(addr, b) {
		t.Fatal("write")
	}
}

// out reads the (address, size) pair the host stored at ret0/ret1.
func (h *fuzzHost) out(t *testing.T) []byte {
	t.Helper()
	mem := h.s.vm.mem
	p, _ := mem.ReadUint32Le(ret0)
	n, _ := mem.ReadUint32Le(ret1)
	b, ok := mem.Read(p, n)
	if !ok {
		t.Fatalf("bad out %d+%d", p, n)
	}
	return append([]byte(nil), b...)
}

func (h *fuzzHost) u32(addr uint32) uint32 {
	v, _ := h.s.vm.mem.ReadUint32Le(addr)
	return v
}

// TestHostcallsThroughMemory exercises the memory layouts of the host
// functions end to end: arguments written into guest memory, results read
// back from it.
func TestHostcallsThroughMemory(t *testing.T) {
	h := newFuzzHost(t)
	defer h.close()

	t.Run("header pairs", func(t *testing.T) {
		in := appendPairs(nil, [][2]string{{":path", "/new?q=1"}, {"x-a", "1"}, {"x-a", "2"}, {"accept", "*/*"}})
		h.put(t, in0, in)
		if st := h.hc(t, "proxy_set_header_map_pairs", mapRequestHeaders, in0, uint64(len(in))); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_header_map_pairs", mapRequestHeaders, ret0, ret1); st != statusOK {
			t.Fatal(st)
		}
		got, err := decodePairs(h.out(t))
		want := [][2]string{{":authority", "example.com"}, {":path", "/new?q=1"}, {":method", "GET"}, {":scheme", "http"},
			{"accept", "*/*"}, {"x-a", "1"}, {"x-a", "2"}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v %v", got, err)
		}
		if st := h.hc(t, "proxy_get_header_map_size", mapRequestHeaders, ret2); st != statusOK || h.u32(ret2) != uint32(pairsSize(want)) {
			t.Fatalf("size %d %d", st, h.u32(ret2))
		}
		h.put(t, in0, []byte("X-A"))
		if st := h.hc(t, "proxy_get_header_map_value", mapRequestHeaders, in0, 3, ret0, ret1); st != statusOK || string(h.out(t)) != "1" {
			t.Fatalf("get %d %q", st, h.out(t))
		}
		h.put(t, in0, []byte("nope"))
		if st := h.hc(t, "proxy_get_header_map_value", mapRequestHeaders, in0, 4, ret0, ret1); st != statusNotFound {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_header_map_value", mapHTTPCallResponseHeaders, in0, 4, ret0, ret1); st != statusBadArgument {
			t.Fatal(st) // not present outside proxy_on_http_call_response
		}
		if st := h.hc(t, "proxy_get_header_map_pairs", mapGRPCInitialMetadata, ret0, ret1); st != statusOK || h.u32(ret1) != 0 {
			t.Fatal(st) // not present: an empty map
		}
	})

	t.Run("buffers", func(t *testing.T) {
		if st := h.hc(t, "proxy_get_buffer_bytes", bufferPluginConfiguration, 2, 100, ret0, ret1); st != statusOK || string(h.out(t)) != "nfig" {
			t.Fatalf("%d %q", st, h.out(t))
		}
		if st := h.hc(t, "proxy_get_buffer_bytes", bufferPluginConfiguration, 6, 1, ret0, ret1); st != statusOK || h.u32(ret1) != 0 {
			t.Fatal("past the end:", st) // proxy-wasm-cpp-host: Ok, nothing written
		}
		h.put(t, in0, []byte("config"))
		if st := h.hc(t, "proxy_set_buffer_bytes", bufferPluginConfiguration, 0, 0, in0, 6); st != statusBadArgument {
			t.Fatal("configuration is read-only:", st)
		}
		if st := h.hc(t, "proxy_get_buffer_status", bufferVMConfiguration, ret0, ret1); st != statusOK || h.u32(ret0) != 0 {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_buffer_bytes", bufferDownstreamData, 0, 1, ret0, ret1); st != statusOK || h.u32(ret1) != 0 {
			t.Fatal(st) // Envoy's HTTP filters see empty network buffers
		}
	})

	t.Run("properties", func(t *testing.T) {
		h.put(t, in0, []byte("request\x00path"))
		if st := h.hc(t, "proxy_get_property", in0, 12, ret0, ret1); st != statusOK || string(h.out(t)) != "/new?q=1" { // :path was rewritten above
			t.Fatalf("%d %q", st, h.out(t))
		}
		h.put(t, in0, []byte("my\x00key"))
		h.put(t, in1, []byte("v1"))
		if st := h.hc(t, "proxy_set_property", in0, 6, in1, 2); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_property", in0, 6, ret0, ret1); st != statusOK || string(h.out(t)) != "v1" {
			t.Fatalf("%d %q", st, h.out(t))
		}
	})

	t.Run("shared data", func(t *testing.T) {
		h.put(t, in0, []byte("k"))
		h.put(t, in1, []byte("v"))
		if st := h.hc(t, "proxy_get_shared_data", in0, 1, ret0, ret1, ret2); st != statusNotFound {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_set_shared_data", in0, 1, in1, 1, 0); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_shared_data", in0, 1, ret0, ret1, ret2); st != statusOK || string(h.out(t)) != "v" {
			t.Fatal(st)
		}
		cas := h.u32(ret2)
		if st := h.hc(t, "proxy_set_shared_data", in0, 1, in1, 1, uint64(cas+7)); st != statusCASMismatch {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_set_shared_data", in0, 1, in1, 1, uint64(cas)); st != statusOK {
			t.Fatal(st)
		}
	})

	t.Run("queues", func(t *testing.T) {
		h.put(t, in0, []byte("q1"))
		if st := h.hc(t, "proxy_register_shared_queue", in0, 2, ret0); st != statusOK {
			t.Fatal(st)
		}
		id := h.u32(ret0)
		h.put(t, in1, []byte("")) // vm_id ""
		if st := h.hc(t, "proxy_resolve_shared_queue", in1, 0, in0, 2, ret1); st != statusOK || h.u32(ret1) != id {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_dequeue_shared_queue", uint64(id), ret0, ret1); st != statusEmpty {
			t.Fatal(st)
		}
		h.put(t, in1, []byte("msg"))
		if st := h.hc(t, "proxy_enqueue_shared_queue", uint64(id), in1, 3); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_dequeue_shared_queue", uint64(id), ret0, ret1); st != statusOK || string(h.out(t)) != "msg" {
			t.Fatal(st)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		h.put(t, in0, []byte("g1"))
		if st := h.hc(t, "proxy_define_metric", uint64(Gauge), in0, 2, ret0); st != statusOK {
			t.Fatal(st)
		}
		id := uint64(h.u32(ret0))
		neg := uint64(0xffff_ffff_ffff_fffb) // -5 as i64
		if st := h.hc(t, "proxy_record_metric", id, 10); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_increment_metric", id, neg); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_get_metric", id, ret0); st != statusOK || binary.LittleEndian.Uint64(h.out8(t)) != 5 {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_define_metric", uint64(Counter), in0, 2, ret0); st != statusBadArgument {
			t.Fatal("type change:", st)
		}
		if st := h.hc(t, "proxy_define_metric", 9, in0, 2, ret0); st != statusBadArgument {
			t.Fatal(st)
		}
	})

	t.Run("time and log level", func(t *testing.T) {
		before := time.Now().UnixNano()
		if st := h.hc(t, "proxy_get_current_time_nanoseconds", ret0); st != statusOK {
			t.Fatal(st)
		}
		if got := int64(binary.LittleEndian.Uint64(h.out8(t))); got < before || got > time.Now().UnixNano() {
			t.Fatal(got)
		}
		if st := h.hc(t, "proxy_get_log_level", ret0); st != statusOK || h.u32(ret0) != logInfo {
			t.Fatal(st, h.u32(ret0))
		}
	})

	t.Run("local response", func(t *testing.T) {
		hb := appendPairs(nil, [][2]string{{"x-r", "1"}})
		h.put(t, in0, []byte("details"))
		h.put(t, in1, hb)
		v, s := h.s.vm, h.s
		f := hostFunctionNames["proxy_send_local_response"]
		v.mu.Lock()
		v.cur, s.attached = s, true
		stack := []uint64{418, in0, 7, in0, 3, in1, uint64(len(hb)), 0}
		f.fn(v.ctx, v.mod, stack)
		local := s.local
		s.local, s.attached = nil, false
		v.mu.Unlock()
		if stack[0] != uint64(statusOK) || local == nil || local.Status != 418 || string(local.Body) != "det" || local.Details != "details" || local.Headers.Get("X-R") != "1" {
			t.Fatalf("%d %+v", stack[0], local)
		}
	})

	t.Run("effective context", func(t *testing.T) {
		if st := h.hc(t, "proxy_set_effective_context", rootContextID); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_set_effective_context", uint64(h.s.id)); st != statusOK {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_set_effective_context", 99); st != statusBadArgument {
			t.Fatal(st)
		}
		if st := h.hc(t, "proxy_continue_stream", 2); st != statusUnimplemented {
			t.Fatal(st)
		}
	})
}

func (h *fuzzHost) out8(t *testing.T) []byte {
	b, ok := h.s.vm.mem.Read(ret0, 8)
	if !ok {
		t.Fatal("read")
	}
	return b
}

type mapProps struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (p *mapProps) Property(k string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k]
	return v, ok
}

func (p *mapProps) SetProperty(k string, v []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[k] = v
}

// TestSharedStreamProperties: with StreamInfo.Shared, a property one
// plugin's stream sets is what another stream of the same request reads.
func TestSharedStreamProperties(t *testing.T) {
	h := newFuzzHost(t)
	defer h.close()
	ctx := context.Background()
	shared := &mapProps{m: map[string][]byte{}}
	h.s.Done()
	var err error
	if h.s, err = h.p.NewStream(ctx, StreamInfo{Request: newRequest("/"), Shared: shared}); err != nil {
		t.Fatal(err)
	}
	other, err := h.p.NewStream(ctx, StreamInfo{Request: newRequest("/"), Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Done()
	h.put(t, in0, []byte("jwt\x00sub"))
	h.put(t, in1, []byte("alice"))
	if st := h.hc(t, "proxy_set_property", in0, 7, in1, 5); st != statusOK {
		t.Fatal(st)
	}
	if string(shared.m["jwt.sub"]) != "alice" {
		t.Fatalf("shared state %q", shared.m)
	}
	v := other.vm
	v.mu.Lock()
	v.cur = other
	got, ok := v.property([]string{"jwt", "sub"})
	v.cur = nil
	v.mu.Unlock()
	if !ok || string(got) != "alice" {
		t.Fatalf("the other stream read %q, %v", got, ok)
	}
}

// TestInternKey: a header name set again is the same string (no new
// allocation for it); the table stops growing at its bound; without a
// table every call makes its own string.
func TestInternKey(t *testing.T) {
	keys := map[string]string{}
	a := internKey(keys, []byte("X-Frame-Options"))
	b := internKey(keys, []byte("X-Frame-Options"))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same name is not the same string")
	}
	for i := 0; i < 2*maxInternedKeys; i++ {
		internKey(keys, []byte(fmt.Sprintf("X-Name-%d", i)))
	}
	if len(keys) != maxInternedKeys {
		t.Fatalf("%d names interned, bound %d", len(keys), maxInternedKeys)
	}
	if internKey(nil, []byte("Vary")) != "Vary" {
		t.Fatal("without a table")
	}
	// Replacing a header whose name is interned allocates only its value
	// and the value slice.
	m := headerMap{h: http.Header{}, keys: map[string]string{}}
	key := []byte("x-content-type-options")
	m.change(key, "nosniff", false, true)
	if n := testing.AllocsPerRun(100, func() { m.change(key, "nosniff", false, true) }); n > 1 {
		t.Fatalf("%v allocations per replace", n)
	}
	if m.h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("header map %v", m.h)
	}
}
