// Command loadbench is the end-to-end benchmark of `make bench`: in one run
// it puts the same keep-alive load on each line and prints a table of
// their throughput, latency and server CPU per request, with ratios:
//
//	direct          the load generator straight to a backend (1 KB JSON);
//	nginx           nginx (Debian) in front of it, plain;
//	nginx+3         … with CORS, security headers and a rate limit per API
//	                key as native nginx configuration;
//	haproxy         haproxy (Debian), plain;
//	haproxy+3       … with the same as native haproxy configuration;
//	reverseproxy    a tuned bare httputil.ReverseProxy: the Go reference;
//	reverseproxy+3  … with the same as Go middleware;
//	novaedge        the gateway (`novaedge run`), one route, no policy;
//	novaedge+3      … with the same three as the bundled wasm plugins
//	                (ProxyPolicy CORS, SecurityHeaders, RateLimit);
//	novaedge+4      … and JWT: the reference's four policies, one valid
//	                RS256 token reused.
//
// and, on request (-only), novaedge+wasm: a header-adding TinyGo test
// plugin on the route.
//
// Every server runs in a process of its own (loadbench re-executes itself
// for the backend and the reverse proxy; nginx and haproxy run with
// configurations it writes, and a peer that is not installed is reported
// as such), and so does the load generator: wrk when it is on PATH, else a
// built-in Go generator. Where the machine has two CPUs or more, the load
// generator is pinned to one and the backend and the proxy under test to
// another (-cpus). Before a policy line is measured, loadbench checks that
// its policies are really applied (checkPolicies). Each line is warmed up,
// then measured -rounds times; the table shows the medians. Server CPU is
// read from /proc/<pid>/stat (the process and its children) before and
// after each round.
//
// Usage:
//
//	go run ./cmd/loadbench [-d 5s] [-rounds 3] [-warmup 2s] [-c 64] [-size 1024]
//	    [-only direct,nginx,…] [-novaedge PATH] [-gen auto|wrk|go] [-cpus auto|off|C,S] [-json]
//
// The figures are only comparable with each other, within one run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
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

// The lines' names.
const (
	lineDirect               = "direct"
	lineNginx                = "nginx"
	lineNginxPolicies        = "nginx+3"
	lineHAProxy              = "haproxy"
	lineHAProxyPolicies      = "haproxy+3"
	lineReverseProxy         = "reverseproxy"
	lineReverseProxyPolicies = "reverseproxy+3"
	lineNovaedge             = "novaedge"
	lineNovaedgePolicies3    = "novaedge+3"
	lineNovaedgePolicies4    = "novaedge+4"
	lineNovaedgeWasm         = "novaedge+wasm" // with a header-adding TinyGo plugin on the route
)

// lineSpec is a line of the table: a plain line, or one that adds
// policies to a plain line (its base), whose cost per policy is reported.
type lineSpec struct {
	name     string
	base     string // the plain line this one adds policies to; "" for a plain line
	policies int    // how many policies it adds to base
	jwt      bool   // it checks the bearer token: a request without one gets 401
}

// allLines are the lines, in the order they run.
var allLines = []lineSpec{
	{name: lineDirect},
	{name: lineNginx},
	{name: lineNginxPolicies, base: lineNginx, policies: headerPolicies},
	{name: lineHAProxy},
	{name: lineHAProxyPolicies, base: lineHAProxy, policies: headerPolicies},
	{name: lineReverseProxy},
	{name: lineReverseProxyPolicies, base: lineReverseProxy, policies: headerPolicies},
	{name: lineNovaedge},
	{name: lineNovaedgePolicies3, base: lineNovaedge, policies: headerPolicies},
	{name: lineNovaedgePolicies4, base: lineNovaedge, policies: headerPolicies + 1, jwt: true},
	{name: lineNovaedgeWasm, base: lineNovaedge, policies: 1},
}

// defaultLines are the lines run without -only: all but novaedge+wasm.
func defaultLines() []string {
	var names []string
	for _, l := range allLines {
		if l.name != lineNovaedgeWasm {
			names = append(names, l.name)
		}
	}
	return names
}

func specOf(name string) (lineSpec, bool) {
	for _, l := range allLines {
		if l.name == name {
			return l, true
		}
	}
	return lineSpec{}, false
}

type options struct {
	duration, warmup time.Duration
	rounds           int
	conns, size      int
	lines            []lineSpec
	novaedge         string // binary; "" = build it
	wasmModule       string // the novaedge+wasm line's plugin
	gen              string // auto, wrk, go
	wrkThreads       int
	clientCPU        int // the load generator's CPU; -1: not pinned
	serverCPU        int // the backend's and the proxy's CPU; -1: not pinned
	json             bool
}

// lineResult is one row of the table.
type lineResult struct {
	Line     string
	Base     string // see lineSpec
	Policies int
	loadResult
	Rounds int // measured rounds; the figures are their medians
	// ProxyCPU and BackendCPU are the CPU time (user + system) of the proxy
	// process (and its children) and of the backend's, per request, in
	// microseconds; negative when unknown (no /proc, no proxy).
	ProxyCPU, BackendCPU float64
	Ratio                float64 // RPS / the direct line's RPS; 0 if unknown
	BaseRatio            float64 // RPS / the base line's RPS; 0 if unknown
	Err                  string  // why the line could not be measured
	Skipped              string  // why the line was not measured, not a failure
}

func benchMain(args []string) int {
	var o options
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "d", 5*time.Second, "measured duration of each round")
	fs.IntVar(&o.rounds, "rounds", 3, "measured rounds per line (the table shows the medians)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each line (0: none)")
	fs.IntVar(&o.conns, "c", 64, "keep-alive connections")
	fs.IntVar(&o.size, "size", 1024, "response body size in bytes")
	only := fs.String("only", strings.Join(defaultLines(), ","), "comma-separated lines to run")
	fs.StringVar(&o.novaedge, "novaedge", "", "novaedge binary (default: go build ./cmd/novaedge into a temporary directory)")
	fs.StringVar(&o.wasmModule, "wasm", "host/wasm/testdata/tinygo/headers.wasm", "plugin of the novaedge+wasm line")
	fs.StringVar(&o.gen, "gen", "auto", "load generator: wrk, go (built-in) or auto (wrk if on PATH)")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 0, "wrk threads (0: 1 when pinned to a CPU, else 2)")
	cpus := fs.String("cpus", "auto", "pinning: CLIENT,SERVER CPUs (the load generator; the backend and the proxy), off, or auto (0,1 with ≥ 2 CPUs and taskset)")
	fs.BoolVar(&o.json, "json", false, "also print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || o.duration <= 0 || o.rounds < 1 || o.warmup < 0 || o.conns < 1 || o.size < 0 || o.wrkThreads < 0 {
		fmt.Fprintln(os.Stderr, "loadbench: want -d > 0, -rounds ≥ 1, -warmup ≥ 0, -c ≥ 1, -size ≥ 0, -wrk-threads ≥ 0 and no arguments")
		return 2
	}
	want := strings.Split(*only, ",")
	for _, l := range want {
		if _, ok := specOf(l); !ok {
			var names []string
			for _, l := range allLines {
				names = append(names, l.name)
			}
			fmt.Fprintf(os.Stderr, "loadbench: -only: unknown line %q (have %s)\n", l, strings.Join(names, ","))
			return 2
		}
	}
	for _, l := range allLines { // always in this order
		if slices.Contains(want, l.name) {
			o.lines = append(o.lines, l)
		}
	}
	var err error
	if o.clientCPU, o.serverCPU, err = parseCPUs(*cpus, runtime.NumCPU()); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		return 2
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals) // a second Ctrl-C kills loadbench at once

	results, gen, err := bench(ctx, &o)
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

// parseCPUs reads -cpus: "off", "auto" (0,1 when the machine has two CPUs
// or more) or "CLIENT,SERVER".
func parseCPUs(s string, ncpu int) (client, server int, err error) {
	switch s {
	case "off":
		return -1, -1, nil
	case "auto":
		if ncpu >= 2 {
			return 0, 1, nil
		}
		return -1, -1, nil
	}
	c, sv, ok := strings.Cut(s, ",")
	if ok {
		client, err1 := strconv.Atoi(c)
		server, err2 := strconv.Atoi(sv)
		if err1 == nil && err2 == nil && client >= 0 && server >= 0 {
			return client, server, nil
		}
	}
	return -1, -1, fmt.Errorf("-cpus %q: want auto, off or CLIENT,SERVER (two CPU numbers)", s)
}

// bench starts the backend, then measures each line in turn, starting its
// proxy before and stopping it after, so that a line never competes with
// an idle proxy of another. A line that fails is reported in its row; an
// error is returned when nothing can be measured or on interruption (with
// the lines measured until then). It turns pinning off (in o) when
// taskset is missing.
func bench(ctx context.Context, o *options) ([]lineResult, generator, error) {
	self, err := os.Executable()
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
	if o.clientCPU >= 0 {
		if g.taskset, err = exec.LookPath("taskset"); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench: taskset not found (util-linux): the processes are not pinned")
			o.clientCPU, o.serverCPU = -1, -1
		}
	}
	if o.wrkThreads == 0 { // wrk's threads share its one CPU when pinned
		o.wrkThreads = 2
		if o.clientCPU >= 0 {
			o.wrkThreads = 1
		}
	}
	gen, err := pickGenerator(*o, self)
	if err != nil {
		return nil, nil, err
	}

	fmt.Fprintf(os.Stderr, "loadbench: generator %s; %s; %d connections, %d-byte responses; per line %v warm-up, %d × %v measured\n",
		gen.name(), pinning(*o), o.conns, o.size, o.warmup, o.rounds, o.duration)

	backendAddr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	backendURL := "http://" + backendAddr + "/"
	backend, err := g.startOn(o.serverCPU, "backend", nil, self, "backend", "-addr", backendAddr, "-size", strconv.Itoa(o.size))
	if err != nil {
		return nil, nil, err
	}
	if err := backend.waitOK(ctx, backendURL, readyTimeout); err != nil {
		return nil, nil, err
	}

	// One token for every line's requests, so that every line gets the same
	// bytes; only novaedge+4 checks it. Its issuer serves the JWKS from
	// this process.
	issuer, err := apigateway.StartIssuer("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer issuer.Close()
	token, err := issuer.Token("bench", 24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	headers := benchHeaders(token)

	var results []lineResult
	for _, spec := range o.lines {
		r := lineResult{Line: spec.name, Base: spec.base, Policies: spec.policies, ProxyCPU: -1, BackendCPU: -1}
		var proxy *proc
		url := ""
		switch spec.name {
		case lineDirect:
			url = backendURL
		case lineNginx, lineNginxPolicies, lineHAProxy, lineHAProxyPolicies:
			peer, _, _ := strings.Cut(spec.name, "+")
			bin, lerr := lookPeer(peer)
			if lerr != nil {
				r.Skipped = peerNotInstalled
				break
			}
			proxy, url, err = startPeer(ctx, g, o.serverCPU, peer, bin, dir, backendAddr, spec.policies > 0, rateLimitPerSec)
		case lineReverseProxy, lineReverseProxyPolicies:
			proxy, url, err = startReverseProxy(ctx, g, o.serverCPU, self, backendURL, spec.policies > 0)
		case lineNovaedge, lineNovaedgePolicies3, lineNovaedgePolicies4, lineNovaedgeWasm:
			module, extra := "", ""
			switch spec.name {
			case lineNovaedgeWasm:
				module, err = filepath.Abs(o.wasmModule)
			case lineNovaedgePolicies3:
				extra = referencePolicies("", false)
			case lineNovaedgePolicies4:
				extra = referencePolicies(issuer.URL, true)
			}
			if err == nil {
				proxy, url, err = startNovaedge(ctx, g, o, dir, backendAddr, module, extra, headers)
			}
		}
		if err == nil && url != "" {
			var m measurement
			m, err = measure(ctx, g, gen, *o, spec, url, headers, proxy, backend)
			r.loadResult, r.Rounds, r.ProxyCPU, r.BackendCPU = m.load, m.rounds, m.proxyCPU, m.backendCPU
		}
		if proxy != nil {
			proxy.Stop()
		}
		if ctx.Err() != nil {
			return results, gen, fmt.Errorf("interrupted during line %s", spec.name)
		}
		if err != nil {
			r.Err = err.Error()
			fmt.Fprintf(os.Stderr, "loadbench: line %s: %v\n", spec.name, err)
			err = nil
		}
		results = append(results, r)
	}
	return results, gen, nil
}

// pinning describes o's pinning for the report.
func pinning(o options) string {
	if o.clientCPU < 0 {
		return "not pinned"
	}
	return fmt.Sprintf("pinned: load generator on CPU %d, backend and proxy on CPU %d", o.clientCPU, o.serverCPU)
}

// setRatios sets each line's throughput ratio to the direct line's and,
// for a line with policies, to its base line's.
func setRatios(rs []lineResult) {
	for i := range rs {
		r := &rs[i]
		if !r.measured() {
			continue
		}
		if d := findLine(rs, lineDirect); d != nil && d.measured() && d.RPS > 0 {
			r.Ratio = r.RPS / d.RPS
		}
		if r.Base != "" {
			if b := findLine(rs, r.Base); b != nil && b.measured() && b.RPS > 0 {
				r.BaseRatio = r.RPS / b.RPS
			}
		}
	}
}

// measured reports whether r has figures.
func (r *lineResult) measured() bool { return r.Err == "" && r.Skipped == "" }

func startReverseProxy(ctx context.Context, g *procs, cpu int, self, backendURL string, policies bool) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"reverseproxy", "-addr", addr, "-target", strings.TrimSuffix(backendURL, "/")}
	if policies {
		args = append(args, "-policies")
	}
	p, err := g.startOn(cpu, "reverseproxy", nil, self, args...)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr + "/"
	if err := p.waitOK(ctx, url, readyTimeout); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, url, nil
}

// measurement is what measure found on one line: the medians of its
// rounds (errors summed).
type measurement struct {
	load                 loadResult
	rounds               int
	proxyCPU, backendCPU float64 // µs per request; negative: unknown
}

// measure checks that url answers the bench request with 200 and the
// expected body (and, on a policy line, that its policies are applied),
// warms it up and measures it o.rounds times, reading the CPU time of the
// proxy (nil on the direct line) and of the backend around each round.
func measure(ctx context.Context, g *procs, gen generator, o options, spec lineSpec, url string, headers []string, proxy, backend *proc) (measurement, error) {
	if err := checkResponse(url, headers, o.size); err != nil {
		return measurement{}, err
	}
	if spec.policies > 0 && spec.name != lineNovaedgeWasm {
		if err := checkPolicies(url, headers, spec.jwt); err != nil {
			return measurement{}, err
		}
	}
	if o.warmup > 0 {
		fmt.Fprintf(os.Stderr, "loadbench: %s: warming up for %v\n", spec.name, o.warmup)
		if _, err := gen.run(ctx, g, url, headers, o.conns, o.warmup); err != nil {
			return measurement{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var rounds []loadResult
	var proxyCPU, backendCPU []float64
	cpuKnown := true
	for i := range o.rounds {
		fmt.Fprintf(os.Stderr, "loadbench: %s: round %d/%d, %v\n", spec.name, i+1, o.rounds, o.duration)
		p0, b0, perr := serverCPU(proxy, backend)
		res, err := gen.run(ctx, g, url, headers, o.conns, o.duration)
		if err != nil {
			return measurement{}, err
		}
		p1, b1, perr2 := serverCPU(proxy, backend)
		rounds = append(rounds, res)
		if perr != nil || perr2 != nil || res.Requests <= 0 {
			if cpuKnown {
				fmt.Fprintf(os.Stderr, "loadbench: %s: no CPU figures: %v\n", spec.name, errors.Join(perr, perr2))
			}
			cpuKnown = false
			continue
		}
		n := float64(res.Requests)
		proxyCPU = append(proxyCPU, float64(p1-p0)/float64(time.Microsecond)/n)
		backendCPU = append(backendCPU, float64(b1-b0)/float64(time.Microsecond)/n)
	}
	m := measurement{load: medianResult(rounds), rounds: len(rounds), proxyCPU: -1, backendCPU: -1}
	if cpuKnown {
		m.backendCPU = median(backendCPU)
		if proxy != nil {
			m.proxyCPU = median(proxyCPU)
		}
	}
	return m, nil
}

// serverCPU reads the CPU time used so far by the proxy (none when nil)
// and the backend.
func serverCPU(proxy, backend *proc) (p, b time.Duration, err error) {
	if proxy != nil {
		if p, err = cpuTime(proxy.Pid()); err != nil {
			return 0, 0, err
		}
	}
	b, err = cpuTime(backend.Pid())
	return p, b, err
}

// medianResult returns the median of each figure of rs (request, error
// and bad status counts are summed).
func medianResult(rs []loadResult) loadResult {
	var out loadResult
	var rps, p50, p99 []float64
	for _, r := range rs {
		out.Requests += r.Requests
		out.BadStatus += r.BadStatus
		out.Errors += r.Errors
		rps = append(rps, r.RPS)
		p50 = append(p50, float64(r.P50))
		p99 = append(p99, float64(r.P99))
	}
	out.RPS = median(rps)
	out.P50, out.P99 = time.Duration(median(p50)), time.Duration(median(p99))
	return out
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none. It sorts xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// checkResponse verifies one response of url: 200, a JSON body of size
// bytes. (Under load, generators only count statuses.)
func checkResponse(url string, headers []string, size int) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := client.Do(req)
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
		return goGenerator{self: self, cpu: o.clientCPU}, nil
	case "wrk", "auto":
		path, err := exec.LookPath("wrk")
		if err == nil {
			return wrkGenerator{path: path, threads: o.wrkThreads, cpu: o.clientCPU}, nil
		}
		if o.gen == "wrk" {
			return nil, fmt.Errorf("-gen wrk: %w (make tools)", err)
		}
		return goGenerator{self: self, cpu: o.clientCPU}, nil
	}
	return nil, fmt.Errorf("-gen %q: want wrk, go or auto", o.gen)
}
