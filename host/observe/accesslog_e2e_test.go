package observe_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// logLine is an access log line as JSON.
type logLine struct {
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id"`
	TraceID     string    `json:"trace_id"`
	ClientIP    string    `json:"client_ip"`
	Method      string    `json:"method"`
	Host        string    `json:"host"`
	Path        string    `json:"path"`
	Protocol    string    `json:"protocol"`
	Status      int       `json:"status"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
	DurationMS  *float64  `json:"duration_ms"`
	UpstreamMS  *float64  `json:"upstream_ms"`
	Route       string    `json:"route"`
	Backend     string    `json:"backend"`
	Endpoint    string    `json:"endpoint"`
	Attempts    int       `json:"attempts"`
	ClientError string    `json:"client_error"`
	Cache       *string   `json:"cache"`
	RejectedBy  string    `json:"rejected_by"`
}

// parseLines decodes every line strictly (unknown fields are an error) and
// indexes them by request ID.
func parseLines(t *testing.T, out string) map[string]logLine {
	t.Helper()
	lines := map[string]logLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l logLine
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.DurationMS == nil || l.UpstreamMS == nil || l.Cache == nil {
			t.Errorf("line lacks a field: %q", sc.Text())
		}
		if _, dup := lines[l.RequestID]; dup {
			t.Errorf("two lines for request %q", l.RequestID)
		}
		lines[l.RequestID] = l
	}
	return lines
}

func TestAccessLogJSON(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		var n int
		buf := make([]byte, 1024)
		for {
			k, err := r.Body.Read(buf)
			n += k
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "read %d", n) // "read 5" for the POST: 6 bytes
	})
	g := start(t, gatewayYAML(t, `  trustedProxies: [127.0.0.1/32]
  accessLog: {enabled: true, format: json, excludePaths: [/healthz, /static/]}
`)+backendYAML("b", "", be)+routeYAML("r", `
    - matches: [{path: {value: /}}]
      backendRefs: [{name: b}]
    - name: guarded
      matches: [{path: {value: /guarded}}]
      backendRefs: [{name: b}]
`)+policyYAML("guard", "{kind: ProxyRoute, name: r}"))

	before := time.Now().Add(-time.Second)
	type req struct {
		id, method, path, body string
		hdr                    []string
		status                 int
	}
	reqs := []req{
		{"get", "GET", "/api/users", "", []string{"X-Forwarded-For", "203.0.113.7"}, 200},
		{"post", "POST", "/api/users", "hello", nil, 200},
		{"denied", "GET", "/guarded/x", "", []string{"X-Deny", "1"}, 403},
		{"failed", "GET", "/guarded/y", "", []string{"X-Fail", "1"}, 503},
		{"healthz", "GET", "/healthz", "", nil, 200},
		{"healthz-below", "GET", "/healthz/live", "", nil, 200},
		{"healthzz", "GET", "/healthzz", "", nil, 200},
		{"static", "GET", "/static/app.js", "", nil, 200},
		{"unknown-host", "GET", "/x", "", []string{"Host", "other.example"}, 200},
	}
	for _, rq := range reqs {
		resp := send(t, rq.method, g.base+rq.path, rq.body, append(rq.hdr, "X-Request-Id", rq.id)...)
		if resp.StatusCode != rq.status {
			t.Fatalf("%s: status %d, want %d", rq.id, resp.StatusCode, rq.status)
		}
	}
	g.shutdown(t)
	lines := parseLines(t, g.log.String())

	for _, excluded := range []string{"healthz", "healthz-below", "static"} {
		if l, ok := lines[excluded]; ok {
			t.Errorf("excluded path logged: %+v", l)
		}
	}
	if len(lines) != 6 {
		t.Errorf("%d lines, want 6: %v", len(lines), lines)
	}
	get := lines["get"]
	switch {
	case get.ClientIP != "203.0.113.7":
		t.Errorf("client_ip %q: want the client behind the trusted proxy", get.ClientIP)
	case get.Method != "GET" || get.Path != "/api/users" || get.Protocol != "HTTP/1.1" || !strings.HasPrefix(get.Host, "127.0.0.1:"):
		t.Errorf("request fields: %+v", get)
	case get.Status != 200 || get.BytesOut != int64(len("read 0")) || get.BytesIn != 0:
		t.Errorf("response fields: %+v", get)
	case get.Route != "t/r" || get.Backend != "t/b" || get.Endpoint != be || get.Attempts != 1:
		t.Errorf("routing fields: %+v", get)
	case get.Time.Before(before) || get.Time.After(time.Now()) || *get.DurationMS <= 0 || *get.UpstreamMS <= 0 || *get.UpstreamMS > *get.DurationMS:
		t.Errorf("times: %+v (duration %v, upstream %v)", get, *get.DurationMS, *get.UpstreamMS)
	case get.TraceID != "" || get.RejectedBy != "" || *get.Cache != "":
		t.Errorf("fields that should be empty: %+v", get)
	}
	if post := lines["post"]; post.BytesIn != 5 || post.BytesOut != int64(len("read 5")) || post.ClientIP != "127.0.0.1" {
		t.Errorf("post: %+v", post)
	}
	if d := lines["denied"]; d.Status != 403 || d.RejectedBy != "t/guard" || d.Attempts != 0 || d.Endpoint != "" || *d.UpstreamMS != 0 || d.BytesOut != int64(len("denied")) {
		t.Errorf("denied: %+v", d)
	}
	if f := lines["failed"]; f.Status != 503 || f.RejectedBy != "t/guard" || f.Attempts != 0 {
		t.Errorf("failed: %+v", f)
	}
	if h := lines["healthzz"]; h.Status != 200 || h.Path != "/healthzz" {
		t.Errorf("/healthzz is not below /healthz and must be logged: %+v", h)
	}
	// A host no listener takes goes to the port's gateway's log; this
	// listener takes every host, so it is routed like any other.
	if u := lines["unknown-host"]; u.Host != "other.example" || u.Route != "t/r" {
		t.Errorf("unknown-host: %+v", u)
	}
}

func TestAccessLogSampling(t *testing.T) {
	be := newBackend(t, nil)
	for _, tc := range []struct {
		name  string
		rate  string
		lines int
	}{
		{"rate 0 logs nothing", "0", 0},
		{"rate 100 logs everything", "100", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := start(t, gatewayYAML(t, "  accessLog: {enabled: true, sampleRate: "+tc.rate+"}\n")+
				backendYAML("b", "", be)+routeYAML("r", "    - backendRefs: [{name: b}]\n"))
			for i := 0; i < 20; i++ {
				send(t, "GET", g.base+"/", "", "X-Request-Id", fmt.Sprint("req-", i))
			}
			g.shutdown(t)
			lines := parseLines(t, g.log.String())
			if len(lines) != tc.lines {
				t.Errorf("%d lines, want %d", len(lines), tc.lines)
			}
			if n := metricValue(t, g, "novaedge_http_requests_total", map[string]string{"route": "t/r", "backend": "t/b", "code": "2xx"}); n != 20 {
				t.Errorf("sampling must not change the metrics: %v requests counted", n)
			}
		})
	}
}

func TestAccessLogText(t *testing.T) {
	be := newBackend(t, nil)
	g := start(t, gatewayYAML(t, "  accessLog: {enabled: true, format: text}\n")+
		backendYAML("b", "", be)+routeYAML("r", "    - backendRefs: [{name: b}]\n"))
	send(t, "GET", g.base+"/a%20b", "", "X-Request-Id", "text-1")
	g.shutdown(t)
	out := g.log.String()
	for _, want := range []string{"request_id=text-1 ", `trace_id="" `, "client_ip=127.0.0.1 ", `path="/a b" `, "status=200 ", "bytes_out=5 ", "route=t/r ", "backend=t/b ", `cache="" rejected_by=""` + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("text line lacks %q: %s", want, out)
		}
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one line: %q", out)
	}
}

// TestAccessLogUpgradeAndStream: the writer that captures the status keeps
// Hijack (WebSocket) and Flush (server-sent events) working.
func TestAccessLogUpgradeAndStream(t *testing.T) {
	step := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-step // the client must see the first event before the second is written
		fmt.Fprint(w, "data: two\n\n")
	})
	g := start(t, gatewayYAML(t, "  accessLog: {enabled: true}\n")+
		backendYAML("b", "", be)+routeYAML("r", "    - backendRefs: [{name: b}]\n"))

	// WebSocket: 101, then bytes both ways.
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nX-Request-Id: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "hello\n")
	if got, err := br.ReadString('\n'); got != "HELLO\n" {
		t.Fatalf("echo %q %v", got, err)
	}
	conn.Close()

	// Server-sent events: the first event arrives while the backend holds
	// the second.
	req, _ := http.NewRequest("GET", g.base+"/events", nil)
	req.Header.Set("X-Request-Id", "sse")
	sresp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sr := bufio.NewReader(sresp.Body)
	if line, err := sr.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first event %q %v", line, err)
	}
	close(step)
	rest, _ := io.ReadAll(sr)
	sresp.Body.Close()
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("second event missing: %q", rest)
	}

	g.shutdown(t)
	lines := parseLines(t, g.log.String())
	if ws := lines["ws"]; ws.Status != 101 || ws.Path != "/ws" {
		t.Errorf("websocket line: %+v", ws)
	}
	if s := lines["sse"]; s.Status != 200 || s.BytesOut != int64(len("data: one\n\ndata: two\n\n")) {
		t.Errorf("sse line: %+v", s)
	}
}
