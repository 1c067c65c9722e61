package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Events share.wasm logs (see testdata/share.wat).
const (
	evCreate = iota + 1
	evVMStart
	evConfigure
	evDone
	evDelete
	evTick
	evRequest
	evHTTPResponse
	evQueueReady
)

type guestEvent [3]uint32 // kind, a, b

// guestEvents reads share.wasm's event log from v's memory.
func guestEvents(t *testing.T, v *vm) []guestEvent {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.mem.ReadUint32Le(8192)
	if !ok {
		t.Fatal("read event count")
	}
	out := make([]guestEvent, n)
	for i := range out {
		for j := range 3 {
			out[i][j], _ = v.mem.ReadUint32Le(8196 + uint32(i)*12 + uint32(j)*4)
		}
	}
	return out
}

// eventsOf keeps the events of one kind.
func eventsOf(evs []guestEvent, kind uint32) []guestEvent {
	var out []guestEvent
	for _, e := range evs {
		if e[0] == kind {
			out = append(out, e)
		}
	}
	return out
}

// liveVMs returns the live VMs of p's group.
func liveVMs(p *Plugin) []*vm {
	p.g.mu.Lock()
	defer p.g.mu.Unlock()
	var out []*vm
	for _, v := range p.g.vms {
		if !v.closed.Load() {
			out = append(out, v)
		}
	}
	return out
}

func onlyVM(t *testing.T, p *Plugin) *vm {
	t.Helper()
	vms := liveVMs(p)
	if len(vms) != 1 {
		t.Fatalf("plugin %q has %d live VMs, want 1", p.opts.Name, len(vms))
	}
	return vms[0]
}

// doRequest runs one request's headers through p and returns the headers the
// plugin produced.
func doRequest(t *testing.T, p *Plugin, h http.Header) (http.Header, error) {
	t.Helper()
	ctx := context.Background()
	s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
	if err != nil {
		return nil, err
	}
	defer s.Done()
	if h == nil {
		h = http.Header{}
	}
	_, err = s.OnRequestHeaders(ctx, h, false)
	return h, err
}

// wantHeaders checks the headers share.wasm added.
func wantHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got := h.Get(k); got != w {
			t.Errorf("%s = %q, want %q (headers %v)", k, got, w, h)
		}
	}
}

// sharedPair starts plugins a and b of share.wasm on vm_id "shared".
func sharedPair(t *testing.T, r *Runtime, cfgA, cfgB string) (a, b *Plugin) {
	t.Helper()
	a = newPlugin(t, r, "share", PluginOptions{Name: "a", RootID: "ra", VMID: "shared", Configuration: []byte(cfgA), VMConfiguration: []byte("vmcfg"), MaxVMs: 1})
	b = newPlugin(t, r, "share", PluginOptions{Name: "b", RootID: "rb", VMID: "shared", Configuration: []byte(cfgB), VMConfiguration: []byte("vmcfg"), MaxVMs: 1})
	return a, b
}

// TestSharedVMContextIDs: two plugins naming the same vm_id run in one module
// instance (a counter in guest memory counts the requests of both) with one
// root context each, numbered 1 and 2 from the VM's counter, then HTTP
// contexts 3, 4, … whose parent is their plugin's root context. The module
// starts once; proxy_on_vm_start runs for each root context; each root context is configured with its own configuration and sees
// its own plugin_name and plugin_root_id.
func TestSharedVMContextIDs(t *testing.T) {
	r, lb := newRuntime(t, Options{})
	a, b := sharedPair(t, r, "alpha", "beta")
	for _, want := range []string{`msg=alpha plugin=a context_id=1`, `msg=beta plugin=b context_id=2`} {
		if !strings.Contains(lb.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, lb.String())
		}
	}
	v := onlyVM(t, a)
	if onlyVM(t, b) != v {
		t.Fatal("plugins with the same vm_id do not share their VM")
	}
	for i, tc := range []struct {
		p    *Plugin
		want map[string]string
	}{
		{a, map[string]string{"X-Count": "1", "X-Ctx": "3", "X-Parent": "1", "X-Config": "alpha", "X-Plugin": "a", "X-Root-Id": "ra"}},
		{b, map[string]string{"X-Count": "2", "X-Ctx": "4", "X-Parent": "2", "X-Config": "beta", "X-Plugin": "b", "X-Root-Id": "rb"}},
		{a, map[string]string{"X-Count": "3", "X-Ctx": "5", "X-Parent": "1", "X-Config": "alpha", "X-Plugin": "a", "X-Root-Id": "ra"}},
	} {
		h, err := doRequest(t, tc.p, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		wantHeaders(t, h, tc.want)
	}
	evs := guestEvents(t, v)
	want := []guestEvent{
		{evCreate, 1, 0}, {evVMStart, 1, 5}, {evConfigure, 1, 5}, // a: "alpha"
		{evCreate, 2, 0}, {evVMStart, 2, 5}, {evConfigure, 2, 4}, // b: "beta"; vm_start for each root, as in proxy-wasm-cpp-host
		{evCreate, 3, 1}, {evRequest, 3, 1}, {evDone, 3, 0}, {evDelete, 3, 0},
		{evCreate, 4, 2}, {evRequest, 4, 2}, {evDone, 4, 0}, {evDelete, 4, 0},
		{evCreate, 5, 1}, {evRequest, 5, 3}, {evDone, 5, 0}, {evDelete, 5, 0},
	}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("guest saw\n%v\nwant\n%v", evs, want)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.VMs != 1 || sb.VMs != 1 || sa.Calls != 3+2*4 || sb.Calls != 3+4 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
}

// TestSharingKey: only the same module, a non-empty equal vm_id, an equal VM
// configuration and an equal memory ceiling share a VM.
func TestSharingKey(t *testing.T) {
	base := PluginOptions{VMID: "v", VMConfiguration: []byte("c"), Configuration: []byte("x")}
	for _, tc := range []struct {
		name   string
		b      func(o *PluginOptions)
		shared bool
	}{
		{"same", func(o *PluginOptions) {}, true},
		{"same, other configuration and name", func(o *PluginOptions) { o.Configuration, o.Name = []byte("y"), "other" }, true},
		{"other vm_id", func(o *PluginOptions) { o.VMID = "w" }, false},
		{"empty vm_id", func(o *PluginOptions) { o.VMID = "" }, false},
		{"other VM configuration", func(o *PluginOptions) { o.VMConfiguration = []byte("d") }, false},
		{"other memory ceiling", func(o *PluginOptions) { o.MaxMemoryPages = 64 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRuntime(t, Options{})
			ao := base
			if tc.name == "empty vm_id" {
				ao.VMID = ""
			}
			a := newPlugin(t, r, "share", ao)
			bo := base
			tc.b(&bo)
			b := newPlugin(t, r, "share", bo)
			if _, err := doRequest(t, a, nil); err != nil {
				t.Fatal(err)
			}
			h, err := doRequest(t, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"X-Count": "1", "X-Parent": "1", "X-Ctx": "2"} // a VM of its own
			if tc.shared {
				want = map[string]string{"X-Count": "2", "X-Parent": "2", "X-Ctx": "4"}
			}
			wantHeaders(t, h, want)
			if got := a.g == b.g; got != tc.shared {
				t.Fatalf("same group %v, want %v", got, tc.shared)
			}
		})
	}
}

// TestSharedVMTrap: a trap in one plugin's callback discards the shared VM;
// both plugins continue on a rebuilt VM where both root contexts are
// re-created and configured, in attach order.
func TestSharedVMTrap(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	a, b := sharedPair(t, r, "alpha", "beta")
	old := onlyVM(t, a)
	ctx := context.Background()
	sb, err := b.NewStream(ctx, StreamInfo{Request: newRequest("/")}) // b's stream in flight on the VM
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Done()
	if _, err := doRequest(t, a, http.Header{"X-Trap": {"1"}}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("trap: %v", err)
	}
	if _, err := sb.OnRequestHeaders(ctx, http.Header{}, false); !errors.Is(err, ErrVMDiscarded) {
		t.Fatalf("b's stream on the discarded VM: %v", err)
	}
	if sa, sb := a.Stats(), b.Stats(); sa.Failures != 1 || sb.Failures != 0 || sa.VMRebuilds != 1 || sb.VMRebuilds != 1 || sa.VMs != 0 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	h, err := doRequest(t, b, nil) // b's stream starts the new VM
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders(t, h, map[string]string{"X-Count": "1", "X-Ctx": "3", "X-Parent": "2", "X-Config": "beta", "X-Plugin": "b"})
	h, err = doRequest(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders(t, h, map[string]string{"X-Count": "2", "X-Ctx": "4", "X-Parent": "1", "X-Config": "alpha", "X-Plugin": "a"})
	v := onlyVM(t, a)
	if v == old || onlyVM(t, b) != v {
		t.Fatal("not one rebuilt VM")
	}
	evs := guestEvents(t, v)
	want := []guestEvent{{evCreate, 1, 0}, {evVMStart, 1, 5}, {evConfigure, 1, 5}, {evCreate, 2, 0}, {evVMStart, 2, 5}, {evConfigure, 2, 4}}
	if len(evs) < len(want) || fmt.Sprint(evs[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("rebuilt VM saw %v", evs)
	}
}

// TestSharedVMRefusedConfiguration: a plugin refusing its configuration fails
// NewPlugin and leaves the other plugin of the VM as it was; its root context
// is deleted again and its id is not reused.
func TestSharedVMRefusedConfiguration(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	a := newPlugin(t, r, "share", PluginOptions{Name: "a", VMID: "shared", Configuration: []byte("alpha")})
	if _, err := doRequest(t, a, nil); err != nil {
		t.Fatal(err)
	}
	m, err := r.Compile(context.Background(), testdata(t, "share"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if _, err := m.NewPlugin(context.Background(), PluginOptions{Name: "b", VMID: "shared", Configuration: []byte("Refuse")}); err == nil || !strings.Contains(err.Error(), "refused its configuration") {
		t.Fatalf("NewPlugin(b): %v", err)
	}
	v := onlyVM(t, a)
	h, err := doRequest(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders(t, h, map[string]string{"X-Count": "2", "X-Ctx": "4", "X-Parent": "1", "X-Config": "alpha"})
	evs := guestEvents(t, v)
	want := []guestEvent{{evCreate, 3, 0}, {evVMStart, 3, 0}, {evConfigure, 3, 6}, {evDone, 3, 0}, {evDelete, 3, 0}}
	if fmt.Sprint(evs[7:12]) != fmt.Sprint(want) {
		t.Fatalf("guest saw %v", evs)
	}
	if st := a.Stats(); st.VMs != 1 || st.VMRebuilds != 0 || st.Failures != 0 {
		t.Fatalf("a's stats %+v", st)
	}
	if onlyVM(t, a) != v || len(a.g.plugins) != 1 {
		t.Fatal("a's VM or group changed")
	}
}

// TestSharedVMAsyncDelivery: ticks, HTTP call responses and queue-ready
// callbacks go to the root context that set the period, made the call, or
// registered the queue.
func TestSharedVMAsyncDelivery(t *testing.T) {
	r, _ := newRuntime(t, Options{HTTPCaller: echoCaller{}})
	a, b := sharedPair(t, r, "Tick", "Queue")
	v := onlyVM(t, a)
	if _, err := doRequest(t, a, http.Header{"X-Call": {"1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := doRequest(t, b, http.Header{"X-Call": {"1"}, "X-Enqueue": {"1"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := guestEvents(t, v)
		resp, ready, ticks := eventsOf(evs, evHTTPResponse), eventsOf(evs, evQueueReady), eventsOf(evs, evTick)
		if len(resp) == 2 && len(ready) == 1 && len(ticks) >= 2 {
			for _, e := range resp { // a's stream made call 1, b's call 2
				if e[1] != e[2] {
					t.Fatalf("http call responses %v: call 1 goes to root 1, call 2 to root 2", resp)
				}
			}
			if ready[0][1] != 2 {
				t.Fatalf("queue ready %v, want root 2", ready)
			}
			for _, e := range ticks {
				if e[1] != 1 {
					t.Fatalf("ticks %v, want root 1 only", ticks)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest saw %v", evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Closing a stops its ticks; b keeps the VM.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := len(eventsOf(guestEvents(t, v), evTick))
	time.Sleep(30 * time.Millisecond)
	if m := len(eventsOf(guestEvents(t, v), evTick)); m != n {
		t.Fatalf("%d ticks after a closed", m-n)
	}
}

// TestSharedVMClose: closing one plugin deletes its root context
// (proxy_on_done, proxy_on_delete), fails its streams in flight and leaves
// the other plugin working on the same VM; closing the last closes the VM.
// No goroutine (event loop, tick, HTTP call) outlives its plugin.
func TestSharedVMClose(t *testing.T) {
	before := runtime.NumGoroutine()
	r, err := NewRuntime(context.Background(), Options{HTTPCaller: blockingCaller{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	a, b := sharedPair(t, r, "Tick", "beta")
	v := onlyVM(t, a)
	// a: a stream in flight and an HTTP call that never answers.
	if _, err := doRequest(t, a, http.Header{"X-Call": {"1"}}); err != nil {
		t.Fatal(err)
	}
	sa, err := a.NewStream(ctx, StreamInfo{Request: newRequest("/")})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Done()
	if _, err := sa.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.OnResponseHeaders(ctx, 200, http.Header{}, false); !errors.Is(err, ErrVMDiscarded) {
		t.Fatalf("a's stream after a closed: %v", err)
	}
	if _, err := a.NewStream(ctx, StreamInfo{}); err != ErrClosed {
		t.Fatalf("a.NewStream after Close: %v", err)
	}
	evs := guestEvents(t, v)
	want := []guestEvent{{evDelete, 4, 0}, {evDone, 1, 0}, {evDelete, 1, 0}} // a's stream, then its root
	if len(evs) < 3 || fmt.Sprint(evs[len(evs)-3:]) != fmt.Sprint(want) {
		t.Fatalf("guest saw %v", evs)
	}
	h, err := doRequest(t, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders(t, h, map[string]string{"X-Count": "3", "X-Ctx": "5", "X-Parent": "2", "X-Config": "beta"})
	if onlyVM(t, b) != v {
		t.Fatal("b's VM changed")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !v.closed.Load() {
		t.Fatal("VM open after its last plugin closed")
	}
	r.mu.Lock()
	groups := len(r.groups)
	r.mu.Unlock()
	if groups != 0 {
		t.Fatalf("%d groups left", groups)
	}
	_ = r.Close(ctx)
	waitGoroutines(t, before)
}

// TestSharedVMHammer runs requests of two plugins sharing a pool of two VMs,
// with traps, under -race, while a third plugin joins and leaves.
func TestSharedVMHammer(t *testing.T) {
	r, _ := newRuntime(t, Options{HTTPCaller: echoCaller{}})
	opts := func(name string) PluginOptions {
		return PluginOptions{Name: name, VMID: "h", Configuration: []byte(name), MaxVMs: 2}
	}
	a := newPlugin(t, r, "share", opts("a"))
	b := newPlugin(t, r, "share", opts("b"))
	m, err := r.Compile(context.Background(), testdata(t, "share"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := []*Plugin{a, b}[g%2]
			for i := range 40 {
				h := http.Header{}
				if i%7 == 3 && g < 2 {
					h.Set("X-Trap", "1")
				}
				if i%5 == 0 {
					h.Set("X-Call", "1")
				}
				got, err := doRequest(t, p, h)
				if h.Get("X-Trap") != "" || errors.Is(err, ErrVMDiscarded) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if got.Get("X-Plugin") != p.opts.Name || got.Get("X-Config") != p.opts.Name {
					errs <- fmt.Errorf("plugin %s got headers %v", p.opts.Name, got)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			c, err := m.NewPlugin(context.Background(), opts("c"))
			if err != nil {
				if !errors.Is(err, ErrVMDiscarded) && !strings.Contains(err.Error(), "unreachable") {
					errs <- err
				}
				continue
			}
			if _, err := doRequest(t, c, nil); err != nil && !errors.Is(err, ErrVMDiscarded) {
				errs <- err
			}
			_ = c.Close(context.Background())
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := a.Stats(); st.VMs > 2 || st.Failures == 0 || st.VMRebuilds == 0 {
		t.Fatalf("a's stats %+v", st)
	}
}

// TestSharedVMPool: sharing plugins have one pool of VMs, bounded by the
// largest MaxVMs among them; every VM of the pool hosts a root context of
// each plugin.
func TestSharedVMPool(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	a := newPlugin(t, r, "share", PluginOptions{Name: "a", VMID: "pool", MaxVMs: 1})
	b := newPlugin(t, r, "share", PluginOptions{Name: "b", VMID: "pool", MaxVMs: 3})
	ctx := context.Background()
	var open []*Stream
	for range 4 { // busy VMs make new streams start VMs, up to 3
		s, err := a.NewStream(ctx, StreamInfo{})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	defer func() {
		for _, s := range open {
			s.Done()
		}
	}()
	if sa, sb := a.Stats(), b.Stats(); sa.VMs != 3 || sb.VMs != 3 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	for _, v := range liveVMs(a) {
		v.mu.Lock()
		ra, rb := v.rootOf[a], v.rootOf[b]
		v.mu.Unlock()
		if ra == nil || rb == nil || ra.id != 1 || rb.id != 2 {
			t.Fatalf("VM roots a %+v b %+v", ra, rb)
		}
	}
}

// TestSharedVMRefusedOnRebuild: a plugin that refuses its configuration when
// its VM is rebuilt after a trap loses its root context on the new VM (its
// streams fail with the refusal); the other plugin keeps working there.
func TestSharedVMRefusedOnRebuild(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	a, b := sharedPair(t, r, "alpha", "Once")
	if _, err := doRequest(t, b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := doRequest(t, a, http.Header{"X-Trap": {"1"}}); err == nil {
		t.Fatal("no trap")
	}
	h, err := doRequest(t, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders(t, h, map[string]string{"X-Count": "1", "X-Ctx": "3", "X-Parent": "1", "X-Config": "alpha"})
	if _, err := doRequest(t, b, nil); err == nil || !strings.Contains(err.Error(), "refused its configuration") {
		t.Fatalf("b on the rebuilt VM: %v", err)
	}
	evs := guestEvents(t, onlyVM(t, a))
	want := []guestEvent{{evCreate, 1, 0}, {evVMStart, 1, 5}, {evConfigure, 1, 5}, {evCreate, 2, 0}, {evVMStart, 2, 5}, {evConfigure, 2, 4}, {evDone, 2, 0}, {evDelete, 2, 0}}
	if len(evs) < len(want) || fmt.Sprint(evs[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("rebuilt VM saw %v", evs)
	}
}

// TestResetSharedData: a vm_id's data can be forgotten; the default, empty
// vm_id's cannot (it is every unnamed VM's).
func TestResetSharedData(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	rt.shared.set("a", "k", []byte("1"), 0)
	rt.shared.set("b", "k", []byte("2"), 0)
	rt.shared.set("", "k", []byte("3"), 0)
	rt.ResetSharedData("a")
	rt.ResetSharedData("")
	if _, _, ok := rt.shared.get("a", "k"); ok {
		t.Error("vm_id a's data survived its reset")
	}
	for _, id := range []string{"b", ""} {
		if _, _, ok := rt.shared.get(id, "k"); !ok {
			t.Errorf("vm_id %q's data was reset", id)
		}
	}
}
