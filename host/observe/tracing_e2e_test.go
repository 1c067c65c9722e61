package observe_test

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/novaedge/novaedge/configs"
)

// receiver is an OTLP/HTTP collector: it decodes the export requests
// (protobuf) and keeps their spans.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	paths []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad export", 400)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("export request: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		rc.mu.Lock()
		rc.paths = append(rc.paths, r.URL.Path)
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rc.spans = append(rc.spans, ss.GetSpans()...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// byTrace returns the received spans of trace id (hex).
func (rc *receiver) byTrace(id string) []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range rc.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.spans)
}

// seen is what a backend received: traceparent and tracestate.
type seen struct {
	mu   sync.Mutex
	tp   []string
	ts   []string
	fail atomic.Bool // answer the next request with 503
}

func (s *seen) handler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tp = append(s.tp, r.Header.Get("Traceparent"))
	s.ts = append(s.ts, r.Header.Get("Tracestate"))
	s.mu.Unlock()
	if s.fail.Swap(false) {
		w.WriteHeader(503)
		return
	}
	io.WriteString(w, "ok")
}

func (s *seen) reset() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tp, ts := s.tp, s.ts
	s.tp, s.ts = nil, nil
	return tp, ts
}

// traceparent splits a W3C traceparent into trace ID, parent ID, flags.
func traceparent(t *testing.T, v string) (trace, parent, flags string) {
	t.Helper()
	p := strings.Split(v, "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 {
		t.Fatalf("traceparent %q", v)
	}
	return p[1], p[2], p[3]
}

func TestTracingSpanTree(t *testing.T) {
	rc := newReceiver(t)
	s := &seen{}
	be1, be2 := newBackend(t, s.handler), newBackend(t, s.handler)
	g := start(t, gatewayYAML(t, "  tracing: {enabled: true, samplingRate: 100, endpoint: \""+rc.URL+"\"}\n  accessLog: {enabled: true}\n")+
		backendYAML("b", "", be1, be2)+routeYAML("r", `
    - backendRefs: [{name: b}]
      retry: {maxRetries: 1, retryOn: [5xx], backoffBase: 1ms, backoffMax: 2ms}
`)+policyYAML("guard", "{kind: ProxyRoute, name: r}"))

	const (
		tid = "4bf92f3577b34da6a3ce929d0e0e4736"
		pid = "00f067aa0ba902b7"
	)
	// 1. A traced client: the first attempt fails and is retried.
	s.fail.Store(true)
	if resp := send(t, "GET", g.base+"/api", "", "Traceparent", "00-"+tid+"-"+pid+"-01", "Tracestate", "vendor=x", "X-Request-Id", "traced"); resp.StatusCode != 200 {
		t.Fatalf("traced request: %d", resp.StatusCode)
	}
	tps, tss := s.reset()
	// 2. No trace context: the gateway starts a trace.
	send(t, "GET", g.base+"/api", "", "X-Request-Id", "fresh")
	freshTP, _ := s.reset()
	// 3. Denied by the policy: no upstream attempt.
	send(t, "GET", g.base+"/api", "", "X-Deny", "1", "X-Request-Id", "denied")
	g.shutdown(t) // exports what the batcher holds

	if len(tps) != 2 {
		t.Fatalf("backend saw %d attempts, want 2", len(tps))
	}
	attemptParents := map[string]bool{}
	for i, v := range tps {
		tr, parent, flags := traceparent(t, v)
		if tr != tid || flags != "01" {
			t.Errorf("attempt %d: traceparent %q: want trace %s, sampled", i, v, tid)
		}
		attemptParents[parent] = true
		if tss[i] != "vendor=x" {
			t.Errorf("attempt %d: tracestate %q", i, tss[i])
		}
	}

	spans := rc.byTrace(tid)
	var server *tracepb.Span
	for _, sp := range spans {
		if sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			if server != nil {
				t.Fatal("two server spans")
			}
			server = sp
		}
	}
	if server == nil {
		t.Fatalf("no server span among %d spans of the trace (%d received)", len(spans), rc.count())
	}
	if got := hex.EncodeToString(server.GetParentSpanId()); got != pid {
		t.Errorf("server span's parent %s, want the client's %s", got, pid)
	}
	if server.GetName() != "GET t/r" {
		t.Errorf("server span name %q", server.GetName())
	}
	serverID := hex.EncodeToString(server.GetSpanId())
	var clients, policies []*tracepb.Span
	for _, sp := range spans {
		if sp == server {
			continue
		}
		if hex.EncodeToString(sp.GetParentSpanId()) != serverID {
			t.Errorf("span %q is not a child of the server span", sp.GetName())
		}
		if sp.GetStartTimeUnixNano() < server.GetStartTimeUnixNano() || sp.GetEndTimeUnixNano() > server.GetEndTimeUnixNano() {
			t.Errorf("span %q is not within the server span", sp.GetName())
		}
		switch sp.GetKind() {
		case tracepb.Span_SPAN_KIND_CLIENT:
			clients = append(clients, sp)
			if !attemptParents[hex.EncodeToString(sp.GetSpanId())] {
				t.Errorf("client span %x is no traceparent the backend saw (%v)", sp.GetSpanId(), tps)
			}
		case tracepb.Span_SPAN_KIND_INTERNAL:
			policies = append(policies, sp)
			if sp.GetName() != "policy t/guard" {
				t.Errorf("internal span %q", sp.GetName())
			}
		}
	}
	if len(clients) != 2 || len(policies) != 2 || len(spans) != 5 {
		t.Errorf("%d spans: %d upstream attempts (want 2), %d policy callbacks (want request and response)", len(spans), len(clients), len(policies))
	}
	if len(clients) == 2 && statusAttr(clients[0])+statusAttr(clients[1]) != 503+200 {
		t.Errorf("attempts' statuses %d and %d, want 503 then 200", statusAttr(clients[0]), statusAttr(clients[1]))
	}

	// 2: a new trace, the backend got its context, the log line its ID.
	if len(freshTP) != 1 {
		t.Fatalf("fresh: backend saw %d requests", len(freshTP))
	}
	freshID, _, _ := traceparent(t, freshTP[0])
	fresh := rc.byTrace(freshID)
	if len(fresh) != 4 {
		t.Errorf("fresh trace has %d spans, want server, 2 policy, 1 attempt", len(fresh))
	}
	for _, sp := range fresh {
		if sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER && len(sp.GetParentSpanId()) != 0 {
			t.Errorf("a new trace's server span has a parent")
		}
	}
	lines := parseLines(t, g.log.String())
	if lines["fresh"].TraceID != freshID || lines["traced"].TraceID != tid {
		t.Errorf("access log trace IDs: fresh %q (want %s), traced %q (want %s)", lines["fresh"].TraceID, freshID, lines["traced"].TraceID, tid)
	}

	// 3: the policy answered; nothing went upstream.
	denied := rc.byTrace(lines["denied"].TraceID)
	kinds := map[tracepb.Span_SpanKind]int{}
	for _, sp := range denied {
		kinds[sp.GetKind()]++
		if sp.GetKind() == tracepb.Span_SPAN_KIND_SERVER && statusAttr(sp) != 403 {
			t.Errorf("denied server span status %d", statusAttr(sp))
		}
	}
	if kinds[tracepb.Span_SPAN_KIND_SERVER] != 1 || kinds[tracepb.Span_SPAN_KIND_INTERNAL] != 1 || kinds[tracepb.Span_SPAN_KIND_CLIENT] != 0 {
		t.Errorf("denied trace: %v", kinds)
	}
	rc.mu.Lock()
	for _, p := range rc.paths {
		if p != "/v1/traces" {
			t.Errorf("export to %q, want /v1/traces", p)
		}
	}
	rc.mu.Unlock()
}

func statusAttr(sp *tracepb.Span) int64 {
	for _, kv := range sp.GetAttributes() {
		if kv.GetKey() == "http.response.status_code" {
			return kv.GetValue().GetIntValue()
		}
	}
	return 0
}

// TestTracingSampling: at samplingRate 0 a request without context is
// not exported, yet its backend gets a (not sampled) traceparent; a
// sampled parent is followed.
func TestTracingSampling(t *testing.T) {
	rc := newReceiver(t)
	s := &seen{}
	be := newBackend(t, s.handler)
	g := start(t, gatewayYAML(t, "  tracing: {enabled: true, samplingRate: 0, endpoint: \""+rc.URL+"/v1/traces\"}\n")+
		backendYAML("b", "", be)+routeYAML("r", "    - backendRefs: [{name: b}]\n"))
	send(t, "GET", g.base+"/", "")
	const tid = "0af7651916cd43dd8448eb211c80319c"
	send(t, "GET", g.base+"/", "", "Traceparent", "00-"+tid+"-b7ad6b7169203331-01")
	g.shutdown(t)
	tps, _ := s.reset()
	if len(tps) != 2 {
		t.Fatalf("backend saw %d", len(tps))
	}
	unsampled, _, flags := traceparent(t, tps[0])
	if flags != "00" || len(rc.byTrace(unsampled)) != 0 {
		t.Errorf("rate 0: traceparent %q, %d spans exported", tps[0], len(rc.byTrace(unsampled)))
	}
	if tr, _, flags := traceparent(t, tps[1]); tr != tid || flags != "01" || len(rc.byTrace(tid)) != 2 {
		t.Errorf("sampled parent: traceparent %q, %d spans exported (want server and attempt)", tps[1], len(rc.byTrace(tid)))
	}
	if rc.count() != 2 {
		t.Errorf("%d spans exported in all", rc.count())
	}
}

// TestTracingWithoutCollector: no endpoint and no OTEL_EXPORTER_OTLP_*
// variable: trace context is still created and propagated.
func TestTracingWithoutCollector(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	s := &seen{}
	be := newBackend(t, s.handler)
	g := start(t, gatewayYAML(t, "  tracing: {enabled: true}\n  accessLog: {enabled: true}\n")+
		backendYAML("b", "", be)+routeYAML("r", "    - backendRefs: [{name: b}]\n"))
	send(t, "GET", g.base+"/", "", "X-Request-Id", "no-collector")
	g.shutdown(t)
	tps, _ := s.reset()
	if len(tps) != 1 {
		t.Fatalf("backend saw %d", len(tps))
	}
	tr, _, flags := traceparent(t, tps[0])
	if flags != "01" || parseLines(t, g.log.String())["no-collector"].TraceID != tr {
		t.Errorf("traceparent %q; log %s", tps[0], g.log.String())
	}
}

// TestTracingFlushedOnConfigChange: a change retires the generation; its
// tracer exports the spans it held without waiting for its batch timer
// or for the gateway to stop.
func TestTracingFlushedOnConfigChange(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000") // the batcher's timer never fires here: only a flush exports
	rc := newReceiver(t)
	be := newBackend(t, nil)
	gwYAML := gatewayYAML(t, "  tracing: {enabled: true, endpoint: \""+rc.URL+"\"}\n")
	rest := backendYAML("b", "", be) + routeYAML("r", "    - backendRefs: [{name: b}]\n")
	g := start(t, gwYAML+rest)
	const tid = "5bf92f3577b34da6a3ce929d0e0e4736"
	send(t, "GET", g.base+"/", "", "Traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
	if n := len(rc.byTrace(tid)); n != 0 {
		t.Fatalf("%d spans exported before any flush", n)
	}
	snap, err := configs.LoadFiles([]configs.File{{Name: "test.yaml", Data: []byte(strings.Replace(gwYAML, "tracing:", "accessLog: {enabled: true}\n  tracing:", 1) + rest)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.gw.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.byTrace(tid)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("spans of the retired generation not exported: %d", len(rc.byTrace(tid)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
