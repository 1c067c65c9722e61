package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHeaderFlags(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{in: "Origin: https://app.example.com"},
		{in: "X-Empty:"},
		{in: "no colon", wantErr: true},
		{in: ": value", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var h headerFlags
			if err := h.Set(tt.in); (err != nil) != tt.wantErr {
				t.Errorf("Set(%q) = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

// headerChecker counts the requests that carry the bench headers and
// those that do not.
type headerChecker struct {
	ok, bad atomic.Int64
}

func (c *headerChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == allowedOrigin && r.Header.Get(apiKeyHeader) == benchAPIKey && r.Header.Get("Authorization") == "Bearer tok" {
		c.ok.Add(1)
	} else {
		c.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}
}

// Both generators send the bench headers with every request.
func TestGeneratorsSendHeaders(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gens := []struct {
		name string
		gen  func(t *testing.T) generator
	}{
		{name: "go", gen: func(t *testing.T) generator { return goGenerator{self: self, cpu: -1} }},
		{name: "wrk", gen: func(t *testing.T) generator {
			path, err := exec.LookPath("wrk")
			if err != nil {
				t.Skipf("wrk not installed (make tools installs it): %v", err)
			}
			return wrkGenerator{path: path, threads: 1, cpu: -1}
		}},
	}
	for _, tt := range gens {
		t.Run(tt.name, func(t *testing.T) {
			gen := tt.gen(t)
			c := &headerChecker{}
			srv := httptest.NewServer(c)
			defer srv.Close()
			g := &procs{dir: t.TempDir()}
			defer g.stopAll()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety limit only
			defer cancel()
			r, err := gen.run(ctx, g, srv.URL+"/", benchHeaders("tok"), 2, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests == 0 || r.BadStatus != 0 || c.ok.Load() == 0 || c.bad.Load() != 0 {
				t.Errorf("result %+v; server saw %d requests with the headers, %d without", r, c.ok.Load(), c.bad.Load())
			}
		})
	}
}

// TestMain lets the test binary run the hidden subcommands, as loadbench
// does when it re-executes itself (the go generator above).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// startOn pins a process, its threads and its children to the CPU given,
// through taskset, and keeps the process's PID.
func TestStartOnPins(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pinning is Linux's")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skipf("taskset (util-linux) not installed: %v", err)
	}
	g := &procs{dir: t.TempDir(), taskset: taskset}
	defer g.stopAll()
	cpu := runtime.NumCPU() - 1
	var out bytes.Buffer
	// The shell prints its PID and the CPUs its child (grep) may use.
	p, err := g.startOn(cpu, "pinned", &out, "/bin/sh", "-c", `echo $$; grep Cpus_allowed_list /proc/self/status`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety limit only
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q", out.String())
	}
	if lines[0] != strconv.Itoa(p.Pid()) {
		t.Errorf("the shell's PID is %s, the process's %d: taskset did not exec it", lines[0], p.Pid())
	}
	if f := strings.Fields(lines[1]); len(f) != 2 || f[1] != strconv.Itoa(cpu) {
		t.Errorf("child's %q, want Cpus_allowed_list %d", lines[1], cpu)
	}

	// Unpinned (cpu -1), it runs as itself.
	out.Reset()
	if p, err = g.startOn(-1, "unpinned", &out, "/bin/sh", "-c", "echo $$"); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != strconv.Itoa(p.Pid()) {
		t.Errorf("unpinned: PID %s, process %d", got, p.Pid())
	}
}
