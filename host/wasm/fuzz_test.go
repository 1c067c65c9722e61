package wasm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		pairs [][2]string
	}{
		{name: "empty"},
		{name: "spec example", pairs: [][2]string{{"a", "1"}, {"b", "22"}}},
		{name: "empty strings", pairs: [][2]string{{"", ""}, {"k", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := appendPairs(nil, tc.pairs)
			if len(b) != pairsSize(tc.pairs) {
				t.Fatalf("size %d, want %d", len(b), pairsSize(tc.pairs))
			}
			got, err := decodePairs(b)
			if err != nil || len(got) != len(tc.pairs) || (len(got) > 0 && !reflect.DeepEqual(got, tc.pairs)) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	for _, empty := range [][]byte{nil, {0}, {0, 0, 0, 0}} {
		if got, err := decodePairs(empty); err != nil || len(got) != 0 {
			t.Fatalf("%v: %v %v", empty, got, err)
		}
	}
	for _, bad := range [][]byte{{1, 0}, {1, 0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c', 0}, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0}} {
		if _, err := decodePairs(bad); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
}

// FuzzDecodePairs: decoding never panics, and what decodes re-encodes to
// something that decodes to the same pairs.
func FuzzDecodePairs(f *testing.F) {
	f.Add(appendPairs(nil, [][2]string{{"a", "1"}, {"b", "22"}}))
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := decodePairs(b)
		if err != nil {
			return
		}
		again, err := decodePairs(appendPairs(nil, pairs))
		if err != nil || len(again) != len(pairs) || (len(pairs) > 0 && !reflect.DeepEqual(again, pairs)) {
			t.Fatalf("round trip: %v -> %v, %v", pairs, again, err)
		}
	})
}

// fuzzHost is a started plugin whose host functions the fuzzer calls
// directly, with the VM locked and a stream effective, as during a callback.
type fuzzHost struct {
	r *Runtime
	p *Plugin
	s *Stream
}

func newFuzzHost(t testing.TB) *fuzzHost {
	r, err := NewRuntime(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := &fuzzHost{r: r}
	h.restart(t)
	return h
}

func (h *fuzzHost) restart(t testing.TB) {
	ctx := context.Background()
	if h.p != nil {
		_ = h.p.Close(ctx)
	}
	m, err := h.r.Compile(ctx, testdata(t, "filter"))
	if err != nil {
		t.Fatal(err)
	}
	if h.p, err = m.NewPlugin(ctx, PluginOptions{Name: "fuzz", Configuration: []byte("config"), MaxVMs: 1}); err != nil {
		t.Fatal(err)
	}
	if h.s, err = h.p.NewStream(ctx, StreamInfo{Request: newRequest("/fuzz?x=1")}); err != nil {
		t.Fatal(err)
	}
}

func (h *fuzzHost) close() {
	_ = h.p.Close(context.Background())
	_ = h.r.Close(context.Background())
}

// call runs host function fn with args as a guest would, and reports a
// panic that is not the guest allocator giving up.
func (h *fuzzHost) call(t *testing.T, fn *hostFunc, args []uint64) (st uint64) {
	v, s := h.s.vm, h.s
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed.Load() {
		return 0
	}
	defer func() {
		if e := recover(); e != nil {
			if strings.Contains(fmt.Sprint(e), "proxy_on_memory_allocate") {
				v.closeLocked(fmt.Errorf("%v", e))
				return
			}
			panic(e)
		}
	}()
	v.effective, v.cur = s.id, s
	s.attached = true
	if s.reqHeaders == nil || len(s.reqHeaders) > 100 {
		s.reqHeaders = http.Header{"Accept": {"*/*"}}
	}
	if s.respHeaders == nil {
		s.respHeaders, s.status = http.Header{"Server": {"x"}}, 200
	}
	stack := make([]uint64, max(len(fn.params), 1))
	copy(stack, args)
	fn.fn(v.ctx, v.mod, stack)
	s.attached = false
	s.local, s.closeErr = nil, nil
	return stack[0]
}

var knownStatus = map[uint64]bool{
	uint64(statusOK): true, uint64(statusNotFound): true, uint64(statusBadArgument): true,
	uint64(statusSerializationFailure): true, uint64(statusParseFailure): true,
	uint64(statusInvalidMemoryAccess): true, uint64(statusEmpty): true, uint64(statusCASMismatch): true,
	uint64(statusInternalFailure): true, uint64(statusUnimplemented): true,
}

// FuzzHostFunctions calls every env host function with arbitrary arguments
// (including garbage in the upper 32 bits of i32 slots): the host must answer
// with a proxy_status_t, never crash or touch memory outside the guest's.
func FuzzHostFunctions(f *testing.F) {
	for i := range hostFunctions {
		f.Add(uint8(i), uint64(1024), uint64(6), uint64(512), uint64(516), uint64(0), uint64(0))
		f.Add(uint8(i), uint64(0xffffffff), uint64(0xffffffff), uint64(0xfffffffc), uint64(0xffff_ffff_0000_0200), uint64(1), uint64(7))
		f.Add(uint8(i), uint64(0), uint64(1<<40|3), uint64(0), uint64(0x10000), uint64(512), uint64(516))
	}
	h := newFuzzHost(f)
	defer h.close()
	f.Fuzz(func(t *testing.T, idx uint8, a0, a1, a2, a3, a4, a5 uint64) {
		if h.s.vm.closed.Load() {
			h.restart(t)
		}
		fn := &hostFunctions[int(idx)%len(hostFunctions)]
		// Repeat the arguments so that every parameter gets one.
		args := []uint64{a0, a1, a2, a3, a4, a5, a0, a1, a2, a3, a4, a5}
		if fn.name == "proxy_set_tick_period_milliseconds" {
			args[0] = 0
		}
		st := h.call(t, fn, args)
		if !knownStatus[uint64(uint32(st))] {
			t.Fatalf("%s%v = %d, not a proxy_status_t", fn.name, args[:len(fn.params)], st)
		}
	})
}
