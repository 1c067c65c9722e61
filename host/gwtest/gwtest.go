// Package gwtest runs gateways and backends for tests, in the manner of
// net/http/httptest: free loopback addresses, the resource YAML of a
// small gateway, a gateway started from that text until the test ends,
// backend servers that record what they saw, bounded waits, and a raw
// HTTP/1.1 client that writes exact bytes and reports whether the server
// closed the connection.
//
// It imports no package of the data plane (host/proxy's own tests use
// it): a gateway is anything with the Server methods.
package gwtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// FreePort returns a port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns an address "127.0.0.1:port" that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Listen serves h on 127.0.0.1 until the test ends and returns its
// address ("127.0.0.1:port").
func Listen(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// WaitFor polls cond every 10ms until it holds, and fails the test if it
// does not within the given time (a generous safety limit, not a
// measure).
func WaitFor(t testing.TB, within time.Duration, cond func() bool, what string) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("timed out after %v: %s", within, what)
	}
}

// Poll is WaitFor's loop: it reports whether cond held within the time.
func Poll(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Server is a gateway as tests start it: *proxy.Gateway.
type Server interface {
	Apply(ctx context.Context, snap *configs.Snapshot) error
	Shutdown(ctx context.Context) error
	// Addrs maps each bind key to the bound address.
	Addrs() map[string]string
}

// Load compiles resources, YAML text named test.yaml, into a snapshot, and
// fails the test (printing the text) if it does not load.
func Load(t testing.TB, resources string) *configs.Snapshot {
	t.Helper()
	snap, err := configs.LoadFiles([]configs.File{{Name: "test.yaml", Data: []byte(resources)}})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, resources)
	}
	return snap
}

// Start applies snap to gw; once it is applied, gw is shut down (within 5
// seconds) when the test ends. It returns the base URL ("http://addr") of
// a bound listener (the one of a one-listener gateway).
func Start(t testing.TB, gw Server, snap *configs.Snapshot) (base string, err error) {
	t.Helper()
	if err := gw.Apply(context.Background(), snap); err != nil {
		return "", err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	for _, a := range gw.Addrs() {
		base = "http://" + a
	}
	return base, nil
}

// Serve loads resources and starts gw with them (Load and Start), failing
// the test on an error, and returns the listener's base URL.
func Serve(t testing.TB, gw Server, resources string) string {
	t.Helper()
	base, err := Start(t, gw, Load(t, resources))
	if err != nil {
		t.Fatal(err)
	}
	return base
}
