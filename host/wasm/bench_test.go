package wasm

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
// Module.
func BenchmarkNewPlugin(b *testing.B) {
	code := testdata(b, "filter")
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

// BenchmarkRequestTinyGo: a whole request (NewStream, request and response
// headers, Done) through plugins built with TinyGo and the
// tetratelabs/proxy-wasm-go-sdk, as users' plugins are.
func BenchmarkRequestTinyGo(b *testing.B) {
	for _, name := range []string{"noop", "headers"} {
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
