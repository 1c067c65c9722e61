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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a process has to exit after SIGTERM before it is
// killed.
const stopGrace = 5 * time.Second

// proc is a child process and its owner: it is started by startProc and
// ends with Stop (or on its own; Wait reports it). Its output goes to a log
// file, whose tail explains a failure.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
	stop    sync.Once
}

// procs owns every process the benchmark starts, to stop them all on any
// path out of it (error, Ctrl-C, end).
type procs struct {
	mu     sync.Mutex
	dir    string // log files go here
	list   []*proc
	closed bool
	// taskset, when set, is the taskset binary that startOn pins processes
	// with; without it startOn starts them unpinned.
	taskset string
}

// startOn is start with the process pinned to CPU cpu (and every thread
// and child it makes, which inherit the affinity), through `taskset -c cpu`:
// taskset sets its own affinity and then execs the command, so the process
// keeps taskset's PID. A negative cpu, or no taskset, starts it unpinned.
func (g *procs) startOn(cpu int, name string, stdout io.Writer, path string, args ...string) (*proc, error) {
	if cpu < 0 || g.taskset == "" {
		return g.start(name, stdout, path, args...)
	}
	return g.start(name, stdout, g.taskset, append([]string{"-c", strconv.Itoa(cpu), path}, args...)...)
}

// start runs path with args as the process name. Its stderr (and its
// stdout, unless stdout is given) go to <dir>/<name>.log.
func (g *procs) start(name string, stdout io.Writer, path string, args ...string) (*proc, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("stopping: not starting " + name)
	}
	logPath := fmt.Sprintf("%s/%s.log", g.dir, name)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() { // owned by p: ends when the process does, which Stop ensures
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	g.list = append(g.list, p)
	return p, nil
}

// stopAll stops every process still running, the last started first, and
// refuses to start more.
func (g *procs) stopAll() {
	g.mu.Lock()
	g.closed = true
	list := g.list
	g.list = nil
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop()
	}
}

// Stop sends SIGTERM to the process, then SIGKILL if it has not exited
// after stopGrace, and returns once it has exited. It may be called more
// than once, and after the process has exited.
func (p *proc) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = p.cmd.Process.Kill()
		}
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			fmt.Fprintf(os.Stderr, "loadbench: %s (pid %d) ignored SIGTERM for %v, killing it\n", p.name, p.cmd.Process.Pid, stopGrace)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Pid returns the process's ID.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the process to exit and returns its error, or stops it
// and returns ctx's error if ctx ends first.
func (p *proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s: %w%s", p.name, p.waitErr, p.logTail())
		}
		return nil
	case <-ctx.Done():
		p.Stop()
		return ctx.Err()
	}
}

// logTail returns the last lines of the process's log, for an error
// message.
func (p *proc) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Sprintf("\n--- last lines of %s:\n  %s", p.logPath, strings.Join(lines, "\n  "))
}

// waitOK polls url until it answers 200, the process exits, ctx ends or
// timeout passes.
func (p *proc) waitOK(ctx context.Context, url string, timeout time.Duration) error {
	return p.waitOKWith(ctx, url, nil, timeout)
}

// waitOKWith is waitOK with request headers ("Name: value").
func (p *proc) waitOKWith(ctx context.Context, url string, headers []string, timeout time.Duration) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before %s answered 200 (%v)%s", p.name, url, p.waitErr, p.logTail())
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s: %s did not answer 200 within %v (last: %s)%s", p.name, url, timeout, last, p.logTail())
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
// (For the processes that must be told their port in advance; a process
// that loses the race fails to start and says so.)
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
