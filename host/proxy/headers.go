package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (and the
// historical ones), never forwarded.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers, including those the
// Connection header names. It reports the upgrade protocol the client
// asked for (if Connection names "upgrade") and whether TE carried
// "trailers", which a proxy forwards (gRPC needs it).
func removeHopHeaders(h http.Header) (upgrade string, teTrailers bool) {
	if c, ok := h["Connection"]; ok {
		for _, v := range c {
			for _, tok := range strings.Split(v, ",") {
				tok = strings.TrimSpace(tok)
				if tok == "" {
					continue
				}
				if strings.EqualFold(tok, "upgrade") {
					upgrade = h.Get("Upgrade")
				}
				h.Del(tok)
			}
		}
	}
	if te, ok := h["Te"]; ok {
		for _, v := range te {
			for _, tok := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(strings.SplitN(tok, ";", 2)[0]), "trailers") {
					teTrailers = true
				}
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
	return upgrade, teTrailers
}

// trustedNets is a set of CIDRs whose forwarding headers are believed.
type trustedNets []netip.Prefix

func parseTrusted(cidrs []string) trustedNets {
	var t trustedNets
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			t = append(t, p.Masked())
		} else if a, err := netip.ParseAddr(c); err == nil {
			t = append(t, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return t
}

func (t trustedNets) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses the address of the connection's peer.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientAddr finds the client's address: the peer, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is walked from the right,
// skipping trusted proxies, to the first address that is not one.
func (t trustedNets) clientAddr(peer netip.Addr, xff []string) netip.Addr {
	if len(t) == 0 || !t.contains(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !t.contains(client) {
				return client
			}
		}
	}
	return client
}

// Shared, never modified header values (edits replace a value's slice).
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// setForwarded sets X-Forwarded-For, -Proto and -Host on the outgoing
// headers. The values a client sent are kept only if the peer is a
// trusted proxy; otherwise they are replaced, so a client cannot forge
// its address, scheme or host to the backend.
func setForwarded(h http.Header, peer netip.Addr, trusted bool, host, proto string) {
	if peer.IsValid() {
		ip := peer.String()
		if prior, ok := h["X-Forwarded-For"]; ok && trusted && len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok || !trusted {
		if proto == "https" {
			h["X-Forwarded-Proto"] = protoHTTPS
		} else {
			h["X-Forwarded-Proto"] = protoHTTP
		}
	}
	if _, ok := h["X-Forwarded-Host"]; !ok || !trusted {
		h["X-Forwarded-Host"] = []string{host}
	}
}

// newRequestID returns a random UUID (version 4) for X-Request-ID.
func newRequestID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	var s [36]byte
	j := 0
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j] = hexd[b[i]>>4]
		s[j+1] = hexd[b[i]&0xf]
		j += 2
	}
	return string(s[:])
}

// validRequestID accepts a client's X-Request-ID if it is short and
// printable ASCII, so it is safe to echo in headers and logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
