package observe_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/novaedge/novaedge/host/admin"
)

// scrape reads /metrics from the admin API's handler and parses it.
func scrape(t *testing.T, g *gateway) map[string]*dto.MetricFamily {
	t.Helper()
	reg := admin.NewRegistry()
	reg.MustRegister(g.metrics)
	h := admin.New(g.gw, reg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// find returns the series of the family name whose labels include want,
// or nil.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; -1 when
// the series does not exist.
func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func metricValue(t *testing.T, g *gateway, name string, labels map[string]string) float64 {
	t.Helper()
	return value(find(scrape(t, g), name, labels))
}

func TestMetrics(t *testing.T) {
	var badHits atomic.Int64
	bad := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(503)
	})
	good := newBackend(t, nil)
	guarded := newBackend(t, nil)
	hold := make(chan struct{})
	entered := make(chan struct{}, 4)
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-hold
	})
	g := start(t, gatewayYAML(t, "")+
		backendYAML("b", "  circuitBreaker: {consecutiveFailures: 1, baseEjectionTime: 10m}\n", good, bad)+
		backendYAML("g", "", guarded)+
		backendYAML("slow", "  circuitBreaker: {maxConnections: 1, maxPendingRequests: 1}\n", slow)+
		routeYAML("r", `
    - matches: [{path: {value: /api}}]
      backendRefs: [{name: b}]
      retry: {maxRetries: 1, retryOn: [5xx], backoffBase: 1ms, backoffMax: 2ms}
    - name: guarded
      matches: [{path: {value: /guarded}}]
      backendRefs: [{name: g}]
    - matches: [{path: {value: /slow}}]
      backendRefs: [{name: slow}]
`)+policyYAML("guard", "{kind: ProxyRoute, name: r, sectionName: guarded}"))

	// /api: the bad endpoint answers 503 once, is retried on the good one
	// and ejected.
	for i := 0; i < 5; i++ {
		if resp := send(t, "GET", g.base+"/api", ""); resp.StatusCode != 200 {
			t.Fatalf("/api: %d", resp.StatusCode)
		}
	}
	// The guard denies two requests and lets one through.
	for _, deny := range []string{"1", "1", ""} {
		send(t, "GET", g.base+"/guarded", "", "X-Deny", deny)
	}
	send(t, "GET", g.base+"/nowhere", "")

	// The breaker: one request holds the only slot, one waits, a third is
	// refused.
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(g.base + "/slow")
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
		if i == 0 {
			<-entered
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for pending(g) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("second request never queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v := metricValue(t, g, "novaedge_http_requests_in_flight", nil); v != 2 {
		t.Errorf("in flight while two wait: %v", v)
	}
	if resp := send(t, "GET", g.base+"/slow", ""); resp.StatusCode != 503 {
		t.Errorf("third /slow: %d, want 503", resp.StatusCode)
	}
	close(hold)
	wg.Wait()
	for i := 0; i < 2; i++ {
		if c := <-codes; c != 200 {
			t.Errorf("/slow: %d", c)
		}
	}

	fams := scrape(t, g)
	retried := float64(badHits.Load())
	if retried < 1 {
		t.Fatal("the bad endpoint was never picked")
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/b", "code": "2xx"}, 5},
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/b", "code": "5xx"}, 0},
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/g", "code": "4xx"}, 2},
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/g", "code": "2xx"}, 1},
		{"novaedge_http_requests_total", map[string]string{"route": "", "backend": "", "code": "4xx"}, 1},
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/slow", "code": "2xx"}, 2},
		{"novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/slow", "code": "5xx"}, 1},
		{"novaedge_http_request_duration_seconds", map[string]string{"route": "t/r", "backend": "t/b"}, 5},
		{"novaedge_upstream_request_duration_seconds", map[string]string{"backend": "t/b"}, 5 + retried},
		{"novaedge_upstream_retries_total", map[string]string{"route": "t/r", "backend": "t/b"}, retried},
		{"novaedge_http_requests_in_flight", nil, 0},
		{"novaedge_policy_duration_seconds", map[string]string{"policy": "t/guard", "phase": "request"}, 3},
		{"novaedge_policy_duration_seconds", map[string]string{"policy": "t/guard", "phase": "response"}, 1},
		{"novaedge_backend_endpoint_ejected", map[string]string{"backend": "t/b", "endpoint": bad}, 1},
		{"novaedge_backend_endpoint_ejected", map[string]string{"backend": "t/b", "endpoint": good}, 0},
		{"novaedge_backend_endpoint_healthy", map[string]string{"backend": "t/b", "endpoint": bad}, 1},
		{"novaedge_backend_endpoints_available", map[string]string{"backend": "t/b"}, 1},
		{"novaedge_backend_ejections_total", map[string]string{"backend": "t/b"}, 1},
		{"novaedge_backend_breaker_rejections_total", map[string]string{"backend": "t/slow"}, 1},
		{"novaedge_backend_breaker_rejections_total", map[string]string{"backend": "t/b"}, 0},
		{"novaedge_backend_breaker_active", map[string]string{"backend": "t/slow"}, 0},
		{"novaedge_access_log_dropped_total", nil, 0},
		{"novaedge_access_log_write_errors_total", nil, 0},
		{"novaedge_cache_hits_total", nil, 0},
		{"novaedge_compression_bytes_in_total", nil, 0},
	} {
		if got := value(find(fams, tc.name, tc.labels)); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if v := value(find(fams, "novaedge_http_open_connections", nil)); v < 1 {
		t.Errorf("open connections %v while the client keeps one alive", v)
	}
	// Bounded labels: status classes only.
	for _, m := range fams["novaedge_http_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "code" {
				switch lp.GetValue() {
				case "none", "1xx", "2xx", "3xx", "4xx", "5xx":
				default:
					t.Errorf("code label %q", lp.GetValue())
				}
			}
		}
	}
}

func pending(g *gateway) int64 {
	for _, b := range g.gw.Status().Backends {
		if b.Name == "slow" {
			return b.Detail.Pending
		}
	}
	return -1
}
