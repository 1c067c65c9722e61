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

func printTable(w io.Writer, gen generator, o options, rs []lineResult) {
	fmt.Fprintf(w, "generator: %s\nload: %d keep-alive connections, %d-byte responses, %v per line after %v warm-up\n\n",
		gen.name(), o.conns, o.size, o.duration, o.warmup)
	fmt.Fprintf(w, "%-14s %10s %9s %9s %8s  %s\n", "line", "req/s", "p50", "p99", "errors", "ratio-vs-direct")
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(w, "%-14s FAILED: %s\n", r.Line, firstLine(r.Err))
			continue
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		errs := strconv.FormatInt(r.Errors+r.BadStatus, 10)
		if r.Errors+r.BadStatus > 0 {
			errs += " !" // flagged: the figures of this line are suspect
		}
		fmt.Fprintf(w, "%-14s %10.0f %9s %9s %8s  %s\n", r.Line, r.RPS, fmtLatency(r.P50), fmtLatency(r.P99), errs, ratio)
	}
	n, p := findLine(rs, lineNovaedge), findLine(rs, lineReverseProxy)
	if n != nil && p != nil && n.Err == "" && p.Err == "" && p.RPS > 0 {
		fmt.Fprintf(w, "\nnovaedge/reverseproxy = %.2f\n", n.RPS/p.RPS)
	}
	for _, line := range []string{lineNovaedgeWasm, lineNovaedgePolicies} {
		if wl := findLine(rs, line); wl != nil && n != nil && wl.Err == "" && n.Err == "" && n.RPS > 0 && wl.RPS > 0 {
			fmt.Fprintf(w, "%s/novaedge = %.2f (%.1f µs more machine time per request)\n",
				line, wl.RPS/n.RPS, (1/wl.RPS-1/n.RPS)*1e6)
		}
	}
	for _, r := range rs {
		if r.Err == "" && r.Errors+r.BadStatus > 0 {
			fmt.Fprintf(w, "! %s: %d transport errors, %d responses not 200\n", r.Line, r.Errors, r.BadStatus)
		}
	}
}

func printJSON(w io.Writer, gen generator, o options, rs []lineResult) {
	type jsonLine struct {
		Line      string  `json:"line"`
		Requests  int64   `json:"requests"`
		RPS       float64 `json:"rps"`
		P50Ms     float64 `json:"p50_ms"`
		P99Ms     float64 `json:"p99_ms"`
		BadStatus int64   `json:"bad_status"`
		Errors    int64   `json:"errors"`
		Ratio     float64 `json:"ratio_vs_direct,omitempty"`
		Err       string  `json:"error,omitempty"`
	}
	out := struct {
		Generator              string     `json:"generator"`
		Connections            int        `json:"connections"`
		Size                   int        `json:"size"`
		DurationS              float64    `json:"duration_s"`
		WarmupS                float64    `json:"warmup_s"`
		Lines                  []jsonLine `json:"lines"`
		NovaedgeVsReverseProxy float64    `json:"novaedge_vs_reverseproxy,omitempty"`
	}{Generator: gen.name(), Connections: o.conns, Size: o.size, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds()}
	for _, r := range rs {
		out.Lines = append(out.Lines, jsonLine{
			Line: r.Line, Requests: r.Requests, RPS: r.RPS,
			P50Ms: ms(r.P50), P99Ms: ms(r.P99), BadStatus: r.BadStatus, Errors: r.Errors,
			Ratio: r.Ratio, Err: r.Err,
		})
	}
	n, p := findLine(rs, lineNovaedge), findLine(rs, lineReverseProxy)
	if n != nil && p != nil && n.Err == "" && p.Err == "" && p.RPS > 0 {
		out.NovaedgeVsReverseProxy = n.RPS / p.RPS
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
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
