package configs

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validate checks one defaulted resource on its own. Checks that involve
// other resources (references, duplicates, listener conflicts) are in
// references.go.
func validate(o *object) {
	switch r := o.res.(type) {
	case *VIP:
		validateMeta(o, &r.Metadata, true)
		if o.hasSpec {
			validateVIP(o, &r.Spec)
		}
	case *Gateway:
		validateMeta(o, &r.Metadata, false)
		if o.hasSpec {
			validateGateway(o, &r.Spec)
		}
	case *Backend:
		validateMeta(o, &r.Metadata, false)
		if o.hasSpec {
			validateBackend(o, &r.Spec)
		}
	case *Route:
		validateMeta(o, &r.Metadata, false)
		if o.hasSpec {
			validateRoute(o, &r.Spec)
		}
	case *Policy:
		validateMeta(o, &r.Metadata, false)
		if o.hasSpec {
			validatePolicy(o, &r.Spec)
		}
	}
}

func validateMeta(o *object, m *ObjectMeta, clusterScoped bool) {
	if o.required("metadata.name", m.Name, "") {
		o.subdomain("metadata.name", m.Name, "name")
	}
	switch {
	case clusterScoped && m.Namespace != "":
		o.errorf("metadata.namespace", "%s is cluster-scoped: remove metadata.namespace", o.kind)
	case !clusterScoped:
		o.label("metadata.namespace", m.Namespace, "namespace")
	}
}

// ---------------------------------------------------------------- ProxyVIP

func validateVIP(o *object, s *VIPSpec) {
	var prefix netip.Prefix
	if o.required("spec.address", s.Address, "an IP prefix such as 10.200.0.50/32") {
		p, err := netip.ParsePrefix(s.Address)
		switch a, aerr := netip.ParseAddr(s.Address); {
		case err == nil && p.Bits() != p.Addr().BitLen():
			o.errorf("spec.address", "%s is a network, not a virtual IP: want a single address (%s/%d)", s.Address, p.Addr(), p.Addr().BitLen())
		case err == nil:
			prefix = p
		case aerr == nil:
			o.errorf("spec.address", "invalid address %q: want an IP prefix (%s/%d)", clip(s.Address), a, a.BitLen())
		default:
			o.errorf("spec.address", "invalid address %q: want an IP prefix such as 10.200.0.50/32", clip(s.Address))
		}
	}
	o.enum("spec.mode", s.Mode, "L2ARP", "BGP")
	if o.optionalEnum("spec.addressFamily", s.AddressFamily, "ipv4", "ipv6") && prefix.IsValid() {
		if want := addressFamily(prefix.Addr()); s.AddressFamily != want {
			o.errorf("spec.addressFamily", "%s does not match address %s (an %s address)", s.AddressFamily, s.Address, want)
		}
	}
	if s.Interface != "" && !isInterfaceName(s.Interface) {
		o.errorf("spec.interface", "invalid interface name %q: at most 15 characters, without '/', ':' or spaces", clip(s.Interface))
	}
	seen := map[int]int{}
	for i, p := range s.Ports {
		path := index("spec.ports", i)
		o.port(path, p, true)
		if j, dup := seen[p]; dup {
			o.errorf(path, "port %d is listed twice (also spec.ports[%d])", p, j)
		}
		seen[p] = i
	}
	if h := s.HealthPolicy; h != nil {
		o.nonNegative("spec.healthPolicy.minHealthyNodes", h.MinHealthyNodes)
	}
	switch {
	case s.Mode == "BGP" && s.BGP == nil:
		o.errorf("spec.bgp", "required with mode BGP (localASN and peers)")
	case s.Mode == "L2ARP" && s.BGP != nil:
		o.errorf("spec.bgp", "only with mode BGP (mode is L2ARP): remove spec.bgp")
	}
	if b := s.BGP; b != nil {
		validateVIPBGP(o, b)
	}
}

// Limits of a BGP-mode ProxyVIP: AS numbers (0 and 4294967295 are
// reserved, RFC 7607 and RFC 7300) and hold times (RFC 4271 section 4.2:
// at least 3 s, in whole seconds that fit 16 bits).
const (
	maxASN         = 4294967294
	minBGPHoldTime = 3 * time.Second
	maxBGPHoldTime = 65535 * time.Second
)

func validateVIPBGP(o *object, b *VIPBGP) {
	asn := func(path string, n int64) {
		switch {
		case n == 0:
			o.errorf(path, "required (an AS number, 1–%d)", int64(maxASN))
		case n < 1 || n > maxASN:
			o.errorf(path, "AS number %d is out of range 1–%d", n, int64(maxASN))
		}
	}
	asn("spec.bgp.localASN", b.LocalASN)
	if b.RouterID != "" {
		if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
			o.errorf("spec.bgp.routerID", "invalid router id %q: want an IPv4 address such as 198.51.100.11", clip(b.RouterID))
		}
	}
	if h := b.HoldTime; h != nil {
		if d := h.Duration; d < minBGPHoldTime || d > maxBGPHoldTime || d%time.Second != 0 {
			o.errorf("spec.bgp.holdTime", "%s is out of range: want whole seconds, 3s–65535s", d)
		}
	}
	if len(b.Peers) == 0 {
		o.errorf("spec.bgp.peers", "at least one peer is required")
	}
	seen := map[netip.Addr]int{}
	for i, p := range b.Peers {
		path := index("spec.bgp.peers", i)
		if o.required(path+".address", p.Address, "the peer's IP address") {
			a, err := netip.ParseAddr(p.Address)
			switch {
			case err != nil || a.Zone() != "":
				o.errorf(path+".address", "invalid address %q: want an IP address such as 203.0.113.1", clip(p.Address))
			default:
				if j, dup := seen[a.Unmap()]; dup {
					o.errorf(path+".address", "peer %s is listed twice (also spec.bgp.peers[%d])", a, j)
				}
				seen[a.Unmap()] = i
			}
		}
		asn(path+".asn", p.ASN)
		o.port(path+".port", p.Port, false)
	}
}

// isInterfaceName reports whether s can name a network interface (Linux
// rules: shorter than IFNAMSIZ, no '/', ':' or white space).
func isInterfaceName(s string) bool {
	return len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n\r\v\f")
}

// ------------------------------------------------------------ ProxyGateway

func validateGateway(o *object, s *GatewaySpec) {
	if len(s.Listeners) == 0 {
		o.errorf("spec.listeners", "at least one listener is required")
	}
	names := map[string]int{}
	for i := range s.Listeners {
		validateListener(o, index("spec.listeners", i), &s.Listeners[i])
		if n := s.Listeners[i].Name; n != "" {
			if j, dup := names[n]; dup {
				o.errorf(index("spec.listeners", i)+".name", "listener name %q is used twice (also spec.listeners[%d])", clip(n), j)
			}
			names[n] = i
		}
	}
	if r := s.RedirectScheme; r != nil {
		o.optionalEnum("spec.redirectScheme.scheme", r.Scheme, "http", "https")
		o.port("spec.redirectScheme.port", r.Port, false)
		if r.StatusCode != 0 {
			o.intEnum("spec.redirectScheme.statusCode", r.StatusCode, redirectCodes...)
		}
	}
	if c := s.Compression; c != nil {
		for i, a := range c.Algorithms {
			o.enum(index("spec.compression.algorithms", i), a, "gzip", "br", "zstd")
		}
		o.unique("spec.compression.algorithms", c.Algorithms)
		if c.Level < 1 || c.Level > 11 {
			o.errorf("spec.compression.level", "%d is out of range 1–11: one level serves every algorithm, "+
				"br uses it as is, gzip uses at most 9 and zstd its fastest 11 levels", c.Level)
		}
	}
	if c := s.Cache; c != nil {
		o.positiveSize("spec.cache.maxSize", c.MaxSize)
		o.positiveSize("spec.cache.maxEntrySize", c.MaxEntrySize)
		if c.MaxSize != nil && c.MaxEntrySize != nil && c.MaxEntrySize.Bytes > c.MaxSize.Bytes {
			o.errorf("spec.cache.maxEntrySize", "%d bytes is larger than maxSize (%d bytes)", c.MaxEntrySize.Bytes, c.MaxSize.Bytes)
		}
		o.positive("spec.cache.defaultTTL", c.DefaultTTL)
		o.positive("spec.cache.maxTTL", c.MaxTTL)
		if c.DefaultTTL != nil && c.MaxTTL != nil && c.DefaultTTL.Duration > c.MaxTTL.Duration {
			o.errorf("spec.cache.defaultTTL", "%s is longer than maxTTL (%s)", c.DefaultTTL.Duration, c.MaxTTL.Duration)
		}
	}
	if t := s.Tracing; t != nil {
		o.percent("spec.tracing.samplingRate", t.SamplingRate)
		if t.Endpoint != "" {
			o.httpURL("spec.tracing.endpoint", t.Endpoint)
		}
	}
	if a := s.AccessLog; a != nil {
		o.enum("spec.accessLog.format", a.Format, "json", "text")
		o.percent("spec.accessLog.sampleRate", a.SampleRate)
		for i, p := range a.ExcludePaths {
			if !strings.HasPrefix(p, "/") {
				o.errorf(index("spec.accessLog.excludePaths", i), "path %q must start with \"/\"", clip(p))
			}
		}
	}
	for i, p := range s.TrustedProxies {
		o.addrOrPrefix(index("spec.trustedProxies", i), p)
	}
	if c := s.ClientLimits; c != nil {
		o.positive("spec.clientLimits.readHeaderTimeout", c.ReadHeaderTimeout)
		o.positive("spec.clientLimits.idleTimeout", c.IdleTimeout)
		o.positiveSize("spec.clientLimits.maxHeaderBytes", c.MaxHeaderBytes)
		if c.MaxHeaderCount != 0 {
			o.between("spec.clientLimits.maxHeaderCount", c.MaxHeaderCount, 1, 10000)
		}
		o.positive("spec.clientLimits.bodyReadTimeout", c.BodyReadTimeout)
		if c.HeadersWithUnderscores != "" {
			o.enum("spec.clientLimits.headersWithUnderscores", c.HeadersWithUnderscores, "Drop", "Reject", "Allow")
		}
	}
	for i, h := range s.IdentityHeaders {
		o.token(index("spec.identityHeaders", i), strings.TrimSuffix(h, "*"), "header name")
	}
	o.unique("spec.identityHeaders", lowerAll(s.IdentityHeaders))
}

var redirectCodes = []int{301, 302, 303, 307, 308}

func validateListener(o *object, path string, l *Listener) {
	if o.required(path+".name", l.Name, "") {
		o.label(path+".name", l.Name, "listener name")
	}
	if l.Address != "" {
		if _, err := netip.ParseAddr(l.Address); err != nil {
			o.errorf(path+".address", "invalid address %q: want an IP address such as 10.0.0.1 (leave it out to listen on every interface)", clip(l.Address))
		}
	}
	o.port(path+".port", l.Port, true)
	o.enum(path+".protocol", l.Protocol, "HTTP", "HTTPS")
	for i, h := range l.Hostnames {
		o.hostname(index(path+".hostnames", i), h, true)
	}
	o.unique(path+".hostnames", l.Hostnames)
	switch {
	case l.Protocol == "HTTPS" && (l.TLS == nil || l.TLS.SecretRef == nil):
		o.errorf(path+".tls.secretRef.name", "required: an HTTPS listener needs a TLS certificate (tls.secretRef.name)")
	case l.Protocol == "HTTP" && l.TLS != nil:
		o.errorf(path+".tls", "tls is set but protocol is HTTP (use HTTPS, or remove tls)")
	}
	if t := l.TLS; t != nil {
		if r := t.SecretRef; r != nil {
			if o.required(path+".tls.secretRef.name", r.Name, "the name of the TLS secret") {
				o.subdomain(path+".tls.secretRef.name", r.Name, "secret name")
			}
			o.refNamespace(path+".tls.secretRef.namespace", r.Namespace)
		}
		o.enum(path+".tls.minVersion", t.MinVersion, "TLS1.2", "TLS1.3")
		for i, c := range t.CipherSuites {
			o.cipherSuite(index(path+".tls.cipherSuites", i), c)
		}
		o.unique(path+".tls.cipherSuites", t.CipherSuites)
	}
	o.positiveSize(path+".maxRequestBodySize", l.MaxRequestBodySize)
}

// ------------------------------------------------------------ ProxyBackend

func validateBackend(o *object, s *BackendSpec) {
	switch {
	case s.ServiceRef != nil && len(s.Endpoints) > 0:
		o.errorf("spec.endpoints", "serviceRef and endpoints are both set: use one of them")
	case s.ServiceRef != nil || len(s.Endpoints) > 0:
	case o.failed["spec.serviceRef"] || o.failed["spec.endpoints"]:
	case o.present("spec.endpoints"):
		o.errorf("spec.endpoints", "at least one endpoint is required")
	default:
		o.errorf("spec", "one of serviceRef or endpoints is required")
	}
	if r := s.ServiceRef; r != nil {
		if o.required("spec.serviceRef.name", r.Name, "a DNS name") && !isDNSName(strings.TrimSuffix(r.Name, ".")) {
			o.errorf("spec.serviceRef.name", "invalid service name %q: want a lowercase DNS name such as users-svc", clip(r.Name))
		}
		if r.Namespace != "" {
			o.refNamespace("spec.serviceRef.namespace", r.Namespace)
		}
		o.port("spec.serviceRef.port", r.Port, true)
		o.positive("spec.serviceRef.refreshInterval", r.RefreshInterval)
	}
	seen := map[string]int{}
	for i, e := range s.Endpoints {
		path := index("spec.endpoints", i)
		validateEndpoint(o, path, e.Address)
		if e.Weight != nil {
			o.between(path+".weight", *e.Weight, 1, 1000)
		}
		if j, dup := seen[e.Address]; dup && e.Address != "" {
			o.errorf(path+".address", "endpoint %q is listed twice (also spec.endpoints[%d])", clip(e.Address), j)
		}
		seen[e.Address] = i
	}
	o.enum("spec.protocol", s.Protocol, "HTTP", "H2C")
	o.enum("spec.lbPolicy", s.LBPolicy, "RoundRobin", "LeastConn", "P2C", "Random", "RingHash", "Maglev")
	hashing := s.LBPolicy == "RingHash" || s.LBPolicy == "Maglev"
	switch h := s.ConsistentHash; {
	case h == nil && hashing:
		o.errorf("spec.consistentHash", "required: lbPolicy %s needs to know what to hash (header, cookie or sourceIP)", s.LBPolicy)
	case h != nil && !hashing && s.LBPolicy != "":
		o.errorf("spec.consistentHash", "consistentHash is set but lbPolicy is %s (only RingHash and Maglev hash)", s.LBPolicy)
	case h != nil:
		n := 0
		if h.Header != "" {
			n++
			o.token("spec.consistentHash.header", h.Header, "header name")
		}
		if h.Cookie != "" {
			n++
			o.token("spec.consistentHash.cookie", h.Cookie, "cookie name")
		}
		if h.SourceIP {
			n++
		}
		if n != 1 {
			o.errorf("spec.consistentHash", "set exactly one of header, cookie or sourceIP (%d are set)", n)
		}
	}
	o.positive("spec.connectTimeout", s.ConnectTimeout)
	o.positive("spec.responseHeaderTimeout", s.ResponseHeaderTimeout)
	if h := s.HealthCheck; h != nil {
		o.positive("spec.healthCheck.interval", h.Interval)
		o.positive("spec.healthCheck.timeout", h.Timeout)
		if h.Interval != nil && h.Timeout != nil && h.Timeout.Duration >= h.Interval.Duration {
			o.errorf("spec.healthCheck.timeout", "timeout %s must be shorter than interval %s", h.Timeout.Duration, h.Interval.Duration)
		}
		if h.HealthyThreshold < 1 {
			o.errorf("spec.healthCheck.healthyThreshold", "must be at least 1, got %d", h.HealthyThreshold)
		}
		if h.UnhealthyThreshold < 1 {
			o.errorf("spec.healthCheck.unhealthyThreshold", "must be at least 1, got %d", h.UnhealthyThreshold)
		}
		if !strings.HasPrefix(h.HTTPPath, "/") {
			o.errorf("spec.healthCheck.httpPath", "path %q must start with \"/\"", clip(h.HTTPPath))
		}
		for i, c := range h.ExpectedStatuses {
			o.between(index("spec.healthCheck.expectedStatuses", i), c, 100, 599)
		}
	}
	if c := s.CircuitBreaker; c != nil {
		o.nonNegative("spec.circuitBreaker.maxConnections", c.MaxConnections)
		o.nonNegative("spec.circuitBreaker.maxPendingRequests", c.MaxPendingRequests)
		o.nonNegative("spec.circuitBreaker.consecutiveFailures", c.ConsecutiveFailures)
		o.positive("spec.circuitBreaker.interval", c.Interval)
		o.positive("spec.circuitBreaker.baseEjectionTime", c.BaseEjectionTime)
		// Up to 100 is accepted; the data plane never ejects more than
		// half of the endpoints.
		o.between("spec.circuitBreaker.maxEjectionPercent", c.MaxEjectionPercent, 1, 100)
	}
	if p := s.ConnectionPool; p != nil {
		o.nonNegative("spec.connectionPool.maxIdleConns", p.MaxIdleConns)
		o.nonNegative("spec.connectionPool.maxIdleConnsPerHost", p.MaxIdleConnsPerHost)
		o.positive("spec.connectionPool.idleConnTimeout", p.IdleConnTimeout)
	}
}

// validateEndpoint checks "host:port", host an IP address or a DNS name.
func validateEndpoint(o *object, path, addr string) {
	if !o.required(path+".address", addr, "host:port") {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		o.errorf(path+".address", "invalid address %q: want host:port (10.0.0.5:8080, users.internal:8080, [fd00::5]:8080)", clip(addr))
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && !isDNSName(host) {
		o.errorf(path+".address", "invalid host %q in %q: want an IP address or a lowercase DNS name", clip(host), clip(addr))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		o.errorf(path+".address", "invalid port %q in %q: want a number 1–65535", clip(port), clip(addr))
	}
}

// -------------------------------------------------------------- ProxyRoute

func validateRoute(o *object, s *RouteSpec) {
	for i, h := range s.Hostnames {
		o.hostname(index("spec.hostnames", i), h, true)
	}
	o.unique("spec.hostnames", s.Hostnames)
	for i, p := range s.ParentRefs {
		path := index("spec.parentRefs", i)
		o.required(path+".name", p.Name, "the name of a ProxyGateway")
		o.refNamespace(path+".namespace", p.Namespace)
		if p.SectionName != "" {
			o.label(path+".sectionName", p.SectionName, "listener name")
		}
	}
	if len(s.Rules) == 0 {
		o.errorf("spec.rules", "at least one rule is required")
	}
	for i := range s.Rules {
		validateRule(o, index("spec.rules", i), &s.Rules[i])
	}
}

func validateRule(o *object, path string, r *RouteRule) {
	for i, m := range r.Matches {
		validateMatch(o, index(path+".matches", i), &m)
	}
	switch {
	case len(r.BackendRefs) > 0 && r.Redirect != nil:
		o.errorf(path+".redirect", "a rule either proxies (backendRefs) or redirects (redirect), not both")
	case len(r.BackendRefs) > 0 || r.Redirect != nil:
	case o.failed[path+".backendRefs"] || o.failed[path+".redirect"]:
	default:
		o.errorf(path+".backendRefs", "required: a rule needs backendRefs (where to proxy) or a redirect")
	}
	anyWeight := false
	for i, b := range r.BackendRefs {
		bp := index(path+".backendRefs", i)
		o.required(bp+".name", b.Name, "the name of a ProxyBackend")
		o.refNamespace(bp+".namespace", b.Namespace)
		if b.Weight != nil {
			o.between(bp+".weight", *b.Weight, 0, 1000000)
			anyWeight = anyWeight || *b.Weight > 0
		}
	}
	if len(r.BackendRefs) > 0 && !anyWeight && !o.underFailed(path+".backendRefs") {
		o.errorf(path+".backendRefs", "every backendRef has weight 0: at least one needs a positive weight")
	}
	validateHeaderModifier(o, path+".requestHeaders", r.RequestHeaders)
	validateHeaderModifier(o, path+".responseHeaders", r.ResponseHeaders)
	if u := r.URLRewrite; u != nil {
		if r.Redirect != nil {
			o.errorf(path+".urlRewrite", "urlRewrite is set but the rule redirects (use redirect.path and redirect.hostname)")
		}
		if u.Hostname != "" {
			o.hostname(path+".urlRewrite.hostname", u.Hostname, false)
		}
		validatePathRewrite(o, path+".urlRewrite.path", u.Path, r.Matches)
	}
	if d := r.Redirect; d != nil {
		o.optionalEnum(path+".redirect.scheme", d.Scheme, "http", "https")
		if d.Hostname != "" {
			o.hostname(path+".redirect.hostname", d.Hostname, false)
		}
		o.port(path+".redirect.port", d.Port, false)
		validatePathRewrite(o, path+".redirect.path", d.Path, r.Matches)
		o.intEnum(path+".redirect.statusCode", d.StatusCode, redirectCodes...)
	}
	if t := r.Retry; t != nil {
		o.between(path+".retry.maxRetries", t.MaxRetries, 0, 10)
		for i, on := range t.RetryOn {
			o.enum(index(path+".retry.retryOn", i), on, "5xx", "gateway-error", "connection-failure", "reset")
		}
		o.unique(path+".retry.retryOn", t.RetryOn)
		o.positive(path+".retry.perTryTimeout", t.PerTryTimeout)
		o.positive(path+".retry.backoffBase", t.BackoffBase)
		o.positive(path+".retry.backoffMax", t.BackoffMax)
		if t.BackoffBase != nil && t.BackoffMax != nil && t.BackoffMax.Duration < t.BackoffBase.Duration {
			o.errorf(path+".retry.backoffMax", "%s is shorter than backoffBase (%s)", t.BackoffMax.Duration, t.BackoffBase.Duration)
		}
		if b := t.Budget; b != nil {
			o.percent(path+".retry.budget.percent", b.Percent)
			if b.MinRetryConcurrency != nil {
				o.nonNegative(path+".retry.budget.minRetryConcurrency", *b.MinRetryConcurrency)
			}
		}
	}
	for i, u := range r.Upgrades {
		up := index(path+".upgrades", i)
		if o.token(up, u, "protocol name, such as websocket") && strings.EqualFold(u, "h2c") {
			o.errorf(up, "h2c is never tunnelled: a client would reach the backend past the route's policies (HTTP/2 without TLS is served by the listener itself)")
		}
	}
	o.unique(path+".upgrades", lowerAll(r.Upgrades))
	if l := r.Limits; l != nil {
		o.positive(path+".limits.requestTimeout", l.RequestTimeout)
		o.positiveSize(path+".limits.maxRequestBodySize", l.MaxRequestBodySize)
	}
}

func validateMatch(o *object, path string, m *RouteMatch) {
	if p := m.Path; p != nil && o.enum(path+".path.type", p.Type, "Exact", "PathPrefix", "RegularExpression") {
		if p.Type == "RegularExpression" {
			o.pattern(path+".path.value", p.Value)
		} else if !strings.HasPrefix(p.Value, "/") {
			o.errorf(path+".path.value", "path %q must start with \"/\"", clip(p.Value))
		}
	}
	if m.Method != "" {
		o.method(path+".method", m.Method)
	}
	for i, h := range m.Headers {
		hp := index(path+".headers", i)
		o.token(hp+".name", h.Name, "header name")
		validateValueMatch(o, hp, h)
	}
	for i, q := range m.QueryParams {
		qp := index(path+".queryParams", i)
		o.required(qp+".name", q.Name, "the query parameter's name")
		validateValueMatch(o, qp, q)
	}
}

func validateValueMatch(o *object, path string, v ValueMatch) {
	if o.enum(path+".type", v.Type, "Exact", "RegularExpression") && v.Type == "RegularExpression" {
		o.pattern(path+".value", v.Value)
	}
}

// validatePathRewrite checks a urlRewrite's or a redirect's path.
// ReplacePrefixMatch replaces the prefix a PathPrefix match matched, so
// every match of the rule must be one.
func validatePathRewrite(o *object, path string, p *PathRewrite, matches []RouteMatch) {
	if p == nil || !o.enum(path+".type", p.Type, "ReplacePrefixMatch", "ReplaceFullPath") {
		return
	}
	if !strings.HasPrefix(p.Value, "/") {
		o.errorf(path+".value", "path %q must start with \"/\"", clip(p.Value))
	}
	if p.Type != "ReplacePrefixMatch" {
		return
	}
	for i, m := range matches {
		if m.Path != nil && m.Path.Type != "PathPrefix" {
			o.errorf(path+".type", "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match, but matches[%d] is %s", i, m.Path.Type)
		}
	}
}

func validateHeaderModifier(o *object, path string, h *HeaderModifier) {
	if h == nil {
		return
	}
	for _, list := range []struct {
		key     string
		headers []Header
	}{{"set", h.Set}, {"add", h.Add}} {
		for i, hd := range list.headers {
			hp := index(path+"."+list.key, i)
			o.token(hp+".name", hd.Name, "header name")
			o.headerValue(hp+".value", hd.Value)
		}
	}
	for i, n := range h.Remove {
		o.token(index(path+".remove", i), n, "header name")
	}
}

// ------------------------------------------------------------- ProxyPolicy

func validatePolicy(o *object, s *PolicySpec) {
	valid := o.enum("spec.type", s.Type, PolicyRateLimit, PolicyJWT, PolicyCORS, PolicySecurityHeaders, PolicyKeyAuth, PolicyWasm)
	blocks := []struct {
		typ, key string
		set      bool
	}{
		{PolicyRateLimit, "rateLimit", s.RateLimit != nil},
		{PolicyJWT, "jwt", s.JWT != nil},
		{PolicyCORS, "cors", s.CORS != nil},
		{PolicySecurityHeaders, "securityHeaders", s.SecurityHeaders != nil},
		{PolicyKeyAuth, "keyAuth", s.KeyAuth != nil},
		{PolicyWasm, "wasm", s.Wasm != nil},
	}
	for _, b := range blocks {
		switch path := "spec." + b.key; {
		case !valid:
		case b.typ == s.Type && !b.set:
			o.errorf(path, "required: a %s policy is configured by its %s block", s.Type, b.key)
		case b.typ != s.Type && b.set:
			o.errorf(path, "%s is set but type is %s", b.key, s.Type)
		}
	}
	if o.enum("spec.targetRef.kind", s.TargetRef.Kind, KindGateway, KindRoute) {
		o.required("spec.targetRef.name", s.TargetRef.Name, "the name of a "+s.TargetRef.Kind)
	}
	o.refNamespace("spec.targetRef.namespace", s.TargetRef.Namespace)
	if s.TargetRef.SectionName != "" && s.TargetRef.Kind != KindRoute {
		o.errorf("spec.targetRef.sectionName", "only a ProxyRoute target has sections (its rules' names); %s has none", s.TargetRef.Kind)
	}
	o.enum("spec.failurePolicy", s.FailurePolicy, "FailClosed", "FailOpen")
	o.enum("spec.stateOnChange", s.StateOnChange, "Keep", "Reset")
	if r := s.RateLimit; r != nil {
		validateRateLimit(o, "spec.rateLimit", r)
	}
	if j := s.JWT; j != nil {
		validateJWT(o, "spec.jwt", j)
	}
	if c := s.CORS; c != nil {
		validateCORS(o, "spec.cors", c)
	}
	if h := s.SecurityHeaders; h != nil {
		validateSecurityHeaders(o, "spec.securityHeaders", h)
	}
	if k := s.KeyAuth; k != nil {
		validateKeyAuth(o, "spec.keyAuth", k)
	}
	if w := s.Wasm; w != nil {
		o.required("spec.wasm.module", w.Module, "the path or URL of the .wasm file")
		if w.SHA256 != "" && !sha256RE.MatchString(w.SHA256) {
			o.errorf("spec.wasm.sha256", "invalid SHA-256 %q: want 64 hexadecimal digits", clip(w.SHA256))
		}
		o.positive("spec.wasm.timeout", w.Timeout)
		if m := w.MaxMemory; m != nil && (m.Bytes < 1<<16 || m.Bytes > 4<<30) {
			o.errorf("spec.wasm.maxMemory", "must be between 64Ki (one wasm page) and 4Gi, got %d bytes", m.Bytes)
		}
		if w.Authenticates && s.FailurePolicy == "FailOpen" {
			o.errorf("spec.wasm.authenticates", "an authenticating policy must fail closed, and failurePolicy is FailOpen (a failed check would let the request through)")
		}
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func validateRateLimit(o *object, path string, r *RateLimit) {
	switch rps := r.RequestsPerSecond; {
	case o.failed[path+".requestsPerSecond"]:
	case rps <= 0:
		o.errorf(path+".requestsPerSecond", "must be greater than 0, got %g", rps)
	case rps < 0.001 || rps > 1e9:
		o.errorf(path+".requestsPerSecond", "must be between 0.001 and 1e9, got %g", rps)
	}
	o.nonNegative(path+".burst", r.Burst)
	if r.Burst > 1e9 {
		o.errorf(path+".burst", "must be at most 1000000000, got %d", r.Burst)
	}
	o.optionalEnum(path+".onMissingKey", r.OnMissingKey, "ip", "reject")
	switch kind, name, _ := strings.Cut(r.Key, ":"); kind {
	case "header":
		o.token(path+".key", name, "header name after \"header:\"")
	case "claim":
		if name == "" || strings.ContainsAny(name, " \t") {
			o.errorf(path+".key", "invalid key %q: want claim:NAME, the name of a JWT claim", clip(r.Key))
		}
	case "ip", "route", "global":
		if r.Key != kind {
			o.errorf(path+".key", "invalid key %q: %s takes no argument", clip(r.Key), kind)
		}
	default:
		o.errorf(path+".key", "invalid key %q (want ip, route, global, header:NAME or claim:NAME)", clip(r.Key))
	}
}

var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256"}

func validateJWT(o *object, path string, j *JWT) {
	switch {
	case j.JWKSURI == "" && j.JWKS == "" && j.HMACSecret == "":
		o.required(path+".jwksUri", "", "the URL of the issuer's JSON Web Key Set; or jwks, or hmacSecret")
	case strings.HasPrefix(j.JWKSURI, "backend:"):
		parts := strings.SplitN(strings.TrimPrefix(j.JWKSURI, "backend:"), "/", 3)
		if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
			o.errorf(path+".jwksUri", "invalid %q: want backend:NAMESPACE/NAME/PATH", clip(j.JWKSURI))
		}
	case j.JWKSURI != "":
		o.httpURL(path+".jwksUri", j.JWKSURI)
	}
	if j.JWKS != "" {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(j.JWKS), &set); err != nil || len(set.Keys) == 0 {
			o.errorf(path+".jwks", "not a JSON Web Key Set with keys ({\"keys\": [...]})")
		}
	}
	hs := false
	for i, a := range j.AllowedAlgorithms {
		ap := index(path+".allowedAlgorithms", i)
		if strings.EqualFold(a, "none") {
			o.errorf(ap, "%q would accept unsigned tokens and is never allowed", a)
			continue
		}
		if o.enum(ap, a, jwtAlgorithms...) && a == "HS256" {
			hs = true
			if j.HMACSecret == "" {
				o.errorf(ap, "HS256 needs hmacSecret (the shared secret)")
			}
		}
	}
	if j.HMACSecret != "" {
		if len(j.HMACSecret) < 32 {
			o.errorf(path+".hmacSecret", "at least 32 bytes")
		}
		if len(j.AllowedAlgorithms) > 0 && !hs {
			o.errorf(path+".hmacSecret", "set, but allowedAlgorithms lacks HS256")
		}
	}
	o.unique(path+".allowedAlgorithms", j.AllowedAlgorithms)
	o.token(path+".headerName", j.HeaderName, "header name")
	o.headerValue(path+".headerPrefix", j.HeaderPrefix)
	if j.Cookie != "" {
		o.token(path+".cookie", j.Cookie, "cookie name")
	}
	if j.QueryParameter != "" && strings.ContainsAny(j.QueryParameter, "&=# ") {
		o.errorf(path+".queryParameter", "invalid query parameter name %q", clip(j.QueryParameter))
	}
	if j.ClockSkew != nil && j.ClockSkew.Duration < 0 {
		o.errorf(path+".clockSkew", "must not be negative")
	}
	o.positive(path+".jwksCacheDuration", j.JWKSCacheDuration)
	if j.JWKSRefreshInterval != nil && j.JWKSRefreshInterval.Duration < 0 {
		o.errorf(path+".jwksRefreshInterval", "must not be negative")
	}
	for i, f := range j.ForwardClaims {
		fp := index(path+".forwardClaims", i)
		o.required(fp+".claim", f.Claim, "the claim's name")
		o.token(fp+".header", f.Header, "header name")
	}
}

func validateCORS(o *object, path string, c *CORS) {
	if len(c.AllowOrigins) == 0 && !o.failed[path+".allowOrigins"] {
		o.errorf(path+".allowOrigins", "at least one origin is required (\"https://app.example.com\", or \"*\" for any)")
	}
	for i, origin := range c.AllowOrigins {
		op := index(path+".allowOrigins", i)
		if origin == "*" {
			if c.AllowCredentials {
				o.errorf(op, "\"*\" cannot be combined with allowCredentials: browsers reject it; list the origins instead")
			}
			continue
		}
		if msg := originProblem(origin); msg != "" {
			o.errorf(op, "%s", msg)
		}
	}
	o.unique(path+".allowOrigins", c.AllowOrigins)
	for i, m := range c.AllowMethods {
		o.method(index(path+".allowMethods", i), m)
	}
	for _, list := range []struct {
		key     string
		headers []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range list.headers {
			if h != "*" {
				o.token(index(path+"."+list.key, i), h, "header name")
			}
		}
	}
}

// originProblem checks a CORS origin: scheme://host[:port], where host may
// start with "*." to allow every subdomain.
func originProblem(origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil {
		return fmt.Sprintf("invalid origin %q: want scheme://host[:port], such as https://app.example.com", clip(origin))
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Sprintf("invalid origin %q: an origin has no path, query or trailing \"/\" (%s://%s)", clip(origin), u.Scheme, u.Host)
	}
	host := u.Hostname()
	if u.Port() != "" {
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return fmt.Sprintf("invalid origin %q: bad port %q", clip(origin), u.Port())
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if msg := hostnameProblem(host, true); msg != "" {
		return fmt.Sprintf("invalid origin %q: %s", clip(origin), msg)
	}
	return ""
}

var referrerPolicies = []string{
	"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
}

func validateSecurityHeaders(o *object, path string, h *SecurityHeaders) {
	switch hs := h.HSTS; {
	case hs == nil:
	case hs.MaxAge < 0:
		o.errorf(path+".hsts.maxAge", "must not be negative, got %d", hs.MaxAge)
	case hs.Enabled && hs.MaxAge == 0:
		o.errorf(path+".hsts.maxAge", "required when hsts is enabled (seconds; 31536000 is one year)")
	case hs.Enabled && hs.Preload && (!hs.IncludeSubDomains || hs.MaxAge < 31536000):
		o.errorf(path+".hsts.preload", "the HSTS preload list requires includeSubDomains and a maxAge of at least 31536000 (one year)")
	}
	o.optionalEnum(path+".xFrameOptions", h.XFrameOptions, "DENY", "SAMEORIGIN")
	o.optionalEnum(path+".referrerPolicy", h.ReferrerPolicy, referrerPolicies...)
	o.optionalEnum(path+".crossOriginOpenerPolicy", h.CrossOriginOpenerPolicy, "same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none")
	o.optionalEnum(path+".crossOriginEmbedderPolicy", h.CrossOriginEmbedderPolicy, "require-corp", "credentialless", "unsafe-none")
	o.optionalEnum(path+".crossOriginResourcePolicy", h.CrossOriginResourcePolicy, "same-site", "same-origin", "cross-origin")
	o.headerValue(path+".contentSecurityPolicy", h.ContentSecurityPolicy)
	o.headerValue(path+".permissionsPolicy", h.PermissionsPolicy)
	for i, n := range h.RemoveHeaders {
		o.token(index(path+".removeHeaders", i), n, "header name")
	}
}

func validateKeyAuth(o *object, path string, k *KeyAuth) {
	if len(k.Keys) == 0 && k.KeysFile == "" && !o.failed[path+".keys"] {
		o.errorf(path+".keys", "at least one key is required (keys, or a keysFile)")
	}
	seen := map[string]bool{}
	for i, key := range k.Keys {
		kp := index(path+".keys", i)
		switch {
		case key.Key != "" && key.SHA256 != "":
			o.errorf(kp, "key and sha256 are exclusive: give the key or its SHA-256")
		case key.Key != "":
			if msg := APIKeyProblem(key.Key); msg != "" {
				o.errorf(kp+".key", "%s", msg)
			} else if seen[key.Key] {
				o.errorf(kp+".key", "duplicate key (keys[%d] has it too)", slices.IndexFunc(k.Keys, func(a APIKey) bool { return a.Key == key.Key }))
			}
			seen[key.Key] = true
		case key.SHA256 != "":
			if !sha256RE.MatchString(key.SHA256) {
				o.errorf(kp+".sha256", "invalid SHA-256 %q: want 64 hexadecimal digits", clip(key.SHA256))
			}
		default:
			o.errorf(kp+".key", "required (the key, or its sha256)")
		}
		if key.Consumer == "" {
			o.errorf(kp+".consumer", "required (the name of the key's consumer)")
		} else {
			o.headerValue(kp+".consumer", key.Consumer)
		}
	}
	if k.Header != "" {
		o.token(path+".header", k.Header, "header name")
	}
	if k.ConsumerHeader != "" {
		o.token(path+".consumerHeader", k.ConsumerHeader, "header name")
	}
	if k.Query != "" && strings.ContainsAny(k.Query, "&=#? \t") {
		o.errorf(path+".query", "invalid query parameter name %q", clip(k.Query))
	}
}

// APIKeyProblem checks an API key: printable ASCII without spaces, as a
// header value or a keys file carries it ("" if fine).
func APIKeyProblem(key string) string {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return "an API key is printable ASCII without spaces"
		}
	}
	return ""
}
