package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadResult is what a load generator measured on one URL.
type loadResult struct {
	Requests int64         `json:"requests"` // completed responses
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50"` // nanoseconds
	P99      time.Duration `json:"p99"` // nanoseconds
	// BadStatus counts responses that were not 200 (wrk: not 2xx or 3xx).
	BadStatus int64 `json:"bad_status"`
	// Errors counts failed requests: transport errors (wrk: socket errors).
	Errors int64 `json:"errors"`
}

// generator runs load against a URL in a separate process.
type generator interface {
	name() string
	// run sends GET url with the headers ("Name: value") on conns
	// keep-alive connections for d.
	run(ctx context.Context, g *procs, url string, headers []string, conns int, d time.Duration) (loadResult, error)
}

// goGenerator is the built-in generator, used when wrk is not installed:
// loadbench itself re-executed as `loadbench load`.
type goGenerator struct {
	self string
	cpu  int // pinned to this CPU; -1: not pinned
}

func (goGenerator) name() string { return "built-in (loadbench load; install wrk for a faster one)" }

func (gen goGenerator) run(ctx context.Context, g *procs, url string, headers []string, conns int, d time.Duration) (loadResult, error) {
	var out bytes.Buffer
	args := []string{"load", "-c", strconv.Itoa(conns), "-d", d.String()}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	p, err := g.startOn(gen.cpu, "load", &out, gen.self, append(args, url)...)
	if err != nil {
		return loadResult{}, err
	}
	if err := p.Wait(ctx); err != nil {
		return loadResult{}, err
	}
	var r loadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return loadResult{}, fmt.Errorf("load: reading its result %q: %w", out.String(), err)
	}
	return r, nil
}

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	*h = append(*h, v)
	return nil
}

// loadMain is the hidden subcommand `loadbench load -c N -d D [-H
// "Name: value"]… URL`: N goroutines with one keep-alive connection each
// send GET URL with the headers in a loop for D, read every body, and the
// result is printed as JSON (loadResult).
func loadMain(args []string) int {
	fs := flag.NewFlagSet("loadbench load", flag.ExitOnError)
	conns := fs.Int("c", 64, "connections (one goroutine each)")
	d := fs.Duration("d", 10*time.Second, "duration")
	var headers headerFlags
	fs.Var(&headers, "H", `request header "Name: value" (repeatable)`)
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *conns < 1 || *d <= 0 {
		fmt.Fprintln(os.Stderr, "usage: loadbench load [-c N] [-d D] [-H 'Name: value']... URL")
		return 2
	}
	r, err := runLoad(*conns, *d, fs.Arg(0), headers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench load:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

// loadWorker is one connection's loop and its private counters.
type loadWorker struct {
	hist      histogram
	requests  int64
	badStatus int64
	errors    int64
}

func runLoad(conns int, d time.Duration, url string, headers []string) (loadResult, error) {
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		DisableCompression:    true,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	if _, err := http.NewRequest(http.MethodGet, url, nil); err != nil {
		return loadResult{}, err
	}

	workers := make([]loadWorker, conns)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One request per goroutine, sent again and again: it is
			// never modified, but a Request must not be sent twice at once.
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for _, h := range headers {
				name, value, _ := strings.Cut(h, ":")
				req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			buf := make([]byte, 32<<10)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					w.errors++
					continue
				}
				_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil {
					w.errors++
					continue
				}
				w.hist.record(time.Since(t0))
				w.requests++
				if resp.StatusCode != http.StatusOK {
					w.badStatus++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all histogram
	var r loadResult
	for i := range workers {
		w := &workers[i]
		all.merge(&w.hist)
		r.Requests += w.requests
		r.BadStatus += w.badStatus
		r.Errors += w.errors
	}
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	r.P50, r.P99 = all.percentile(0.50), all.percentile(0.99)
	return r, nil
}
