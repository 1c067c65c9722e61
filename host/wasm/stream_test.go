package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRequestHeaders(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{Name: "hdr"})
	ctx := context.Background()
	req := newRequest("http://example.com/a/b?q=1")
	s, err := p.NewStream(ctx, StreamInfo{Request: req})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	if s.ID() != 2 {
		t.Fatalf("first HTTP context id = %d, want 2", s.ID())
	}
	h := http.Header{"X-Remove-Me": {"x"}, "Accept": {"*/*"}}
	v, err := s.OnRequestHeaders(ctx, h, false)
	if err != nil || v.Local != nil {
		t.Fatalf("verdict %+v err %v", v, err)
	}
	want := map[string]string{"X-Wasm": "on", "X-Path": "/a/b?q=1", "X-Plugin": "hdr", "Accept": "*/*"}
	for k, w := range want {
		if got := h.Get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if _, ok := h["X-Remove-Me"]; ok {
		t.Error("x-remove-me not removed")
	}
	rh := http.Header{"X-Resp": {"a", "b"}}
	if _, err := s.OnResponseHeaders(ctx, 200, rh, true); err != nil {
		t.Fatal(err)
	}
	if got := rh.Values("X-Resp"); len(got) != 1 || got[0] != "yes" {
		t.Fatalf("x-resp = %q", got)
	}
}

func TestContextIDs(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{MaxVMs: 1})
	for want := uint32(2); want < 5; want++ {
		s, err := p.NewStream(context.Background(), StreamInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if s.ID() != want {
			t.Fatalf("id %d, want %d", s.ID(), want)
		}
		s.Done()
	}
}

func TestPseudoHeaderRewrite(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{})
	req := newRequest("http://example.com/old?x=1")
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: req})
	defer s.Done()
	v := s.vm
	v.mu.Lock()
	s.attached, s.reqHeaders = true, http.Header{}
	v.cur = s
	m, st := v.headerMap(mapRequestHeaders)
	if st != statusOK {
		t.Fatal(st)
	}
	for _, kv := range [][2]string{{":path", "/new/p?y=2"}, {":authority", "other.example"}, {":method", "POST"}} {
		if st := m.change([]byte(kv[0]), kv[1], false, true); st != statusOK {
			t.Fatalf("%s: %d", kv[0], st)
		}
	}
	got := m.pairs()
	s.attached = false
	v.mu.Unlock()
	if req.URL.Path != "/new/p" || req.URL.RawQuery != "y=2" || req.Host != "other.example" || req.Method != "POST" {
		t.Fatalf("request not rewritten: %s %s %s", req.Method, req.Host, req.URL)
	}
	if fmt.Sprint(got) != "[[:authority other.example] [:path /new/p?y=2] [:method POST] [:scheme http]]" {
		t.Fatalf("pairs %v", got)
	}
}

func TestLocalReply(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "localreply", PluginOptions{})
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	v, err := s.OnRequestHeaders(context.Background(), http.Header{}, true)
	if err != nil {
		t.Fatal(err)
	}
	l := v.Local
	if l == nil || l.Status != 403 || string(l.Body) != "forbidden" || l.Details != "denied" || l.Headers.Get("x-deny") != "yes" {
		t.Fatalf("local = %+v", l)
	}
}

func TestPauseContinueOnTick(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "pause", PluginOptions{})
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	h := http.Header{}
	v, err := s.OnRequestHeaders(context.Background(), h, false)
	if err != nil || v.Local != nil {
		t.Fatalf("verdict %+v err %v", v, err)
	}
	if h.Get("X-Resumed") != "1" {
		t.Fatalf("headers %v", h)
	}
}

func TestPauseTimeout(t *testing.T) {
	// The module pauses until its HTTP call answers, which never happens.
	r2, _ := newRuntime(t, Options{HTTPCaller: blockingCaller{}})
	p2 := newPlugin(t, r2, "features", PluginOptions{PauseTimeout: 20 * time.Millisecond})
	s, _ := p2.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	_, err := s.OnRequestHeaders(context.Background(), http.Header{}, false)
	if !errors.Is(err, ErrPauseTimeout) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s2, _ := p2.NewStream(ctx, StreamInfo{Request: newRequest("/")})
	defer s2.Done()
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	if _, err := s2.OnRequestHeaders(ctx, http.Header{}, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

type blockingCaller struct{}

func (blockingCaller) Call(ctx context.Context, _ HTTPCallRequest) (HTTPCallResponse, error) {
	<-ctx.Done()
	return HTTPCallResponse{}, ctx.Err()
}

func TestBodyBuffering(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{MaxBodyBytes: 10})
	ctx := context.Background()
	s, _ := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
	defer s.Done()
	chunk := []byte("abc")
	if _, err := s.OnRequestBody(ctx, &chunk, false); err != nil {
		t.Fatal(err)
	}
	if chunk != nil {
		t.Fatalf("buffered chunk forwarded: %q", chunk)
	}
	chunk = []byte("def")
	if _, err := s.OnRequestBody(ctx, &chunk, true); err != nil {
		t.Fatal(err)
	}
	if string(chunk) != "REPLACED" {
		t.Fatalf("body %q", chunk)
	}

	s2, _ := p.NewStream(ctx, StreamInfo{})
	defer s2.Done()
	big := []byte("0123456789abc")
	if _, err := s2.OnRequestBody(ctx, &big, false); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestProperties(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{Name: "n", RootID: "root", VMID: "vm",
		Properties: func(path []string) ([]byte, bool) {
			if strings.Join(path, ".") == "node.id" {
				return []byte("node-1"), true
			}
			return nil, false
		}})
	req := newRequest("https://h.example/p/q?x=y")
	s, _ := p.NewStream(context.Background(), StreamInfo{
		Request: req, RouteName: "r1", ClusterName: "c1", RequestID: "id-1",
		ClientAddr: netip.MustParseAddrPort("10.0.0.1:5555"),
		LocalAddr:  netip.MustParseAddrPort("10.0.0.2:443"),
		TLSVersion: "TLSv1.3",
	})
	defer s.Done()
	v := s.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cur = s
	tests := []struct{ path, want string }{
		{"plugin_name", "n"}, {"plugin_root_id", "root"}, {"plugin_vm_id", "vm"},
		{"route_name", "r1"}, {"cluster_name", "c1"}, {"request.id", "id-1"},
		{"request.path", "/p/q?x=y"}, {"request.url_path", "/p/q"}, {"request.host", "h.example"},
		{"request.scheme", "https"}, {"request.method", "GET"}, {"request.protocol", "HTTP/1.1"},
		{"source.address", "10.0.0.1:5555"}, {"source.port", string(le64(5555))},
		{"destination.address", "10.0.0.2:443"}, {"destination.port", string(le64(443))},
		{"connection.tls_version", "TLSv1.3"}, {"node.id", "node-1"},
	}
	for _, tc := range tests {
		got, ok := v.property(strings.Split(tc.path, "."))
		if !ok || string(got) != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.path, got, ok, tc.want)
		}
	}
	if _, ok := v.property([]string{"no", "such"}); ok {
		t.Error("unknown property found")
	}
	if b, ok := v.property([]string{"request", "time"}); !ok || len(b) != 8 {
		t.Errorf("request.time = %v", b)
	}
}

func TestHostileBadPointers(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "hostile", PluginOptions{Configuration: []byte("p")})
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	// The module traps if any bad call returns OK.
	if _, err := s.OnRequestHeaders(context.Background(), http.Header{}, false); err != nil {
		t.Fatal(err)
	}
}

func TestHostileInfiniteLoop(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "hostile", PluginOptions{Configuration: []byte("l"), CallTimeout: 50 * time.Millisecond})
	s, _ := p.NewStream(context.Background(), StreamInfo{})
	defer s.Done()
	start := time.Now()
	_, err := s.OnRequestHeaders(context.Background(), http.Header{}, false)
	if !errors.Is(err, ErrCallTimeout) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if st := p.Stats(); st.Failures != 1 || st.VMRebuilds != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHostileMemoryBomb(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "hostile", PluginOptions{Configuration: []byte("m"), MaxMemoryPages: 64})
	s, _ := p.NewStream(context.Background(), StreamInfo{})
	defer s.Done()
	_, err := s.OnRequestHeaders(context.Background(), http.Header{}, false)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v", err)
	}
	if st := p.Stats(); st.VMs != 0 {
		t.Fatalf("broken VM still live: %+v", st)
	}
}

func TestTrapRebuildsVM(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "hostile", PluginOptions{Configuration: []byte("t"), MaxVMs: 1})
	ctx := context.Background()
	s, _ := p.NewStream(ctx, StreamInfo{})
	if _, err := s.OnRequestHeaders(ctx, http.Header{"X-Trap": {"1"}}, false); err == nil {
		t.Fatal("no error from a trap")
	}
	// A second stream on the discarded VM fails too, without a crash.
	s.Done()
	s2, err := p.NewStream(ctx, StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Done()
	if s2.ID() != 2 {
		t.Fatalf("new VM's first context = %d", s2.ID())
	}
	if _, err := s2.OnRequestHeaders(ctx, http.Header{}, false); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.VMs != 1 || st.VMRebuilds != 1 || st.Failures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

type echoCaller struct{ calls chan HTTPCallRequest }

func (c echoCaller) Call(ctx context.Context, req HTTPCallRequest) (HTTPCallResponse, error) {
	if c.calls != nil {
		c.calls <- req
	}
	return HTTPCallResponse{Status: 200, Headers: [][2]string{{"content-type", "text/plain"}}, Body: []byte("pong")}, nil
}

func TestFeatures(t *testing.T) {
	calls := make(chan HTTPCallRequest, 1)
	r, _ := newRuntime(t, Options{
		HTTPCaller: echoCaller{calls: calls},
		Foreign: map[string]ForeignFunc{"echo": func(ctx context.Context, arg []byte) ([]byte, error) {
			if CallerName(ctx) != "feat" {
				return nil, errors.New("caller " + CallerName(ctx))
			}
			// The stream's request headers, as the plugin reads them.
			if v, ok := CallerRequestHeader(ctx, "x-probe"); !ok || v != "p1" {
				return nil, errors.New("x-probe " + v)
			}
			if _, ok := CallerRequestHeader(ctx, "x-absent"); ok {
				return nil, errors.New("x-absent found")
			}
			return append([]byte("echo:"), arg...), nil
		}},
	})
	p := newPlugin(t, r, "features", PluginOptions{Name: "feat", VMID: "vm1"})
	s, _ := p.NewStream(context.Background(), StreamInfo{Request: newRequest("/")})
	defer s.Done()
	h := http.Header{"X-Probe": {"p1", "p2"}}
	if _, err := s.OnRequestHeaders(context.Background(), h, false); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Body") != "pong" || h.Get("X-Foreign") != "echo:hi" {
		t.Fatalf("headers %v", h)
	}
	req := <-calls
	if req.Upstream != "up" || fmt.Sprint(req.Headers) != "[[:path /x]]" || req.Timeout != time.Second {
		t.Fatalf("call %+v", req)
	}
	ms := r.Metrics()
	if len(ms) != 1 || ms[0].Name != "requests" || ms[0].Type != Counter || ms[0].Value != 1 {
		t.Fatalf("metrics %+v", ms)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _, ok := r.shared.get("vm1", "last"); ok && string(v) == "item" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("on_queue_ready never moved the item to shared data")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSharedDataCAS(t *testing.T) {
	var d sharedData
	d.init()
	if st := d.set("vm", "k", []byte("a"), 0); st != statusOK {
		t.Fatal(st)
	}
	_, cas, _ := d.get("vm", "k")
	if st := d.set("vm", "k", []byte("b"), cas+1); st != statusCASMismatch {
		t.Fatalf("stale cas: %d", st)
	}
	if st := d.set("vm", "k", []byte("b"), cas); st != statusOK {
		t.Fatal(st)
	}
	if v, _, _ := d.get("vm", "k"); string(v) != "b" {
		t.Fatal(string(v))
	}
	if _, _, ok := d.get("other-vm", "k"); ok {
		t.Fatal("shared data not scoped by vm_id")
	}
}

// TestHammer runs concurrent streams across VMs under -race.
func TestHammer(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{MaxVMs: 3})
	const goroutines, perG = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				ctx := context.Background()
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/h")})
				if err != nil {
					errs <- err
					return
				}
				h := http.Header{}
				_, err = s.OnRequestHeaders(ctx, h, false)
				if err == nil && h.Get("X-Wasm") != "on" {
					err = fmt.Errorf("headers %v", h)
				}
				if err == nil {
					body := []byte("x")
					_, err = s.OnRequestBody(ctx, &body, true)
				}
				s.Done()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.VMs < 1 || st.VMs > 3 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTrailers(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{})
	ctx := context.Background()
	s, _ := p.NewStream(ctx, StreamInfo{})
	defer s.Done()
	rt, st := http.Header{"Grpc-Status": {"0"}}, http.Header{}
	if _, err := s.OnRequestTrailers(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OnResponseTrailers(ctx, st); err != nil {
		t.Fatal(err)
	}
	if rt.Get("X-Trailer") != "on" || rt.Get("Grpc-Status") != "0" || st.Get("X-Trailer") != "on" {
		t.Fatalf("trailers %v %v", rt, st)
	}
}
