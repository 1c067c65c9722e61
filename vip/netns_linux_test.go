package vip

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// The namespace tests build their own network namespaces (named
// "ne<role><pid>", so that parallel runs never collide), veth pairs and
// addresses from the documentation ranges (198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), and remove them in t.Cleanup. The code under test runs in
// a child process of the test binary started with `ip netns exec <node>`,
// so that every thread of it, and every socket it opens, is in the node's
// namespace, as a replica's would be.

// childEnv names, in a child process, the test it runs; nsEnv carries the
// namespace names as role=name,role=name.
const (
	childEnv = "NOVAEDGE_VIP_TEST_CHILD"
	nsEnv    = "NOVAEDGE_VIP_TEST_NS"
)

// isChild reports whether this process is the child of t, started by
// runInNetns.
func isChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// childNS returns the name of the namespace of the role, in a child.
func childNS(t *testing.T, role string) string {
	t.Helper()
	for _, kv := range strings.Split(os.Getenv(nsEnv), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == role {
			return v
		}
	}
	t.Fatalf("no namespace for role %q in %s=%q", role, nsEnv, os.Getenv(nsEnv))
	return ""
}

// needNetns skips t unless it runs as root and `ip netns add` works.
func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespace tests need root (ip netns add)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2's ip command is not installed")
	}
}

// addNetns creates the namespace "ne<role><pid>" and removes it in
// t.Cleanup; it skips t if `ip netns add` fails.
func addNetns(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("ne%s%d", role, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipped: ip netns add %s failed (no network namespaces here?): %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// ip runs `ip args...` and fails t if it fails.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs `ip netns exec ns args...` and fails t if it fails.
func inNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return ip(t, append([]string{"netns", "exec", ns}, args...)...)
}

// runInNetns runs t's test function again in a child process inside the
// namespace ns, with the namespaces of roles known to it (childNS), and
// fails t if the child fails. The child's output is logged.
func runInNetns(t *testing.T, ns string, roles map[string]string) {
	t.Helper()
	var kv []string
	for role, name := range roles {
		kv = append(kv, role+"="+name)
	}
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v"}
	if d := testTimeout(); d != "" {
		args = append(args, "-test.timeout="+d)
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), nsEnv+"="+strings.Join(kv, ","))
	out, err := cmd.CombinedOutput()
	t.Logf("child in %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("child in %s: %v", ns, err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child in %s did not run %s", ns, t.Name())
	}
}

// testTimeout is the -test.timeout of this process, "" if none.
func testTimeout() string {
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-test.timeout="); ok {
			return v
		}
	}
	return ""
}

// inNetns runs fn on a thread switched to the namespace ns (a child's
// sockets opened in fn stay in ns), and switches back.
func inNetns(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", ns, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and ends with the goroutine: it must
		// not run anything else in ns.
		t.Errorf("leaving %s: %v", ns, err)
		return ferr
	}
	runtime.UnlockOSThread()
	return ferr
}
