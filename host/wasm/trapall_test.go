package wasm

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestTrapInEveryCallback runs a module that fails in one callback, for
// each callback in turn and each way of failing: a trap, an infinite loop
// (without and with host calls in it), infinite recursion (direct and
// through call_indirect), a memory bomb and sleeping (WASI) in a loop. The host never crashes; the
// callback's caller gets an error (or, for the ones whose result nobody
// waits for, the VM is quietly discarded) within a bound; the next stream
// runs on a new VM; and when the plugin is closed no VM and no goroutine is
// left behind.
func TestTrapInEveryCallback(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	tests := []struct {
		mode, callback string
		startFails     bool
	}{
		{"a", "proxy_on_context_create", false},
		{"b", "proxy_on_request_headers", false},
		{"c", "proxy_on_request_body", false},
		{"d", "proxy_on_request_trailers", false},
		{"e", "proxy_on_response_headers", false},
		{"f", "proxy_on_response_body", false},
		{"g", "proxy_on_response_trailers", false},
		{"h", "proxy_on_done", false},
		{"i", "proxy_on_log", false},
		{"j", "proxy_on_delete", false},
		{"k", "proxy_on_vm_start", true},
		{"l", "proxy_on_configure", true},
		{"m", "proxy_on_tick", false},
	}
	hows := []struct{ name, how string }{
		{"trap", ""}, {"loop", "l"}, {"host-call-loop", "h"}, {"recursion", "r"}, {"indirect-recursion", "i"}, {"memory-bomb", "m"}, {"sleep", "s"},
	}
	r, _ := newRuntime(t, Options{})
	for _, how := range hows {
		for _, tc := range tests {
			t.Run(how.name+"/"+tc.callback, func(t *testing.T) {
				trapIn(t, r, tc.mode, tc.callback, how.how, tc.startFails)
			})
		}
	}
	_ = r.Close(ctx)
	waitGoroutines(t, before)
}

// trapIn runs the trapall module failing in one callback (mode) in one way
// (how) for TestTrapInEveryCallback.
func trapIn(t *testing.T, r *Runtime, mode, callback, how string, startFails bool) {
	ctx := context.Background()
	tc := struct{ mode, callback string }{mode, callback}
	{
		{
			// Limits small enough for the loops to end soon.
			opts := PluginOptions{Name: tc.callback, Configuration: []byte(tc.mode + how), MaxVMs: 1,
				CallTimeout: 50 * time.Millisecond, StartTimeout: 100 * time.Millisecond, MaxMemoryPages: 64}
			if tc.mode == "k" {
				opts.VMConfiguration = []byte(tc.mode + how)
			}
			began := time.Now()
			defer func() {
				// However it fails, it is stopped: 10 s is far above the
				// limits, to stay clear of a loaded machine's noise.
				if d := time.Since(began); d > 10*time.Second {
					t.Errorf("took %v", d)
				}
			}()
			m, err := r.Compile(ctx, testdata(t, "trapall"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			p, err := m.NewPlugin(ctx, opts)
			if startFails {
				if err == nil || !strings.Contains(err.Error(), tc.callback) && !strings.Contains(err.Error(), "unreachable") && !errors.Is(err, ErrCallTimeout) {
					p.Close(ctx)
					t.Fatalf("NewPlugin: err = %v, want a trap in %s", err, tc.callback)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)

			// One whole stream; the trap must surface where it happens.
			stream := func() (failedAt string) {
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
				if err != nil {
					return "proxy_on_context_create"
				}
				defer s.Done()
				steps := []struct {
					name string
					run  func() error
				}{
					{"proxy_on_request_headers", func() error { _, err := s.OnRequestHeaders(ctx, http.Header{}, false); return err }},
					{"proxy_on_request_body", func() error { b := []byte("x"); _, err := s.OnRequestBody(ctx, &b, true); return err }},
					{"proxy_on_request_trailers", func() error { _, err := s.OnRequestTrailers(ctx, http.Header{"X-T": {"1"}}); return err }},
					{"proxy_on_response_headers", func() error { _, err := s.OnResponseHeaders(ctx, 200, http.Header{}, false); return err }},
					{"proxy_on_response_body", func() error { b := []byte("y"); _, err := s.OnResponseBody(ctx, &b, true); return err }},
					{"proxy_on_response_trailers", func() error { _, err := s.OnResponseTrailers(ctx, http.Header{"X-T": {"1"}}); return err }},
				}
				for _, st := range steps {
					if err := st.run(); err != nil {
						return st.name
					}
				}
				return ""
			}

			switch tc.mode {
			case "h", "i", "j": // callbacks after the response: nobody waits for them
				if at := stream(); at != "" {
					t.Fatalf("stream failed at %s", at)
				}
				if st := p.Stats(); st.Failures != 1 || st.VMRebuilds != 1 || st.VMs != 0 {
					t.Fatalf("after a trap in %s: %+v", tc.callback, st)
				}
			case "m": // the tick traps on its own; streams are unaffected
				deadline := time.Now().Add(10 * time.Second)
				for p.Stats().VMRebuilds == 0 {
					if time.Now().After(deadline) {
						t.Fatal("the trapping tick did not discard its VM")
					}
					time.Sleep(5 * time.Millisecond)
				}
				// The next stream starts a new VM (whose tick will trap in
				// turn); it may lose that race, but never crashes.
				for i := 0; i < 20; i++ {
					if stream() == "" {
						break
					}
				}
			case "a": // proxy_on_context_create runs with the first callback
				if at := stream(); at != "proxy_on_request_headers" {
					t.Fatalf("stream failed at %q, want its first callback", at)
				}
				if st := p.Stats(); st.Failures != 1 || st.VMRebuilds != 1 {
					t.Fatalf("after a trap in %s: %+v", tc.callback, st)
				}
			default:
				if at := stream(); at != tc.callback {
					t.Fatalf("stream failed at %q, want %s", at, tc.callback)
				}
				if st := p.Stats(); st.Failures != 1 || st.VMRebuilds != 1 {
					t.Fatalf("after a trap in %s: %+v", tc.callback, st)
				}
			}
			// Again, on a new VM: the same, not worse.
			if tc.mode != "m" {
				at := stream()
				want := map[string]string{"a": "proxy_on_request_headers", "h": "", "i": "", "j": ""}[tc.mode]
				if want == "" && tc.mode < "h" {
					want = tc.callback
				}
				if at != want {
					t.Fatalf("second stream failed at %q", at)
				}
				if st := p.Stats(); st.VMRebuilds != 2 || st.VMs > 1 {
					t.Fatalf("after the second trap: %+v", st)
				}
			}
		}
	}
}
