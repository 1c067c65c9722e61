package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	rs := []lineResult{
		{Line: lineDirect, loadResult: loadResult{Requests: 450000, RPS: 45000, P50: 1170 * time.Microsecond, P99: 6530 * time.Microsecond}},
		{Line: lineReverseProxy, loadResult: loadResult{Requests: 126000, RPS: 12600, P50: 4670 * time.Microsecond, P99: 13090 * time.Microsecond}},
		{Line: lineNovaedge, loadResult: loadResult{Requests: 100800, RPS: 10080, P50: 812 * time.Microsecond, P99: 1500 * time.Millisecond, BadStatus: 3, Errors: 1}},
	}
	setRatios(rs)
	o := options{duration: 10 * time.Second, warmup: 2 * time.Second, conns: 64, size: 1024}
	gen := wrkGenerator{path: "/usr/bin/wrk"}

	var table bytes.Buffer
	printTable(&table, gen, o, rs)
	want := `generator: wrk (/usr/bin/wrk)
load: 64 keep-alive connections, 1024-byte responses, 10s per line after 2s warm-up

line                req/s       p50       p99   errors  ratio-vs-direct
direct              45000    1.17ms    6.53ms        0  1.00
reverseproxy        12600    4.67ms   13.09ms        0  0.28
novaedge            10080     812µs     1.50s      4 !  0.22

novaedge/reverseproxy = 0.80
! novaedge: 1 transport errors, 3 responses not 200
`
	if got := table.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}

	var js bytes.Buffer
	printJSON(&js, gen, o, rs)
	var out struct {
		Lines []struct {
			Line  string  `json:"line"`
			RPS   float64 `json:"rps"`
			P99Ms float64 `json:"p99_ms"`
		} `json:"lines"`
		Ratio float64 `json:"novaedge_vs_reverseproxy"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Lines) != 3 || out.Lines[2].P99Ms != 1500 || out.Ratio != 0.8 {
		t.Errorf("JSON = %s", js.String())
	}

	// A failed line shows why, and no ratio involves it.
	rs[2] = lineResult{Line: lineNovaedge, Err: "building novaedge: exit status 1\n--- log"}
	table.Reset()
	printTable(&table, gen, o, rs)
	if s := table.String(); !strings.Contains(s, "novaedge       FAILED: building novaedge: exit status 1\n") || strings.Contains(s, "novaedge/reverseproxy") {
		t.Errorf("table with a failed line:\n%s", s)
	}
}
