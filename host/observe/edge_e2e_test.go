package observe_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCacheAndCompressionObserved: the cache's hits, misses and stores and
// the compressor's bytes reach /metrics, and each access log line says
// whether the cache served it.
func TestCacheAndCompressionObserved(t *testing.T) {
	body := strings.Repeat(`{"id":1,"name":"a fairly repetitive JSON body"},`, 100)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write([]byte(body))
	})
	g := start(t, gatewayYAML(t, `  cache: {enabled: true, maxSize: 1Mi, maxEntrySize: 64Ki}
  compression: {enabled: true, algorithms: [gzip]}
  accessLog: {enabled: true}
`)+backendYAML("b", "", be)+routeYAML("r", `
    - backendRefs: [{name: b}]
`))
	for _, id := range []string{"first", "second", "third"} {
		resp := send(t, "GET", g.base+"/list", "", "Accept-Encoding", "gzip", "X-Request-Id", id)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", id, resp.StatusCode)
		}
	}
	send(t, "POST", g.base+"/list", "x", "X-Request-Id", "post")

	for _, tc := range []struct {
		name string
		want float64
	}{
		{"novaedge_cache_misses_total", 1},
		{"novaedge_cache_hits_total", 2},
		{"novaedge_cache_stores_total", 1},
	} {
		if got := metricValue(t, g, tc.name, nil); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := metricValue(t, g, "novaedge_compression_responses_total", map[string]string{"encoding": "gzip"}); n < 3 {
		t.Errorf("gzip responses %v, want at least 3", n)
	}
	in := metricValue(t, g, "novaedge_compression_bytes_in_total", nil)
	out := metricValue(t, g, "novaedge_compression_bytes_out_total", nil)
	if in < 3*float64(len(body)) || out <= 0 || out >= in/4 {
		t.Errorf("compression bytes in %v out %v (body %d bytes, 3 responses)", in, out, len(body))
	}

	g.shutdown(t)
	lines := parseLines(t, g.log.String())
	for id, want := range map[string]string{"first": "miss", "second": "hit", "third": "hit", "post": "bypass"} {
		if l, ok := lines[id]; !ok || l.Cache == nil || *l.Cache != want {
			t.Errorf("%s: access log cache %v, want %q", id, l.Cache, want)
		}
	}
}
