package wasm

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkOnRequestHeaders: one callback on a live stream.
func BenchmarkOnRequestHeaders(b *testing.B) {
	for _, tc := range []struct{ name, module string }{
		{"noop", "start_initialize"},
		{"add-header", "addheader"},
		{"filter", "filter"}, // add, get :path, get property, remove: 3 guest allocations
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, _ := newRuntime(b, Options{Logger: quiet()})
			p := newPlugin(b, r, tc.module, PluginOptions{MaxVMs: 1})
			ctx := context.Background()
			s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/bench")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Done()
			h := http.Header{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				delete(h, "X-Wasm")
				if _, err := s.OnRequestHeaders(ctx, h, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequest: NewStream + OnRequestHeaders + Done, as a request pays.
func BenchmarkRequest(b *testing.B) {
	for _, tc := range []struct{ name, module string }{
		{"noop", "start_initialize"},
		{"add-header", "addheader"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, _ := newRuntime(b, Options{Logger: quiet()})
			p := newPlugin(b, r, tc.module, PluginOptions{MaxVMs: 1})
			ctx := context.Background()
			req := newRequest("/bench")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := p.NewStream(ctx, StreamInfo{Request: req})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
					b.Fatal(err)
				}
				s.Done()
			}
		})
	}
}

// BenchmarkNewPlugin: a fresh Runtime, Compile and NewPlugin, without and
// with a warm file compilation cache; and NewPlugin alone on a compiled
// Module. For a WAT module (filter, 1 KB) and a TinyGo SDK plugin
// (tinygo/headers, 112 KB).
func BenchmarkNewPlugin(b *testing.B) {
	for _, tc := range []struct{ name, module string }{
		{"wat", "filter"},
		{"tinygo", "tinygo/headers"},
	} {
		b.Run(tc.name, func(b *testing.B) { benchNewPlugin(b, testdata(b, tc.module)) })
	}
}

func benchNewPlugin(b *testing.B, code []byte) {
	ctx := context.Background()
	once := func(dir string) error {
		r, err := NewRuntime(ctx, Options{CacheDir: dir, Logger: quiet()})
		if err != nil {
			return err
		}
		defer r.Close(ctx)
		m, err := r.Compile(ctx, code)
		if err != nil {
			return err
		}
		p, err := m.NewPlugin(ctx, PluginOptions{Name: "bench"})
		if err != nil {
			return err
		}
		return p.Close(ctx)
	}
	run := func(b *testing.B, dir string) {
		for i := 0; i < b.N; i++ {
			if err := once(dir); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cold", func(b *testing.B) { run(b, "") })
	b.Run("file-cache", func(b *testing.B) {
		dir := b.TempDir()
		if err := once(dir); err != nil { // warm the cache
			b.Fatal(err)
		}
		b.ResetTimer()
		run(b, dir)
	})
	b.Run("compiled", func(b *testing.B) {
		r, _ := newRuntime(b, Options{Logger: quiet()})
		m, err := r.Compile(ctx, code)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p, err := m.NewPlugin(ctx, PluginOptions{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			_ = p.Close(ctx)
		}
	})
}

// BenchmarkVMMemory: what a started VM costs in memory. One op starts
// vmsPerOp VMs of one plugin (a stream held open on each VM makes the next
// NewStream start another); ns/op is those 8 VM starts. It reports, per VM:
//
//	wasm-bytes/vm   linear memory of the started VM (after _start or
//	                _initialize, proxy_on_vm_start, proxy_on_configure and
//	                one proxy_on_context_create)
//	heap-bytes/vm   growth of the Go heap (runtime.MemStats.HeapAlloc after
//	                a GC) per VM, linear memory included: wazero allocates it
//	                on the Go heap
//	goroutines/vm   goroutines added per VM
func BenchmarkVMMemory(b *testing.B) {
	const vmsPerOp = 8
	for _, tc := range []struct{ name, module string }{
		{"wat-noop", "start_initialize"},
		{"wat-filter", "filter"},
		{"tinygo-noop", "tinygo/noop"},
		{"tinygo-headers", "tinygo/headers"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, _ := newRuntime(b, Options{Logger: quiet()})
			ctx := context.Background()
			m, err := r.Compile(ctx, testdata(b, tc.module))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			// Memory is measured on the first op (GCs around it, off the
			// clock); the others only time the VM starts.
			var wasmBytes, heapBytes, goroutines float64
			var ms runtime.MemStats
			var heap0 uint64
			var g0 int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i == 0 {
					b.StopTimer()
					runtime.GC()
					runtime.ReadMemStats(&ms)
					heap0, g0 = ms.HeapAlloc, runtime.NumGoroutine()
					b.StartTimer()
				}
				p, err := m.NewPlugin(ctx, PluginOptions{Name: "mem", MaxVMs: vmsPerOp})
				if err != nil {
					b.Fatal(err)
				}
				for j := 0; j < vmsPerOp; j++ {
					if _, err := p.NewStream(ctx, StreamInfo{}); err != nil {
						b.Fatal(err)
					}
				}
				if i == 0 {
					b.StopTimer()
					st := p.Stats()
					if st.VMs != vmsPerOp {
						b.Fatalf("%d VMs, want %d", st.VMs, vmsPerOp)
					}
					runtime.GC()
					runtime.ReadMemStats(&ms)
					wasmBytes = float64(st.MemoryBytes) / vmsPerOp
					heapBytes = (float64(ms.HeapAlloc) - float64(heap0)) / vmsPerOp
					goroutines = float64(runtime.NumGoroutine()-g0) / vmsPerOp
					b.StartTimer()
				}
				_ = p.Close(ctx)
			}
			b.ReportMetric(wasmBytes, "wasm-bytes/vm")
			b.ReportMetric(heapBytes, "heap-bytes/vm")
			b.ReportMetric(goroutines, "goroutines/vm")
		})
	}
}

// BenchmarkRequestTinyGo: a whole request (NewStream, request and response
// headers, Done) through plugins built with TinyGo and the
// tetratelabs/proxy-wasm-go-sdk, as users' plugins are; and through
// rawnoop, TinyGo without the SDK, whose callbacks return at once: the
// floor of any policy on this host, and, against noop, what the SDK's
// dispatch costs.
func BenchmarkRequestTinyGo(b *testing.B) {
	for _, name := range []string{"rawnoop", "noop", "headers"} {
		b.Run(name, func(b *testing.B) {
			r, _ := newRuntime(b, Options{Logger: quiet()})
			p := newPlugin(b, r, "tinygo/"+name, PluginOptions{MaxVMs: 1})
			ctx := context.Background()
			req := newRequest("/bench")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := p.NewStream(ctx, StreamInfo{Request: req})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.OnRequestHeaders(ctx, http.Header{}, true); err != nil {
					b.Fatal(err)
				}
				if _, err := s.OnResponseHeaders(ctx, 200, http.Header{}, false); err != nil {
					b.Fatal(err)
				}
				s.Done()
			}
		})
	}
}
