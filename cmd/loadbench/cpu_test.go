package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "nginx worker", // a real line, utime 1234 stime 56
			line: "4242 (nginx) S 4241 4241 4241 0 -1 4194624 1085 0 0 0 1234 56 0 0 20 0 1 0 9145 10579968 1353 18446744073709551615 1 1 0 0 0 0 0 16781312 0 0 0 0 17 1 0 0 0 0 0",
			want: procStat{ppid: 4241, ticks: 1290},
		},
		{
			name: "command with spaces and parentheses",
			line: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 0 0",
			want: procStat{ppid: 1, ticks: 30},
		},
		{name: "no parenthesis", line: "7 nginx S 1 2 3", wantErr: true},
		{name: "too few fields", line: "7 (x) S 1 2 3 4 5", wantErr: true},
		{name: "bad utime", line: "7 (x) S 1 7 7 0 -1 0 0 0 0 0 ten 20 0", wantErr: true},
		{name: "bad ppid", line: "7 (x) S one 7 7 0 -1 0 0 0 0 0 10 20 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.line))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseProcStat = %+v, %v; want %+v (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzParseProcStat: any line must be read without a panic.
func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (nginx) S 4241 4241 4241 0 -1 4194624 1085 0 0 0 1234 56 0 0 20 0 1 0 9145"))
	f.Add([]byte("7 (a ) b) R 1 7 7 0 -1 0 0 0 0 0 10 20 0"))
	f.Fuzz(func(t *testing.T, line []byte) {
		_, _ = parseProcStat(line)
	})
}

// cpuTime sums a process and its descendants, and nothing else, in a fake
// /proc: 1 ← 10 (the proxy) ← 11, 12 ← 13; 20 is unrelated.
func TestCPUTimeTree(t *testing.T) {
	root := t.TempDir()
	write := func(pid, ppid int, utime, stime uint64) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%d (p%d) S %d %d %d 0 -1 0 0 0 0 0 %d %d 0 0 20 0 1 0 1 0 0\n", pid, pid, ppid, pid, pid, utime, stime)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 0, 1000, 1000)
	write(10, 1, 100, 50)                                                   // the proxy: 150 ticks
	write(11, 10, 30, 20)                                                   // a worker: 50
	write(12, 10, 5, 5)                                                     // another: 10
	write(13, 12, 1, 1)                                                     // its child: 2
	write(20, 1, 700, 0)                                                    // not ours
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil { // not a pid: ignored
		t.Fatal(err)
	}
	old := procRoot
	procRoot = root
	defer func() { procRoot = old }()

	tests := []struct {
		name string
		pid  int
		want time.Duration
	}{
		{name: "proxy and its descendants", pid: 10, want: 212 * time.Second / userHZ},
		{name: "a leaf", pid: 13, want: 2 * time.Second / userHZ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cpuTime(tt.pid)
			if err != nil || got != tt.want {
				t.Errorf("cpuTime(%d) = %v, %v; want %v", tt.pid, got, err, tt.want)
			}
		})
	}
	if _, err := cpuTime(99); err == nil {
		t.Error("cpuTime of a missing pid: no error")
	}
}

// On the real /proc, this process's CPU time grows as it works.
func TestCPUTimeSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/<pid>/stat is Linux's")
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	for i := 0; ; i++ { // bounded by the safety limit below
		x = x*6364136223846793005 + 1442695040888963407
		if i%1_000_000 == 0 {
			now, err := cpuTime(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if now > before {
				break
			}
			if i > 20_000_000_000 { // a safety limit, not a timing
				t.Fatalf("CPU time stayed at %v (x %d)", now, x)
			}
		}
	}
}
