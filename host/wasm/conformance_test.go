package wasm

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testCallTimeout bounds each callback: a generous safety limit for shared
// 2-core machines under -race, not a performance assertion.
const testCallTimeout = 10 * time.Second

// guests are the same header plugin built by each toolchain a host meets
// (testdata/build.sh builds them all; testdata/tinygo/README.md describes
// the behaviour): TinyGo with tetratelabs/proxy-wasm-go-sdk, Go with
// proxy-wasm/proxy-wasm-go-sdk, C against the raw ABI, and AssemblyScript
// with @solo-io/proxy-runtime 0.1.8. want is the value each adds as x-wasm.
var guests = []struct {
	name, module, want string
}{
	{name: "tinygo", module: "tinygo/headers", want: "tinygo"},
	{name: "go", module: "gosdk/headers", want: "gosdk"},
	{name: "c", module: "c/headers", want: "c"},
	{name: "assemblyscript", module: "as/headers", want: "as"},
}

// TestGuestsOfEveryToolchain runs each guest through its whole life on the
// host: start and proxy_on_configure with an empty plugin configuration (the
// AssemblyScript SDK aborts there unless proxy_get_buffer_bytes answers Ok
// with nothing written, as proxy-wasm-cpp-host does), request headers
// (add, replace, remove), response headers, the end of the stream, and a
// second request on the same VM.
func TestGuestsOfEveryToolchain(t *testing.T) {
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			r, logs := newRuntime(t, Options{})
			m, err := r.Compile(context.Background(), testdata(t, g.module))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			p, err := m.NewPlugin(ctx, PluginOptions{Name: g.name, MaxVMs: 1, CallTimeout: testCallTimeout})
			if err != nil {
				t.Fatalf("configure with an empty configuration: %v\nlog:\n%s", err, logs)
			}
			t.Cleanup(func() { _ = p.Close(ctx) })
			for i := 0; i < 2; i++ {
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("http://example.com/a")})
				if err != nil {
					t.Fatal(err)
				}
				h := http.Header{"X-Remove": {"gone"}, "X-Replace": {"old"}, "Accept": {"*/*"}}
				v, err := s.OnRequestHeaders(ctx, h, true)
				if err != nil || v.Local != nil {
					t.Fatalf("request %d: verdict %+v, err %v\nlog:\n%s", i, v, err, logs)
				}
				if got := h.Get("X-Wasm"); got != g.want {
					t.Errorf("request %d: x-wasm = %q, want %q", i, got, g.want)
				}
				if got := h.Get("X-Replace"); got != "replaced" {
					t.Errorf("request %d: x-replace = %q", i, got)
				}
				if _, ok := h["X-Remove"]; ok {
					t.Errorf("request %d: x-remove kept", i)
				}
				if got := h.Get("Accept"); got != "*/*" {
					t.Errorf("request %d: accept = %q", i, got)
				}
				rh := http.Header{"Content-Type": {"text/plain"}}
				if _, err := s.OnResponseHeaders(ctx, 200, rh, true); err != nil {
					t.Fatalf("request %d: response headers: %v", i, err)
				}
				if got := rh.Get("X-Wasm-Response"); got != "yes" {
					t.Errorf("request %d: x-wasm-response = %q", i, got)
				}
				s.Done()
			}
			if !strings.Contains(logs.String(), "headers: on request headers") {
				t.Errorf("no info line through proxy_log:\n%s", logs)
			}
			if st := p.Stats(); st.Failures != 0 || st.VMRebuilds != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestAssemblyScriptGuest covers what the AssemblyScript SDK does beyond
// headers: it finds its root context through the plugin_root_id property and
// reads the plugin configuration in proxy_on_configure, and a local reply.
// (proxy-runtime 0.1.8's onConfigure passes the configuration size as the
// return_size pointer and so decodes the configuration from whatever size
// the previous call left; with a non-empty root id, as in its README, it
// reads the configuration right.)
func TestAssemblyScriptGuest(t *testing.T) {
	tests := []struct {
		name       string
		rootID     string
		config     string
		header     http.Header
		wantConfig string // x-config added to the request; "" none
		wantLocal  int    // local reply status; 0 none
		wantErr    bool   // NewPlugin fails
	}{
		{name: "empty configuration, default root id", header: http.Header{}},
		{name: "configuration read in proxy_on_configure", rootID: "as_headers", config: "from-config",
			header: http.Header{}, wantConfig: "from-config"},
		{name: "local reply", header: http.Header{"X-Deny": {"1"}}, wantLocal: http.StatusForbidden},
		{name: "unknown root id", rootID: "nope", wantErr: true},
	}
	r, logs := newRuntime(t, Options{})
	ctx := context.Background()
	m, err := r.Compile(ctx, testdata(t, "as/headers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.NewPlugin(ctx, PluginOptions{Name: "as", RootID: tc.rootID, Configuration: []byte(tc.config),
				MaxVMs: 1, CallTimeout: testCallTimeout})
			if tc.wantErr {
				if err == nil {
					_ = p.Close(ctx)
					t.Fatal("plugin started")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, logs)
			}
			defer p.Close(ctx)
			s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Done()
			v, err := s.OnRequestHeaders(ctx, tc.header, true)
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, logs)
			}
			if tc.wantLocal != 0 {
				if v.Local == nil || v.Local.Status != tc.wantLocal || string(v.Local.Body) != "denied by wasm" ||
					v.Local.Headers.Get("X-Denied-By") != "wasm" {
					t.Fatalf("local reply %+v", v.Local)
				}
				return
			}
			if v.Local != nil {
				t.Fatalf("unexpected local reply %+v", v.Local)
			}
			if got := tc.header.Get("X-Config"); got != tc.wantConfig {
				t.Errorf("x-config = %q, want %q", got, tc.wantConfig)
			}
		})
	}
}
