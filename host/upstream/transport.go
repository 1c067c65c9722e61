package upstream

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// Protocols spoken to endpoints.
const (
	protocolHTTP = "HTTP" // HTTP/1.1
	protocolH2C  = "H2C"  // HTTP/2 over cleartext, with prior knowledge
)

func parseProtocol(s string) (string, error) {
	switch s {
	case "", protocolHTTP:
		return protocolHTTP, nil
	case protocolH2C:
		return protocolH2C, nil
	}
	return "", fmt.Errorf("protocol %q is not one of HTTP, H2C", s)
}

// Transport defaults, for a spec whose blocks lack them.
const (
	defaultConnectTimeout      = 5 * time.Second
	defaultIdleConnTimeout     = 90 * time.Second
	defaultMaxIdleConnsPerHost = 1024
	tcpKeepAlive               = 30 * time.Second
	h2PingAfter                = 30 * time.Second
	h2PingTimeout              = 15 * time.Second
)

// newTransport builds the transport of a backend, tuned for a proxy:
//
//   - dials with connectTimeout and TCP keep-alive every 30s;
//   - keeps up to maxIdleConnsPerHost idle connections per endpoint
//     (1024 by default: Go's default of 2 makes a proxy under a few dozen
//     concurrent requests open and close a connection for most of them),
//     maxIdleConns in all (0: no limit), for idleConnTimeout;
//   - never compresses (it would ask for gzip and decode it: a proxy
//     passes encodings through) and never uses an environment proxy;
//   - sets no response header timeout: the route's timeout governs;
//   - speaks HTTP/1.1, or, for H2C, HTTP/2 with prior knowledge over
//     cleartext (net/http's Protocols, no x/net), with ping health checks
//     of idle connections.
func newTransport(spec *configs.BackendSpec, protocol string) *http.Transport {
	d := &net.Dialer{
		Timeout:   spec.ConnectTimeout.D(defaultConnectTimeout),
		KeepAlive: tcpKeepAlive,
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   defaultMaxIdleConnsPerHost,
		IdleConnTimeout:       defaultIdleConnTimeout,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
	if p := spec.ConnectionPool; p != nil {
		if p.MaxIdleConns > 0 {
			t.MaxIdleConns = p.MaxIdleConns
		}
		if p.MaxIdleConnsPerHost > 0 {
			t.MaxIdleConnsPerHost = p.MaxIdleConnsPerHost
		}
		t.IdleConnTimeout = p.IdleConnTimeout.D(defaultIdleConnTimeout)
	}
	setProtocol(t, protocol)
	return t
}

// newProbeTransport builds the small transport of health checks: the same
// dialer and protocol as the backend's (an h2c-only endpoint answers
// probes in HTTP/2 too), one idle connection per endpoint, kept between
// probes, and separate from the request path so that a saturated backend
// is still probed.
func newProbeTransport(spec *configs.BackendSpec, protocol string) *http.Transport {
	d := &net.Dialer{
		Timeout:   spec.ConnectTimeout.D(defaultConnectTimeout),
		KeepAlive: tcpKeepAlive,
	}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     defaultIdleConnTimeout,
		DisableCompression:  true,
	}
	setProtocol(t, protocol)
	return t
}

// setProtocol sets the transport's protocol. An HTTP/2 connection
// carries many requests for a long time, so it is checked with a ping
// after h2PingAfter of silence and dropped if the ping goes unanswered
// for h2PingTimeout, rather than left to hang until TCP gives up.
func setProtocol(t *http.Transport, protocol string) {
	p := new(http.Protocols)
	switch protocol {
	case protocolH2C:
		p.SetUnencryptedHTTP2(true)
		t.HTTP2 = &http.HTTP2Config{SendPingTimeout: h2PingAfter, PingTimeout: h2PingTimeout}
	default:
		p.SetHTTP1(true)
	}
	t.Protocols = p
}
