package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testdata returns the bytes of testdata/<name>.wasm.
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newRuntime(t testing.TB, opts Options) (*Runtime, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := NewRuntime(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, lb
}

func newPlugin(t testing.TB, r *Runtime, name string, opts PluginOptions) *Plugin {
	t.Helper()
	ctx := context.Background()
	m, err := r.Compile(ctx, testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Name == "" {
		opts.Name = name
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 10 * time.Second // shared 2-core machines under -race are slow
	}
	p, err := m.NewPlugin(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(ctx) })
	return p
}

func newRequest(target string) *http.Request {
	return httptest.NewRequest(http.MethodGet, target, nil)
}

// TestTestdataUpToDate recompiles every testdata/*.wat with wat2wasm (when
// installed) and fails if the committed .wasm differs.
func TestTestdataUpToDate(t *testing.T) {
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt-get install wabt)")
	}
	wats, _ := filepath.Glob(filepath.Join("testdata", "*.wat"))
	if len(wats) == 0 {
		t.Fatal("no testdata/*.wat")
	}
	dir := t.TempDir()
	for _, wat := range wats {
		name := strings.TrimSuffix(filepath.Base(wat), ".wat")
		out := filepath.Join(dir, name+".wasm")
		if b, err := exec.Command(w2w, wat, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", wat, err, b)
		}
		got, _ := os.ReadFile(out)
		want, err := os.ReadFile(strings.TrimSuffix(wat, ".wat") + ".wasm")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s.wasm is stale: run wat2wasm %s -o testdata/%s.wasm", name, wat, name)
		}
	}
}

// waitGoroutines waits (up to 5 s) for the number of goroutines to come
// back to before, and fails the test with every stack if it does not.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
