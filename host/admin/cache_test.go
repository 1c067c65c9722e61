package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
)

// TestCachePurge: POST /cache/purge empties a real gateway's cache by key
// prefix and says how many responses went.
func TestCachePurge(t *testing.T) {
	var hits atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	}))
	defer be.Close()
	port := freePort(t)
	snap, err := configs.LoadFiles([]configs.File{{Name: "c.yaml", Data: []byte(fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
  cache: {enabled: true, maxSize: 1Mi}
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: be, namespace: ns}
spec:
  endpoints: [{address: %q}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules: [{backendRefs: [{name: be}]}]
`, port, strings.TrimPrefix(be.URL, "http://")))}})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	h := New(gw, nil, logger).Handler()

	fetch := func(path string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = "api.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("X-Cache"), string(body)
	}
	purge := func(query string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/cache/purge"+query, nil))
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}

	for _, p := range []string{"/users/1", "/users/2", "/orders/1"} {
		fetch(p)
	}
	if x, b := fetch("/users/1"); x != "HIT" || b != "/users/1 #1" {
		t.Fatalf("before purge: %s %q", x, b)
	}
	if code, out := purge("?prefix=api.example.com/users/&gateway=ns/gw"); code != 200 || out["purged"] != float64(2) {
		t.Fatalf("purge by prefix: %d %v", code, out)
	}
	if x, b := fetch("/users/1"); x != "MISS" || b != "/users/1 #4" {
		t.Errorf("after purge: %s %q", x, b)
	}
	if x, _ := fetch("/orders/1"); x != "HIT" {
		t.Errorf("a response outside the prefix went: %s", x)
	}
	if code, out := purge("?gateway=ns/other"); code != 404 {
		t.Errorf("unknown gateway: %d %v", code, out)
	}
	if code, out := purge(""); code != 200 || out["purged"] != float64(2) {
		t.Errorf("purge all: %d %v", code, out)
	}
	if x, _ := fetch("/orders/1"); x != "MISS" {
		t.Errorf("after purging all: %s", x)
	}
}
