package wasm

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStalledProcessKeepsCallbacks freezes a process running plugin
// callbacks with SIGSTOP for 400ms — as CPU throttling by a container's
// CPU limit or a noisy neighbour would — three times, while the callbacks' limit is
// 100ms: no callback times out, since the time the process could not run
// is not the plugin's. The process is a child running this test binary,
// stopped and continued by this test.
func TestStalledProcessKeepsCallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes a child process for 400ms")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStallChild$", "-test.v")
	cmd.Env = append(os.Environ(), "NOVAEDGE_STALL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	next := func(prefix string) string {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child ended before %q:\n%s", prefix, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q from the child:\n%s", prefix, strings.Join(log, "\n"))
			}
		}
	}
	next("busy")
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	res := next("result")
	var calls, failed int
	if _, err := fmt.Sscanf(res, "result calls=%d failed=%d", &calls, &failed); err != nil {
		t.Fatalf("%q: %v", res, err)
	}
	cmd.Wait()
	t.Logf("%d requests, %d failed", calls, failed)
	if failed != 0 || calls == 0 {
		t.Errorf("%d of %d requests failed across the stall:\n%s", failed, calls, strings.Join(log, "\n"))
	}
}

// TestStallChild is the child of TestStalledProcessKeepsCallbacks: 8
// goroutines run requests through a TinyGo plugin for 2.5s and report.
func TestStallChild(t *testing.T) {
	if os.Getenv("NOVAEDGE_STALL_CHILD") != "1" {
		t.Skip("run by TestStalledProcessKeepsCallbacks")
	}
	r, lb := newRuntime(t, Options{})
	p := newPlugin(t, r, "tinygo/headers", PluginOptions{CallTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(2500 * time.Millisecond)
	fmt.Println("busy")
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				calls.Add(1)
				s, err := p.NewStream(ctx, StreamInfo{Request: newRequest("/")})
				if err != nil {
					failed.Add(1)
					continue
				}
				if _, err := s.OnRequestHeaders(ctx, http.Header{}, true); err != nil {
					failed.Add(1)
				}
				if _, err := s.OnResponseHeaders(ctx, 200, http.Header{}, true); err != nil {
					failed.Add(1)
				}
				s.Done()
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		fmt.Println(lb.String())
	}
	fmt.Printf("result calls=%d failed=%d\n", calls.Load(), failed.Load())
}
