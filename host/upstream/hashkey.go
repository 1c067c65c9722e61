package upstream

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/novaedge/novaedge/configs"
)

// hashKind is what HashKey hashes.
type hashKind uint8

const (
	hashNone     hashKind = iota // not a hash policy: key 0
	hashRandom                   // a hash policy without consistentHash
	hashHeader                   // a request header's value
	hashCookie                   // a cookie's value
	hashSourceIP                 // the client's address
	hashHost                     // the Host header (r.Host, not in r.Header)
)

// hashSource is spec.consistentHash, prepared for the request path.
type hashSource struct {
	kind   hashKind
	header string // canonical header name
	cookie string
}

func newHashSource(p policy, ch *configs.ConsistentHash) hashSource {
	if p != policyRingHash && p != policyMaglev {
		return hashSource{kind: hashNone}
	}
	switch {
	case ch == nil:
		return hashSource{kind: hashRandom}
	case ch.Header != "":
		name := textproto.CanonicalMIMEHeaderKey(ch.Header)
		if name == "Host" || name == ":authority" {
			return hashSource{kind: hashHost}
		}
		return hashSource{kind: hashHeader, header: name}
	case ch.Cookie != "":
		return hashSource{kind: hashCookie, cookie: ch.Cookie}
	case ch.SourceIP:
		return hashSource{kind: hashSourceIP}
	}
	return hashSource{kind: hashRandom}
}

// HashKey returns the key RingHash and Maglev pick by, from what
// spec.consistentHash names: a header's value (the first one), a cookie's
// value, or the client's address (IPv4 and IPv4-mapped IPv6 alike). When
// the request lacks it, the key is random, so such requests spread over
// the endpoints instead of piling onto the one that owns "empty". For
// other policies it returns 0 at no cost. It does not allocate.
func (b *Backend) HashKey(r *http.Request, clientIP netip.Addr) uint64 {
	switch b.hash.kind {
	case hashNone:
		return 0
	case hashHeader:
		if v := r.Header[b.hash.header]; len(v) > 0 && v[0] != "" {
			return xxhash.Sum64String(v[0])
		}
	case hashHost:
		if r.Host != "" {
			return xxhash.Sum64String(r.Host)
		}
	case hashCookie:
		if v, ok := cookieValue(r.Header, b.hash.cookie); ok && v != "" {
			return xxhash.Sum64String(v)
		}
	case hashSourceIP:
		if clientIP.IsValid() {
			a := clientIP.Unmap().As16()
			return xxhash.Sum64(a[:])
		}
	}
	return rand.Uint64()
}

// cookieValue returns the value of the first cookie called name in the
// request's Cookie headers, without the allocations of (*http.Request).Cookie.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}
