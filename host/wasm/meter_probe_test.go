package wasm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// probeBound is how long a probe may take before it counts as not
// stopped: far above the 50 ms limits, to stay clear of a loaded machine's
// noise, and far below what each probe would run unstopped.
const probeBound = 8 * time.Second

// discardHandler is an slog handler that records nothing but says it
// would, so that a guest's logging does all its host-side work.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }

// TestMeterProbe runs guests written to outrun the meter (meterprobe.wat)
// in proxy_on_request_headers under a 50 ms CallTimeout: each must fail
// with ErrCallTimeout well within probeBound, the VM be rebuilt, and the
// next stream (with a plugin that runs nothing) succeed.
func TestMeterProbe(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	r, _ := newRuntime(t, Options{Logger: slog.New(discardHandler{})})
	tests := []struct {
		name, mode string
		pages      uint32 // memory ceiling, when the default's 32 MiB would make the unmetered loop too short to tell
	}{
		{name: "wasi-sleep-30s", mode: "s"},
		{name: "wasi-sleep-loop", mode: "S"},
		{name: "memory-fill-loop", mode: "f", pages: 2048},
		{name: "memory-copy-loop", mode: "c", pages: 2048},
		{name: "memory-init-loop", mode: "i"},
		{name: "wasi-random-get-loop", mode: "r"},
		{name: "proxy-log-loop", mode: "l"},
		{name: "wasi-fd-write-loop", mode: "w"},
		{name: "memory-grow-by-pages", mode: "g", pages: 2048}, // no infinite loop: a long one
		{name: "table-fill-loop", mode: "t"},
		{name: "br-table-loop", mode: "b"},
		{name: "multi-value-loop", mode: "p"},
		{name: "ref-func-call-indirect", mode: "x"},
		{name: "simd-loop", mode: "v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t, r, "meterprobe", PluginOptions{Name: tc.name, Configuration: []byte(tc.mode), MaxVMs: 1,
				CallTimeout: 50 * time.Millisecond, StartTimeout: time.Second, MaxMemoryPages: tc.pages})
			began := time.Now()
			done := make(chan error, 1)
			go func() {
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
				if err != nil {
					done <- err
					return
				}
				defer s.Done()
				_, err = s.OnRequestHeaders(ctx, http.Header{}, false)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrCallTimeout) {
					t.Fatalf("err = %v, want ErrCallTimeout", err)
				}
				t.Logf("stopped after %v", time.Since(began).Round(time.Millisecond))
			case <-time.After(probeBound):
				t.Fatalf("the guest was not stopped within %v (CallTimeout 50ms)", probeBound)
			}
			if st := p.Stats(); st.Failures != 1 || st.VMRebuilds != 1 {
				t.Fatalf("after the timeout: %+v", st)
			}
		})
	}
	_ = r.Close(ctx)
	waitGoroutines(t, before)
}

// TestMeterProbeStartUp: a guest looping in its start section or in
// _initialize is stopped at StartTimeout, and NewPlugin fails.
func TestMeterProbeStartUp(t *testing.T) {
	ctx := context.Background()
	r, _ := newRuntime(t, Options{})
	for _, name := range []string{"probe_startloop", "probe_initloop"} {
		t.Run(name, func(t *testing.T) {
			m, err := r.Compile(ctx, testdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			began := time.Now()
			done := make(chan error, 1)
			go func() {
				p, err := m.NewPlugin(ctx, PluginOptions{Name: name, MaxVMs: 1, CallTimeout: 50 * time.Millisecond, StartTimeout: 50 * time.Millisecond})
				if err == nil {
					p.Close(ctx)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrCallTimeout) {
					t.Fatalf("NewPlugin: err = %v, want ErrCallTimeout", err)
				}
				t.Logf("stopped after %v", time.Since(began).Round(time.Millisecond))
			case <-time.After(probeBound):
				t.Fatalf("start-up was not stopped within %v (StartTimeout 50ms)", probeBound)
			}
		})
	}
}
