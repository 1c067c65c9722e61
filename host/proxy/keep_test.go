package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
)

// TestApplyKeepsWhatDidNotChange: across generations a backend whose spec
// is the same is the same running backend (pools, health, outlier state),
// a policy whose spec is the same keeps its plugin, a changed one is built
// anew, and a replaced plugin closes only when the last request that
// started on it has finished — having run on it from start to end.
func TestApplyKeepsWhatDidNotChange(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, strings.Join(r.Header.Values("X-Chain"), ","))
	})
	other := newBackend(t, nil)
	port := freePort(t)
	// res is the configuration with policy "change" at priority prio and
	// backend b balanced by lb; comment changes the hash only.
	res := func(comment, lb string, prio int) string {
		return "# " + comment + "\n" + gatewayYAML(port, "") + backendYAML("a", slow.addr()) +
			backendYAML("b", other.addr()) + "  lbPolicy: " + lb + "\n" +
			route(`
    - backendRefs: [{name: a}]
`) +
			policyYAML("keep", "Wasm", "{kind: ProxyGateway, name: gw}", "") +
			policyYAML("change", "RateLimit", "{kind: ProxyGateway, name: gw}", "  priority: "+strconv.Itoa(prio)+"\n")
	}
	var open atomic.Int64
	var mu sync.Mutex
	var built []*fakePolicy
	builder := func(ctx context.Context, p *configs.Policy) (Policy, error) {
		name := p.Metadata.Name
		if p.Spec.RateLimit != nil {
			name += "@" + strconv.Itoa(p.Spec.Priority)
		}
		fp := &fakePolicy{name: name, open: &open}
		mu.Lock()
		built = append(built, fp)
		mu.Unlock()
		return fp, nil
	}
	load := func(y string) *configs.Snapshot {
		t.Helper()
		snap, err := configs.LoadFiles([]configs.File{{Name: "k.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		return snap
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: builder})
	defer gw.Shutdown(context.Background())
	ctx := context.Background()
	if err := gw.Apply(ctx, load(res("1", "RoundRobin", 1))); err != nil {
		t.Fatal(err)
	}
	st1 := gw.cur.Load()
	base := "http://" + gw.Addrs()["127.0.0.1:"+strconv.Itoa(port)]

	// A request in flight on generation 1.
	type result struct {
		chain string
		err   error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{chain: string(b)}
	}()
	<-entered

	// Generation 2: backend a and policy keep unchanged; backend b's
	// balancing and policy change's key changed.
	if err := gw.Apply(ctx, load(res("2", "Random", 2))); err != nil {
		t.Fatal(err)
	}
	st2 := gw.cur.Load()
	if st1.backends["t/a"] != st2.backends["t/a"] {
		t.Error("backend a was rebuilt though its spec did not change")
	}
	if st1.backends["t/b"] == st2.backends["t/b"] {
		t.Error("backend b was kept though its spec changed")
	}
	if st2.keptB != 1 || st2.keptP != 1 {
		t.Errorf("generation 2 kept %d backends and %d policies, want 1 and 1", st2.keptB, st2.keptP)
	}
	mu.Lock()
	if len(built) != 3 {
		t.Fatalf("built %d plugins, want 3 (keep, change@1, change@2)", len(built))
	}
	keep, old, neu := built[0], built[1], built[2]
	if keep.name != "keep" {
		keep, old = old, keep
	}
	mu.Unlock()

	// The replaced plugin still serves the request in flight.
	time.Sleep(50 * time.Millisecond)
	if old.closed.Load() {
		t.Fatal("the replaced plugin closed while a request was using it")
	}
	if old.name != "change@1" || neu.name != "change@2" {
		t.Fatalf("built %q and %q", old.name, neu.name)
	}
	// A new request runs on generation 2.
	resp, err := http.Get(base + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "keep,change@2" {
		t.Errorf("a new request ran %q, want keep,change@2", b)
	}
	close(release)
	r := <-got
	if r.err != nil || r.chain != "keep,change@1" {
		t.Errorf("the request in flight ran %q (%v), want keep,change@1: one generation from start to end", r.chain, r.err)
	}
	select {
	case <-st1.drained:
	case <-time.After(5 * time.Second):
		t.Fatal("generation 1 did not drain")
	}
	if !old.closed.Load() {
		t.Error("the replaced plugin is not closed after its last request")
	}
	if keep.closed.Load() || neu.closed.Load() {
		t.Error("a plugin generation 2 uses was closed")
	}
	if n := gw.keptBackends.len(); n != 2 {
		t.Errorf("%d backends held, want 2", n)
	}

	// Rebuild names a policy: a fresh plugin even though nothing changed.
	if err := gw.ApplyWith(ctx, load(res("2", "Random", 2)), ApplyOptions{Rebuild: []string{"t/keep"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(built)
	mu.Unlock()
	if n != 4 {
		t.Fatalf("a forced rebuild built %d plugins in all, want 4", n)
	}
	waitFor(t, keep.closed.Load, "the plugin replaced by a forced rebuild closes")
	// And the rebuilt one is kept afterwards.
	if err := gw.Apply(ctx, load(res("3", "Random", 2))); err != nil {
		t.Fatal(err)
	}
	if st := gw.cur.Load(); st.keptP != 2 {
		t.Errorf("after a forced rebuild, the next generation kept %d policies, want 2", st.keptP)
	}

	// A failed build keeps everything, and the rebuild counter is rolled
	// back (the running plugin stays the kept one).
	bad := load(res("4", "Random", 2))
	bad.Backends[0].Spec.LBPolicy = "Bogus"
	if err := gw.ApplyWith(ctx, bad, ApplyOptions{Rebuild: []string{"t/keep"}}); err == nil {
		t.Fatal("a bad backend was applied")
	}
	if err := gw.Apply(ctx, load(res("5", "Random", 2))); err != nil {
		t.Fatal(err)
	}
	if st := gw.cur.Load(); st.keptP != 2 || st.keptB != 2 {
		t.Errorf("after a failed build, kept %d policies and %d backends, want 2 and 2", st.keptP, st.keptB)
	}
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	gwtest.WaitFor(t, 5*time.Second, cond, what)
}

// len returns how many entries are held.
func (k *kept[T]) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
