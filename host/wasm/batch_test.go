package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"testing"
	"time"
)

// endModule is a proxy-wasm module whose proxy_on_done, proxy_on_log and
// proxy_on_delete record 'd', 'l' and 'x' at memory[0], [1], [2] in call
// order (the count at address 100); with loopInLog, proxy_on_log never
// returns instead.
func endModule(loopInLog bool) []byte {
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
		{0x0b},                   // proxy_abi_version_0_2_1
		{0x41, 0x80, 0x08, 0x0b}, // proxy_on_memory_allocate: 1024
		{0x0b},                   // proxy_on_context_create
		append(record(tag('d')), 0x41, 0x01, 0x0b), // proxy_on_done: true
		append(record(tag('l')), 0x0b),             // proxy_on_log
		append(record(tag('x')), 0x0b),             // proxy_on_delete
	}
	if loopInLog {
		bodies[4] = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // loop br 0 end
	}
	types := []byte{4,
		0x60, 0, 0, // 0: () -> ()
		0x60, 1, i32, 1, i32, // 1: (i32) -> i32
		0x60, 2, i32, i32, 0, // 2: (i32, i32) -> ()
		0x60, 1, i32, 0, // 3: (i32) -> ()
	}
	funcTypes := []byte{0, 1, 2, 1, 3, 3}
	exportNames := []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_done", "proxy_on_log", "proxy_on_delete"}
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
	m, err := r.Compile(ctx, endModule(false))
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
	if v.fnDoneLogDelete == nil {
		t.Fatal("no batch helper for a module exporting the three callbacks")
	}
	calls := p.Stats().Calls
	s.Done()
	if got, _ := v.mem.Read(0, 3); string(got) != "dlx" {
		t.Fatalf("end callbacks ran as %q, want \"dlx\"", got)
	}
	if d := p.Stats().Calls - calls; d != 3 {
		t.Fatalf("Done counted %d calls, want 3", d)
	}
}

func TestDoneBatchInfiniteLoop(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	ctx := context.Background()
	m, err := r.Compile(ctx, endModule(true))
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
	if v.fnDoneLogDelete == nil {
		t.Fatal("no batch helper")
	}
	start := time.Now()
	s.Done()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Done took %v", d)
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
	if _, err := s2.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
		t.Fatal(err)
	}
}
