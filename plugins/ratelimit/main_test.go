package main

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/novaedge/novaedge/sdk/sdktest"
)

const reference = `{"requestsPerSecond": 100, "burst": 200, "key": "header:X-API-Key"}`

// fakeBuckets is the host function with counting buckets: a key gets
// burst requests, then none. It records the keys it saw.
type fakeBuckets struct {
	used map[string]uint64
	keys []string
	args [][]byte
}

func newFake() *fakeBuckets { return &fakeBuckets{used: map[string]uint64{}} }

func (f *fakeBuckets) take(arg []byte) []byte {
	f.args = append(f.args, append([]byte(nil), arg...))
	if arg[0] != 1 {
		panic("version")
	}
	b := arg[1:]
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			panic("varint")
		}
		v[i], b = x, b[n:]
	}
	burst, cost := v[1], v[2]
	key := string(b)
	f.keys = append(f.keys, key)
	out := []byte{0}
	var remaining, retry uint64
	if f.used[key]+cost <= burst {
		f.used[key] += cost
		out[0] = 1
	} else {
		retry = 1001 // rounds up to 2 s
	}
	remaining = burst - f.used[key]
	out = binary.AppendUvarint(out, remaining)
	out = binary.AppendUvarint(out, retry)
	return binary.AppendUvarint(out, 2500) // reset: 3 s
}

func (f *fakeBuckets) last() string {
	if len(f.keys) == 0 {
		return ""
	}
	return f.keys[len(f.keys)-1]
}

func startFake(t *testing.T, config string, opts ...sdktest.Option) (*sdktest.Host, *fakeBuckets) {
	t.Helper()
	f := newFake()
	h, err := sdktest.Start(t, plugin, config, append(opts, sdktest.Foreign(hostTake, f.take))...)
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		config, err string // err: "" valid, else part of the refusal
	}{
		{reference, ""},
		{`{"requestsPerSecond": 0.5}`, ""},
		{`{"requestsPerSecond": 10, "key": "claim:sub", "onMissingKey": "reject"}`, ""},
		{`{"requestsPerSecond": 10, "key": "route"}`, ""},
		{`{"requestsPerSecond": 10, "key": "global", "onMissingKey": "ip"}`, ""},
		{`{}`, "requestsPerSecond"},
		{`{"requestsPerSecond": -1}`, "requestsPerSecond"},
		{`{"requestsPerSecond": 1e10}`, "requestsPerSecond"},
		{`{"requestsPerSecond": 1, "burst": -1}`, "burst"},
		{`{"requestsPerSecond": 1, "key": "header:"}`, "header:NAME"},
		{`{"requestsPerSecond": 1, "key": "ip:1"}`, "takes no argument"},
		{`{"requestsPerSecond": 1, "key": "cookie:a"}`, "want ip, route"},
		{`{"requestsPerSecond": 1, "onMissingKey": "allow"}`, "onMissingKey"},
		{`{"requestsPerSecond": 1, "rate": 2}`, "unknown field"},
	} {
		t.Run(tc.config, func(t *testing.T) {
			_, err := sdktest.Start(t, plugin, tc.config, sdktest.Foreign(hostTake, newFake().take))
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want one with %q", err, tc.err)
			}
		})
	}
}

// TestKeys checks the bucket key each key kind sends to the host, and what
// a request without its key gets.
func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		req          sdktest.Request
		claim        string // the jwt_claims.sub property, if set
		key          string // "" : rejected with 401
		missing      string // the 401's message
	}{
		{"header", reference, sdktest.Request{Headers: [][2]string{{"x-api-key", "k1"}}}, "", "h:k1", ""},
		{"header name case-insensitive", `{"requestsPerSecond": 1, "key": "header:x-api-KEY"}`,
			sdktest.Request{Headers: [][2]string{{"X-Api-Key", "k2"}}}, "", "h:k2", ""},
		{"missing header falls back to ip", reference, sdktest.Request{ClientAddr: "192.0.2.7:5555"}, "", "ip:192.0.2.7", ""},
		{"missing header rejected", `{"requestsPerSecond": 1, "key": "header:X-API-Key", "onMissingKey": "reject"}`,
			sdktest.Request{}, "", "", "rate limit: missing header x-api-key"},
		{"ip", `{"requestsPerSecond": 1}`, sdktest.Request{ClientAddr: "198.51.100.1:80"}, "", "ip:198.51.100.1", ""},
		{"ipv6", `{"requestsPerSecond": 1, "key": "ip"}`, sdktest.Request{ClientAddr: "[2001:db8::1]:443"}, "", "ip:2001:db8::1", ""},
		{"claim", `{"requestsPerSecond": 1, "key": "claim:sub"}`, sdktest.Request{}, "alice", "c:alice", ""},
		{"missing claim rejected", `{"requestsPerSecond": 1, "key": "claim:tenant", "onMissingKey": "reject"}`,
			sdktest.Request{}, "alice", "", "rate limit: missing claim tenant"},
		{"missing claim falls back to ip", `{"requestsPerSecond": 1, "key": "claim:tenant"}`,
			sdktest.Request{ClientAddr: "192.0.2.9:1"}, "", "ip:192.0.2.9", ""},
		{"route", `{"requestsPerSecond": 1, "key": "route"}`, sdktest.Request{}, "", "r:t/r", ""},
		{"global", `{"requestsPerSecond": 1, "key": "global"}`, sdktest.Request{}, "", "g", ""},
		{"reject does not apply to ip", `{"requestsPerSecond": 1, "onMissingKey": "reject"}`,
			sdktest.Request{ClientAddr: "192.0.2.1:1"}, "", "ip:192.0.2.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []sdktest.Option{sdktest.Property("t/r", "route_name")}
			if tc.claim != "" {
				opts = append(opts, sdktest.Property(tc.claim, "jwt_claims", "sub"))
			}
			h, f := startFake(t, tc.config, opts...)
			res := h.Do(tc.req, sdktest.Response{})
			if tc.key == "" {
				if res.Local == nil || res.Local.Status != 401 || len(f.keys) != 0 {
					t.Fatalf("want 401 without a take: %+v, keys %q", res.Local, f.keys)
				}
				var body struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal([]byte(res.Local.Body), &body); err != nil || body.Error != tc.missing || body.Status != 401 {
					t.Fatalf("body %s (%v), want error %q", res.Local.Body, err, tc.missing)
				}
				return
			}
			if res.Local != nil {
				t.Fatalf("answered %d %s", res.Local.Status, res.Local.Body)
			}
			if got := f.last(); got != tc.key {
				t.Errorf("key %q, want %q", got, tc.key)
			}
		})
	}
}

// TestEncoding pins the arguments the plugin sends.
func TestEncoding(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []byte // without the key
	}{
		{reference, []byte{1, 0xa0, 0x8d, 0x06, 0xc8, 0x01, 1}},     // rate 100000 (milli), burst 200, cost 1
		{`{"requestsPerSecond": 0.5}`, []byte{1, 0xf4, 0x03, 1, 1}}, // rate 500, default burst ceil(0.5) = 1
		{`{"requestsPerSecond": 2.5}`, []byte{1, 0xc4, 0x13, 3, 1}}, // rate 2500, default burst 3
		{`{"requestsPerSecond": 0.0014}`, []byte{1, 1, 1, 1}},       // thousandths: rate 1
		{`{"requestsPerSecond": 1000000000}`, append([]byte{1}, binary.AppendUvarint(binary.AppendUvarint(nil, 1e12), 1e9)...)},
	} {
		t.Run(tc.config, func(t *testing.T) {
			h, f := startFake(t, strings.Replace(tc.config, "}", `, "key": "global"}`, 1))
			h.Do(sdktest.Request{}, sdktest.Response{})
			want := string(tc.want)
			if tc.config == `{"requestsPerSecond": 1000000000}` {
				want += "\x01"
			}
			if got := string(f.args[0]); got != want+"g" {
				t.Errorf("args %x, want %x", got, want+"g")
			}
		})
	}
}

// TestOverLimit runs the reference configuration against counting buckets:
// 200 requests with one key pass, with the headers; the next gets 429.
func TestOverLimit(t *testing.T) {
	h, _ := startFake(t, reference, sdktest.Property("api-system/api-rate-limit", "plugin_name"))
	key := [][2]string{{"x-api-key", "abc"}}
	for i := 1; i <= 200; i++ {
		res := h.Do(sdktest.Request{Headers: key}, sdktest.Response{})
		if res.Local != nil {
			t.Fatalf("request %d: %d", i, res.Local.Status)
		}
		d := res.Downstream
		rem := itoa(200 - i)
		for k, want := range map[string]string{
			"x-ratelimit-limit":     "200",
			"x-ratelimit-remaining": rem,
			"x-ratelimit-reset":     "3",
			"ratelimit-policy":      `"api-system/api-rate-limit";q=200;w=2`,
			"ratelimit":             `"api-system/api-rate-limit";r=` + rem + `;t=3`,
		} {
			if got := d.Get(k); got != want {
				t.Fatalf("request %d: %s = %q, want %q", i, k, got, want)
			}
		}
	}
	res := h.Do(sdktest.Request{Headers: key}, sdktest.Response{})
	l := res.Local
	if l == nil || l.Status != 429 {
		t.Fatalf("request 201: %+v", res)
	}
	for k, want := range map[string]string{
		"retry-after":           "2",
		"content-type":          "application/json",
		"x-ratelimit-limit":     "200",
		"x-ratelimit-remaining": "0",
		"x-ratelimit-reset":     "3",
		"ratelimit":             `"api-system/api-rate-limit";r=0;t=3`,
	} {
		if got := l.Headers.Get(k); got != want {
			t.Errorf("429: %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(l.Body, `"error":"rate limit exceeded","status":429`) {
		t.Errorf("body %s", l.Body)
	}
	// Another key has its own bucket.
	if res := h.Do(sdktest.Request{Headers: [][2]string{{"x-api-key", "other"}}}, sdktest.Response{}); res.Local != nil {
		t.Errorf("other key: %d", res.Local.Status)
	}
}

func TestPolicyHeader(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`{"requestsPerSecond": 100, "burst": 200}`, `"default";q=200;w=2`},
		{`{"requestsPerSecond": 100}`, `"default";q=100;w=1`},
		{`{"requestsPerSecond": 30, "burst": 50}`, `"default";q=50;w=2`},
		{`{"requestsPerSecond": 0.5, "burst": 1}`, `"default";q=1;w=2`},
		{`{"requestsPerSecond": 1000, "burst": 1}`, `"default";q=1;w=1`},
	} {
		t.Run(tc.config, func(t *testing.T) {
			h, _ := startFake(t, tc.config)
			if got := h.Do(sdktest.Request{}, sdktest.Response{}).Downstream.Get("ratelimit-policy"); got != tc.want {
				t.Errorf("RateLimit-Policy %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSFString(t *testing.T) {
	for in, want := range map[string]string{"": `"default"`, "ns/x": `"ns/x"`, `a"b\c`: `"a\"b\\c"`, "é\n": `"___"`} {
		if got := sfString(in); got != want {
			t.Errorf("sfString(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestBadHostAnswer: an answer the plugin cannot read traps the VM (the
// policy's failurePolicy then decides).
func TestBadHostAnswer(t *testing.T) {
	h, err := sdktest.Start(t, plugin, reference, sdktest.Foreign(hostTake, func([]byte) []byte { return []byte{1, 0x80} }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "malformed result") {
			t.Errorf("recovered %v", r)
		}
	}()
	h.Do(sdktest.Request{}, sdktest.Response{})
	t.Error("no trap")
}

func TestDecodeResult(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want result
		ok   bool
	}{
		{[]byte{1, 5, 0, 200, 1}, result{allowed: true, remaining: 5, reset: 200}, true},
		{[]byte{2, 0, 0x88, 0x27, 1}, result{retryAfter: 5000, reset: 1}, true},
		{[]byte{0, 1, 2}, result{}, false},
		{nil, result{}, false},
	} {
		got, err := decodeResult(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("decodeResult(%x) = %+v, %v", tc.in, got, err)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestResponseValues: the dynamic header values (built in the filter's
// buffer) for small, large and mixed numbers, each request with its own, on
// filters that ended requests left for reuse; the results of earlier
// requests stay as they were (sdktest copies what the plugin set).
func TestResponseValues(t *testing.T) {
	var answer []byte // the host's next answer
	h, err := sdktest.Start(t, plugin, `{"requestsPerSecond": 1000000000, "key": "global"}`,
		sdktest.Property("ns/limit", "plugin_name"),
		sdktest.Foreign(hostTake, func([]byte) []byte { return answer }))
	if err != nil {
		t.Fatal(err)
	}
	type testCase struct {
		name                           string
		remaining, resetMS             uint64
		wantRemaining, wantReset, want string
	}
	var cases []testCase
	var res []sdktest.Headers
	for _, tc := range []testCase{
		{"zero", 0, 0, "0", "0", `"ns/limit";r=0;t=0`},
		{"small", 7, 1, "7", "1", `"ns/limit";r=7;t=1`},
		{"large", 999999999, 999999999001, "999999999", "1000000000", `"ns/limit";r=999999999;t=1000000000`},
		{"max", 1<<64 - 1, 1<<64 - 1000, "18446744073709551615", "18446744073709551", `"ns/limit";r=18446744073709551615;t=18446744073709551`},
		{"small again", 12, 2500, "12", "3", `"ns/limit";r=12;t=3`},
	} {
		answer = binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint([]byte{1}, tc.remaining), 0), tc.resetMS)
		res = append(res, h.Do(sdktest.Request{}, sdktest.Response{}).Downstream)
		cases = append(cases, tc)
	}
	for i, tc := range cases {
		if d := res[i]; d.Get("x-ratelimit-remaining") != tc.wantRemaining || d.Get("x-ratelimit-reset") != tc.wantReset ||
			d.Get("ratelimit") != tc.want || d.Get("x-ratelimit-limit") != "1000000000" {
			t.Errorf("%s: headers %v", tc.name, d)
		}
	}
}

// TestKeysOnReusedFilters: requests with different keys, one after the
// other (the later ones on filters and argument buffers the earlier ones
// used), each send exactly their own key, including a shorter one after a
// longer one.
func TestKeysOnReusedFilters(t *testing.T) {
	h, f := startFake(t, reference)
	for _, tc := range []struct {
		name string
		req  sdktest.Request
		key  string
	}{
		{"long key", sdktest.Request{Headers: [][2]string{{"x-api-key", strings.Repeat("k", 100)}}}, "h:" + strings.Repeat("k", 100)},
		{"short key", sdktest.Request{Headers: [][2]string{{"x-api-key", "s"}}}, "h:s"},
		{"no key: ip", sdktest.Request{ClientAddr: "192.0.2.1:1"}, "ip:192.0.2.1"},
		{"key again", sdktest.Request{Headers: [][2]string{{"x-api-key", "abc"}}}, "h:abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(tc.req, sdktest.Response{})
			if res.Local != nil || f.last() != tc.key {
				t.Errorf("key %q, want %q (local %+v)", f.last(), tc.key, res.Local)
			}
			if want := string([]byte{1, 0xa0, 0x8d, 0x06, 0xc8, 0x01, 1}) + tc.key; string(f.args[len(f.args)-1]) != want {
				t.Errorf("args %x, want %x", f.args[len(f.args)-1], want)
			}
		})
	}
}
