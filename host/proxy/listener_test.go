package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// TestListenerSurvivesChanges: a change that keeps a listener keeps its
// socket and its clients' connections (a keep-alive connection opened on
// one generation serves the next); a change of its client limits applies
// to new connections without a rebind; a listener a change removes stops.
func TestListenerSurvivesChanges(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	port := freePort(t)
	res := func(gwExtra, path string) *configs.Snapshot {
		t.Helper()
		y := gatewayYAML(port, gwExtra) + backendYAML("b", be.addr()) + route(`
    - matches: [{path: {value: `+path+`}}]
      backendRefs: [{name: b}]
`)
		snap, err := configs.LoadFiles([]configs.File{{Name: "l.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		return snap
	}
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer gw.Shutdown(context.Background())
	ctx := context.Background()
	if err := gw.Apply(ctx, res("", "/one")); err != nil {
		t.Fatal(err)
	}
	addr := gw.Addrs()["127.0.0.1:"+strconv.Itoa(port)]
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	ask := func(path string, hdr string) (int, error) {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+hdr+"\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := ask("/one", ""); err != nil || code != 200 {
		t.Fatalf("generation 1: %d %v", code, err)
	}
	// A new route: the same connection serves it.
	if err := gw.Apply(ctx, res("", "/two")); err != nil {
		t.Fatal(err)
	}
	if code, err := ask("/two", ""); err != nil || code != 200 {
		t.Fatalf("generation 2 on the connection of generation 1: %d %v", code, err)
	}
	if code, err := ask("/one", ""); err != nil || code != 404 {
		t.Fatalf("the removed route: %d %v", code, err)
	}

	// net/http lets a header block run 4 KiB over MaxHeaderBytes.
	big := "X-Big: " + strings.Repeat("a", 16<<10) + "\r\n"
	fresh := func() (int, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /two HTTP/1.1\r\nHost: x\r\n"+big+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := fresh(); err != nil || code != 200 {
		t.Fatalf("a big header under the default limits: %d %v", code, err)
	}
	// New client limits: new connections get them, on the same socket.
	if err := gw.Apply(ctx, res("  clientLimits: {maxHeaderBytes: 1Ki}", "/two")); err != nil {
		t.Fatal(err)
	}
	if got := gw.Addrs()["127.0.0.1:"+strconv.Itoa(port)]; got != addr {
		t.Fatalf("rebound: %s, was %s", got, addr)
	}
	if code, err := fresh(); err != nil || code != 431 {
		t.Fatalf("a new connection under the new limits: %d %v, want 431", code, err)
	}

	// Removed: the port stops accepting.
	other := freePort(t)
	y := gatewayYAML(other, "") + backendYAML("b", be.addr()) + route("    - backendRefs: [{name: b}]\n")
	snap, err := configs.LoadFiles([]configs.File{{Name: "l.yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Apply(ctx, snap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the removed listener's port refuses connections")
}
