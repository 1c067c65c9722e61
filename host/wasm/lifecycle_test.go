package wasm

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestCloseWhilePaused(t *testing.T) {
	r, _ := newRuntime(t, Options{HTTPCaller: blockingCaller{}})
	p := newPlugin(t, r, "features", PluginOptions{})
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	errc := make(chan error, 1)
	go func() {
		_, err := s.OnRequestHeaders(context.Background(), http.Header{}, false)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrVMDiscarded) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("paused stream not released by Close")
	}
}

func TestSoftMemoryCeilingRetiresVM(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	// One page: the module's 64 KiB memory is above 3/4 of the ceiling.
	p := newPlugin(t, r, "addheader", PluginOptions{MaxMemoryPages: 1, MaxVMs: 1})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		s, err := p.NewStream(ctx, StreamInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.VMs != 1 {
			t.Fatalf("VM retired during a stream: %+v", st)
		}
		s.Done()
		if st := p.Stats(); st.VMs != 0 || st.VMRebuilds != uint64(i+1) {
			t.Fatalf("after Done: %+v", st)
		}
	}
}

// TestHammerMixed runs pausing, trapping and plain streams together under
// -race: traps discard VMs that other streams are using.
func TestHammerMixed(t *testing.T) {
	r, _ := newRuntime(t, Options{HTTPCaller: echoCaller{}, Foreign: map[string]ForeignFunc{
		"echo": func(_ context.Context, b []byte) ([]byte, error) { return b, nil },
	}})
	feat := newPlugin(t, r, "features", PluginOptions{MaxVMs: 2})
	trap := newPlugin(t, r, "hostile", PluginOptions{MaxVMs: 2, Configuration: []byte("t")})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				ctx := context.Background()
				p := feat
				h := http.Header{}
				if g%2 == 1 {
					p = trap
					if i%5 == 0 {
						h.Set("X-Trap", "1")
					}
				}
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
				if err != nil && p == trap && errors.Is(err, ErrVMDiscarded) {
					continue // other goroutines' traps kept discarding its VM
				}
				if err != nil {
					errs <- err
					return
				}
				_, err = s.OnRequestHeaders(ctx, h, false)
				s.Done()
				if p == feat && err != nil {
					errs <- err
					return
				}
				if p == feat && h.Get("X-Body") != "pong" {
					errs <- errors.New("x-body missing")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := trap.Stats(); st.Failures == 0 || st.VMRebuilds == 0 {
		t.Fatalf("trap stats %+v", st)
	}
}

func TestRuntimeCloseClosesPlugins(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "pause", PluginOptions{})
	s, _ := p.NewStream(context.Background(), StreamInfo{})
	defer s.Done()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewStream(context.Background(), StreamInfo{}); err != ErrClosed {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.OnRequestHeaders(context.Background(), http.Header{}, false); !errors.Is(err, ErrVMDiscarded) {
		t.Fatalf("err = %v", err)
	}
	m, err := r.Compile(context.Background(), testdata(t, "filter"))
	if err == nil {
		if _, err := m.NewPlugin(context.Background(), PluginOptions{}); err != ErrClosed {
			t.Fatalf("NewPlugin after Close: %v", err)
		}
	}
}

// TestNoGoroutineLeak: ticks, event loops and in-flight HTTP calls all stop
// when their plugins close.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	r, err := NewRuntime(context.Background(), Options{HTTPCaller: blockingCaller{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pause := newPlugin(t, r, "pause", PluginOptions{MaxVMs: 2})
	feat := newPlugin(t, r, "features", PluginOptions{MaxVMs: 2, PauseTimeout: 10 * time.Millisecond})
	for _, p := range []*Plugin{pause, feat} {
		s, err := p.NewStream(ctx, StreamInfo{})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.OnRequestHeaders(ctx, http.Header{}, false) // starts ticks / an HTTP call that never ends
		s.Done()
	}
	_ = pause.Close(ctx)
	_ = r.Close(ctx) // closes feat
	waitGoroutines(t, before)
}

func TestResponseStatusPseudoHeader(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{})
	s, _ := p.NewStream(context.Background(), StreamInfo{})
	defer s.Done()
	if _, err := s.OnResponseHeaders(context.Background(), 404, http.Header{}, false); err != nil {
		t.Fatal(err)
	}
	v := s.vm
	v.mu.Lock()
	v.cur, s.attached = s, true
	m, _ := v.headerMap(mapResponseHeaders)
	got, _ := m.get([]byte(":status"))
	st := m.change([]byte(":status"), "503", false, true)
	bad := m.change([]byte(":status"), "nope", false, true)
	s.attached = false
	v.mu.Unlock()
	if got != "404" || st != statusOK || bad != statusBadArgument || s.ResponseStatus() != 503 {
		t.Fatalf("got %q, set %d/%d, status %d", got, st, bad, s.ResponseStatus())
	}
}

func TestRestartBackoff(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "startonce", PluginOptions{MaxVMs: 1})
	ctx := context.Background()
	s, err := p.NewStream(ctx, StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OnRequestHeaders(ctx, http.Header{}, false); err == nil {
		t.Fatal("no trap")
	}
	s.Done()
	_, err1 := p.NewStream(ctx, StreamInfo{}) // tries to start a VM: refused
	calls := p.Stats().Calls
	_, err2 := p.NewStream(ctx, StreamInfo{}) // backs off: same error, no start
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Fatalf("errors %v / %v", err1, err2)
	}
	if p.Stats().Calls != calls {
		t.Fatal("a VM start was attempted during the back-off")
	}
}
