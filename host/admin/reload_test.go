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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/reload"
)

// TestReload: POST /reload applies a changed configuration, does nothing
// for an unchanged one, and rejects a bad one with every problem while the
// running configuration keeps serving; the metrics count each result.
func TestReload(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	defer gw.Shutdown(context.Background())
	port := freePort(t)
	doc := func(route string) string {
		return fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: %s, namespace: ns}
spec:
  rules: [{redirect: {statusCode: 301, hostname: example.com}}]
`, port, route)
	}
	current := doc("a")
	load := func() (*configs.Snapshot, error) {
		return configs.LoadFiles([]configs.File{{Name: "r.yaml", Data: []byte(current)}})
	}
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := reload.New(gw, load, reload.Options{Registerer: reg, Logger: logger})
	s := New(gw, reg, logger)
	s.SetReloader(r)
	h := s.Handler()
	post := func() (int, reload.Report) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
		var rep reload.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("body %q", rec.Body)
		}
		return rec.Code, rep
	}

	if code, rep := post(); code != 200 || rep.Result != reload.Unchanged || rep.Hash != first.Hash {
		t.Errorf("unchanged: %d %+v", code, rep)
	}
	current = doc("b")
	code, rep := post()
	if code != 200 || rep.Result != reload.Applied || rep.Hash == first.Hash || gw.Snapshot().Hash != rep.Hash {
		t.Errorf("applied: %d %+v", code, rep)
	}
	applied := rep.Hash
	current = doc("c") + "  colour: blue\n---\nkind: Nope\n"
	code, rep = post()
	if code != 422 || rep.Result != reload.Rejected || len(rep.Problems) < 2 || rep.Hash != applied || gw.Snapshot().Hash != applied {
		t.Errorf("rejected: %d %+v (serving %s)", code, rep, gw.Snapshot().Hash)
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), "colour") {
		t.Errorf("problems %v", rep.Problems)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/reload", nil))
	if !strings.Contains(rec.Body.String(), `"result": "rejected"`) {
		t.Errorf("GET /reload: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`novaedge_config_reloads_total{result="applied"} 1`,
		`novaedge_config_reloads_total{result="unchanged"} 1`,
		`novaedge_config_reloads_total{result="rejected"} 1`,
		`novaedge_config_hash{hash="` + applied + `"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(rec.Body.String(), first.Hash) {
		t.Error("the replaced configuration's hash is still reported")
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	var st struct {
		Hash   string
		Reload struct {
			Last, LastRejected *reload.Report
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Hash != applied || st.Reload.LastRejected == nil || !strings.Contains(strings.Join(st.Reload.LastRejected.Problems, "\n"), "colour") {
		t.Errorf("/status does not show the last rejected change: %s", rec.Body)
	}
}

// TestPutConfig: PUT /config replaces the configuration with the set in
// the body; If-Match makes it conditional on the hash it was based on, and
// a bad set is rejected whole while the running one keeps serving.
func TestPutConfig(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	defer gw.Shutdown(context.Background())
	port := freePort(t)
	doc := func(status int) string {
		return fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyRoute
metadata: {name: r, namespace: ns}
spec:
  rules: [{redirect: {statusCode: %d, hostname: example.com}}]
`, port, status)
	}
	files := doc(301)
	load := func() (*configs.Snapshot, error) {
		return configs.LoadFiles([]configs.File{{Name: "r.yaml", Data: []byte(files)}})
	}
	first, _ := load()
	if err := gw.Apply(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	s := New(gw, nil, logger)
	s.SetReloader(reload.New(gw, load, reload.Options{Logger: logger}))
	h := s.Handler()
	put := func(body, ifMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("PUT", "/config", strings.NewReader(body))
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	redirect := func() int {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	etag := `"` + first.Hash + `"`

	for _, tc := range []struct {
		name, body, ifMatch string
		code                int
		serving             int // the redirect status afterwards
	}{
		{"stale If-Match", doc(302), `"0000"`, 412, 301},
		{"weak ETag", doc(302), `W/` + etag, 400, 301},
		{"invalid set", doc(302) + "  colour: blue\n", etag, 422, 301},
		{"not YAML", "{{{", etag, 422, 301},
		{"conditional", doc(302), etag, 200, 302},
		{"same If-Match again: someone changed it", doc(307), etag, 412, 302},
		{"unconditional", doc(308), "", 200, 308},
		{"same set: unchanged", doc(308), "*", 200, 308},
	} {
		rec := put(tc.body, tc.ifMatch)
		if rec.Code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.name, rec.Code, tc.code, rec.Body)
		}
		if got := redirect(); got != tc.serving {
			t.Errorf("%s: serving %d, want %d", tc.name, got, tc.serving)
		}
		if tc.code == 200 && rec.Header().Get("ETag") != `"`+gw.Snapshot().Hash+`"` {
			t.Errorf("%s: ETag %q, serving %s", tc.name, rec.Header().Get("ETag"), gw.Snapshot().Hash)
		}
	}
	// The pushed set serves until the files are reloaded.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
	if rec.Code != 200 || redirect() != 301 {
		t.Errorf("POST /reload after a push: %d, serving %d", rec.Code, redirect())
	}
}

func TestReloadPluginNotFound(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := proxy.New(proxy.Options{Logger: logger})
	defer gw.Shutdown(context.Background())
	snap, err := configs.LoadFiles([]configs.File{{Name: "r.yaml", Data: []byte(fmt.Sprintf(`apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: gw, namespace: ns}
spec:
  listeners: [{name: http, address: 127.0.0.1, port: %d, protocol: HTTP}]
`, freePort(t)))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	s := New(gw, nil, logger)
	s.SetReloader(reload.New(gw, nil, reload.Options{Logger: logger}))
	for _, path := range []string{"/plugins/nope/reload", "/plugins/ns/nope/reload"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "no such policy") {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

func TestReloadNotEnabled(t *testing.T) {
	s := New(proxy.New(proxy.Options{}), nil, nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
	if rec.Code != 501 {
		t.Errorf("status %d", rec.Code)
	}
}

func FuzzParseETag(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, `""`, `"a,b"`, `"`, `*`, `"a"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, ok := parseETag(s)
		if !ok {
			return
		}
		if `"`+tag+`"` != s || strings.ContainsAny(tag, `",`) {
			t.Fatalf("parseETag(%q) = %q", s, tag)
		}
	})
}
