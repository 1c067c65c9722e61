package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAssemblyScriptPolicy serves a Wasm policy built with the
// AssemblyScript SDK (@solo-io/proxy-runtime 0.1.8, host/wasm/testdata/as)
// with no configuration, end to end: validate accepts it, run loads it (the
// SDK aborted in proxy_on_configure when proxy_get_buffer_bytes answered
// Empty for the empty configuration), and requests through a real listener
// reach a real backend with the policy's header edits both ways; a denied
// request gets the policy's local reply and never reaches the backend.
func TestAssemblyScriptPolicy(t *testing.T) {
	var hits atomic.Int32
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v)
			}
		}
		sort.Strings(lines)
		io.WriteString(w, strings.Join(lines, "\n")+"\n")
	})
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	module, err := os.ReadFile("../../host/wasm/testdata/as/headers.wasm")
	if err != nil {
		t.Fatal(err)
	}
	pol := `apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: as, namespace: demo}
spec:
  type: Wasm
  targetRef: {kind: ProxyRoute, name: all}
  wasm: {module: as.wasm}
`
	for name, data := range map[string][]byte{"as.wasm": module, "policy.yaml": []byte(pol)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runCmd(context.Background(), "validate", "--skip-secrets", dir); err != nil || !strings.Contains(out, "module ok: demo/as") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	startRun(t, admin, "-c", dir, "--watch=false")

	client := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/x", nil)
	req.Header.Set("X-Replace", "old")
	req.Header.Set("X-Remove", "gone")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{"X-Wasm: as\n", "X-Replace: replaced\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("backend did not see %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "X-Remove") {
		t.Errorf("x-remove reached the backend:\n%s", body)
	}
	if got := resp.Header.Get("X-Wasm-Response"); got != "yes" {
		t.Errorf("x-wasm-response = %q", got)
	}

	before := hits.Load()
	req, _ = http.NewRequest(http.MethodGet, "http://"+listen+"/x", nil)
	req.Header.Set("X-Deny", "1")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || string(body) != "denied by wasm" || resp.Header.Get("X-Denied-By") != "wasm" {
		t.Errorf("denied request: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if hits.Load() != before {
		t.Error("a denied request reached the backend")
	}
}
