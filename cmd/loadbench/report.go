package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

func findLine(rs []lineResult, line string) *lineResult {
	for i := range rs {
		if rs[i].Line == line {
			return &rs[i]
		}
	}
	return nil
}

// printTable prints the results as a table, then the cost of each line's
// policies over its plain line, per request and per policy, from the proxy
// CPU figures.
func printTable(w io.Writer, gen generator, o options, rs []lineResult) {
	fmt.Fprintf(w, "generator: %s\n%s\n", gen.name(), pinning(o))
	fmt.Fprintf(w, "load: %d keep-alive connections, %d-byte responses; per line %v warm-up, then the median of %d rounds of %v\n\n",
		o.conns, o.size, o.warmup, o.rounds, o.duration)
	fmt.Fprintf(w, "%-15s %9s %8s %8s %7s %13s %15s %8s %7s\n",
		"line", "req/s", "p50", "p99", "errors", "proxy µs/req", "backend µs/req", "×direct", "×plain")
	for _, r := range rs {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "%-15s %s\n", r.Line, r.Skipped)
			continue
		case r.Err != "":
			fmt.Fprintf(w, "%-15s FAILED: %s\n", r.Line, firstLine(r.Err))
			continue
		}
		errs := strconv.FormatInt(r.Errors+r.BadStatus, 10)
		if r.Errors+r.BadStatus > 0 {
			errs += " !" // flagged: the figures of this line are suspect
		}
		fmt.Fprintf(w, "%-15s %9.0f %8s %8s %7s %13s %15s %8s %7s\n", r.Line, r.RPS, fmtLatency(r.P50), fmtLatency(r.P99), errs,
			fmtCPU(r.ProxyCPU), fmtCPU(r.BackendCPU), fmtRatio(r.Ratio), fmtRatio(r.BaseRatio))
	}
	fmt.Fprintf(w, "\n+3: CORS, security headers, rate limit per %s (nginx, haproxy: native configuration; reverseproxy: Go middleware; novaedge: the bundled wasm plugins)\n", apiKeyHeader)
	fmt.Fprintf(w, "+4: those and JWT (RS256, one valid token reused)\n")
	fmt.Fprintf(w, "proxy µs/req: CPU time (user + system) of the proxy's processes per request; backend µs/req: the backend's; ×plain: req/s over the line without policies\n")

	var costs []string
	for _, r := range rs {
		if r.Base == "" || !r.measured() || r.ProxyCPU < 0 || r.Policies <= 0 {
			continue
		}
		b := findLine(rs, r.Base)
		if b == nil || !b.measured() || b.ProxyCPU < 0 {
			continue
		}
		added := r.ProxyCPU - b.ProxyCPU
		costs = append(costs, fmt.Sprintf("  %-15s %+7.1f µs/req over %-13s %+6.1f µs per policy (%d)", r.Line, added, r.Base, added/float64(r.Policies), r.Policies))
	}
	// The JWT policy by itself: the four policies over the three.
	p3, p4 := findLine(rs, lineNovaedgePolicies3), findLine(rs, lineNovaedgePolicies4)
	if p3 != nil && p4 != nil && p3.measured() && p4.measured() && p3.ProxyCPU >= 0 && p4.ProxyCPU >= 0 {
		costs = append(costs, fmt.Sprintf("  %-15s %+7.1f µs/req over %-13s (JWT alone)", p4.Line, p4.ProxyCPU-p3.ProxyCPU, p3.Line))
	}
	if len(costs) > 0 {
		fmt.Fprintf(w, "\npolicy cost (proxy CPU per request, over the plain line):\n%s\n", strings.Join(costs, "\n"))
	}
	n, p := findLine(rs, lineNovaedge), findLine(rs, lineReverseProxy)
	if n != nil && p != nil && n.measured() && p.measured() && p.RPS > 0 {
		fmt.Fprintf(w, "\nnovaedge/reverseproxy = %.2f\n", n.RPS/p.RPS)
	}
	for _, r := range rs {
		if r.measured() && r.Errors+r.BadStatus > 0 {
			fmt.Fprintf(w, "! %s: %d transport errors, %d responses not 200\n", r.Line, r.Errors, r.BadStatus)
		}
	}
}

func printJSON(w io.Writer, gen generator, o options, rs []lineResult) {
	type jsonLine struct {
		Line         string  `json:"line"`
		Base         string  `json:"base,omitempty"`
		Policies     int     `json:"policies,omitempty"`
		Rounds       int     `json:"rounds"`
		Requests     int64   `json:"requests"`
		RPS          float64 `json:"rps"`
		P50Ms        float64 `json:"p50_ms"`
		P99Ms        float64 `json:"p99_ms"`
		BadStatus    int64   `json:"bad_status"`
		Errors       int64   `json:"errors"`
		ProxyCPUUs   float64 `json:"proxy_cpu_us_per_request"`   // -1: unknown or no proxy
		BackendCPUUs float64 `json:"backend_cpu_us_per_request"` // -1: unknown
		Ratio        float64 `json:"ratio_vs_direct,omitempty"`
		BaseRatio    float64 `json:"ratio_vs_base,omitempty"`
		Err          string  `json:"error,omitempty"`
		Skipped      string  `json:"skipped,omitempty"`
	}
	out := struct {
		Generator              string     `json:"generator"`
		ClientCPU              int        `json:"client_cpu"` // -1: not pinned
		ServerCPU              int        `json:"server_cpu"`
		Connections            int        `json:"connections"`
		Size                   int        `json:"size"`
		DurationS              float64    `json:"duration_s"`
		Rounds                 int        `json:"rounds"`
		WarmupS                float64    `json:"warmup_s"`
		Lines                  []jsonLine `json:"lines"`
		NovaedgeVsReverseProxy float64    `json:"novaedge_vs_reverseproxy,omitempty"`
	}{Generator: gen.name(), ClientCPU: o.clientCPU, ServerCPU: o.serverCPU, Connections: o.conns, Size: o.size,
		DurationS: o.duration.Seconds(), Rounds: o.rounds, WarmupS: o.warmup.Seconds()}
	for _, r := range rs {
		out.Lines = append(out.Lines, jsonLine{
			Line: r.Line, Base: r.Base, Policies: r.Policies, Rounds: r.Rounds, Requests: r.Requests, RPS: r.RPS,
			P50Ms: ms(r.P50), P99Ms: ms(r.P99), BadStatus: r.BadStatus, Errors: r.Errors,
			ProxyCPUUs: r.ProxyCPU, BackendCPUUs: r.BackendCPU,
			Ratio: r.Ratio, BaseRatio: r.BaseRatio, Err: r.Err, Skipped: r.Skipped,
		})
	}
	n, p := findLine(rs, lineNovaedge), findLine(rs, lineReverseProxy)
	if n != nil && p != nil && n.measured() && p.measured() && p.RPS > 0 {
		out.NovaedgeVsReverseProxy = n.RPS / p.RPS
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// fmtCPU prints a CPU time per request in µs, "-" when unknown.
func fmtCPU(us float64) string {
	if us < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", us)
}

// fmtRatio prints a ratio, "-" when unknown.
func fmtRatio(r float64) string {
	if r <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtLatency prints a latency with 3 significant digits: 412µs, 1.23ms.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", ms(d))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
