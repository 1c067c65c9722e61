package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
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
	r := NewReloader(gw, load, reg, logger)
	s := New(gw, reg, logger)
	s.SetReloader(r)
	h := s.Handler()
	post := func() (int, ReloadReport) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
		var rep ReloadReport
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("body %q", rec.Body)
		}
		return rec.Code, rep
	}

	if code, rep := post(); code != 200 || rep.Result != ReloadUnchanged || rep.Hash != first.Hash {
		t.Errorf("unchanged: %d %+v", code, rep)
	}
	current = doc("b")
	code, rep := post()
	if code != 200 || rep.Result != ReloadApplied || rep.Hash == first.Hash || gw.Snapshot().Hash != rep.Hash {
		t.Errorf("applied: %d %+v", code, rep)
	}
	applied := rep.Hash
	current = doc("c") + "  colour: blue\n---\nkind: Nope\n"
	code, rep = post()
	if code != 422 || rep.Result != ReloadRejected || len(rep.Problems) < 2 || rep.Hash != applied || gw.Snapshot().Hash != applied {
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
}

func TestReloadNotEnabled(t *testing.T) {
	s := New(proxy.New(proxy.Options{}), nil, nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/reload", nil))
	if rec.Code != 501 {
		t.Errorf("status %d", rec.Code)
	}
}
