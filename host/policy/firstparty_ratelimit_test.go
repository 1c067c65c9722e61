package policy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/sdk/firstparty"
)

// fakeClock is a monotonic clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLimiter(max int) (*rateLimiter, *fakeClock) {
	c := &fakeClock{}
	c.ns.Store(int64(time.Hour)) // not 0: nothing special about the start
	return newRateLimiter(c.now, max), c
}

// rps is a rate in thousandths of a token per second.
func rps(r float64) uint64 { return uint64(math.Round(r * 1000)) }

func args(rate float64, burst uint64, key string) takeArgs {
	return takeArgs{rate: rps(rate), burst: burst, cost: 1, key: []byte(key)}
}

func TestDecodeTake(t *testing.T) {
	enc := func(parts ...uint64) []byte {
		b := []byte{1}
		for _, p := range parts {
			b = appendUvarint(b, p)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want *takeArgs // nil: an error
	}{
		{"reference", append(enc(100000, 200, 1), "h:k"...), &takeArgs{rate: 100000, burst: 200, cost: 1, key: []byte("h:k")}},
		{"empty key", enc(1, 1, 0), &takeArgs{rate: 1, burst: 1, cost: 0, key: []byte{}}},
		{"limits", enc(rlMaxRate, rlMaxBurst, rlMaxBurst), &takeArgs{rate: rlMaxRate, burst: rlMaxBurst, cost: rlMaxBurst, key: []byte{}}},
		{"nothing", nil, nil},
		{"version 2", []byte{2, 1, 1, 1}, nil},
		{"rate 0", enc(0, 1, 1), nil},
		{"rate over", enc(rlMaxRate+1, 1, 1), nil},
		{"burst 0", enc(1, 0, 0), nil},
		{"burst over", enc(1, rlMaxBurst+1, 1), nil},
		{"cost over burst", enc(1, 2, 3), nil},
		{"truncated", enc(1, 2)[:3], nil},
		{"unterminated varint", []byte{1, 0x80, 0x80}, nil},
		{"varint overflow", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeTake(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", got)
				}
				return
			}
			if err != nil || got.rate != tc.want.rate || got.burst != tc.want.burst || got.cost != tc.want.cost || !bytes.Equal(got.key, tc.want.key) {
				t.Fatalf("got %+v, %v; want %+v", got, err, *tc.want)
			}
		})
	}
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// FuzzDecodeTake: the decoder of what a plugin sends never panics, accepts
// only in-range values, and what it accepts encodes back (canonical varints)
// to an equivalent that decodes the same; a take with it never panics.
func FuzzDecodeTake(f *testing.F) {
	f.Add(encodeTake(nil, args(100, 200, "h:key")))
	f.Add(encodeTake(nil, takeArgs{rate: rlMaxRate, burst: rlMaxBurst, cost: rlMaxBurst}))
	f.Add([]byte{1, 0x80, 0x01, 0x01, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeTake(b)
		if err != nil {
			return
		}
		if a.rate < 1 || a.rate > rlMaxRate || a.burst < 1 || a.burst > rlMaxBurst || a.cost > a.burst {
			t.Fatalf("accepted out of range %+v", a)
		}
		again, err := decodeTake(encodeTake(nil, a))
		if err != nil || again.rate != a.rate || again.burst != a.burst || again.cost != a.cost || !bytes.Equal(again.key, a.key) {
			t.Fatalf("round trip: %+v -> %+v, %v", a, again, err)
		}
		l, c := newTestLimiter(4)
		for i := 0; i < 3; i++ {
			r := l.take("p", a)
			if r.remaining > a.burst || (!r.allowed && r.retryAfter == 0) {
				t.Fatalf("take %+v: %+v", a, r)
			}
			c.advance(time.Duration(a.cost) * time.Millisecond)
		}
	})
}

func TestBucketMath(t *testing.T) {
	l, c := newTestLimiter(100)
	a := args(100, 200, "k")
	for i := 1; i <= 200; i++ {
		r := l.take("p", a)
		if !r.allowed || r.remaining != uint64(200-i) {
			t.Fatalf("take %d: %+v", i, r)
		}
	}
	r := l.take("p", a)
	// Empty: one token in 10 ms; full in 2 s.
	if r.allowed || r.remaining != 0 || r.retryAfter != 10 || r.reset != 2000 {
		t.Fatalf("over the limit: %+v", r)
	}
	c.advance(9999 * time.Microsecond)
	if r := l.take("p", a); r.allowed || r.retryAfter != 1 {
		t.Fatalf("1 µs early: %+v", r)
	}
	c.advance(time.Microsecond)
	if r := l.take("p", a); !r.allowed || r.remaining != 0 {
		t.Fatalf("after 10 ms: %+v", r)
	}
	// Sub-microsecond remainders are kept, not lost: 13 334 steps of
	// 1.5 µs (20.001 ms) earn 2 tokens.
	for i := 0; i < 13334; i++ {
		c.advance(1500 * time.Nanosecond)
		l.take("p", takeArgs{rate: a.rate, burst: a.burst, cost: 0, key: a.key})
	}
	for i := 0; i < 2; i++ {
		if r := l.take("p", a); !r.allowed {
			t.Fatalf("refill lost time: take %d: %+v", i, r)
		}
	}
	if r := l.take("p", a); r.allowed {
		t.Fatalf("refill gained time: %+v", r)
	}
	// A long idle time fills the bucket, no more.
	c.advance(time.Hour)
	if r := l.take("p", a); !r.allowed || r.remaining != 199 || r.reset != 10 {
		t.Fatalf("after an hour: %+v", r)
	}
	// Fractional rates: 0.5/s, burst 1: one request per 2 s.
	b := args(0.5, 1, "slow")
	if r := l.take("p", b); !r.allowed {
		t.Fatal(r)
	}
	c.advance(1999 * time.Millisecond)
	if r := l.take("p", b); r.allowed || r.retryAfter != 1 {
		t.Fatalf("%+v", r)
	}
	c.advance(time.Millisecond)
	if r := l.take("p", b); !r.allowed {
		t.Fatalf("%+v", r)
	}
}

// TestAccuracy: a steady load at twice the limit for 10 s (requests evenly
// spaced from 0 to 10 s) admits burst + rate × 10 s: within 2 %, and in
// fact exactly (the whole tokens earned), whatever the rate.
func TestAccuracy(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst uint64
	}{{100, 200}, {100, 1}, {7.5, 3}, {0.5, 1}, {1000, 50}, {33.333, 10}, {25000, 1000}} {
		t.Run(fmt.Sprintf("%g/s burst %d", tc.rate, tc.burst), func(t *testing.T) {
			l, c := newTestLimiter(100)
			a := args(tc.rate, tc.burst, "k")
			const window = 10 * time.Second
			n := int64(math.Round(2 * tc.rate * window.Seconds())) // requests after the first
			t0 := c.now()
			admitted := 0
			for i := int64(0); i <= n; i++ {
				c.ns.Store(t0 + i*int64(window)/n)
				if l.take("p", a).allowed {
					admitted++
				}
			}
			ideal := float64(tc.burst) + tc.rate*window.Seconds()
			exact := int(tc.burst + a.rate*10/1000)
			t.Logf("%d requests, admitted %d, ideal %g", n+1, admitted, ideal)
			if math.Abs(float64(admitted)-ideal) > 0.02*ideal || admitted != exact {
				t.Errorf("admitted %d, want %d (%g ± 2%%)", admitted, exact, ideal)
			}
		})
	}
}

func TestCallersAndKeysAreSeparate(t *testing.T) {
	l, _ := newTestLimiter(100)
	for _, caller := range []string{"ns/a", "ns/b"} {
		for _, key := range []string{"x", "y"} {
			if r := l.take(caller, args(1, 1, key)); !r.allowed {
				t.Errorf("%s %s: %+v", caller, key, r)
			}
			if r := l.take(caller, args(1, 1, key)); r.allowed {
				t.Errorf("%s %s: second take allowed", caller, key)
			}
		}
	}
	// Long keys are hashed: two that share 64 bytes are still two.
	long := strings.Repeat("k", 100)
	for _, key := range []string{long + "1", long + "2"} {
		if r := l.take("ns/a", args(1, 1, key)); !r.allowed {
			t.Errorf("long key: %+v", r)
		}
	}
	if r := l.take("ns/a", args(1, 1, long+"1")); r.allowed {
		t.Error("long key: second take allowed")
	}
}

// TestExpiry: a bucket that has refilled is dropped (it is the same as
// none); one still refilling is kept.
func TestExpiry(t *testing.T) {
	l, c := newTestLimiter(1000)
	for i := 0; i < 500; i++ {
		l.take("p", args(10, 20, strconv.Itoa(i))) // full in 100 ms
	}
	if n := l.buckets("p"); n != 500 {
		t.Fatalf("%d buckets", n)
	}
	c.advance(99 * time.Millisecond)
	l.take("p", args(10, 20, "new"))
	if n := l.buckets("p"); n != 501 {
		t.Fatalf("before they refilled: %d buckets, want 501", n)
	}
	c.advance(time.Millisecond)
	l.take("p", args(10, 20, "new"))
	if n := l.buckets("p"); n != 1 {
		t.Fatalf("after they refilled: %d buckets, want 1", n)
	}
}

// TestFloodOfKeys: the table never holds more than its cap; beyond it new
// keys share the overflow bucket, and the keys that have a bucket keep it.
func TestFloodOfKeys(t *testing.T) {
	l, c := newTestLimiter(100)
	a := args(1, 5, "victim")
	for i := 0; i < 5; i++ {
		l.take("p", a)
	}
	overflowed, allowed := 0, 0
	for i := 0; i < 10000; i++ {
		r := l.take("p", args(1, 5, "flood-"+strconv.Itoa(i)))
		if r.overflow {
			overflowed++
		}
		if r.allowed {
			allowed++
		}
	}
	if n := l.buckets("p"); n != 100 {
		t.Errorf("%d buckets, want the cap 100", n)
	}
	// 99 keys got buckets (5 tokens each, one taken); the rest share one
	// bucket of 5.
	if overflowed != 10000-99 || allowed != 99+5 {
		t.Errorf("overflowed %d, allowed %d", overflowed, allowed)
	}
	if r := l.take("p", a); r.allowed || r.overflow {
		t.Errorf("the victim's empty bucket was lost: %+v", r)
	}
	// Another plugin is not affected.
	if r := l.take("q", a); !r.allowed || r.overflow {
		t.Errorf("other plugin: %+v", r)
	}
	// Once the flood's buckets have refilled, they go.
	c.advance(5 * time.Second)
	if r := l.take("p", args(1, 5, "later")); !r.allowed || r.overflow {
		t.Errorf("after the flood: %+v", r)
	}
	if n := l.buckets("p"); n != 1 {
		t.Errorf("%d buckets after the flood, want 1", n)
	}
}

// TestNewParameters: a bucket whose rate or burst changed (a reload) keeps
// its tokens, at most the new burst.
func TestNewParameters(t *testing.T) {
	l, c := newTestLimiter(100)
	for i := 0; i < 10; i++ {
		l.take("p", args(1, 10, "k"))
	}
	if r := l.take("p", args(1, 20, "k")); r.allowed {
		t.Errorf("a larger burst refilled the bucket: %+v", r)
	}
	c.advance(time.Second)
	if r := l.take("p", args(1, 20, "k")); !r.allowed || r.remaining != 0 || r.reset != 20000 {
		t.Errorf("%+v", r)
	}
	c.advance(time.Hour)
	if r := l.take("p", args(1, 3, "k")); !r.allowed || r.remaining != 2 {
		t.Errorf("a smaller burst: %+v", r)
	}
}

// TestConcurrentTakes: takes from many goroutines (VMs) on one key admit
// exactly the burst.
func TestConcurrentTakes(t *testing.T) {
	l, _ := newTestLimiter(100)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if l.take("p", args(1, 300, "k")).allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 300 {
		t.Errorf("admitted %d, want 300", admitted.Load())
	}
}

func TestForeignEncoding(t *testing.T) {
	l, _ := newTestLimiter(100)
	out, err := l.foreign(context.Background(), encodeTake(nil, args(100, 200, "k")))
	// allowed, 199 left, no wait, full in 10 ms.
	if err != nil || !bytes.Equal(out, []byte{1, 0xc7, 0x01, 0, 10}) {
		t.Errorf("%x %v", out, err)
	}
	if _, err := l.foreign(context.Background(), []byte{1}); err == nil {
		t.Error("malformed arguments accepted")
	}
}

// BenchmarkRateLimitTake measures the host function as a plugin calls it
// (decode, take, encode): "reference" with the reference configuration
// (100/s, burst 200) over 1024 keys, "new-keys" where every take finds
// its bucket expired and makes a new one.
func BenchmarkRateLimitTake(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name        string
		rate, burst float64
	}{{"reference", 100, 200}, {"new-keys", 1e9, 1}} {
		keys := make([][]byte, 1024)
		for i := range keys {
			keys[i] = encodeTake(nil, args(bc.rate, uint64(bc.burst), "h:api-key-"+strconv.Itoa(i)))
		}
		b.Run(bc.name, func(b *testing.B) {
			l := newRateLimiter(monotonicClock(), DefaultRateLimitBuckets)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := l.foreign(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			l := newRateLimiter(monotonicClock(), DefaultRateLimitBuckets)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := l.foreign(ctx, keys[i&1023]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// ------------------------------------------------------------ through the gateway

const referenceRateLimit = `  rateLimit:
    requestsPerSecond: 100
    burst: 200
    key: "header:X-API-Key"
`

// TestRateLimitThroughGateway runs the reference configuration: a key's
// burst passes, then 429s with the headers; the number admitted never
// exceeds burst + rate × elapsed, with several VMs serving (one bucket per
// key across them); another key has its own bucket.
func TestRateLimitThroughGateway(t *testing.T) {
	e, err := setup(t, firstPartyDoc("rl", "RateLimit", referenceRateLimit))
	if err != nil {
		t.Fatal(err)
	}
	var admitted, denied atomic.Int64
	var mu sync.Mutex
	var first429 *http.Response
	var body429 string
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for denied.Load() < 20 && time.Since(start) < 15*time.Second {
				req, _ := http.NewRequest("GET", e.base+"/hello", nil)
				req.Header.Set("X-API-Key", "key-a")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					admitted.Add(1)
					if resp.Header.Get("X-RateLimit-Limit") != "200" || resp.Header.Get("RateLimit-Policy") != `"t/rl";q=200;w=2` ||
						!strings.HasPrefix(resp.Header.Get("RateLimit"), `"t/rl";r=`) || resp.Header.Get("X-RateLimit-Remaining") == "" {
						t.Errorf("allowed response headers: %v", resp.Header)
					}
				case 429:
					if denied.Add(1) == 1 {
						mu.Lock()
						first429, body429 = resp, string(b)
						mu.Unlock()
					}
				default:
					t.Errorf("status %d: %s", resp.StatusCode, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first429 == nil {
		t.Fatalf("no 429 after %d requests in %v", admitted.Load(), elapsed)
	}
	// Deterministic bounds: the burst always passes; a token bucket never
	// admits more than burst + rate × elapsed.
	if n, max := admitted.Load(), 200+100*elapsed.Seconds()+1; n < 200 || float64(n) > max {
		t.Errorf("admitted %d in %v, want 200 to %.0f", n, elapsed, max)
	}
	h := first429.Header
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 || h.Get("X-RateLimit-Limit") != "200" ||
		h.Get("X-RateLimit-Reset") == "" || h.Get("Content-Type") != "application/json" || !strings.HasPrefix(h.Get("RateLimit"), `"t/rl";r=`) {
		t.Errorf("429 headers: %v", h)
	}
	var eb struct {
		Error     string `json:"error"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(body429), &eb); err != nil || eb.Status != 429 || eb.Error != "rate limit exceeded" || eb.RequestID == "" {
		t.Errorf("429 body %s (%v)", body429, err)
	}
	if got := int64(e.backend.count()); got != admitted.Load() {
		t.Errorf("backend saw %d requests, %d admitted", got, admitted.Load())
	}
	// Another key, and a request without the key (limited by its address).
	if r, _ := e.get(t, "X-API-Key", "key-b"); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "199" {
		t.Errorf("key-b: %d %v", r.StatusCode, r.Header)
	}
	if r, _ := e.get(t); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "199" {
		t.Errorf("no key: %d %v", r.StatusCode, r.Header)
	}
	if ps := e.gw.Status().Policies; len(ps) != 1 || ps[0].State != "Active" || ps[0].Plugin == nil {
		t.Errorf("status %+v", ps)
	} else {
		t.Logf("admitted %d in %v, %d denied, by %d VMs", admitted.Load(), elapsed, denied.Load(), ps[0].Plugin.VMs)
	}
}

func TestRateLimitMissingKeyRejected(t *testing.T) {
	e, err := setup(t, firstPartyDoc("rl", "RateLimit", referenceRateLimit+"    onMissingKey: reject\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, body := e.get(t)
	if r.StatusCode != 401 || !strings.Contains(body, `"error":"rate limit: missing header x-api-key"`) {
		t.Errorf("%d %s", r.StatusCode, body)
	}
	if r, _ := e.get(t, "X-API-Key", "k"); r.StatusCode != 200 {
		t.Errorf("with the key: %d", r.StatusCode)
	}
	if e.backend.count() != 1 {
		t.Errorf("backend saw %d requests", e.backend.count())
	}
}

// TestRateLimitByClaim: the bucket of a claim another policy set on the
// request (testdata/claims.wasm stands in for the JWT policy, running first
// by priority): one per subject; no claim, with onMissingKey reject: 401.
func TestRateLimitByClaim(t *testing.T) {
	claims, err := filepath.Abs("testdata/claims.wasm")
	if err != nil {
		t.Fatal(err)
	}
	e, err := setup(t, policyDoc("claims", claims, "  priority: -1\n")+firstPartyDoc("rl", "RateLimit", `  rateLimit:
    requestsPerSecond: 0.001
    burst: 2
    key: "claim:sub"
    onMissingKey: reject
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 200, 429} {
		if r, body := e.get(t, "X-Sub", "alice"); r.StatusCode != want {
			t.Errorf("alice %d: %d, want %d: %s", i+1, r.StatusCode, want, body)
		}
	}
	if r, _ := e.get(t, "X-Sub", "bob"); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("bob: %d %v", r.StatusCode, r.Header)
	}
	if r, body := e.get(t); r.StatusCode != 401 || !strings.Contains(body, "rate limit: missing claim sub") {
		t.Errorf("no claim: %d %s", r.StatusCode, body)
	}
}

// TestRateLimitByVerifiedClaim: the real chain of the reference's two
// authentication-aware policies. JWT validates the token and publishes its
// sub claim; RateLimit keys its buckets on it. A client cannot pick its
// bucket: the claim comes from a verified token only.
func TestRateLimitByVerifiedClaim(t *testing.T) {
	jwks := newJWKSServer(t, rsaPublicJWK("k1", jwtRSA))
	e, err := setup(t, jwtPolicy(jwks.URL, "")+firstPartyDoc("rl", "RateLimit", `  rateLimit:
    requestsPerSecond: 0.001
    burst: 2
    key: "claim:sub"
    onMissingKey: reject
`))
	if err != nil {
		t.Fatal(err)
	}
	alice := jwtToken("RS256", "k1", jwtClaims(map[string]any{"sub": "alice"}), jwtRSA)
	bob := jwtToken("RS256", "k1", jwtClaims(map[string]any{"sub": "bob"}), jwtRSA)
	for i, want := range []int{200, 200, 429} {
		if r, body := bearerGet(t, e, alice, "X-Sub", "someone-else"); r.StatusCode != want {
			t.Errorf("alice %d: %d, want %d: %s", i+1, r.StatusCode, want, body)
		}
	}
	if r, _ := bearerGet(t, e, bob); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("bob: %d %v", r.StatusCode, r.Header)
	}
	if r, _ := bearerGet(t, e, ""); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %v (the JWT policy runs first)", r.StatusCode, r.Header)
	}
}

// TestRateLimitStateOnChange: a change that rebuilds the RateLimit
// plugin keeps its buckets (stateOnChange Keep, the default): a client
// over its limit stays over it; with Reset, and on a plugin reload, the
// buckets start full.
func TestRateLimitStateOnChange(t *testing.T) {
	doc := func(prio int, state string) string {
		return firstPartyDoc("rl", "RateLimit", fmt.Sprintf(`  priority: %d
  stateOnChange: %s
  rateLimit:
    requestsPerSecond: 0.001
    burst: 2
    key: "header:X-API-Key"
`, prio, state))
	}
	e, err := setup(t, doc(0, "Keep"))
	if err != nil {
		t.Fatal(err)
	}
	statuses := func(n int) string {
		t.Helper()
		var out []string
		for range n {
			resp, _ := e.get(t, "X-API-Key", "k")
			out = append(out, strconv.Itoa(resp.StatusCode))
		}
		return strings.Join(out, " ")
	}
	ctx := context.Background()
	if got := statuses(3); got != "200 200 429" {
		t.Fatalf("first generation: %s", got)
	}
	for _, step := range []struct {
		name    string
		apply   func() error
		want    string
		rebuild bool
	}{
		{"Keep, config changed", func() error { return e.gw.Apply(ctx, e.reload(doc(1, "Keep"))) }, "429", true},
		{"Keep, plugin reload", func() error {
			return e.gw.ApplyWith(ctx, e.reload(doc(1, "Keep")), proxy.ApplyOptions{Rebuild: []string{"t/rl"}})
		}, "429", true},
		{"Reset, config changed", func() error { return e.gw.Apply(ctx, e.reload(doc(2, "Reset"))) }, "200 200 429", true},
		{"Reset, nothing changed: the plugin is kept, and so is its state", func() error { return e.gw.Apply(ctx, e.reload(doc(2, "Reset"), "# comment\n")) }, "429", false},
		{"Reset, plugin reload", func() error {
			return e.gw.ApplyWith(ctx, e.reload(doc(2, "Reset")), proxy.ApplyOptions{Rebuild: []string{"t/rl"}})
		}, "200 200 429", true},
	} {
		if err := step.apply(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := statuses(len(strings.Fields(step.want))); got != step.want {
			t.Errorf("%s: %s, want %s", step.name, got, step.want)
		}
	}
}

// encodeTake encodes RateLimitTake's arguments (what the plugin sends).
func encodeTake(dst []byte, a takeArgs) []byte {
	dst = append(dst, firstparty.RateLimitTakeVersion)
	dst = binary.AppendUvarint(dst, a.rate)
	dst = binary.AppendUvarint(dst, a.burst)
	dst = binary.AppendUvarint(dst, a.cost)
	return append(dst, a.key...)
}

// buckets returns how many buckets the caller's table holds.
func (l *rateLimiter) buckets(caller string) int {
	l.mu.RLock()
	t := l.tables[caller]
	l.mu.RUnlock()
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}
