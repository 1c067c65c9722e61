package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestResponseHeaderTimeout: an endpoint that sends no response headers
// within the backend's responseHeaderTimeout of the request being sent
// gets 504 and counts as a timeout (finding 5 of issue 11): here one
// such timeout ejects it. The clock starts once the whole request is
// sent, so a client's slow body is not the endpoint's time.
func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "ok")
	}
	// Two endpoints: outlier detection never ejects more than half.
	b1, b2 := newBackend(t, h), newBackend(t, h)
	g, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "")+backendYAML("b", b1.addr(), b2.addr())+`  responseHeaderTimeout: 1s
  circuitBreaker: {consecutiveFailures: 1, maxEjectionPercent: 100}
`+route(`
    - backendRefs: [{name: b}]
`), Options{})

	// A slow body: three parts 400ms apart, longer in all than the
	// timeout; the backend answers as soon as it has it.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\n")
	for _, part := range []string{"ab", "cd", "ef"} {
		time.Sleep(400 * time.Millisecond)
		io.WriteString(conn, part)
	}
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
		t.Fatalf("slow body: %q", b)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/stall")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second { // a safety bound, not a measure
		t.Errorf("answered after %s", d)
	}
	ejected := false
	for _, bs := range g.backendStatuses() {
		for _, ep := range bs.Endpoints {
			ejected = ejected || ep.Ejections > 0
		}
	}
	if !ejected {
		t.Error("the timeout was not counted against the endpoint")
	}
}
