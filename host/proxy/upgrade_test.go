package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// switchingBackend switches to whatever protocol a request asks for (or
// to answer, if set), as a careless backend would, and echoes lines
// upper-cased on the switched connection; a request without Upgrade gets
// "plain <path>". It records each request's headers by path.
type switchingBackend struct {
	*backend
	mu   sync.Mutex
	seen map[string]http.Header
}

func newSwitchingBackend(t *testing.T, answer string) *switchingBackend {
	sb := &switchingBackend{seen: map[string]http.Header{}}
	sb.backend = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		sb.mu.Lock()
		sb.seen[r.URL.Path] = r.Header.Clone()
		sb.mu.Unlock()
		up := r.Header.Get("Upgrade")
		if up == "" {
			if cc := r.URL.Query().Get("cc"); cc != "" {
				w.Header().Set("Cache-Control", cc)
			}
			fmt.Fprintf(w, "plain %s", r.URL.Path)
			return
		}
		if answer != "" {
			up = answer
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", up)
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
	return sb
}

func (sb *switchingBackend) headers(path string) http.Header {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.seen[path]
}

// TestUpgrades: a rule tunnels only the protocols its upgrades list
// allows (default websocket, as Envoy's upgrade_configs); any other
// Upgrade is removed and the request forwarded as a plain one. h2c is
// never tunnelled: its Upgrade and HTTP2-Settings go, the request is
// answered as plain HTTP/1.1, and the next request on the connection is
// routed by the gateway again (finding 3 of issue 11). A backend's 101 to
// a protocol the request did not ask for is refused.
func TestUpgrades(t *testing.T) {
	sb := newSwitchingBackend(t, "")
	rogue := newSwitchingBackend(t, "h2c")
	_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "")+backendYAML("b", sb.addr())+backendYAML("rogue", rogue.addr())+route(`
    - name: none
      matches: [{path: {value: /none}}]
      backendRefs: [{name: b}]
      upgrades: []
    - name: custom
      matches: [{path: {value: /custom}}]
      backendRefs: [{name: b}]
      upgrades: [websocket, my-proto]
    - name: rogue
      matches: [{path: {value: /rogue}}]
      backendRefs: [{name: rogue}]
    - name: default
      backendRefs: [{name: b}]
`), Options{})

	for _, tc := range []struct {
		name     string
		path     string
		upgrade  string
		extra    string
		status   int
		upstream string // the Upgrade the backend saw
	}{
		{name: "websocket by default", path: "/ws", upgrade: "websocket", status: 101, upstream: "websocket"},
		{name: "h2c never", path: "/h2c", upgrade: "h2c", extra: "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", status: 200},
		{name: "h2c never, even offered with websocket", path: "/both", upgrade: "h2c, websocket", status: 101, upstream: "websocket"},
		{name: "a protocol not listed", path: "/other", upgrade: "foo", status: 200},
		{name: "an empty list allows none", path: "/none/ws", upgrade: "websocket", status: 200},
		{name: "a listed protocol", path: "/custom/x", upgrade: "my-proto", status: 101, upstream: "my-proto"},
		{name: "a 101 to what was not asked", path: "/rogue/ws", upgrade: "websocket", status: 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn2 := "Upgrade"
			if tc.extra != "" {
				conn2 = "Upgrade, HTTP2-Settings"
			}
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: %s\r\nUpgrade: %s\r\n%s\r\n", tc.path, conn2, tc.upgrade, tc.extra)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 502 {
				return
			}
			h := sb.headers(tc.path)
			if got := h.Get("Upgrade"); got != tc.upstream {
				t.Errorf("backend saw Upgrade %q, want %q", got, tc.upstream)
			}
			if got := h.Get("Http2-Settings"); got != "" {
				t.Errorf("backend saw HTTP2-Settings %q", got)
			}
			if tc.status == 101 {
				io.WriteString(conn, "hello\n")
				if got, err := br.ReadString('\n'); err != nil || got != "HELLO\n" {
					t.Fatalf("tunnel echo %q %v", got, err)
				}
				return
			}
			// Plain: the body is the backend's, and the next request on
			// the connection is routed by the gateway, not tunnelled.
			b, _ := io.ReadAll(io.LimitReader(resp.Body, resp.ContentLength))
			resp.Body.Close()
			if string(b) != "plain "+tc.path {
				t.Errorf("body %q", b)
			}
			fmt.Fprintf(conn, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("next request: status %d, headers %v", resp.StatusCode, resp.Header)
			}
			if h := sb.headers("/after"); h.Get("X-Forwarded-For") == "" {
				t.Errorf("the next request did not come through the gateway: %v", h)
			}
		})
	}
}

func TestAllowedUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		allowed  []string
		want     string
	}{
		{name: "allowed", in: "websocket", allowed: []string{"websocket"}, want: "websocket"},
		{name: "case", in: "WebSocket", allowed: []string{"websocket"}, want: "WebSocket"},
		{name: "h2c never", in: "h2c", allowed: []string{"h2c", "websocket"}, want: ""},
		{name: "filtered list", in: "h2c, foo/2, websocket", allowed: []string{"websocket", "foo"}, want: "foo/2, websocket"},
		{name: "none allowed", in: "websocket", allowed: nil, want: ""},
		{name: "empty", in: "", allowed: []string{"websocket"}, want: ""},
		{name: "junk", in: " , ,", allowed: []string{"websocket"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := allowedUpgrade(tc.in, tc.allowed); got != tc.want {
				t.Errorf("allowedUpgrade(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestUpgradeBypassesCache: an upgrade request is never answered from
// the response cache, though the hop-by-hop headers are removed before
// the cache looks: the gateway keeps what the client asked for.
func TestUpgradeBypassesCache(t *testing.T) {
	sb := newSwitchingBackend(t, "")
	_, addr := startGatewayOpts(t, gatewayYAML(freePort(t), "  cache: {enabled: true}")+backendYAML("b", sb.addr())+route(`
    - backendRefs: [{name: b}]
`), Options{})
	for i, want := range []string{"MISS", "HIT"} {
		resp, _, _ := rawExchange(t, addr, "GET /ws?cc=max-age%3D60 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != want {
			t.Fatalf("plain GET %d: %d, X-Cache %q, want %s", i, resp.StatusCode, resp.Header.Get("X-Cache"), want)
		}
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws?cc=max-age%3D60 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Errorf("upgrade request: status %d, X-Cache %q", resp.StatusCode, resp.Header.Get("X-Cache"))
	}
}
