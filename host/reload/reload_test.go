package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestWatch: each way deploy tools replace files is seen — a write, an
// editor's atomic rename, a Kubernetes ConfigMap's symlink swap, a file
// outside the resource directory named by the configuration — and a burst
// of events is one reload; a chmod is not a change.
func TestWatch(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := filepath.Join(dir, "res.yaml")
	write(res, "a")
	module := filepath.Join(other, "m.wasm")
	write(module, "m1")
	// A ConfigMap mount: ..data -> ..v1, res2.yaml -> ..data/res2.yaml.
	cm := t.TempDir()
	os.Mkdir(filepath.Join(cm, "..v1"), 0o755)
	write(filepath.Join(cm, "..v1", "res2.yaml"), "v1")
	os.Symlink("..v1", filepath.Join(cm, "..data"))
	os.Symlink(filepath.Join("..data", "res2.yaml"), filepath.Join(cm, "res2.yaml"))

	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Watch(ctx, []string{dir, filepath.Join(cm, "res2.yaml")}, func() []string { return []string{module} }, func() { n.Add(1) }, quiet); err != nil {
		t.Fatal(err)
	}
	// Each step waits for its reload: once past the debounce, exactly
	// one more than before.
	step := func(name string, change func()) {
		t.Helper()
		before := n.Load()
		change()
		deadline := time.Now().Add(10 * time.Second)
		for n.Load() == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * Delay) // a second reload would come by now
		if got := n.Load() - before; got != 1 {
			t.Errorf("%s: %d reloads, want 1", name, got)
		}
	}
	step("write", func() { write(res, "b") })
	step("burst of writes", func() {
		for i := range 5 {
			write(res, fmt.Sprint(i))
		}
	})
	step("atomic rename", func() {
		write(res+".tmp", "c")
		os.Rename(res+".tmp", res)
	})
	step("new file in the directory", func() { write(filepath.Join(dir, "more.yaml"), "d") })
	step("module outside the resources", func() {
		write(module+".tmp", "m2")
		os.Rename(module+".tmp", module)
	})
	step("ConfigMap symlink swap", func() {
		os.Mkdir(filepath.Join(cm, "..v2"), 0o755)
		write(filepath.Join(cm, "..v2", "res2.yaml"), "v2")
		os.Symlink("..v2", filepath.Join(cm, "..data_tmp"))
		os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data"))
	})
	before := n.Load()
	os.Chmod(res, 0o600)
	time.Sleep(3 * Delay)
	if n.Load() != before {
		t.Error("a chmod reloaded")
	}
	cancel()
}

func gatewayDoc(port int, extra string) string {
	return fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: a}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
%s`, port, extra)
}

func policyDoc(ns, name string) string {
	return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: %s, namespace: %s}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw, namespace: a}
  wasm: {module: m.wasm}
`, name, ns)
}

// TestRebuildPolicy: names resolve as namespace/name or a unique name; a
// forced rebuild builds the plugin again though nothing changed, from where
// the running configuration came from; pushed relative paths resolve
// against PushDir.
func TestRebuildPolicy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("module"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	doc := gatewayDoc(port, "") + policyDoc("a", "p") + policyDoc("b", "p") + policyDoc("a", "q")
	var builds []string
	builder := func(ctx context.Context, p *configs.Policy) (proxy.Policy, error) {
		f, ok := p.File("m.wasm")
		if !ok || f.Err != nil {
			return nil, fmt.Errorf("module not read: %v %v", ok, f)
		}
		builds = append(builds, p.Metadata.Namespace+"/"+p.Metadata.Name+":"+string(f.Data))
		return nil, nil
	}
	gw := proxy.New(proxy.Options{Logger: quiet, Policies: builder})
	defer gw.Shutdown(context.Background())
	files := func() (*configs.Snapshot, error) {
		s, err := configs.LoadFiles([]configs.File{{Name: filepath.Join(dir, "r.yaml"), Data: []byte(doc)}})
		if err == nil {
			s.ReadExternal(nil)
		}
		return s, err
	}
	snap, err := files()
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	r := New(gw, files, Options{Logger: quiet, PushDir: dir})
	builds = nil

	if _, err := r.RebuildPolicy(context.Background(), "p"); !errors.Is(err, ErrNoPolicy) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous name: %v", err)
	}
	if _, err := r.RebuildPolicy(context.Background(), "c/p"); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("unknown name: %v", err)
	}
	rep, err := r.RebuildPolicy(context.Background(), "q")
	if err != nil || rep.Result != Applied || rep.Source != SourcePlugin {
		t.Fatalf("rebuild q: %+v %v", rep, err)
	}
	if strings.Join(builds, ",") != "a/q:module" {
		t.Errorf("built %v, want a/q only", builds)
	}
	builds = nil
	// A push resolves m.wasm against PushDir; a rebuild then reads the
	// pushed set again.
	os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("module 2"), 0o644)
	rep, err = r.Push(context.Background(), []configs.File{{Name: "PUT /config", Data: []byte(gatewayDoc(port, "") + policyDoc("a", "q"))}}, "*")
	if err != nil || rep.Result != Applied || rep.Source != SourcePush {
		t.Fatalf("push: %+v %v", rep, err)
	}
	if strings.Join(builds, ",") != "a/q:module 2" {
		t.Errorf("push built %v", builds)
	}
	builds = nil
	if _, err := r.RebuildPolicy(context.Background(), "a/p"); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("a/p is not in the pushed set: %v", err)
	}
	if _, err := r.RebuildPolicy(context.Background(), "a/q"); err != nil || strings.Join(builds, ",") != "a/q:module 2" {
		t.Errorf("rebuild after push: %v, built %v", err, builds)
	}
	if _, err := r.Push(context.Background(), nil, "stale"); !errors.Is(err, ErrPrecondition) {
		t.Errorf("stale If-Match: %v", err)
	}
}
