package apigateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestService(t *testing.T) {
	srv := httptest.NewServer(NewService("users"))
	defer srv.Close()

	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		header     http.Header
		wantStatus int
		// check inspects the body of a 2xx–5xx JSON answer.
		check func(t *testing.T, body []byte)
	}{
		{
			name:       "echo",
			method:     "POST",
			target:     "/api/v1/users/42?x=1&y=2",
			body:       strings.Repeat("a", 1234),
			header:     http.Header{"X-Request-Id": {"req-1"}, "X-Multi": {"a", "b"}},
			wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var e Echo
				mustJSON(t, body, &e)
				if e.Service != "users" || e.Method != "POST" || e.Path != "/api/v1/users/42" ||
					e.Query != "x=1&y=2" || e.BodyBytes != 1234 || e.RemoteAddr == "" ||
					!strings.HasPrefix(e.Host, "127.0.0.1:") {
					t.Errorf("echo = %+v", e)
				}
				if got := e.Headers["X-Request-Id"]; got != "req-1" {
					t.Errorf("X-Request-Id = %q, want req-1", got)
				}
				if got := e.Headers["X-Multi"]; got != "a, b" {
					t.Errorf("X-Multi = %q, want %q", got, "a, b")
				}
			},
		},
		{
			name: "echo any path", method: "GET", target: "/anything/else", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var e Echo
				mustJSON(t, body, &e)
				if e.Path != "/anything/else" || e.BodyBytes != 0 {
					t.Errorf("echo = %+v", e)
				}
			},
		},
		{
			name: "healthz", method: "GET", target: "/healthz", wantStatus: 200,
			check: func(t *testing.T, body []byte) {
				var m map[string]string
				mustJSON(t, body, &m)
				if m["status"] != "ok" || len(m) != 1 {
					t.Errorf("healthz = %v", m)
				}
			},
		},
		{name: "healthz POST", method: "POST", target: "/healthz", wantStatus: 405},
		{name: "status 201", method: "POST", target: "/api/v1/users/status/201", wantStatus: 201, check: wantService("users")},
		{name: "status 503", method: "GET", target: "/api/v1/orders/status/503", wantStatus: 503, check: wantService("users")},
		{name: "status 204", method: "GET", target: "/api/v1/users/status/204", wantStatus: 204},
		{name: "status invalid", method: "GET", target: "/api/v1/users/status/99", wantStatus: 400},
		{name: "status not a number", method: "GET", target: "/api/v1/users/status/abc", wantStatus: 400},
		{name: "slow", method: "GET", target: "/api/v1/users/slow?ms=10", wantStatus: 200, check: wantService("users")},
		{name: "slow too long", method: "GET", target: "/api/v1/users/slow?ms=10001", wantStatus: 400},
		{name: "slow negative", method: "GET", target: "/api/v1/users/slow?ms=-1", wantStatus: 400},
		{name: "sse too many", method: "GET", target: "/api/v1/users/sse?n=1001", wantStatus: 400},
		{name: "sse POST", method: "POST", target: "/api/v1/users/sse", wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != 204 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if !json.Valid(body) {
					t.Errorf("body is not JSON: %s", body)
				}
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func wantService(name string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		var e Echo
		mustJSON(t, body, &e)
		if e.Service != name {
			t.Errorf("service = %q, want %q", e.Service, name)
		}
	}
}

func mustJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

func TestServiceSlowHonorsCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/users/slow?ms=10000", nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewService("users").ServeHTTP(rec, req)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // far below the 10s asked for
		t.Fatal("slow handler did not return after its context was cancelled")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("cancelled slow request wrote %q", rec.Body)
	}
}

func TestServiceSSE(t *testing.T) {
	srv := httptest.NewServer(NewService("products"))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/v1/products/sse?n=3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, data)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3: %q", len(events), events)
	}
	for i, data := range events {
		var ev struct {
			Service string `json:"service"`
			Seq     int    `json:"seq"`
		}
		mustJSON(t, []byte(data), &ev)
		if ev.Service != "products" || ev.Seq != i+1 {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
}

func TestServiceSSEHonorsCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/users/sse?n=1000", nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewService("users").ServeHTTP(rec, req)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // 1000 events would take 100s
		t.Fatal("sse handler did not return after its context was cancelled")
	}
}

func TestStartServices(t *testing.T) {
	// Port 0: the test must not depend on 18081–18083 being free.
	svcs := []Service{{Name: "a", Addr: "127.0.0.1:0"}, {Name: "b", Addr: "127.0.0.1:0"}}
	stop, err := StartServices(context.Background(), svcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // a second stop is a no-op

	// A taken address is an error that names it, and nothing stays bound.
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	_, err = StartServices(context.Background(), []Service{{Name: "free", Addr: "127.0.0.1:0"}, {Name: "users", Addr: taken}}, nil)
	if err == nil || !strings.Contains(err.Error(), taken) || !strings.Contains(err.Error(), `"users"`) {
		t.Fatalf("err = %v, want one naming %s and \"users\"", err, taken)
	}
}

func TestStartServicesServesUntilCtxDone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := StartServices(ctx, []Service{{Name: "users", Addr: addr}}, nil)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz status %d", resp.StatusCode)
	}
	cancel()
	stop() // waits for the shutdown that cancel started
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("service still answers after ctx was cancelled")
	}
}
