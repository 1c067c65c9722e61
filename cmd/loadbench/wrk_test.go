package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The samples under testdata/ are real wrk 4.1.0 output (see the names).
func TestParseWrk(t *testing.T) {
	tests := []struct {
		file    string
		want    loadResult
		wantErr bool
	}{
		{
			file: "wrk-ok.txt", // 64 connections on the loadbench backend
			want: loadResult{Requests: 89247, RPS: 44501.21, P50: 1200 * time.Microsecond, P99: 6880 * time.Microsecond},
		},
		{
			file: "wrk-micros.txt", // latencies in us
			want: loadResult{Requests: 11954, RPS: 11927.27, P50: 76 * time.Microsecond, P99: 323 * time.Microsecond},
		},
		{
			file: "wrk-non2xx.txt", // every response a 503
			want: loadResult{Requests: 36163, RPS: 32852.79, P50: 177 * time.Microsecond, P99: 4120 * time.Microsecond, BadStatus: 36163},
		},
		{
			file: "wrk-timeout.txt", // --timeout 1s on 1.5s responses
			want: loadResult{Requests: 8, RPS: 2.66, Errors: 8},
		},
		{
			file:    "wrk-connect.txt", // nothing listening: no report at all
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseWrk(string(out))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseWrk = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseWrk =\n  %+v, want\n  %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "292.00us", want: 292 * time.Microsecond},
		{in: "1.48ms", want: 1480 * time.Microsecond},
		{in: "2.01s", want: 2010 * time.Millisecond},
		{in: "1.50m", want: 90 * time.Second},
		{in: "1.00h", want: time.Hour},
		{in: "0.00us", want: 0},
		{in: "12", wantErr: true},
		{in: "abcms", wantErr: true},
		{in: "-1.00ms", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWrkDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseWrkDuration(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzParseWrk feeds arbitrary text to the wrk output parser: it must not
// panic, and what it accepts has non-negative figures.
func FuzzParseWrk(f *testing.F) {
	files, _ := filepath.Glob("testdata/wrk-*.txt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, out string) {
		r, err := parseWrk(out)
		if err != nil {
			return
		}
		if r.P50 < 0 || r.P99 < 0 {
			t.Fatalf("negative latency from %q: %+v", out, r)
		}
	})
}

func TestParseWrkDurationOverflow(t *testing.T) {
	if d, err := parseWrkDuration("1e300h"); err == nil {
		t.Errorf("got %v, want an error", d)
	}
}
