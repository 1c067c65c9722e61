package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/reload"
)

// BenchmarkModuleSwap measures the time from replacing the policy's
// module file (an atomic rename) to the first response of the new module,
// on an idle `novaedge run`:
//
//   - cached: gen_a.wasm and gen_b.wasm in turn, both compiled before
//     (the runtime drops the compiled code of a module no generation uses,
//     so a swap back compiles from wazero's file cache in --state-dir);
//   - cold: gen_a.wasm or gen_b.wasm with a custom section holding a
//     counter appended, so that every swap compiles a module no cache has
//     seen, with a fresh --state-dir;
//   - watch: the file watcher notices the rename and reloads after its
//     debounce (reload.Delay, reported as debounce-ms);
//   - reload: no watcher; POST /reload on the admin API right after the
//     rename, which shows the build and swap without the debounce.
func BenchmarkModuleSwap(b *testing.B) {
	a, err := os.ReadFile(liveModules + "gen_a.wasm")
	if err != nil {
		b.Fatal(err)
	}
	bb, err := os.ReadFile(liveModules + "gen_b.wasm")
	if err != nil {
		b.Fatal(err)
	}
	code := map[string][]byte{"a": a, "b": bb}
	for _, cold := range []bool{false, true} {
		for _, via := range []string{"watch", "reload"} {
			name := "cached/" + via
			if cold {
				name = "cold/" + via
			}
			b.Run(name, func(b *testing.B) {
				var args []string
				if via == "reload" {
					args = []string{"--watch=false"}
				}
				g := startLive(b, liveConfig{Gen: 1, Weights: [2]int{1, 1}}, args...)
				swap := func(mod string, code []byte) {
					rename := g.stage("gen.wasm", code)
					rename()
					if via == "reload" {
						g.postReload()
					}
					g.until(mod)
				}
				if !cold { // compile b once; a serves already
					swap("b", code["b"])
					swap("a", code["a"])
				}
				mod := "a"
				var total time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					mod = map[string]string{"a": "b", "b": "a"}[mod]
					c := code[mod]
					if cold {
						c = withCustomSection(c, "novaedge-bench", fmt.Appendf(nil, "%d-%d", time.Now().UnixNano(), coldCount.Add(1)))
					}
					b.StartTimer()
					t0 := time.Now()
					swap(mod, c)
					total += time.Since(t0)
				}
				b.StopTimer()
				b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/swap")
				if via == "watch" {
					b.ReportMetric(float64(reload.Delay.Milliseconds()), "debounce-ms")
				}
			})
		}
	}
}

// coldCount makes every cold module's content new.
var coldCount atomic.Int64

// withCustomSection returns code with a custom section (id 0: name, then
// payload) appended, which changes the module's hash and nothing else.
func withCustomSection(code []byte, name string, payload []byte) []byte {
	content := appendULEB128(nil, uint32(len(name)))
	content = append(content, name...)
	content = append(content, payload...)
	out := append(slices.Clip(code), 0)
	out = appendULEB128(out, uint32(len(content)))
	return append(out, content...)
}

func appendULEB128(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// until polls the gateway, idle but for this, until a response comes from
// module mod; it fails after liveWait.
func (g *liveGateway) until(mod string) {
	g.t.Helper()
	for deadline := time.Now().Add(liveWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if h, _, err := g.get("/"); err == nil && h.Get("x-gen") == mod {
			return
		}
	}
	g.t.Fatalf("module %s did not serve within %v; last reload: %s", mod, liveWait, g.lastReload())
}

// postReload is POST /reload on the admin API; the change must apply.
func (g *liveGateway) postReload() {
	g.t.Helper()
	if err := g.tryReload(); err != nil {
		g.t.Fatal(err)
	}
}

// tryReload is POST /reload; an error unless a change applied.
func (g *liveGateway) tryReload() error {
	resp, err := g.client.Post("http://"+g.admin+"/reload", "application/json", nil) // a change is a non-simple request
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rep reloadReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || rep.Result != "applied" {
		return fmt.Errorf("POST /reload: status %d, %+v, %v", resp.StatusCode, rep, err)
	}
	return nil
}

// BenchmarkSwapLatency compares the latency of requests through the
// gateway in steady state with their latency while module swaps (POST
// /reload after each rename, alternating gen_a and gen_b, both compiled
// before) run back to back. The load is paced: latencyWorkers keep-alive
// clients, each sending a request every latencyEvery (or as soon as the
// last one ends, if later), for latencyPhase per phase. The design does
// not depend on b.N: each run measures both phases once.
func BenchmarkSwapLatency(b *testing.B) {
	const (
		latencyWorkers = 4
		latencyEvery   = time.Millisecond
		latencyPhase   = 3 * time.Second
	)
	g := startLive(b, liveConfig{Gen: 1, Weights: [2]int{1, 1}}, "--watch=false")
	a, err := os.ReadFile(liveModules + "gen_a.wasm")
	if err != nil {
		b.Fatal(err)
	}
	bb, err := os.ReadFile(liveModules + "gen_b.wasm")
	if err != nil {
		b.Fatal(err)
	}
	code := map[string][]byte{"a": a, "b": bb}
	mod := "a"
	swap := func() error {
		mod = map[string]string{"a": "b", "b": "a"}[mod]
		g.stage("gen.wasm", code[mod])()
		return g.tryReload()
	}
	for range 2 { // compile b, back to a
		if err := swap(); err != nil {
			b.Fatal(err)
		}
	}

	// phase measures the load for latencyPhase while during runs.
	phase := func(during func(stop <-chan struct{}) int) (lat []time.Duration, failed []string, swaps int) {
		stop := make(chan struct{})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range latencyWorkers {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.CloseIdleConnections()
				tick := time.NewTicker(latencyEvery)
				defer tick.Stop()
				var mine []time.Duration
				var bad []string
				for {
					select {
					case <-stop:
						mu.Lock()
						lat, failed = append(lat, mine...), append(failed, bad...)
						mu.Unlock()
						return
					case <-tick.C:
					}
					t0 := time.Now()
					resp, err := c.Get("http://" + g.listen + "/")
					if err != nil {
						bad = append(bad, err.Error())
						continue
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					d := time.Since(t0)
					if err != nil || resp.StatusCode != 200 || g.check("/", resp.Header, string(body)) != "" {
						bad = append(bad, fmt.Sprintf("status %d, err %v, %s", resp.StatusCode, err, g.check("/", resp.Header, string(body))))
						continue
					}
					mine = append(mine, d)
				}
			}()
		}
		done := make(chan int, 1)
		go func() { done <- during(stop) }()
		time.Sleep(latencyPhase)
		close(stop)
		swaps = <-done
		wg.Wait()
		return lat, failed, swaps
	}

	b.ResetTimer()
	for range b.N { // the phases below are the measurement; b.N does not matter
	}
	steady, failedSteady, _ := phase(func(<-chan struct{}) int { return 0 })
	var swapErr error
	swapping, failedSwapping, swaps := phase(func(stop <-chan struct{}) int {
		n := 0
		for {
			select {
			case <-stop:
				return n
			default:
			}
			if swapErr = swap(); swapErr != nil {
				return n
			}
			n++
		}
	})
	b.StopTimer()
	if swapErr != nil {
		b.Error(swapErr)
	}
	if len(failedSteady)+len(failedSwapping) > 0 {
		b.Errorf("failed requests: %d steady, %d during swaps; the first: %q", len(failedSteady), len(failedSwapping),
			append(failedSteady, failedSwapping...)[0])
	}
	ps, pw := percentiles(steady), percentiles(swapping)
	for i, name := range []string{"p50", "p90", "p99", "max"} {
		b.ReportMetric(ps[i], "steady-"+name+"-µs")
		b.ReportMetric(pw[i], "swap-"+name+"-µs")
	}
	b.ReportMetric(float64(swaps)/latencyPhase.Seconds(), "swaps/s")
	// One table per run (testing keeps the first 10 lines of a
	// benchmark's log, over all its runs).
	row := func(name string, p [4]float64, n, swaps int) string {
		return fmt.Sprintf("%-9s %7.0f %7.0f %7.0f %7.0f %9d %6d", name, p[0], p[1], p[2], p[3], n, swaps)
	}
	b.Logf("%d workers, a request per %v each, %v per phase\n%-9s %7s %7s %7s %7s %9s %6s\n%s\n%s",
		latencyWorkers, latencyEvery, latencyPhase, "µs", "p50", "p90", "p99", "max", "requests", "swaps",
		row("steady", ps, len(steady), 0), row("swapping", pw, len(swapping), swaps))
}

// percentiles returns p50, p90, p99 and the maximum of lat, in µs.
func percentiles(lat []time.Duration) [4]float64 {
	if len(lat) == 0 {
		return [4]float64{}
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1 // nearest rank
		i = max(0, min(i, len(lat)-1))
		return float64(lat[i].Microseconds())
	}
	return [4]float64{at(0.50), at(0.90), at(0.99), float64(lat[len(lat)-1].Microseconds())}
}
