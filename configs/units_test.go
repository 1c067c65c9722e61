package configs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		err  string
	}{
		{name: "seconds", in: "10s", want: 10 * time.Second},
		{name: "a day in seconds", in: "86400s", want: 24 * time.Hour},
		{name: "compound", in: "1m30s", want: 90 * time.Second},
		{name: "milliseconds", in: "250ms", want: 250 * time.Millisecond},
		{name: "zero with unit", in: "0s", want: 0},
		{name: "spaces", in: " 5m ", want: 5 * time.Minute},
		{name: "no unit", in: "10", err: `duration "10" has no unit (write 10s or 10ms)`},
		{name: "no unit, fraction", in: "1.5", err: "has no unit"},
		{name: "words", in: "ten", err: `invalid duration "ten"`},
		{name: "unknown unit", in: "10y", err: `invalid duration "10y"`},
		{name: "negative", in: "-5s", err: `negative duration "-5s"`},
		{name: "empty", in: "", err: "empty duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got.Duration != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int64
		err  string
	}{
		{name: "plain", in: "1024", want: 1024},
		{name: "mebibyte", in: "1Mi", want: 1 << 20},
		{name: "256 mebibytes", in: "256Mi", want: 256 << 20},
		{name: "kibibytes", in: "64Ki", want: 64 << 10},
		{name: "gibibyte", in: "1Gi", want: 1 << 30},
		{name: "decimal kilo", in: "10k", want: 10_000},
		{name: "decimal mega", in: "2M", want: 2_000_000},
		{name: "ten MiB in bytes", in: "10485760", want: 10485760},
		{name: "zero", in: "0", want: 0},
		{name: "fraction", in: "1.5Mi", err: `invalid size "1.5Mi"`},
		{name: "bytes suffix", in: "1Mb", err: `invalid size "1Mb"`},
		{name: "unknown suffix", in: "1Mx", err: `invalid size "1Mx"`},
		{name: "negative", in: "-1", err: `negative size "-1"`},
		{name: "too large", in: "9000000Ti", err: "too large"},
		{name: "empty", in: "", err: "empty size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got.Bytes != tc.want {
				t.Fatalf("ParseSize(%q) = %v, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestDecodeUnits decodes sizes and durations as the YAML holds them: a
// size may be a YAML integer or a string, a duration is a string with a
// unit.
func TestDecodeUnits(t *testing.T) {
	const gateway = "apiVersion: novaedge.io/v1alpha1\nkind: ProxyGateway\nmetadata: {name: g}\n" +
		"spec:\n  listeners: [{name: l, port: 80, protocol: HTTP, maxRequestBodySize: %s}]\n" +
		"  clientLimits: {idleTimeout: %s}\n"
	for _, tc := range []struct {
		name     string
		size     string
		duration string
		bytes    int64
		idle     time.Duration
		err      string
	}{
		{name: "YAML integer", size: "10485760", duration: "10s", bytes: 10485760, idle: 10 * time.Second},
		{name: "quoted integer", size: `"1024"`, duration: `"86400s"`, bytes: 1024, idle: 24 * time.Hour},
		{name: "suffixes", size: "1Mi", duration: "1m30s", bytes: 1 << 20, idle: 90 * time.Second},
		{name: "quoted suffix", size: `"256Mi"`, duration: "250ms", bytes: 256 << 20, idle: 250 * time.Millisecond},
		{name: "hex integer", size: "0x400", duration: "1h", bytes: 1024, idle: time.Hour},
		{name: "fractional size", size: "1.5Mi", duration: "1s", err: `spec.listeners[0].maxRequestBodySize: invalid size "1.5Mi"`},
		{name: "bytes suffix", size: "1Mb", duration: "1s", err: `invalid size "1Mb"`},
		{name: "negative size", size: "-1", duration: "1s", err: `negative size "-1"`},
		{name: "float size", size: "1e6", duration: "1s", err: `invalid size "1e6"`},
		{name: "list size", size: "[1]", duration: "1s", err: "expected size"},
		{name: "duration without unit", size: "1", duration: "10", err: `spec.clientLimits.idleTimeout: duration "10" has no unit`},
		{name: "quoted duration without unit", size: "1", duration: `"10"`, err: `duration "10" has no unit`},
		{name: "duration in words", size: "1", duration: "ten", err: `invalid duration "ten"`},
		{name: "boolean duration", size: "1", duration: "true", err: "expected duration (500ms, 10s, 5m, 1h), got boolean true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(strings.Replace(gateway, "%s", tc.size, 1), "%s", tc.duration, 1)
			s, err := LoadFiles([]File{{Name: "g.yaml", Data: []byte(doc)}})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := s.Gateway("default", "g")
			if got := g.Spec.Listeners[0].MaxRequestBodySize.B(-1); got != tc.bytes {
				t.Errorf("maxRequestBodySize = %d, want %d", got, tc.bytes)
			}
			if got := g.Spec.ClientLimits.IdleTimeout.D(-1); got != tc.idle {
				t.Errorf("idleTimeout = %v, want %v", got, tc.idle)
			}
		})
	}
}

func TestUnitsJSONRoundTrip(t *testing.T) {
	type pair struct {
		D Duration `json:"d"`
		S Size     `json:"s"`
	}
	in := pair{D: Duration{90 * time.Second}, S: Size{1 << 20}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"d":"1m30s","s":1048576}` {
		t.Errorf("marshal: %s", b)
	}
	var out pair
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip: %+v %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"s":"256Mi"}`), &out); err != nil || out.S.Bytes != 256<<20 {
		t.Errorf("size string: %+v %v", out, err)
	}
	for _, bad := range []string{`{"d":"10"}`, `{"d":5}`, `{"s":-1}`, `{"s":"1Mb"}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
