package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

func TestTransportSettings(t *testing.T) {
	tests := []struct {
		name        string
		pool        *configs.ConnectionPool
		protocol    string
		wantIdle    int
		wantPerHost int
		wantTimeout time.Duration
	}{
		{"defaults", nil, "HTTP", 0, defaultMaxIdleConnsPerHost, defaultIdleConnTimeout},
		{"empty pool block", &configs.ConnectionPool{}, "HTTP", 0, defaultMaxIdleConnsPerHost, defaultIdleConnTimeout},
		{"reference use case", &configs.ConnectionPool{MaxIdleConns: 100, MaxIdleConnsPerHost: 20, IdleConnTimeout: dur(90 * time.Second)}, "H2C", 100, 20, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := explicitSpec("RoundRobin", 1)
			spec.ConnectionPool = tt.pool
			spec.Protocol = tt.protocol
			b := newTestBackend(t, spec, Options{})
			tr := b.transport
			if tr.MaxIdleConns != tt.wantIdle || tr.MaxIdleConnsPerHost != tt.wantPerHost || tr.IdleConnTimeout != tt.wantTimeout {
				t.Errorf("pool: %d idle, %d per host, %v; want %d, %d, %v",
					tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tt.wantIdle, tt.wantPerHost, tt.wantTimeout)
			}
			if !tr.DisableCompression || tr.Proxy != nil || tr.ResponseHeaderTimeout != 0 {
				t.Errorf("compression disabled %v, proxy set %v, response header timeout %v",
					tr.DisableCompression, tr.Proxy != nil, tr.ResponseHeaderTimeout)
			}
			h2c := tt.protocol == "H2C"
			if p := tr.Protocols; p == nil || p.UnencryptedHTTP2() != h2c || p.HTTP1() == h2c {
				t.Errorf("protocols %v for %s", p, tt.protocol)
			}
		})
	}
}

// protoServer answers with the request's HTTP major version.
func protoServer(t *testing.T, h2cOnly bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto-Major", strconv.Itoa(r.ProtoMajor))
	}))
	if h2cOnly {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true) // prior knowledge only: no HTTP/1, no upgrade
		srv.Config.Protocols = p
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, rt http.RoundTripper, addr, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func TestProtocolsEndToEnd(t *testing.T) {
	tests := []struct {
		protocol string
		h2cOnly  bool
		want     string
	}{
		{"HTTP", false, "1"},
		{"H2C", true, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.protocol, func(t *testing.T) {
			srv := protoServer(t, tt.h2cOnly)
			spec := explicitSpec("RoundRobin")
			spec.Protocol = tt.protocol
			spec.Endpoints = []configs.Endpoint{{Address: srv.Listener.Addr().String()}}
			b := newTestBackend(t, spec, Options{})
			ep, err := b.Pick(0, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := get(t, b.Transport(), ep.Addr(), "/")
			if got := resp.Header.Get("X-Proto-Major"); got != tt.want {
				t.Errorf("server saw HTTP/%s, want HTTP/%s", got, tt.want)
			}
			if got := strconv.Itoa(resp.ProtoMajor); got != tt.want {
				t.Errorf("client got HTTP/%s, want HTTP/%s", got, tt.want)
			}
		})
	}
}

func TestCloseClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	spec := explicitSpec("RoundRobin")
	spec.Endpoints = []configs.Endpoint{{Address: srv.Listener.Addr().String()}}
	b := newTestBackend(t, spec, Options{})
	get(t, b.Transport(), srv.Listener.Addr().String(), "/") // leaves an idle connection
	b.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed by Close")
	}
}
