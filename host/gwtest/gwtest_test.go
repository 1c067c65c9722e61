package gwtest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawServer answers every connection's first request with answer and
// closes the connection if closeAfter; otherwise it answers further
// requests with a short 200.
func rawServer(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if i > 0 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
						continue
					}
					io.WriteString(c, answer)
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRaw(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name       string
		answer     string
		closeAfter bool
		status     int
		body       string
		closed     bool
		aborted    bool
	}{
		{name: "kept open", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "closed after the answer", answer: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad", closeAfter: true, status: 400, body: "bad", closed: true},
		{name: "body cut short", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", closeAfter: true, status: 200, body: "ok", closed: true, aborted: true},
		{name: "no answer", answer: "", closeAfter: true, closed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Raw(t, rawServer(t, tc.answer, tc.closeAfter), get)
			if res.Status != tc.status || string(res.Body) != tc.body || res.Closed != tc.closed || (res.BodyErr != nil) != tc.aborted {
				t.Errorf("got status %d body %q closed %v body error %v err %v", res.Status, res.Body, res.Closed, res.BodyErr, res.Err)
			}
		})
	}
}

func TestBackend(t *testing.T) {
	var got string
	b := NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/p" {
			body, _ := io.ReadAll(r.Body)
			got = string(body)
		}
	})
	res := Raw(t, b.Addr, "POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello")
	if res.Status != 200 || res.Closed {
		t.Fatalf("status %d closed %v", res.Status, res.Closed)
	}
	if got != "hello" {
		t.Errorf("the handler read %q after the recording, want hello", got)
	}
	seen := b.Seen()
	// The probe Raw sent to find the connection open is recorded too.
	if len(seen) != 2 || b.Hits() != 2 || seen[1].Path != ProbePath {
		t.Fatalf("seen %+v, hits %d", seen, b.Hits())
	}
	s := seen[0]
	if s.Method != "POST" || s.RequestURI != "/p?q=1" || s.Host != "h" || s.Header.Get("X-A") != "1" || string(s.Body) != "hello" || s.BodyErr != nil {
		t.Errorf("seen %+v", s)
	}
	if r, body := b.Last(); r == nil || r.URL.Path != ProbePath || len(body) != 0 {
		t.Errorf("last %v %q", r, body)
	}
	if b.Inflight() != 0 {
		t.Errorf("inflight %d", b.Inflight())
	}
}

func TestYAMLLoads(t *testing.T) {
	res := GatewayYAML(FreePort(t), "  trustedProxies: [10.0.0.0/8]") + BackendYAML("b", "127.0.0.1:1", "127.0.0.1:2") +
		"  lbPolicy: Random\n" + RouteYAML("r", "    - backendRefs: [{name: b}]\n")
	snap := Load(t, res)
	if len(snap.Gateways) != 1 || len(snap.Backends) != 1 || len(snap.Routes) != 1 || !strings.Contains(res, "lbPolicy: Random") {
		t.Fatalf("snapshot %d gateways, %d backends, %d routes", len(snap.Gateways), len(snap.Backends), len(snap.Routes))
	}
	if got := snap.Backends[0].Spec.LBPolicy; got != "Random" {
		t.Errorf("lbPolicy %q: spec lines after BackendYAML are not its spec's", got)
	}
}
