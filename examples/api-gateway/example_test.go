package apigateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
	apigateway "github.com/novaedge/novaedge/examples/api-gateway"
	"github.com/novaedge/novaedge/host/proxy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestExampleEndToEnd runs the example as `make run` does — the three demo
// services and the gateway on the embedded resources — on free ports, and
// walks through the README's requests.
func TestExampleEndToEnd(t *testing.T) {
	svcs := apigateway.Services()
	gwAddr := freeAddr(t)
	_, gwPort, _ := net.SplitHostPort(gwAddr)
	replace := []string{"port: 8080", "port: " + gwPort}
	for i := range svcs {
		addr := freeAddr(t)
		replace = append(replace, svcs[i].Addr, addr)
		svcs[i].Addr = addr
	}
	r := strings.NewReplacer(replace...)
	var files []configs.File
	for _, f := range apigateway.Files() {
		files = append(files, configs.File{Name: f.Name, Data: []byte(r.Replace(string(f.Data)))})
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := apigateway.StartServices(context.Background(), svcs, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	snap, err := configs.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	gw := proxy.New(proxy.Options{Logger: logger})
	if err := gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	}()
	base := "http://" + gwAddr
	client := &http.Client{Timeout: 10 * time.Second}

	type echo struct {
		Service string            `json:"service"`
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Host    string            `json:"host"`
		Headers map[string]string `json:"headers"`
	}
	tests := []struct {
		name, method, path, host string
		body                     string
		wantStatus               int
		wantService              string
	}{
		{"users by localhost", "GET", "/api/v1/users/42", "localhost", "", 200, "users"},
		{"orders by api.example.com", "GET", "/api/v1/orders", "api.example.com", "", 200, "orders"},
		{"products GET", "GET", "/api/v1/products", "api.example.com", "", 200, "products"},
		{"products is GET only", "POST", "/api/v1/products", "api.example.com", "x", 404, ""},
		{"prefix is segment aware", "GET", "/api/v1/usersX", "localhost", "", 404, ""},
		{"unknown host", "GET", "/api/v1/users", "evil.example.org", "", 404, ""},
		{"users body limit is 1Mi", "POST", "/api/v1/users", "localhost", strings.Repeat("a", 1<<20+1), 413, ""},
		{"orders accepts 2 MB (5Mi limit)", "POST", "/api/v1/orders", "localhost", strings.Repeat("a", 2<<20), 200, "orders"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Host = tc.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantService == "" {
				var e struct {
					Error     string `json:"error"`
					Status    int    `json:"status"`
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Status != tc.wantStatus || e.RequestID == "" {
					t.Errorf("gateway error body %q", body)
				}
				return
			}
			var got echo
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.Service != tc.wantService || got.Path != tc.path || got.Method != tc.method {
				t.Errorf("echo %+v", got)
			}
			if got.Headers["X-Request-Id"] == "" || got.Headers["X-Request-Id"] != resp.Header.Get("X-Request-Id") {
				t.Errorf("request id: backend %q, client %q", got.Headers["X-Request-Id"], resp.Header.Get("X-Request-Id"))
			}
		})
	}

	t.Run("server-sent events stream through", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/users/sse?n=3", nil)
		req.Host = "localhost"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				events++
			}
		}
		if events != 3 {
			t.Errorf("got %d events", events)
		}
	})

	t.Run("status reports the reference", func(t *testing.T) {
		st := gw.Status()
		if len(st.Routes) != 3 || len(st.Backends) != 3 || len(st.Policies) != 4 {
			t.Fatalf("status: %d routes, %d backends, %d policies", len(st.Routes), len(st.Backends), len(st.Policies))
		}
		for _, b := range st.Backends {
			if b.Total != 1 || b.Healthy != 1 {
				t.Errorf("backend %s: %d/%d healthy", b.Name, b.Healthy, b.Total)
			}
		}
		for _, p := range st.Policies {
			if p.State != "NotActiveYet" {
				t.Errorf("policy %s state %q", p.Name, p.State)
			}
		}
		inactive := fmt.Sprint(st.Inactive)
		for _, want := range []string{"spec.compression", "spec.cache", "spec.tracing", "spec.accessLog", "RateLimit", "JWT", "CORS", "SecurityHeaders"} {
			if !strings.Contains(inactive, want) {
				t.Errorf("not-active list lacks %s: %s", want, inactive)
			}
		}
	})
}
