package observe

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestExcluded(t *testing.T) {
	list := []string{"/healthz", "/static/", "/"}
	tests := []struct {
		name  string
		list  []string
		path  string
		wantE bool
	}{
		{"exact", list[:1], "/healthz", true},
		{"below", list[:1], "/healthz/live", true},
		{"longer name is not below", list[:1], "/healthzz", false},
		{"other", list[:1], "/api", false},
		{"trailing slash: prefix", list[1:2], "/static/app.js", true},
		{"trailing slash: the bare name is not under it", list[1:2], "/static", false},
		{"root excludes all", list[2:], "/anything", true},
		{"empty list", nil, "/healthz", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := excluded(tc.list, tc.path); got != tc.wantE {
				t.Errorf("excluded(%q, %q) = %v", tc.list, tc.path, got)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\t\r\x01", `"\n\t\r\u0001"`},
		{"<a&b>", `"\u003ca\u0026b\u003e"`},
		{"é€", `"é€"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"\u2028", `"\u2028"`},
	}
	for _, tc := range tests {
		if got := string(appendJSONString(nil, tc.in)); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzAppendJSONString: the output is always one valid JSON string that
// decodes to the input (invalid UTF-8 replaced).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f", "bad\xff", "\u2028<>&", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte("x"), s)
		if b[0] != 'x' {
			t.Fatal("prefix lost")
		}
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q → %s: %v", s, b[1:], err)
		}
		// Each byte of an invalid sequence becomes U+FFFD.
		var want strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want.WriteRune(r)
			i += n
		}
		if got != want.String() {
			t.Fatalf("%q → %s decodes to %q, want %q", s, b[1:], got, want.String())
		}
	})
}

// FuzzAppendTextField: a text field's value reads back, unquoted, as
// the input, and never breaks the line into more fields or lines.
func FuzzAppendTextField(f *testing.F) {
	for _, s := range []string{"", "a b", "k=v", `"`, "\n", "ok", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := string(appendTextField(nil, "k", s))
		v, ok := strings.CutPrefix(b, " k=")
		if !ok {
			t.Fatalf("%q: %q", s, b)
		}
		if strings.ContainsAny(v, "\n\r") {
			t.Fatalf("%q: line break in %q", s, v)
		}
		if needsQuote(s) {
			u, err := strconv.Unquote(v)
			if err != nil || u != s {
				t.Fatalf("%q → %q → %q %v", s, v, u, err)
			}
		} else if v != s || strings.ContainsAny(v, " =\"") {
			t.Fatalf("%q → %q", s, v)
		}
	})
}

// blockingWriter blocks every Write until released, and says when one
// started.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	lines   int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.started <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	w.lines += strings.Count(string(p), "\n")
	w.mu.Unlock()
	return len(p), nil
}

// exposed returns a counter of m as a Prometheus scrape shows it (the
// text format /metrics serves), or -1 if it is not there.
func exposed(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	f := fams[name]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].Counter == nil {
		return -1
	}
	return f.GetMetric()[0].Counter.GetValue()
}

// TestSinkDropsWhenBehind: a writer that does not move never blocks the
// callers: lines past the limit are dropped and counted in
// novaedge_access_log_dropped_total, the waiting ones are written at
// Close.
func TestSinkDropsWhenBehind(t *testing.T) {
	w := &blockingWriter{started: make(chan struct{}, 1), release: make(chan struct{})}
	m := NewMetrics()
	s := newSink(w, m, 100*len("line\n"))
	line := func() *[]byte { b := []byte("line\n"); return &b }
	s.put(line())
	<-w.started // the writer holds the first line and blocks
	for i := 0; i < 110; i++ {
		s.put(line())
	}
	if got := exposed(t, m, "novaedge_access_log_dropped_total"); got != 10 {
		t.Errorf("novaedge_access_log_dropped_total %v, want 10", got)
	}
	close(w.release)
	s.Close()
	if w.lines != 101 {
		t.Errorf("%d lines written, want 101", w.lines)
	}
	s.put(line()) // after Close: dropped, not blocking
	if got := exposed(t, m, "novaedge_access_log_dropped_total"); got != 11 {
		t.Errorf("a line after Close: novaedge_access_log_dropped_total %v, want 11", got)
	}
	if got := exposed(t, m, "novaedge_access_log_write_errors_total"); got != 0 {
		t.Errorf("novaedge_access_log_write_errors_total %v, want 0", got)
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestSinkWriteErrors: a batch the writer fails is counted in
// novaedge_access_log_write_errors_total; a sink without metrics only
// loses it.
func TestSinkWriteErrors(t *testing.T) {
	m := NewMetrics()
	s := NewSink(failingWriter{}, m)
	b := []byte("line\n")
	s.put(&b)
	s.Close() // writes what waits
	if got := exposed(t, m, "novaedge_access_log_write_errors_total"); got != 1 {
		t.Errorf("novaedge_access_log_write_errors_total %v, want 1", got)
	}
	quiet := NewSink(failingWriter{}, nil)
	b2 := []byte("line\n")
	quiet.put(&b2)
	quiet.Close()
}

type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestRecordOf(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	rec, w := Start(nil, nil, httptest.NewRecorder(), r)
	defer rec.Finish()
	tests := []struct {
		name string
		w    http.ResponseWriter
		want *Record
	}{
		{"the record's writer", w, rec},
		{"wrapped by another writer", wrapper{wrapper{w}}, rec},
		{"not observed", httptest.NewRecorder(), nil},
		{"wrapping one not observed", wrapper{httptest.NewRecorder()}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RecordOf(tc.w); got != tc.want {
				t.Errorf("RecordOf = %p, want %p", got, tc.want)
			}
		})
	}
	var none *Record // every method is safe on nil
	none.SetCacheStatus("hit")
	none.SetRejectedBy("p")
	none.Begin(nil, "", netip.Addr{})
	none.StartAttempt("a", http.Header{}).End()
	none.StartPolicy("n", "p", "request").End(nil, false)
	none.Finish()
}

// TestLineFields: every field a Record holds reaches the JSON line,
// escaped as JSON.
func TestLineFields(t *testing.T) {
	r := httptest.NewRequest("POST", "/p\"ath", nil)
	r.Host = "h<o>st"
	rec, w := Start(nil, nil, httptest.NewRecorder(), r)
	rec.Begin(nil, "id\n1", netip.MustParseAddr("2001:db8::1"))
	rec.SetRoute("ns/r", "ns/b")
	rec.SetCacheStatus("hit")
	rec.SetRejectedBy("ns/p")
	rec.SetRejectedBy("ns/later") // the first is kept
	rec.SetClientError("malformed_body")
	rec.SetClientError("body_timeout") // the first is kept
	a := rec.StartAttempt("10.0.0.1:80", http.Header{})
	a.Headers(200, nil)
	a.End()
	w.WriteHeader(201)
	w.Write([]byte("abc"))
	line := appendJSON(nil, rec, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), 1500*time.Microsecond)
	rec.Finish()
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := map[string]any{
		"time": "2026-01-02T03:04:05.000000006Z", "request_id": "id\n1", "trace_id": "", "client_ip": "2001:db8::1",
		"method": "POST", "host": "h<o>st", "path": "/p\"ath", "protocol": "HTTP/1.1", "status": 201.0,
		"bytes_in": 0.0, "bytes_out": 3.0, "duration_ms": 1.5, "route": "ns/r", "backend": "ns/b",
		"endpoint": "10.0.0.1:80", "attempts": 1.0, "cache": "hit", "rejected_by": "ns/p",
		"client_error": "malformed_body",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want)+1 { // + upstream_ms
		t.Errorf("fields: %v", got)
	}
	if u, ok := got["upstream_ms"].(float64); !ok || u < 0 {
		t.Errorf("upstream_ms %v", got["upstream_ms"])
	}
}
