package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/gwtest"
)

// TestPluginReloadAndPush, as an operator would: a module replaced in
// place (no watcher) serves only after `novaedge plugin reload NAME`;
// PUT /config pushes a whole resource set, whose relative module path
// resolves against the resource directory, conditional on If-Match; a set
// whose module does not match its sha256 pin is rejected and the running
// one keeps serving.
func TestPluginReloadAndPush(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Header.Get("X-Wasm")) })
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	tinygo, err := os.ReadFile("../../host/wasm/testdata/tinygo/headers.wasm")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("../../host/wasm/testdata/c/headers.wasm")
	if err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(module, tinygo, 0o644); err != nil {
		t.Fatal(err)
	}
	pol := func(pin string) string {
		return `---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: tag, namespace: demo}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm: {module: plugin.wasm` + pin + `}
`
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol("")), 0o644); err != nil {
		t.Fatal(err)
	}
	startRun(t, admin, "-c", dir, "--watch=false")
	get := func() string {
		t.Helper()
		resp, err := http.Get("http://" + listen + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("got %q", got)
	}

	// Replaced in place, without a watcher: nothing changes until asked.
	if err := os.WriteFile(module, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("the module changed without a reload: %q", got)
	}
	out, err := runCmd(context.Background(), "plugin", "reload", "tag", "--admin", admin)
	if err != nil || !strings.HasPrefix(out, "applied in ") {
		t.Fatalf("plugin reload: %v %q", err, out)
	}
	if got := get(); got != "200 c" {
		t.Fatalf("after plugin reload: %q", got)
	}
	// Rebuilding again with nothing changed still builds (fresh VMs).
	if out, err := runCmd(context.Background(), "plugin", "reload", "demo/tag", "--admin", admin); err != nil || !strings.HasPrefix(out, "applied in ") {
		t.Fatalf("plugin reload demo/tag: %v %q", err, out)
	}
	if out, err := runCmd(context.Background(), "plugin", "reload", "nope", "--admin", admin); err == nil || !strings.Contains(err.Error(), `no such policy: "nope"`) {
		t.Fatalf("plugin reload nope: %v %q", err, out)
	}

	// PUT /config: the resource set as files would have it, with the
	// module pinned to the TinyGo build; plugin.wasm holds the C build.
	res, err := os.ReadFile(filepath.Join(dir, "res.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	etag := func() string {
		t.Helper()
		resp, err := http.Get("http://" + admin + "/config")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	put := func(body, ifMatch string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://"+admin+"/config", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/yaml")
		req.Header.Set("If-Match", ifMatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	before := etag()
	code, body := put(string(res)+pol(", sha256: "+sum(tinygo)), before)
	if code != 422 || !strings.Contains(body, "sha256 is "+sum(c)) {
		t.Fatalf("a wrong pin: %d %s", code, body)
	}
	if got := get(); got != "200 c" || etag() != before {
		t.Fatalf("after a rejected push: %q, ETag %s (was %s)", got, etag(), before)
	}
	if err := os.WriteFile(module, tinygo, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = put(string(res)+pol(", sha256: "+sum(tinygo)), before)
	if code != 200 || !strings.Contains(body, `"result": "applied"`) {
		t.Fatalf("push: %d %s", code, body)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("after a push: %q", got)
	}
	if code, body := put(string(res), before); code != 412 {
		t.Fatalf("a push on a stale ETag: %d %s", code, body)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("after a refused push: %q", got)
	}

	// The plugin of a pushed configuration rebuilds from the pushed set.
	if out, err := runCmd(context.Background(), "plugin", "reload", "tag", "--admin", admin); err != nil || !strings.HasPrefix(out, "applied in ") {
		t.Fatalf("plugin reload after a push: %v %q", err, out)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("after plugin reload of the pushed set: %q", got)
	}
	// And a plugin rebuild that fails leaves the old plugin serving.
	if err := os.WriteFile(module, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(context.Background(), "plugin", "reload", "tag", "--admin", admin)
	if !errors.As(err, new(exitError)) || !strings.Contains(out, "rejected in ") {
		t.Fatalf("plugin reload of a broken module: %v %q", err, out)
	}
	if got := get(); got != "200 tinygo" {
		t.Fatalf("after a failed plugin reload: %q", got)
	}
}

// TestSIGHUPReloads: a real novaedge process, not watching its files,
// applies an edited resource file on SIGHUP, and refuses a broken one on
// the next, serving on.
func TestSIGHUPReloads(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	var logs lockedBuffer
	cmd := exec.Command(os.Args[0], "run", "-c", dir, "--watch=false", "--admin", admin, "--state-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "NOVAEDGE_TEST_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	if !waitReady(t, admin) {
		t.Fatalf("not ready; logs:\n%s", logs.String())
	}
	status := func(path string) int {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	lastResult := func() string {
		resp, err := http.Get("http://" + admin + "/reload")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var rep struct{ Result, Source string }
		json.NewDecoder(resp.Body).Decode(&rep)
		return rep.Result
	}
	res := filepath.Join(dir, "res.yaml")
	good, _ := os.ReadFile(res)
	// Only /only routes now.
	edited := strings.Replace(string(good), "rules: [{backendRefs: [{name: be}]}]", "rules: [{matches: [{path: {value: /only}}], backendRefs: [{name: be}]}]", 1)
	if edited == string(good) {
		t.Fatal("the edit did not apply")
	}
	os.WriteFile(res, []byte(edited), 0o644)
	time.Sleep(300 * time.Millisecond) // not watched: nothing happens
	if status("/x") != 200 {
		t.Fatal("the edit applied without SIGHUP")
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool { return status("/x") == 404 && status("/only") == 200 }, "SIGHUP applies the edit")
	if r := lastResult(); r != "applied" {
		t.Errorf("GET /reload after SIGHUP: %q", r)
	}
	os.WriteFile(res, []byte(edited+"  colour: blue\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool { return lastResult() == "rejected" }, "SIGHUP refuses a broken file")
	if status("/only") != 200 {
		t.Error("a refused change stopped the running configuration")
	}
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	gwtest.WaitFor(t, 15*time.Second, cond, what)
}

// lockedBuffer is a bytes.Buffer safe for a process's output and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
