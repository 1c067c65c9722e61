package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/tlsconf/devcert"
)

// TestMain lets a test run this test binary as the real novaedge command
// (NOVAEDGE_TEST_AS_MAIN=1), to test signals on a real process.
func TestMain(m *testing.M) {
	if os.Getenv("NOVAEDGE_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

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

func freeAddr(t testing.TB) string { return gwtest.FreeAddr(t) }

// referenceSecrets writes the reference's TLS secret
// (api-system/api-tls-cert) for api.example.com, valid until notAfter,
// and returns the secrets directory.
func referenceSecrets(t *testing.T, notAfter time.Time) string {
	t.Helper()
	ca, err := devcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Issue(devcert.Leaf{Hosts: []string{"api.example.com"}, NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := devcert.WriteSecret(filepath.Join(dir, "api-system", "api-tls-cert"), c, k); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidateReferenceSecrets(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		out, err := runCmd(context.Background(), "validate", "--skip-modules", "--secrets-dir", t.TempDir(), "../../configs/testdata/reference")
		if !errors.As(err, new(exitError)) || !strings.Contains(out, "gateway.yaml:1: ProxyGateway api-system/api-gateway: spec.listeners[0].tls.secretRef: secret api-system/api-tls-cert:") ||
			!strings.Contains(out, "no such file") || !strings.Contains(out, "1 problem(s)") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("expired is a warning", func(t *testing.T) {
		dir := referenceSecrets(t, time.Now().Add(-time.Hour))
		out, err := runCmd(context.Background(), "validate", "--skip-modules", "--secrets-dir", dir, "../../configs/testdata/reference")
		if err != nil || !strings.Contains(out, "warning: ") || !strings.Contains(out, `certificate "api.example.com" expired on`) {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("skipped", func(t *testing.T) {
		out, err := runCmd(context.Background(), "validate", "--skip-modules", "--skip-secrets", "--secrets-dir", t.TempDir(), "../../configs/testdata/reference")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}

func TestValidateReference(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "") // the reference names no collector
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	out, err := runCmd(context.Background(), "validate", "--secrets-dir", referenceSecrets(t, time.Now().AddDate(1, 0, 0)), "../../configs/testdata/reference")
	if err != nil {
		t.Fatalf("validate failed: %v\n%s", err, out)
	}
	for _, bad := range []string{"HTTPS listener", "sslRedirect", "redirectScheme", "warning"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{
		"ok: 1 VIP(s), 1 gateway(s), 3 backend(s), 3 route(s), 4 policy(ies)",
		"not active yet",
		"ProxyVIP api-gateway-vip",
		"module ok: api-system/api-rate-limit: bundled RateLimit plugin",
		"module ok: api-system/api-jwt-auth: bundled JWT plugin",
		"module ok: api-system/api-security-headers: bundled SecurityHeaders plugin",
		"module ok: api-system/api-cors: bundled CORS plugin",
		"spec.tracing.endpoint: no collector",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, active := range []string{"spec.compression", "spec.cache", "spec.accessLog"} {
		if strings.Contains(out, active) {
			t.Errorf("%s is active, yet listed as not active:\n%s", active, out)
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

// startBackend serves h on 127.0.0.1 until the test ends and returns its
// address.
func startBackend(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	return gwtest.Listen(t, h)
}

// writeResources writes a gateway on listen, routing everything to the
// backend at backendAddr, and returns the directory.
func writeResources(t *testing.T, listen, backendAddr string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(listen)
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
`, port, backendAddr)
	if err := os.WriteFile(filepath.Join(dir, "res.yaml"), []byte(res), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startRun runs `novaedge run --admin admin ARGS…` in-process until the
// test ends, and waits until it is ready.
func startRun(t *testing.T, admin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runCmd(ctx, append([]string{"run", "--admin", admin, "--state-dir", t.TempDir(), "--shutdown-grace", "5s"}, args...)...)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if !waitReady(t, admin) {
		t.Fatal("not ready")
	}
}

// waitReady polls the admin API's /readyz.
func waitReady(t testing.TB, admin string) bool {
	t.Helper()
	return gwtest.Poll(15*time.Second, func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// TestSIGTERMDrains runs novaedge as a real process with a settings file,
// sends SIGTERM while a request is in flight, and expects the request to
// finish and the process to exit 0.
func TestSIGTERMDrains(t *testing.T) {
	entered := make(chan struct{}, 1)
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		time.Sleep(500 * time.Millisecond)
		fmt.Fprint(w, "finished")
	})
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	settings := filepath.Join(t.TempDir(), "novaedge.yaml")
	os.WriteFile(settings, []byte(fmt.Sprintf("admin: %q\nresources: [%q]\nlog-format: json\nshutdown-grace: 10s\n", admin, dir)), 0o644)

	var logs bytes.Buffer
	cmd := exec.Command(os.Args[0], "run", "--settings", settings)
	cmd.Env = append(os.Environ(), "NOVAEDGE_TEST_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	if !waitReady(t, admin) {
		t.Fatalf("not ready; logs:\n%s", logs.String())
	}
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-entered
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request: %q %v", r.body, r.err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"draining"`) {
		t.Errorf("logs are not JSON with a drain line:\n%s", logs.String())
	}
}

// TestRunStatusDrain serves a configuration through `novaedge run`, reads
// it with `novaedge status`, and stops it as SIGTERM would.
func TestRunStatusDrain(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	// Settings through the environment.
	t.Setenv("NOVAEDGE_ADMIN", admin)
	t.Setenv("NOVAEDGE_RESOURCES", dir)
	t.Setenv("NOVAEDGE_WATCH", "false") // the reloads below are the CLI's
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runCmd(ctx, "run", "--shutdown-grace", "5s")
		done <- err
	}()
	if !waitReady(t, admin) {
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

	// novaedge reload: unchanged, then a bad change (rejected, exit 1, the
	// running configuration serves), then a good one.
	if out, err := runCmd(context.Background(), "reload", "--admin", admin); err != nil || !strings.HasPrefix(out, "unchanged in ") {
		t.Errorf("reload unchanged: %v %q", err, out)
	}
	res := filepath.Join(dir, "res.yaml")
	good, _ := os.ReadFile(res)
	os.WriteFile(res, append(append([]byte(nil), good...), "  colour: blue\n"...), 0o644)
	out, err = runCmd(context.Background(), "reload", "--admin", admin)
	if !errors.As(err, new(exitError)) || !strings.Contains(out, "colour") || !strings.Contains(out, "rejected in ") {
		t.Errorf("reload bad: %v %q", err, out)
	}
	if resp, err := http.Get("http://" + listen + "/x"); err != nil || resp.StatusCode != 200 {
		t.Errorf("after a rejected reload: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if out, err := runCmd(context.Background(), "status", "--admin", admin); err != nil ||
		!strings.Contains(out, "CHANGES\n  last: rejected from files") || !strings.Contains(out, "colour") {
		t.Errorf("status after a rejected reload: %v\n%s", err, out)
	}
	os.WriteFile(res, []byte(strings.Replace(string(good), "name: all,", "name: all2,", 1)), 0o644)
	if out, err := runCmd(context.Background(), "reload", "--admin", admin); err != nil || !strings.HasPrefix(out, "applied in ") {
		t.Errorf("reload good: %v %q", err, out)
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

// TestValidateChecksModules: validate loads, pins, compiles and starts
// each Wasm policy's module, and lists every one that fails.
func TestValidateChecksModules(t *testing.T) {
	dir := t.TempDir()
	mods, err := filepath.Abs("../../host/wasm/testdata")
	if err != nil {
		t.Fatal(err)
	}
	doc := func(name, module, extra string) string {
		return fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: %s, namespace: ns}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm:
    module: %s
%s`, name, filepath.Join(mods, module), extra)
	}
	base := `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, port: 8080, protocol: HTTP}]
`
	good := base + doc("good", "tinygo/headers.wasm", "")
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(context.Background(), "validate", dir)
	if err != nil || !strings.Contains(out, "module ok: ns/good") {
		t.Fatalf("err = %v\n%s", err, out)
	}

	bad := base +
		doc("missing", "tinygo/nope.wasm", "") +
		doc("pinned", "tinygo/headers.wasm", "    sha256: \""+strings.Repeat("0", 64)+"\"\n") +
		doc("abi", "abi099.wasm", "") +
		doc("refused", "tinygo/config.wasm", "    config: {header: \"\"}\n") +
		doc("fine", "tinygo/noop.wasm", "")
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(context.Background(), "validate", dir)
	if !errors.As(err, new(exitError)) {
		t.Fatalf("err = %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"ProxyPolicy ns/missing: spec.wasm:", "nope.wasm",
		"ProxyPolicy ns/pinned: spec.wasm:", "sha256",
		"ProxyPolicy ns/abi: spec.wasm:", "proxy_abi_version",
		"ProxyPolicy ns/refused: spec.wasm:", "configuration",
		"4 problem(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err := runCmd(context.Background(), "validate", "--skip-modules", dir); err != nil {
		t.Errorf("--skip-modules: %v\n%s", err, out)
	}
}

// TestWatchSwapsModule: with --watch (the default), replacing a policy's
// module file on disk (an atomic rename, as deploy tools do) swaps the
// module live, and a broken resource file is refused while the running
// configuration keeps serving.
func TestWatchSwapsModule(t *testing.T) {
	backend := startBackend(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Header.Get("X-Wasm")) })
	listen, admin := freeAddr(t), freeAddr(t)
	dir := writeResources(t, listen, backend)
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		tmp := to + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, to); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("../../host/wasm/testdata/tinygo/headers.wasm", filepath.Join(dir, "plugin.wasm"))
	pol := `apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: tag, namespace: demo}
spec:
  type: Wasm
  targetRef: {kind: ProxyGateway, name: gw}
  wasm: {module: plugin.wasm}
`
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	startRun(t, admin, "-c", dir)
	get := func() string {
		resp, err := http.Get("http://" + listen + "/x")
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Sprintf("status %d", resp.StatusCode)
		}
		return string(b)
	}
	waitFor := func(want string) {
		t.Helper()
		got := ""
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = get(); got == want {
				return
			}
		}
		t.Fatalf("backend saw X-Wasm %q, want %q", got, want)
	}
	waitFor("tinygo")
	copyFile("../../host/wasm/testdata/c/headers.wasm", filepath.Join(dir, "plugin.wasm"))
	waitFor("c")

	// A broken resource file: refused, and the module keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol+"  colour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/reload")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"result": "rejected"`) && strings.Contains(string(b), "colour") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken change was not refused")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := get(); got != "c" {
		t.Errorf("after a refused change: %q", got)
	}
}
