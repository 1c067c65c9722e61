package observe_test

import (
	"net/http"
	"testing"
)

// TestCacheRevalidationObserved: a response the cache revalidated (the
// upstream answered 304) is logged as "revalidated" and counted as a hit;
// its re-store is not counted as a store.
func TestCacheRevalidationObserved(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("body"))
	})
	g := start(t, gatewayYAML(t, `  cache: {enabled: true}
  accessLog: {enabled: true}
`)+backendYAML("b", "", be)+routeYAML("r", `
    - backendRefs: [{name: b}]
`))
	for _, id := range []string{"first", "second"} {
		if resp := send(t, "GET", g.base+"/doc", "", "X-Request-Id", id); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", id, resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"novaedge_cache_misses_total", 1},
		{"novaedge_cache_hits_total", 1},
		{"novaedge_cache_stores_total", 1},
	} {
		if got := metricValue(t, g, tc.name, nil); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	g.shutdown(t)
	lines := parseLines(t, g.log.String())
	for id, want := range map[string]string{"first": "miss", "second": "revalidated"} {
		if l, ok := lines[id]; !ok || l.Cache == nil || *l.Cache != want {
			t.Errorf("%s: access log cache %v, want %q", id, l.Cache, want)
		}
	}
}
