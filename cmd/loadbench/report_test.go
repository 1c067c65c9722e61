package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fakeResults are figures of every kind of row: measured lines with and
// without a base, a line with errors, a peer not installed, a failed line.
func fakeResults() []lineResult {
	lr := func(rps float64, p50, p99 time.Duration) loadResult {
		return loadResult{Requests: int64(rps * 15), RPS: rps, P50: p50, P99: p99}
	}
	return []lineResult{
		{Line: lineDirect, loadResult: lr(45000, 1170*time.Microsecond, 6530*time.Microsecond), Rounds: 3, ProxyCPU: -1, BackendCPU: 20.4},
		{Line: lineNginx, loadResult: lr(22500, 2400*time.Microsecond, 9100*time.Microsecond), Rounds: 3, ProxyCPU: 21.96, BackendCPU: 20.9},
		{Line: lineNginxPolicies, Base: lineNginx, Policies: 3, loadResult: lr(21600, 2500*time.Microsecond, 9300*time.Microsecond), Rounds: 3, ProxyCPU: 24.06, BackendCPU: 21.0},
		{Line: lineHAProxy, Skipped: peerNotInstalled, ProxyCPU: -1, BackendCPU: -1},
		{Line: lineHAProxyPolicies, Base: lineHAProxy, Policies: 3, Skipped: peerNotInstalled, ProxyCPU: -1, BackendCPU: -1},
		{Line: lineReverseProxy, loadResult: lr(10350, 5800*time.Microsecond, 14*time.Millisecond), Rounds: 3, ProxyCPU: 75.0, BackendCPU: 22.3},
		{Line: lineReverseProxyPolicies, Base: lineReverseProxy, Policies: 3, Err: "reverseproxy: exited\n--- log", ProxyCPU: -1, BackendCPU: -1},
		{Line: lineNovaedge, loadResult: lr(10800, 812*time.Microsecond, 1500*time.Millisecond), Rounds: 3, ProxyCPU: 71.0, BackendCPU: 22.0},
		{Line: lineNovaedgePolicies3, Base: lineNovaedge, Policies: 3, loadResult: loadResult{Requests: 67500, RPS: 4500, P50: 13 * time.Millisecond, P99: 31 * time.Millisecond, BadStatus: 3, Errors: 1}, Rounds: 3, ProxyCPU: 188.0, BackendCPU: 23.1},
		{Line: lineNovaedgePolicies4, Base: lineNovaedge, Policies: 4, loadResult: lr(3150, 19*time.Millisecond, 40*time.Millisecond), Rounds: 3, ProxyCPU: 281.0, BackendCPU: 23.5},
	}
}

// The table's format, with fake figures, is the golden file
// testdata/table.golden (go test -run TestReport -update rewrites it).
func TestReport(t *testing.T) {
	rs := fakeResults()
	setRatios(rs)
	o := options{duration: 5 * time.Second, rounds: 3, warmup: 2 * time.Second, conns: 64, size: 1024, clientCPU: 0, serverCPU: 1}
	gen := wrkGenerator{path: "/usr/bin/wrk", threads: 1, cpu: 0}

	var table bytes.Buffer
	printTable(&table, gen, o, rs)
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, table.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := table.String(); got != string(want) {
		t.Errorf("table:\n%s\nwant (%s):\n%s", got, golden, want)
	}

	var js bytes.Buffer
	printJSON(&js, gen, o, rs)
	var out struct {
		ServerCPU int `json:"server_cpu"`
		Lines     []struct {
			Line      string  `json:"line"`
			RPS       float64 `json:"rps"`
			P99Ms     float64 `json:"p99_ms"`
			ProxyCPU  float64 `json:"proxy_cpu_us_per_request"`
			BaseRatio float64 `json:"ratio_vs_base"`
			Skipped   string  `json:"skipped"`
		} `json:"lines"`
		Ratio float64 `json:"novaedge_vs_reverseproxy"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Lines) != len(rs) || out.ServerCPU != 1 || out.Lines[7].P99Ms != 1500 || out.Lines[9].ProxyCPU != 281 ||
		out.Lines[9].BaseRatio != 3150.0/10800 || out.Lines[3].Skipped != peerNotInstalled || out.Ratio != 10800.0/10350 {
		t.Errorf("JSON = %s", js.String())
	}
}

func TestSetRatios(t *testing.T) {
	rs := fakeResults()
	setRatios(rs)
	tests := []struct {
		line            string
		ratio, baseRate float64
	}{
		{line: lineDirect, ratio: 1},
		{line: lineNginx, ratio: 0.5},
		{line: lineNginxPolicies, ratio: 0.48, baseRate: 0.96},
		{line: lineHAProxyPolicies},      // not installed: no ratio
		{line: lineReverseProxyPolicies}, // failed: no ratio
		{line: lineNovaedgePolicies4, ratio: 0.07, baseRate: 3150.0 / 10800},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			r := findLine(rs, tt.line)
			if r.Ratio != tt.ratio || r.BaseRatio != tt.baseRate {
				t.Errorf("ratio %v, base ratio %v; want %v, %v", r.Ratio, r.BaseRatio, tt.ratio, tt.baseRate)
			}
		})
	}
	// Without a measured direct line, no ratio to it; base ratios stay.
	rs = fakeResults()[1:3]
	setRatios(rs)
	if rs[0].Ratio != 0 || rs[1].BaseRatio != 0.96 {
		t.Errorf("without direct: %+v", rs)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{name: "none", in: nil, want: 0},
		{name: "one", in: []float64{3}, want: 3},
		{name: "odd", in: []float64{9, 1, 5}, want: 5},
		{name: "even", in: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("median = %v, want %v", got, tt.want)
			}
		})
	}
	rs := []loadResult{
		{Requests: 10, RPS: 100, P50: 3, P99: 30, Errors: 1},
		{Requests: 20, RPS: 300, P50: 1, P99: 90, BadStatus: 2},
		{Requests: 30, RPS: 200, P50: 2, P99: 60},
	}
	want := loadResult{Requests: 60, RPS: 200, P50: 2, P99: 60, Errors: 1, BadStatus: 2}
	if got := medianResult(rs); got != want {
		t.Errorf("medianResult = %+v, want %+v", got, want)
	}
}

func TestParseCPUs(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		ncpu           int
		client, server int
		wantErr        bool
	}{
		{name: "auto with two", in: "auto", ncpu: 2, client: 0, server: 1},
		{name: "auto with one", in: "auto", ncpu: 1, client: -1, server: -1},
		{name: "off", in: "off", ncpu: 8, client: -1, server: -1},
		{name: "explicit", in: "2,3", ncpu: 4, client: 2, server: 3},
		{name: "one number", in: "1", ncpu: 4, client: -1, server: -1, wantErr: true},
		{name: "negative", in: "-1,0", ncpu: 4, client: -1, server: -1, wantErr: true},
		{name: "words", in: "a,b", ncpu: 4, client: -1, server: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s, err := parseCPUs(tt.in, tt.ncpu)
			if c != tt.client || s != tt.server || (err != nil) != tt.wantErr {
				t.Errorf("parseCPUs(%q, %d) = %d, %d, %v; want %d, %d, error %v", tt.in, tt.ncpu, c, s, err, tt.client, tt.server, tt.wantErr)
			}
		})
	}
}
