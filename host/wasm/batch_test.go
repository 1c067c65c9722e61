package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"testing"
	"time"
)

// endModule is a proxy-wasm module whose proxy_on_context_create,
// proxy_on_request_headers, proxy_on_done, proxy_on_log and proxy_on_delete
// record 'c', 'r', 'd', 'l' and 'x' in memory from address 0 in call order
// (the count at address 100). With loopIn 'l' proxy_on_log, with 'c'
// proxy_on_context_create of a stream, never returns instead.
func endModule(loopIn byte) []byte {
	uv := func(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)) }
	section := func(out []byte, id byte, content []byte) []byte {
		return append(uv(append(out, id), len(content)), content...)
	}
	name := func(b []byte, s string) []byte { return append(uv(b, len(s)), s...) }
	const i32 = 0x7f
	// record(tag): mem8[mem32[100]] = tag; mem32[100]++
	record := func(tag byte) []byte {
		return []byte{
			0x41, 0xe4, 0x00, 0x28, 0x02, 0x00, // i32.load (i32.const 100)
			0x41, tag, 0x00, // i32.const tag (two-byte sLEB: tags are ≥ 64)
			0x3a, 0x00, 0x00, // i32.store8
			0x41, 0xe4, 0x00, // i32.const 100
			0x41, 0xe4, 0x00, 0x28, 0x02, 0x00, 0x41, 0x01, 0x6a, // load + 1
			0x36, 0x02, 0x00, // i32.store
		}
	}
	tag := func(c byte) byte { return c | 0x80 } // first byte of the sLEB of c (64 ≤ c < 128)
	bodies := [][]byte{
		{0x0b},                         // proxy_abi_version_0_2_1
		{0x41, 0x80, 0x08, 0x0b},       // proxy_on_memory_allocate: 1024
		append(record(tag('c')), 0x0b), // proxy_on_context_create
		append(record(tag('d')), 0x41, 0x01, 0x0b), // proxy_on_done: true
		append(record(tag('l')), 0x0b),             // proxy_on_log
		append(record(tag('x')), 0x0b),             // proxy_on_delete
		append(record(tag('r')), 0x41, 0x00, 0x0b), // proxy_on_request_headers: Continue
	}
	switch loopIn {
	case 'l':
		bodies[4] = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // loop br 0 end
	case 'c': // if id != 1 (the root) loop br 0 end end
		bodies[2] = append([]byte{0x20, 0x00, 0x41, 0x01, 0x47, 0x04, 0x40, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}, bodies[2]...)
	}
	types := []byte{5,
		0x60, 0, 0, // 0: () -> ()
		0x60, 1, i32, 1, i32, // 1: (i32) -> i32
		0x60, 2, i32, i32, 0, // 2: (i32, i32) -> ()
		0x60, 1, i32, 0, // 3: (i32) -> ()
		0x60, 3, i32, i32, i32, 1, i32, // 4: (i32, i32, i32) -> i32
	}
	funcTypes := []byte{0, 1, 2, 1, 3, 3, 4}
	exportNames := []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_done", "proxy_on_log", "proxy_on_delete", "proxy_on_request_headers"}
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = section(out, 1, types)
	out = section(out, 3, append([]byte{byte(len(funcTypes))}, funcTypes...))
	out = section(out, 5, []byte{1, 0x00, 1}) // one memory, min 1 page
	exports := []byte{byte(len(exportNames) + 1)}
	for i, n := range exportNames {
		exports = append(name(exports, n), 0x00, byte(i))
	}
	exports = append(name(exports, "memory"), 0x02, 0)
	out = section(out, 7, exports)
	code := []byte{byte(len(bodies))}
	for _, b := range bodies {
		b = append([]byte{0}, b...) // no locals
		code = append(uv(code, len(b)), b...)
	}
	return section(out, 10, code)
}

func TestDoneBatchOrder(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	ctx := context.Background()
	m, err := r.Compile(ctx, endModule(0))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.NewPlugin(ctx, PluginOptions{Name: "end"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	s, err := p.NewStream(ctx, StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	v := s.vm
	if v.fnDoneLogDelete == nil || v.fnCreateRequestHeaders == nil {
		t.Fatal("no helpers for a module exporting the callbacks they call")
	}
	calls := p.Stats().Calls
	if _, err := s.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
		t.Fatal(err)
	}
	s.Done()
	// The first 'c' is the root context's, at VM start.
	if got, _ := v.mem.Read(0, 6); string(got) != "ccrdlx" {
		t.Fatalf("callbacks ran as %q, want \"ccrdlx\"", got)
	}
	if d := p.Stats().Calls - calls; d != 5 {
		t.Fatalf("counted %d calls, want 5", d)
	}
	// A stream with no callback before Done is created, then ended.
	s2, err := p.NewStream(ctx, StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Done()
	if got, _ := v.mem.Read(6, 4); string(got) != "cdlx" {
		t.Fatalf("callbacks ran as %q, want \"cdlx\"", got)
	}
}

// TestCreateRequestHeadersEffectiveContext: with proxy_on_context_create and
// proxy_on_request_headers in one call, the plugin still reaches the
// stream's headers (the TinyGo SDK plugin adds x-wasm).
func TestCreateRequestHeadersEffectiveContext(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "tinygo/headers", PluginOptions{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
		if err != nil {
			t.Fatal(err)
		}
		if s.vm.fnCreateRequestHeaders == nil || s.vm.fnDoneLogDelete == nil {
			t.Fatal("no helpers for the TinyGo SDK plugin")
		}
		h := http.Header{"X-Replace": {"a"}, "X-Remove": {"b"}}
		if _, err := s.OnRequestHeaders(ctx, h, true); err != nil {
			t.Fatal(err)
		}
		if h.Get("X-Wasm") != "tinygo" || h.Get("X-Replace") != "replaced" || h["X-Remove"] != nil {
			t.Fatalf("headers after the plugin: %v", h)
		}
		s.Done()
	}
}

func TestBatchInfiniteLoop(t *testing.T) {
	for _, loopIn := range []byte{'l', 'c'} {
		t.Run(string(loopIn), func(t *testing.T) {
			r, _ := newRuntime(t, Options{})
			ctx := context.Background()
			m, err := r.Compile(ctx, endModule(loopIn))
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.NewPlugin(ctx, PluginOptions{Name: "end-loop", CallTimeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			s, err := p.NewStream(ctx, StreamInfo{})
			if err != nil {
				t.Fatal(err)
			}
			v := s.vm
			if v.fnDoneLogDelete == nil || v.fnCreateRequestHeaders == nil {
				t.Fatal("no helpers")
			}
			start := time.Now()
			_, err = s.OnRequestHeaders(ctx, http.Header{}, false)
			s.Done()
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			if loopIn == 'c' && !errors.Is(err, ErrCallTimeout) {
				t.Fatalf("OnRequestHeaders: %v, want ErrCallTimeout", err)
			}
			if !v.closed.Load() || !errors.Is(v.failErr, ErrCallTimeout) {
				t.Fatalf("VM closed=%v failErr=%v, want closed by ErrCallTimeout", v.closed.Load(), v.failErr)
			}
			if st := p.Stats(); st.Failures != 1 || st.VMs != 0 {
				t.Fatalf("stats %+v", st)
			}
			// The plugin goes on with a new VM.
			s2, err := p.NewStream(ctx, StreamInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if s2.vm == v {
				t.Fatal("discarded VM reused")
			}
		})
	}
}
