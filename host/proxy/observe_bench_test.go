package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/observe"
)

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWriter is a ResponseWriter that keeps nothing, reused across
// iterations (its header map is cleared).
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}
func (w *benchWriter) Flush()                      {}

// BenchmarkObserve measures what observability costs a request: the
// gateway's handler is called in-process (no client, no listener), for
// a rule answered by the gateway itself (a redirect: the request path
// alone) and for one proxied to a backend on 127.0.0.1, with
//
//	off      no metrics, no access log, no tracing (the request path as before)
//	metrics  the Prometheus metrics
//	log      metrics + JSON access log (to io.Discard through the sink)
//	all      metrics + access log + tracing at 100% exported over OTLP/HTTP
//	         to a receiver on 127.0.0.1 that discards
//	all-sampled-10pct  the same, tracing at samplingRate 10
//
// Each mode reports ns/op, allocs/op, cpu-ns/op (the process's CPU time
// per request, all goroutines: the span exporter's and the GC's work
// included, and steadier than ns/op on a shared machine) and x-off (its
// ns/op over the last off run's).
func BenchmarkObserve(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer be.Close()
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer otlp.Close()
	beAddr := be.Listener.Addr().String()

	modes := []struct {
		name    string
		metrics bool
		gwExtra string
	}{
		{"off", false, ""},
		{"metrics", true, ""},
		{"log", true, "  accessLog: {enabled: true}\n"},
		{"all", true, "  accessLog: {enabled: true}\n  tracing: {enabled: true, samplingRate: 100, endpoint: \"" + otlp.URL + "\"}\n"},
		{"all-sampled-10pct", true, "  accessLog: {enabled: true}\n  tracing: {enabled: true, samplingRate: 10, endpoint: \"" + otlp.URL + "\"}\n"},
	}
	for _, path := range []string{"local", "proxied"} {
		var offNs float64
		for _, md := range modes {
			b.Run(path+"/"+md.name, func(b *testing.B) {
				port := freePort(b)
				res := gatewayYAML(port, md.gwExtra) + backendYAML("b", beAddr) + route(`
    - matches: [{path: {value: /local}}]
      redirect: {hostname: example.com}
    - matches: [{path: {value: /proxied}}]
      backendRefs: [{name: b}]
`)
				snap, err := configs.LoadFiles([]configs.File{{Name: "bench.yaml", Data: []byte(res)}})
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard}
				if md.metrics {
					opts.Metrics = observe.NewMetrics()
				}
				gw := New(opts)
				if err := gw.Apply(context.Background(), snap); err != nil {
					b.Fatal(err)
				}
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					gw.Shutdown(ctx)
				}()
				h := &portHandler{g: gw, key: "127.0.0.1:" + strconv.Itoa(port)}
				r := &http.Request{
					Method: "GET", URL: &url.URL{Path: "/" + path}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"X-Request-Id": {"bench-request"}, "User-Agent": {"bench"}},
					Host:   "example.org", RemoteAddr: "127.0.0.1:40000", Body: http.NoBody,
				}
				r = r.WithContext(context.Background())
				w := &benchWriter{h: http.Header{}}
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					clear(w.h)
					// The outgoing request shares the header map: drop
					// what the last iteration sent upstream.
					delete(r.Header, "Traceparent")
					delete(r.Header, "Tracestate")
					r.Header["X-Request-Id"] = []string{"bench-request"}
					h.ServeHTTP(w, r)
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if md.name == "off" {
					offNs = ns
				} else if offNs > 0 {
					b.ReportMetric(ns/offNs, "x-off")
				}
			})
		}
	}
}
