package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer written by a running command and read by
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	validateHash = regexp.MustCompile(`; hash ([0-9a-f]{64})\n`)
	appliedHash  = regexp.MustCompile(`"msg":"configuration applied".*"hash":"([0-9a-f]{64})"`)
)

// TestValidateAndRunPrintOneHash: `novaedge validate` and `novaedge run`
// print the same configuration hash for the same files — here a directory
// with a Wasm policy whose module file and a KeyAuth policy whose keys file
// are folded into the hash, named by a relative path for validate and an
// absolute one for run (validate once hashed the YAML alone, and run the
// resolved paths of the files).
func TestValidateAndRunPrintOneHash(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Wasm"))
	})
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	module, err := os.ReadFile("../../host/wasm/testdata/tinygo/headers.wasm")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"plugin.wasm": string(module),
		"keys.txt":    "k-123 alice\n",
		"policy.yaml": `apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: tag, namespace: demo}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm: {module: plugin.wasm}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: keys, namespace: demo}
spec:
  type: KeyAuth
  targetRef: {kind: ProxyRoute, name: all}
  keyAuth: {keysFile: keys.txt}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(filepath.Dir(dir))

	out, err := runCmd(context.Background(), "validate", "--skip-secrets", filepath.Base(dir))
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	m := validateHash.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("validate printed no hash:\n%s", out)
	}
	validated := m[1]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(&logs)
		cmd.SetErr(&logs)
		cmd.SetArgs([]string{"run", "-c", dir, "--admin", admin, "--state-dir", t.TempDir(),
			"--watch=false", "--log-format", "json", "--shutdown-grace", "5s"})
		done <- cmd.ExecuteContext(ctx)
	}()
	if !waitReady(t, admin) {
		cancel()
		t.Fatalf("run not ready: %v\n%s", <-done, logs.String())
	}
	// The policies are live: the module tagged the request and the keys
	// file admitted the key.
	req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/x", nil)
	req.Header.Set("X-API-Key", "k-123")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body.String() != "tinygo" {
		t.Errorf("proxied %d %q", resp.StatusCode, body.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	var served string
	for _, line := range strings.Split(logs.String(), "\n") {
		if m := appliedHash.FindStringSubmatch(line); m != nil {
			served = m[1]
		}
	}
	if served == "" {
		t.Fatalf("run logged no applied hash:\n%s", logs.String())
	}
	if served != validated {
		t.Errorf("validate printed hash %s, run served %s", validated, served)
	}
}
