package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strings"

	"github.com/novaedge/novaedge/configs"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (and the
// historical ones, and HTTP2-Settings of an h2c upgrade, RFC 7540
// §3.2.1), never forwarded.
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
	"Http2-Settings",
}

// protectedHeaders are end-to-end headers that a Connection token cannot
// remove: the gateway reads or sets them (the request's framing and
// target, its ID, the forwarding and trace headers, the credentials the
// policies read). A token naming one is ignored, as HAProxy ignores the
// tokens it does not act on; the header stays end-to-end. Headers a
// policy sets are safe without being listed, since the hop-by-hop
// headers are removed before any policy runs.
var protectedHeaders = map[string]bool{
	"Host":              true,
	"Content-Length":    true,
	"Content-Type":      true,
	"Content-Encoding":  true,
	"Authorization":     true,
	"Cookie":            true,
	"X-Request-Id":      true,
	"X-Forwarded-For":   true,
	"X-Forwarded-Proto": true,
	"X-Forwarded-Host":  true,
	"X-Forwarded-Port":  true,
	"Forwarded":         true,
	"Traceparent":       true,
	"Tracestate":        true,
}

// hopInfo is what the hop-by-hop headers of a request said that the
// gateway acts on after removing them.
type hopInfo struct {
	// upgrade is the client's Upgrade header if Connection names
	// "upgrade": the protocols it asks to switch to, "" if none.
	upgrade string
	// teTrailers: TE carried "trailers", which a proxy forwards (gRPC
	// needs it).
	teTrailers bool
}

// removeHopHeaders deletes hop-by-hop headers, including those the
// Connection header names (but never a protected one, see
// protectedHeaders), and reports what of them the request still needs.
func removeHopHeaders(h http.Header) hopInfo {
	var hi hopInfo
	// TE and Upgrade are read first: the Connection header names them
	// (RFC 9110 §10.1.4, §7.8), and its tokens' headers go below.
	if te, ok := h["Te"]; ok {
		for _, v := range te {
			for _, tok := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(strings.SplitN(tok, ";", 2)[0]), "trailers") {
					hi.teTrailers = true
				}
			}
		}
	}
	if c, ok := h["Connection"]; ok {
		upgrade := strings.Join(h["Upgrade"], ", ")
		for _, v := range c {
			for _, tok := range strings.Split(v, ",") {
				tok = strings.TrimSpace(tok)
				if tok == "" {
					continue
				}
				if strings.EqualFold(tok, "upgrade") {
					hi.upgrade = upgrade
				}
				k := textproto.CanonicalMIMEHeaderKey(tok)
				if !protectedHeaders[k] {
					delete(h, k)
				}
			}
		}
	}
	deleteHopHeaders(h)
	return hi
}

// deleteHopHeaders deletes the hop-by-hop headers by name only.
func deleteHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

// allowedUpgrade returns the protocols of an Upgrade header value that
// allowed lists (lower case; "h2c" never passes), joined, or "".
func allowedUpgrade(upgrade string, allowed []string) string {
	if upgrade == "" || len(allowed) == 0 {
		return ""
	}
	var out []string
	for _, p := range strings.Split(upgrade, ",") {
		p = strings.TrimSpace(p)
		name, _, _ := strings.Cut(p, "/") // "websocket", "foo/2"
		name = strings.ToLower(name)
		if name == "" || name == "h2c" || !slices.Contains(allowed, name) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ", ")
}

// identityHeaders are the request headers a gateway removes from every
// client request before the policies run (configs.GatewaySpec
// IdentityHeaders, and the headers the policies of the configuration set).
type identityHeaders struct {
	exact    map[string]bool // canonical names
	prefixes []string        // canonical prefixes, for "X-Authenticated-*"
}

// compileIdentityHeaders compiles a gateway's identityHeaders with the
// headers that the configuration's policies set: every KeyAuth
// consumerHeader, every JWT forwardClaims header (X-User-ID when a JWT
// policy forwards its default claim).
func compileIdentityHeaders(names []string, policies []*configs.Policy) *identityHeaders {
	ih := &identityHeaders{exact: map[string]bool{}}
	add := func(n string) {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			ih.prefixes = append(ih.prefixes, textproto.CanonicalMIMEHeaderKey(p))
			return
		}
		ih.exact[textproto.CanonicalMIMEHeaderKey(n)] = true
	}
	for _, n := range names {
		add(n)
	}
	for _, p := range policies {
		if k := p.Spec.KeyAuth; k != nil && k.ConsumerHeader != "" {
			add(k.ConsumerHeader)
		}
		if j := p.Spec.JWT; j != nil {
			if len(j.ForwardClaims) == 0 {
				add("X-User-ID")
			}
			for _, fc := range j.ForwardClaims {
				add(fc.Header)
			}
		}
	}
	return ih
}

// strip removes the identity headers from h, also when their names are
// spelled with underscores for hyphens (X_Consumer: what a CGI-style
// backend reads as X-Consumer).
func (ih *identityHeaders) strip(h http.Header) {
	if ih == nil {
		return
	}
	for k := range h {
		name := k
		if strings.IndexByte(k, '_') >= 0 {
			name = textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))
		}
		if ih.exact[name] {
			delete(h, k)
			continue
		}
		for _, p := range ih.prefixes {
			if strings.HasPrefix(name, p) {
				delete(h, k)
				break
			}
		}
	}
}

// underscoreHeaders applies a listener's headersWithUnderscores to h:
// Drop removes every field whose name has an underscore, Reject reports
// whether there is one (the request gets 400), Allow leaves them.
func underscoreHeaders(h http.Header, action string) (reject bool) {
	if action == "Allow" {
		return false
	}
	for k := range h {
		if strings.IndexByte(k, '_') < 0 {
			continue
		}
		if action == "Reject" {
			return true
		}
		delete(h, k)
	}
	return false
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
