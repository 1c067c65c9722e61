package tlsconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// NextProtos are the protocols offered by ALPN: HTTP/2, then HTTP/1.1.
var NextProtos = []string{"h2", "http/1.1"}

// MinVersion maps a listener's minVersion ("TLS1.2", "TLS1.3"; "" means
// TLS1.2) to its crypto/tls constant.
func MinVersion(s string) (uint16, error) {
	switch s {
	case "", "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("minVersion %q: want TLS1.2 or TLS1.3", s)
}

// DefaultCipherSuites are the TLS 1.2 suites a listener offers unless it
// names its own: ECDHE key exchange with an AEAD cipher (AES-GCM,
// ChaCha20-Poly1305), no CBC (LUCKY13) and no static RSA key exchange.
// TLS 1.3 suites are Go's choice and are always AEAD.
var DefaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuites maps a listener's cipherSuites (Go's names of TLS 1.2
// suites) to their crypto/tls IDs; none means DefaultCipherSuites. Go's
// insecure suites and TLS 1.3 suites are refused.
func CipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return DefaultCipherSuites, nil
	}
	ids := make([]uint16, 0, len(names))
next:
	for _, n := range names {
		for _, cs := range tls.CipherSuites() {
			if cs.Name == n && slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
				ids = append(ids, cs.ID)
				continue next
			}
		}
		return nil, fmt.Errorf("cipherSuites: %q is not a secure TLS 1.2 cipher suite of Go's", n)
	}
	return ids, nil
}

// SNI picks, for a TLS handshake on a port shared by several HTTPS
// listeners, the listener's certificate and settings by the server name
// the client sent: an exact hostname first, then the longest wildcard
// ("*.example.com" matches any name ending in ".example.com"), then the
// default: the listener with no hostnames if there is one, else the first
// one added. Build it with Add, then only read it.
type SNI struct {
	exact     map[string]*tls.Config
	wildcards []sniWildcard // longest suffix first
	any       *tls.Config
	first     *tls.Config
}

type sniWildcard struct {
	suffix string // ".example.com"
	cfg    *tls.Config
}

// Add serves cert with minVersion and, for TLS 1.2, suites (nil:
// DefaultCipherSuites) to the names of hostnames (exact names or
// "*.suffix" wildcards; none means any name). A name already taken by an
// earlier Add keeps its first listener.
func (s *SNI) Add(hostnames []string, cert *Cert, minVersion uint16, suites []uint16) {
	if len(suites) == 0 {
		suites = DefaultCipherSuites
	}
	cfg := &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: suites,
		NextProtos:   NextProtos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert.Current(), nil
		},
	}
	if s.exact == nil {
		s.exact = map[string]*tls.Config{}
	}
	if s.first == nil {
		s.first = cfg
	}
	if len(hostnames) == 0 && s.any == nil {
		s.any = cfg
	}
	for _, h := range hostnames {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if !s.hasWildcard(suffix) {
				s.wildcards = append(s.wildcards, sniWildcard{suffix: suffix, cfg: cfg})
			}
			continue
		}
		if _, ok := s.exact[h]; !ok {
			s.exact[h] = cfg
		}
	}
	sort.SliceStable(s.wildcards, func(i, j int) bool { return len(s.wildcards[i].suffix) > len(s.wildcards[j].suffix) })
}

func (s *SNI) hasWildcard(suffix string) bool {
	for _, w := range s.wildcards {
		if w.suffix == suffix {
			return true
		}
	}
	return false
}

// Empty reports whether nothing was added.
func (s *SNI) Empty() bool { return s == nil || s.first == nil }

// Config returns the TLS settings for a handshake whose client sent
// serverName ("" when it sent none, as for an IP address).
func (s *SNI) Config(serverName string) *tls.Config {
	name := normalizeName(serverName)
	if name != "" {
		if cfg, ok := s.exact[name]; ok {
			return cfg
		}
		for _, w := range s.wildcards {
			if len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
				return w.cfg
			}
		}
	}
	if s.any != nil {
		return s.any
	}
	return s.first
}

// GetConfigForClient is Config in the shape of tls.Config's callback.
func (s *SNI) GetConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if s.Empty() {
		return nil, fmt.Errorf("no TLS listener for %q", hello.ServerName)
	}
	return s.Config(hello.ServerName), nil
}

// normalizeName lower-cases an ASCII server name and drops a trailing dot.
func normalizeName(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}
