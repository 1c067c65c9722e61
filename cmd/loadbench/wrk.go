package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// wrkGenerator runs wrk (https://github.com/wg/wrk), preferred when on
// PATH: written in C with an event loop, it needs less of the CPU it shares
// with the processes under test than a Go generator does.
type wrkGenerator struct {
	path    string
	threads int
	cpu     int // pinned to this CPU; -1: not pinned
}

func (gen wrkGenerator) name() string { return "wrk (" + gen.path + ")" }

func (gen wrkGenerator) run(ctx context.Context, g *procs, url string, headers []string, conns int, d time.Duration) (loadResult, error) {
	secs := max(1, int(math.Round(d.Seconds()))) // wrk counts whole seconds
	var out bytes.Buffer
	args := []string{
		"-t", strconv.Itoa(min(gen.threads, conns)),
		"-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s",
		"--timeout", "10s",
		"--latency",
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	p, err := g.startOn(gen.cpu, "wrk", &out, gen.path, append(args, url)...)
	if err != nil {
		return loadResult{}, err
	}
	if err := p.Wait(ctx); err != nil {
		return loadResult{}, err
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w; its output:\n%s", err, out.String())
	}
	return r, nil
}

// parseWrk reads the report of `wrk --latency`:
//
//	  Latency Distribution
//	     50%  292.00us
//	     99%    1.48ms
//	  212345 requests in 10.00s, 240.14MB read
//	  Socket errors: connect 0, read 3, write 0, timeout 0
//	  Non-2xx or 3xx responses: 12
//	Requests/sec:  21232.87
func parseWrk(out string) (loadResult, error) {
	var r loadResult
	var haveRPS, haveP50, haveP99, haveReqs bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) == 2 && f[0] == "50%":
			r.P50, err = parseWrkDuration(f[1])
			haveP50 = true
		case len(f) == 2 && f[0] == "99%":
			r.P99, err = parseWrkDuration(f[1])
			haveP99 = true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.Requests, err = strconv.ParseInt(f[0], 10, 64)
			haveReqs = true
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 3, write 0, timeout 0"
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("reading %q", line)
				}
				n, perr := strconv.ParseInt(kv[1], 10, 64)
				if perr != nil {
					return r, fmt.Errorf("reading %q: %w", line, perr)
				}
				r.Errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			r.BadStatus, err = strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
		}
		if err != nil {
			return r, fmt.Errorf("reading %q: %w", line, err)
		}
	}
	if !haveRPS || !haveP50 || !haveP99 || !haveReqs {
		return r, fmt.Errorf("no Requests/sec, request count or 50%%/99%% latency in the output (was --latency given?)")
	}
	return r, nil
}

// parseWrkDuration reads a wrk latency: "292.00us", "1.48ms", "2.01s",
// "1.50m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 || v*float64(u.unit) >= math.MaxInt64 {
				return 0, fmt.Errorf("invalid latency %q", s)
			}
			return time.Duration(math.Round(v * float64(u.unit))), nil
		}
	}
	return 0, fmt.Errorf("invalid latency %q (no unit)", s)
}
