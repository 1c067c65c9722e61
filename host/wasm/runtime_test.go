package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestCompileABIVersion(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	tests := []struct {
		name    string
		wantErr string
	}{
		{name: "start_initialize"}, // 0.2.0
		{name: "filter"},           // 0.2.1
		{name: "abi010", wantErr: "ABI 0.1.0 (proxy_abi_version_0_1_0) is not supported"},
		{name: "abi099", wantErr: "unsupported proxy-wasm ABI version export proxy_abi_version_0_9_9"},
		{name: "noabi", wantErr: "no proxy_abi_version_* export"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := r.Compile(context.Background(), testdata(t, tc.name))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Hash()) != 64 {
					t.Fatalf("hash %q", m.Hash())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			for _, e := range r.engines {
				if c := e.compiled[sha(testdata(t, tc.name))]; c != nil {
					t.Fatal("refused module's code kept")
				}
			}
		})
	}
}

func TestCompileSameBytesOnce(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	code := testdata(t, "filter")
	m1, err := r.Compile(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := r.Compile(context.Background(), append([]byte(nil), code...))
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Fatal("same bytes compiled twice")
	}
}

func TestCompileCacheDir(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		r, _ := newRuntime(t, Options{CacheDir: dir})
		newPlugin(t, r, "filter", PluginOptions{})
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartVariants(t *testing.T) {
	r, lb := newRuntime(t, Options{})
	for _, name := range []string{"start_initialize", "start_start", "start_section", "wasi"} {
		t.Run(name, func(t *testing.T) {
			// proxy_on_vm_start returns false unless start-up ran exactly once.
			p := newPlugin(t, r, name, PluginOptions{})
			if s := p.Stats(); s.VMs != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
	if !strings.Contains(lb.String(), "hello from wasi") || !strings.Contains(lb.String(), "plugin=wasi") {
		t.Fatalf("wasi stdout not logged with the plugin name:\n%s", lb)
	}
}

func TestStartExitRefused(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	m, err := r.Compile(context.Background(), testdata(t, "start_exit"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.NewPlugin(context.Background(), PluginOptions{Name: "exit"})
	if err == nil || !strings.Contains(err.Error(), "wasi-legacy") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigureRefused(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	m, err := r.Compile(context.Background(), testdata(t, "refuse"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.NewPlugin(context.Background(), PluginOptions{Name: "refuse"})
	if err == nil || !strings.Contains(err.Error(), "refused its configuration") {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := newPlugin(t, r, "filter", PluginOptions{})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.NewStream(ctx, StreamInfo{}); err != ErrClosed {
		t.Fatalf("NewStream after Close: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEveryABIImportDefined: the host defines every env function of ABI
// 0.2.1, with the spec's signature, so modules that import them all link.
func TestEveryABIImportDefined(t *testing.T) {
	spec := map[string]int{ // name → number of parameters
		"proxy_log": 3, "proxy_get_log_level": 1, "proxy_get_current_time_nanoseconds": 1,
		"proxy_set_tick_period_milliseconds": 1, "proxy_set_buffer_bytes": 5, "proxy_get_buffer_bytes": 5,
		"proxy_get_buffer_status": 3, "proxy_get_header_map_size": 2, "proxy_get_header_map_pairs": 3,
		"proxy_set_header_map_pairs": 3, "proxy_get_header_map_value": 5, "proxy_add_header_map_value": 5,
		"proxy_replace_header_map_value": 5, "proxy_remove_header_map_value": 3, "proxy_continue_stream": 1,
		"proxy_close_stream": 1, "proxy_get_status": 3, "proxy_send_local_response": 8, "proxy_http_call": 10,
		"proxy_grpc_call": 12, "proxy_grpc_stream": 9, "proxy_grpc_send": 4, "proxy_grpc_cancel": 1,
		"proxy_grpc_close": 1, "proxy_set_shared_data": 5, "proxy_get_shared_data": 5,
		"proxy_register_shared_queue": 3, "proxy_resolve_shared_queue": 5, "proxy_enqueue_shared_queue": 3,
		"proxy_dequeue_shared_queue": 3, "proxy_define_metric": 4, "proxy_record_metric": 2,
		"proxy_increment_metric": 2, "proxy_get_metric": 2, "proxy_get_property": 4, "proxy_set_property": 4,
		"proxy_call_foreign_function": 6, "proxy_done": 0, "proxy_set_effective_context": 1,
	}
	for name, n := range spec {
		f := hostFunctionNames[name]
		if f == nil {
			t.Errorf("%s not defined", name)
			continue
		}
		if len(f.params) != n || len(f.results) != 1 {
			t.Errorf("%s: %d params, %d results", name, len(f.params), len(f.results))
		}
	}
	if len(hostFunctions) != len(spec) {
		t.Errorf("%d host functions, spec has %d", len(hostFunctions), len(spec))
	}
}

func TestModuleRefCount(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	ctx := context.Background()
	code := testdata(t, "filter")
	m, err := r.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if m2, _ := r.Compile(ctx, code); m2 != m {
		t.Fatal("not shared")
	}
	p, err := m.NewPlugin(ctx, PluginOptions{MaxMemoryPages: 100})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Close(ctx)
	_ = m.Close(ctx) // both Compile references released; the plugin keeps it
	s, err := p.NewStream(ctx, StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	s.Done()
	_ = p.Close(ctx)
	if _, err := m.NewPlugin(ctx, PluginOptions{}); err == nil || !strings.Contains(err.Error(), "is closed") {
		t.Fatalf("NewPlugin on a released module: %v", err)
	}
	for _, e := range r.engines {
		if len(e.compiled) != 0 {
			t.Fatalf("compiled code kept: %d", len(e.compiled))
		}
	}
	m3, err := r.Compile(ctx, code)
	if err != nil || m3 == m {
		t.Fatalf("recompile: %v", err)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
