package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs the CLI in-process and returns its output.
func runCmd(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestValidateReference(t *testing.T) {
	out, err := runCmd(context.Background(), "validate", "../../configs/testdata/reference")
	if err != nil {
		t.Fatalf("validate failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok: 1 VIP(s), 1 gateway(s), 3 backend(s), 3 route(s), 4 policy(ies)",
		"not active yet",
		`HTTPS listener "https"`,
		"ProxyVIP api-gateway-vip",
		"policy type RateLimit", "policy type JWT", "policy type CORS", "policy type SecurityHeaders",
		"spec.compression", "spec.cache", "spec.tracing", "spec.accessLog",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	bad := `apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules:
    - backendRefs: [{name: missing}]
      limits: {requestTimeout: "10"}
      colour: blue
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(context.Background(), "validate", dir)
	if !errors.As(err, new(exitError)) {
		t.Fatalf("err = %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"colour", "requestTimeout", "missing", "bad.yaml:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "3 problem(s)") {
		t.Errorf("want 3 problems:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, err := runCmd(context.Background(), "version")
	if err != nil || !strings.HasPrefix(out, "novaedge dev") {
		t.Errorf("%q %v", out, err)
	}
}

func TestRunWithoutResources(t *testing.T) {
	out, err := runCmd(context.Background(), "run")
	if err == nil || !strings.Contains(err.Error(), "no resources") {
		t.Errorf("%q %v", out, err)
	}
}

// TestRunStatusDrain serves a configuration through `novaedge run`, reads
// it with `novaedge status`, and stops it as SIGTERM would.
func TestRunStatusDrain(t *testing.T) {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})}
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go backend.Serve(bl)
	defer backend.Close()

	listen := freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	admin := freeAddr(t)
	dir := t.TempDir()
	res := fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %s, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: be, namespace: demo}
spec:
  endpoints: [{address: %q}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: all, namespace: demo}
spec:
  rules: [{backendRefs: [{name: be}]}]
`, port, bl.Addr().String())
	if err := os.WriteFile(filepath.Join(dir, "res.yaml"), []byte(res), 0o644); err != nil {
		t.Fatal(err)
	}
	// Settings through the environment.
	t.Setenv("NOVAEDGE_ADMIN", admin)
	t.Setenv("NOVAEDGE_RESOURCES", dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runCmd(ctx, "run", "--shutdown-grace", "5s")
		done <- err
	}()
	ready := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ready = true
				break
			}
		}
	}
	if !ready {
		cancel()
		t.Fatalf("not ready: %v", <-done)
	}
	resp, err := http.Get("http://" + listen + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("proxied status %d", resp.StatusCode)
	}
	out, err := runCmd(context.Background(), "status", "--admin", admin)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"GATEWAYS", "demo", "gw", "Serving", "ROUTES", "all", "BACKENDS", "be", "1/1", "POLICIES"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not drain")
	}
}

func TestStatusWithoutGateway(t *testing.T) {
	_, err := runCmd(context.Background(), "status", "--admin", freeAddr(t))
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API") {
		t.Errorf("err = %v", err)
	}
}
