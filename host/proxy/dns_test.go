package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novaedge/novaedge/host/gwtest"
)

// switchResolver answers every name with the addresses it holds now.
type switchResolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
	asked atomic.Int64
}

func (r *switchResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.asked.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != "users-svc" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]netip.Addr(nil), r.addrs...), nil
}

func (r *switchResolver) set(addrs ...netip.Addr) {
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
}

// TestServiceRefDNS serves a serviceRef whose name resolves to two
// addresses (two real servers on 127.0.0.1 and 127.0.0.2, same port), then
// to one: traffic follows the records as they change.
func TestServiceRefDNS(t *testing.T) {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln1.Addr().(*net.TCPAddr).Port
	ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		ln1.Close()
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	var hits [2]atomic.Int64
	for i, ln := range []net.Listener{ln1, ln2} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			io.WriteString(w, "ok")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	res := &switchResolver{}
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	res.set(a1, a2)

	yaml := gatewayYAML(freePort(t), "") + fmt.Sprintf(`---
apiVersion: novaedge.io/v1alpha1
kind: ProxyBackend
metadata: {name: users, namespace: t}
spec:
  serviceRef: {name: users-svc, port: %d, refreshInterval: 100ms}
`, port) + route(`
    - backendRefs: [{name: users}]
`)
	gw := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Resolver: res})
	base := gwtest.Serve(t, gw, yaml)

	for i := 0; i < 40; i++ {
		if resp := get(t, base+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("both records should get traffic: %d, %d", hits[0].Load(), hits[1].Load())
	}
	if st := gw.Status().Backends[0]; st.Total != 2 {
		t.Errorf("status shows %d endpoints, want 2", st.Total)
	}

	// The second record disappears; after a refresh only the first serves.
	res.set(a1)
	asked := res.asked.Load()
	deadline := time.Now().Add(5 * time.Second)
	for res.asked.Load() < asked+2 || gw.Status().Backends[0].Total != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint set did not follow DNS: %+v", gw.Status().Backends[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := hits[1].Load()
	for i := 0; i < 20; i++ {
		get(t, base+"/")
	}
	if n := hits[1].Load() - before; n != 0 {
		t.Errorf("removed record still got %d requests", n)
	}
}

// TestConsistentHashThroughGateway sends requests with the same header
// value through a Maglev backend: they all land on one endpoint, and other
// values spread over both.
func TestConsistentHashThroughGateway(t *testing.T) {
	var servers [2]*backend
	for i := range servers {
		servers[i] = newBackend(t, nil)
	}
	_, base := startGateway(t, gatewayYAML(freePort(t), "")+backendYAML("b", servers[0].addr(), servers[1].addr())+
		"  lbPolicy: Maglev\n  consistentHash: {header: X-User}\n"+route(`
    - backendRefs: [{name: b}]
`))
	for _, user := range []string{"alice", "bob", "carol"} {
		h0, h1 := servers[0].Hits(), servers[1].Hits()
		for i := 0; i < 10; i++ {
			get(t, base+"/", "X-User", user)
		}
		d0, d1 := servers[0].Hits()-h0, servers[1].Hits()-h1
		if (d0 != 0 && d1 != 0) || d0+d1 != 10 {
			t.Errorf("user %s split over endpoints: %d / %d", user, d0, d1)
		}
	}
	h0, h1 := servers[0].Hits(), servers[1].Hits()
	for i := 0; i < 64; i++ {
		get(t, base+"/", "X-User", fmt.Sprint("user-", i))
	}
	if servers[0].Hits() == h0 || servers[1].Hits() == h1 {
		t.Errorf("64 users all hashed to one endpoint")
	}
}
