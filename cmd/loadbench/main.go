// Command loadbench is the end-to-end benchmark of `make bench`: in one run
// it puts the same keep-alive load on three lines and prints their
// throughput and latency side by side:
//
//	direct        the load generator straight to a backend (1 KB JSON);
//	reverseproxy  through a tuned bare httputil.ReverseProxy: the reference;
//	novaedge      through the gateway (`novaedge run`).
//
// Every server runs in a process of its own (loadbench re-executes itself
// for the backend and the reverse proxy), and so does the load generator:
// wrk when it is on PATH, else a built-in Go generator.
//
// Usage:
//
//	go run ./cmd/loadbench [-d 10s] [-warmup 2s] [-c 64] [-size 1024]
//	    [-only direct,reverseproxy,novaedge] [-novaedge PATH] [-gen auto|wrk|go] [-json]
//
// The figures are only comparable with each other: all processes share the
// machine's cores.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
)

func main() {
	if len(os.Args) > 1 {
		// Hidden subcommands: the processes loadbench starts.
		switch os.Args[1] {
		case "backend":
			os.Exit(backendMain(os.Args[2:]))
		case "reverseproxy":
			os.Exit(reverseproxyMain(os.Args[2:]))
		case "load":
			os.Exit(loadMain(os.Args[2:]))
		}
	}
	os.Exit(benchMain(os.Args[1:]))
}

// The lines, in the order they run.
const (
	lineDirect       = "direct"
	lineReverseProxy = "reverseproxy"
	lineNovaedge     = "novaedge"
	lineNovaedgeWasm = "novaedge+wasm" // with a header-adding TinyGo plugin on the route
	// with the reference's four policies (JWT, rate limit, CORS, security headers)
	lineNovaedgePolicies = "novaedge+policies"
)

var allLines = []string{lineDirect, lineReverseProxy, lineNovaedge, lineNovaedgeWasm, lineNovaedgePolicies}

type options struct {
	duration, warmup time.Duration
	conns, size      int
	lines            []string
	novaedge         string // binary; "" = build it
	wasmModule       string // the novaedge+wasm line's plugin
	gen              string // auto, wrk, go
	wrkThreads       int
	json             bool
}

// lineResult is one row of the table.
type lineResult struct {
	Line string
	loadResult
	Ratio float64 // RPS / the direct line's RPS; 0 if unknown
	Err   string  // why the line could not be measured
}

func benchMain(args []string) int {
	var o options
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each line")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each line (0: none)")
	fs.IntVar(&o.conns, "c", 64, "keep-alive connections")
	fs.IntVar(&o.size, "size", 1024, "response body size in bytes")
	only := fs.String("only", strings.Join(allLines, ","), "comma-separated lines to run")
	fs.StringVar(&o.novaedge, "novaedge", "", "novaedge binary (default: go build ./cmd/novaedge into a temporary directory)")
	fs.StringVar(&o.wasmModule, "wasm", "host/wasm/testdata/tinygo/headers.wasm", "plugin of the novaedge+wasm line")
	fs.StringVar(&o.gen, "gen", "auto", "load generator: wrk, go (built-in) or auto (wrk if on PATH)")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk threads")
	fs.BoolVar(&o.json, "json", false, "also print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || o.duration <= 0 || o.warmup < 0 || o.conns < 1 || o.size < 0 || o.wrkThreads < 1 {
		fmt.Fprintln(os.Stderr, "loadbench: want -d > 0, -warmup ≥ 0, -c ≥ 1, -size ≥ 0, -wrk-threads ≥ 1 and no arguments")
		return 2
	}
	want := strings.Split(*only, ",")
	for _, l := range want {
		if !slices.Contains(allLines, l) {
			fmt.Fprintf(os.Stderr, "loadbench: -only: unknown line %q (have %s)\n", l, strings.Join(allLines, ","))
			return 2
		}
	}
	for _, l := range allLines { // always in this order
		if slices.Contains(want, l) {
			o.lines = append(o.lines, l)
		}
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals) // a second Ctrl-C kills loadbench at once

	results, gen, err := bench(ctx, o)
	if len(results) > 0 { // all lines, or those measured before an interruption
		setRatios(results)
		printTable(os.Stdout, gen, o, results)
		if o.json {
			printJSON(os.Stdout, gen, o, results)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	for _, r := range results {
		if r.Err != "" || r.Errors+r.BadStatus > 0 {
			return 1
		}
	}
	return 0
}

// bench starts the backend, then measures each line in turn, starting its
// proxy before and stopping it after, so that a line never competes with
// an idle proxy of another. A line that fails is reported in its row; an
// error is returned when nothing can be measured or on interruption (with
// the lines measured until then).
func bench(ctx context.Context, o options) ([]lineResult, generator, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	gen, err := pickGenerator(o, self)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	g := &procs{dir: dir}
	defer g.stopAll()

	fmt.Fprintf(os.Stderr, "loadbench: generator %s; %d connections, %d-byte responses, %v per line after %v warm-up\n",
		gen.name(), o.conns, o.size, o.duration, o.warmup)

	backendAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	backendURL := "http://" + backendAddr + "/"
	backend, err := g.start("backend", nil, self, "backend", "-addr", backendAddr, "-size", strconv.Itoa(o.size))
	if err != nil {
		return nil, nil, err
	}
	if err := backend.waitOK(ctx, backendURL, readyTimeout); err != nil {
		return nil, nil, err
	}

	var results []lineResult
	for _, line := range o.lines {
		r := lineResult{Line: line}
		var res loadResult
		switch line {
		case lineDirect:
			res, err = measure(ctx, g, gen, o, line, backendURL)
		case lineReverseProxy:
			res, err = measureReverseProxy(ctx, g, gen, o, self, backendURL)
		case lineNovaedge:
			res, err = measureNovaedge(ctx, g, gen, o, dir, backendAddr, line, "", "", "")
		case lineNovaedgeWasm:
			var module string
			if module, err = filepath.Abs(o.wasmModule); err == nil {
				res, err = measureNovaedge(ctx, g, gen, o, dir, backendAddr, line, module, "", "")
			}
		case lineNovaedgePolicies:
			var is *apigateway.Issuer
			if is, err = apigateway.StartIssuer("127.0.0.1:0"); err == nil {
				var tok string
				if tok, err = is.Token("bench", time.Hour); err == nil {
					res, err = measureNovaedge(ctx, g, gen, o, dir, backendAddr, line, "", referencePolicies(is.URL), "?access_token="+tok)
				}
				is.Close()
			}
		}
		if ctx.Err() != nil {
			return results, gen, fmt.Errorf("interrupted during line %s", line)
		}
		if err != nil {
			r.Err = err.Error()
			fmt.Fprintf(os.Stderr, "loadbench: line %s: %v\n", line, err)
		}
		r.loadResult = res
		results = append(results, r)
	}
	return results, gen, nil
}

// setRatios sets each line's throughput ratio to the direct line's.
func setRatios(rs []lineResult) {
	d := findLine(rs, lineDirect)
	if d == nil || d.Err != "" || d.RPS <= 0 {
		return
	}
	for i := range rs {
		if rs[i].Err == "" {
			rs[i].Ratio = rs[i].RPS / d.RPS
		}
	}
}

func measureReverseProxy(ctx context.Context, g *procs, gen generator, o options, self, backendURL string) (loadResult, error) {
	addr, err := freeAddr()
	if err != nil {
		return loadResult{}, err
	}
	p, err := g.start("reverseproxy", nil, self, "reverseproxy", "-addr", addr, "-target", strings.TrimSuffix(backendURL, "/"))
	if err != nil {
		return loadResult{}, err
	}
	defer p.Stop()
	url := "http://" + addr + "/"
	if err := p.waitOK(ctx, url, readyTimeout); err != nil {
		return loadResult{}, err
	}
	return measure(ctx, g, gen, o, lineReverseProxy, url)
}

func measureNovaedge(ctx context.Context, g *procs, gen generator, o options, dir, backendAddr, line, module, extra, query string) (loadResult, error) {
	bin := o.novaedge
	if bin == "" {
		fmt.Fprintln(os.Stderr, "loadbench: building ./cmd/novaedge")
		var err error
		if bin, err = buildNovaedge(ctx, g, dir); err != nil {
			return loadResult{}, err
		}
	}
	p, url, err := startNovaedge(ctx, g, bin, dir, backendAddr, module, extra, query)
	if err != nil {
		return loadResult{}, err
	}
	defer p.Stop()
	return measure(ctx, g, gen, o, line, url)
}

// measure checks that url answers 200 with the expected body, warms it up
// and measures it.
func measure(ctx context.Context, g *procs, gen generator, o options, line, url string) (loadResult, error) {
	if err := checkResponse(url, o.size); err != nil {
		return loadResult{}, err
	}
	if o.warmup > 0 {
		fmt.Fprintf(os.Stderr, "loadbench: %s: warming up for %v\n", line, o.warmup)
		if _, err := gen.run(ctx, g, url, o.conns, o.warmup); err != nil {
			return loadResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	fmt.Fprintf(os.Stderr, "loadbench: %s: measuring for %v\n", line, o.duration)
	return gen.run(ctx, g, url, o.conns, o.duration)
}

// checkResponse verifies one response of url: 200, a JSON body of size
// bytes. (Under load, generators only count statuses.)
func checkResponse(url string, size int) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %s, want 200 OK", url, resp.Status)
	}
	if len(body) != size {
		return fmt.Errorf("GET %s: %d-byte body, want %d", url, len(body), size)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	return nil
}

func pickGenerator(o options, self string) (generator, error) {
	switch o.gen {
	case "go":
		return goGenerator{self: self}, nil
	case "wrk", "auto":
		path, err := exec.LookPath("wrk")
		if err == nil {
			return wrkGenerator{path: path, threads: o.wrkThreads}, nil
		}
		if o.gen == "wrk" {
			return nil, fmt.Errorf("-gen wrk: %w (apt-get install wrk)", err)
		}
		return goGenerator{self: self}, nil
	}
	return nil, fmt.Errorf("-gen %q: want wrk, go or auto", o.gen)
}
