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
	"testing"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/gwtest"
	"github.com/novaedge/novaedge/host/proxy"
)

func freePort(t *testing.T) int { return gwtest.FreePort(t) }

func TestAdminAPI(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	s := New(gw, nil, logger)
	h := s.Handler()
	call := func(method, path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	// Before any configuration.
	for _, tc := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 503}, {"/config", 503}, {"/status", 503}} {
		if rec := call("GET", tc.path); rec.Code != tc.want {
			t.Errorf("before config: %s = %d, want %d", tc.path, rec.Code, tc.want)
		}
	}

	snap, err := configs.LoadFiles([]configs.File{{Name: "a.yaml", Data: []byte(fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: be, namespace: ns}
spec:
  endpoints: [{address: "127.0.0.1:1"}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules: [{backendRefs: [{name: be}]}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: cors, namespace: ns}
spec:
  type: CORS
  targetRef: {kind: ProxyGateway, name: gw}
  cors: {allowOrigins: ["https://app.example.com"]}
`, freePort(t)))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())

	if rec := call("GET", "/readyz"); rec.Code != 503 {
		t.Errorf("readyz before SetReady = %d", rec.Code)
	}
	s.SetReady(true)
	if rec := call("GET", "/readyz"); rec.Code != 200 {
		t.Errorf("readyz = %d", rec.Code)
	}

	rec := call("GET", "/config")
	if rec.Code != 200 || rec.Header().Get("ETag") != `"`+snap.Hash+`"` {
		t.Fatalf("config: %d etag %q", rec.Code, rec.Header().Get("ETag"))
	}
	var cfg configs.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil || cfg.Hash != snap.Hash || len(cfg.Routes) != 1 {
		t.Errorf("config body: %v %+v", err, cfg)
	}
	if rec := call("GET", "/config", "If-None-Match", `"`+snap.Hash+`"`); rec.Code != 304 {
		t.Errorf("conditional config = %d", rec.Code)
	}

	rec = call("GET", "/status")
	var st proxy.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Hash != snap.Hash || len(st.Gateways) != 1 || st.Gateways[0].Listeners[0].State != "Serving" ||
		len(st.Backends) != 1 || st.Backends[0].Total != 1 || len(st.Policies) != 1 || st.Policies[0].State != "NotActiveYet" {
		t.Errorf("status %+v", st)
	}
	if rec := call("POST", "/status"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status = %d", rec.Code)
	}
	rec = call("GET", "/metrics")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "go_goroutines ") {
		t.Errorf("metrics: %d %.200s", rec.Code, rec.Body.String())
	}
	s.SetReady(false)
	if rec := call("GET", "/readyz"); rec.Code != 503 {
		t.Errorf("readyz while draining = %d", rec.Code)
	}
}
