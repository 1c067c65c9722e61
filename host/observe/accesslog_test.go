package observe

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
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

// TestSinkDropsWhenBehind: a writer that does not move never blocks the
// callers: lines past the limit are dropped and counted, the waiting ones
// are written at Close.
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
	if s.Dropped() != 10 {
		t.Errorf("dropped %d, want 10", s.Dropped())
	}
	close(w.release)
	s.Close()
	if w.lines != 101 {
		t.Errorf("%d lines written, want 101", w.lines)
	}
	s.put(line()) // after Close: dropped, not blocking
	if s.Dropped() != 11 {
		t.Errorf("a line after Close: dropped %d, want 11", s.Dropped())
	}
}
