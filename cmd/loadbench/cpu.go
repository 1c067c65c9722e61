package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: the kernel's
// USER_HZ, which is 100 on every Linux architecture Go runs on
// (sysconf(_SC_CLK_TCK) reports the same constant).
const userHZ = 100

// procRoot is where the process tables are read; tests point it at a fake
// tree.
var procRoot = "/proc"

// procStat is what cpuTime needs of one /proc/<pid>/stat line.
type procStat struct {
	ppid  int
	ticks uint64 // utime + stime, in 1/userHZ s
}

// parseProcStat reads a /proc/<pid>/stat line: "pid (comm) state ppid …",
// where comm may hold spaces and parentheses (so the fields are counted
// from the last ')'), utime and stime being fields 14 and 15.
func parseProcStat(line []byte) (procStat, error) {
	i := bytes.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat line %q: no ')'", line)
	}
	f := bytes.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat line %q: %d fields after the command, want ≥ 13", line, len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: ppid: %w", line, err)
	}
	utime, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: utime: %w", line, err)
	}
	stime, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: stime: %w", line, err)
	}
	return procStat{ppid: ppid, ticks: utime + stime}, nil
}

// cpuTime returns the CPU time (user + system) used so far by the process
// pid and all its living descendants (nginx's workers are children of its
// master). It reads every /proc/<n>/stat once, outside the measured
// window: a few milliseconds.
func cpuTime(pid int) (time.Duration, error) {
	self, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	root, err := parseProcStat(self)
	if err != nil {
		return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	type child struct {
		pid int
		procStat
	}
	children := map[int][]child{} // by parent
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == pid {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseProcStat(data)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], child{pid: n, procStat: st})
	}
	ticks := root.ticks
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 { // bounded: every pid is queued at most once
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if seen[c.pid] {
				continue
			}
			seen[c.pid] = true
			ticks += c.ticks
			queue = append(queue, c.pid)
		}
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
