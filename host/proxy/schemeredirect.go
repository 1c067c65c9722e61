package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/novaedge/novaedge/configs"
)

// schemeRedirect is what a plain HTTP listener redirects, before routing
// and policies, as the reference's gateway combines its two settings:
//
//   - spec.redirectScheme (enabled) sends every request of the gateway's
//     HTTP listeners to its scheme (https), port and statusCode. With no
//     port, an HTTPS listener of the gateway with sslRedirect accepting
//     the request's host lends its port; else the scheme's default port.
//   - sslRedirect: true on an HTTPS listener sends the requests that the
//     gateway's HTTP listeners receive for its hostnames to it
//     (https://host:<its port>, 301), whether or not redirectScheme is
//     set.
type schemeRedirect struct {
	all    *redirectTarget // from redirectScheme: every request
	byHost []sslTarget     // from sslRedirect listeners, in listener order
}

type redirectTarget struct {
	scheme string
	port   int // 0: by host, else default
	code   int
}

type sslTarget struct {
	hostnames []string // empty: any host
	port      int
}

// schemeRedirectFor returns the redirects of listener l of gw, or nil.
func schemeRedirectFor(gw *configs.Gateway, l *configs.Listener) *schemeRedirect {
	if l.Protocol != "HTTP" {
		return nil
	}
	sr := &schemeRedirect{}
	for i := range gw.Spec.Listeners {
		o := &gw.Spec.Listeners[i]
		if o.Protocol == "HTTPS" && o.SSLRedirect && hostsOverlap(o.Hostnames, l.Hostnames) {
			sr.byHost = append(sr.byHost, sslTarget{hostnames: o.Hostnames, port: o.Port})
		}
	}
	if rs := gw.Spec.RedirectScheme; rs != nil && rs.Enabled {
		t := &redirectTarget{scheme: rs.Scheme, port: rs.Port, code: rs.StatusCode}
		if t.scheme == "" {
			t.scheme = "https"
		}
		if t.code == 0 {
			t.code = http.StatusMovedPermanently
		}
		sr.all = t
	}
	if sr.all == nil && len(sr.byHost) == 0 {
		return nil
	}
	return sr
}

// hostsOverlap reports whether two hostname lists (empty: any) can accept
// a common host.
func hostsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y || hostMatches(x, y) || hostMatches(y, x) {
				return true
			}
		}
	}
	return false
}

// target returns where a request for the normalized host goes.
func (sr *schemeRedirect) target(host string) (scheme string, port, code int, ok bool) {
	var ssl *sslTarget
	for i := range sr.byHost {
		if matchesAny(sr.byHost[i].hostnames, host) {
			ssl = &sr.byHost[i]
			break
		}
	}
	if t := sr.all; t != nil {
		port = t.port
		if port == 0 && ssl != nil && t.scheme == "https" {
			port = ssl.port
		}
		return t.scheme, port, t.code, true
	}
	if ssl != nil {
		return "https", ssl.port, http.StatusMovedPermanently, true
	}
	return "", 0, 0, false
}

func matchesAny(patterns []string, host string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if hostMatches(strings.ToLower(p), host) {
			return true
		}
	}
	return false
}

// serveSchemeRedirect answers r with its redirect, if it has one; it
// reports whether it did.
func serveSchemeRedirect(w http.ResponseWriter, r *http.Request, sr *schemeRedirect, id string) bool {
	scheme, port, code, ok := sr.target(normalizeHost(r.Host))
	if !ok {
		return false
	}
	loc, ok := redirectLocation(scheme, r.Host, port, r.URL.RequestURI())
	if !ok {
		writeError(w, http.StatusBadRequest, "a redirect to "+scheme+" needs a valid Host header", id)
		return true
	}
	w.Header()["Location"] = []string{loc}
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(code)
	return true
}

// redirectLocation builds scheme://host[:port]requestURI from a Host
// header (its port dropped), leaving out a port that is the scheme's
// default (or 0). A Host that is not a DNS name or an IP address is
// refused: it is copied into the Location.
func redirectLocation(scheme, hostHeader string, port int, requestURI string) (string, bool) {
	host, ok := redirectHost(hostHeader)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(requestURI, "/") {
		requestURI = "/" + requestURI
	}
	if strings.HasPrefix(requestURI, "//") {
		return "", false // would read as a host
	}
	u := scheme + "://" + host
	if port != 0 && !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) {
		u += ":" + strconv.Itoa(port)
	}
	return u + requestURI, true
}

// redirectHost returns the host of a Host header without its port: a DNS
// name (letters, digits, '-', '.', '_') or an IP address (IPv6 in
// brackets).
func redirectHost(h string) (string, bool) {
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		rest := h[end+1:]
		if rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return "", false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() {
			return "", false
		}
		return "[" + a.String() + "]", true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return "", false
		}
		h = h[:i]
	}
	if h == "" || len(h) > 253 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", false
		}
	}
	return h, true
}

// validPort reports whether s is empty or a decimal port.
func validPort(s string) bool {
	if len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
