package configs

import (
	"net/netip"
	"time"
)

// Defaults are applied after decoding and before validation, so that the
// snapshot spells out every value the data plane uses. A default never
// overrides what the user wrote; where a default must be consistent with a
// value the user did write (a health check timeout shorter than its
// interval, a cache's TTLs and sizes), it yields to it.

// Default values, as the snapshot shows them.
const (
	defaultBGPHoldTime           = 90 * time.Second // RFC 4271's suggested value
	defaultBGPPort               = 179
	defaultLBPolicy              = "RoundRobin"
	defaultBackendProtocol       = "HTTP"
	defaultConnectTimeout        = 5 * time.Second
	defaultRefreshInterval       = 30 * time.Second
	defaultHealthInterval        = 10 * time.Second
	defaultHealthTimeout         = 5 * time.Second
	defaultHealthyThreshold      = 2
	defaultUnhealthyThresh       = 3
	defaultHealthPath            = "/healthz"
	defaultBreakerInterval       = 10 * time.Second
	defaultBaseEjectionTime      = 30 * time.Second
	defaultMaxEjectionPct        = 50
	defaultMaxIdleConns          = 1024
	defaultMaxIdlePerHost        = 256
	defaultIdleConnTimeout       = 90 * time.Second
	defaultBackoffBase           = 25 * time.Millisecond
	defaultBackoffMax            = 250 * time.Millisecond
	defaultRetryBudgetPct        = 20
	defaultMinRetryConc          = 3
	defaultRedirectCode          = 302
	defaultSchemeRedirect        = 301
	defaultCompressionLevel      = 6
	defaultCompressionMin        = 1024
	defaultCacheTTL              = 5 * time.Minute
	defaultCacheMaxTTL           = time.Hour
	defaultCacheEntrySize        = 1 << 20
	defaultCacheSize             = 64 << 20
	defaultReadHeaderTimeout     = 10 * time.Second
	defaultIdleTimeout           = 120 * time.Second
	defaultMaxHeaderBytes        = 60 << 10
	defaultMaxHeaderCount        = 100
	defaultBodyReadTimeout       = 30 * time.Second
	defaultMinBodyRate           = 240
	defaultHeadersUnderscores    = "Drop"
	defaultResponseHeaderTimeout = 60 * time.Second
	defaultTLSMinVersion         = "TLS1.2"
	defaultFailurePolicy         = "FailClosed"
	defaultRateLimitKey          = "ip"
	defaultJWTHeader             = "Authorization"
	defaultJWTPrefix             = "Bearer "
	defaultKeyAuthHeader         = "X-API-Key"
	defaultKeyAuthConsumerHeader = "X-Consumer"
)

// defaultUpgrades are the protocols a rule lets a client switch to.
var defaultUpgrades = []string{"websocket"}

// defaultIdentityHeaders are removed from every client request.
var defaultIdentityHeaders = []string{"X-Consumer", "X-User-ID", "X-Authenticated-*"}

// DefaultCipherSuites are the TLS 1.2 suites of a listener that names
// none: ECDHE key exchange with an AEAD cipher, as Mozilla's
// "intermediate" profile and Envoy's defaults (less CBC).
var DefaultCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// defaultRetryOn is what a retry retries when retryOn is empty.
var defaultRetryOn = []string{"5xx", "connection-failure", "reset"}

func applyDefaults(o *object) {
	switch r := o.res.(type) {
	case *VIP:
		defaultVIP(&r.Spec)
	case *Gateway:
		setDefault(&r.Metadata.Namespace, DefaultNamespace)
		defaultGateway(&r.Spec, r.Metadata.Namespace)
	case *Backend:
		setDefault(&r.Metadata.Namespace, DefaultNamespace)
		defaultBackend(&r.Spec, r.Metadata.Namespace)
	case *Route:
		setDefault(&r.Metadata.Namespace, DefaultNamespace)
		defaultRoute(&r.Spec, r.Metadata.Namespace)
	case *Policy:
		setDefault(&r.Metadata.Namespace, DefaultNamespace)
		defaultPolicy(&r.Spec, r.Metadata.Namespace)
	}
}

func defaultVIP(s *VIPSpec) {
	if p, err := netip.ParsePrefix(s.Address); err == nil && s.AddressFamily == "" {
		s.AddressFamily = addressFamily(p.Addr())
	}
	if b := s.BGP; b != nil {
		defaultDuration(&b.HoldTime, defaultBGPHoldTime)
		for i := range b.Peers {
			setDefault(&b.Peers[i].Port, defaultBGPPort)
		}
	}
}

func addressFamily(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

func defaultGateway(s *GatewaySpec, namespace string) {
	for i := range s.Listeners {
		if t := s.Listeners[i].TLS; t != nil {
			setDefault(&t.MinVersion, defaultTLSMinVersion)
			if len(t.CipherSuites) == 0 {
				t.CipherSuites = append([]string(nil), DefaultCipherSuites...)
			}
			if t.SecretRef != nil {
				setDefault(&t.SecretRef.Namespace, namespace)
			}
		}
	}
	if r := s.RedirectScheme; r != nil && r.Enabled {
		setDefault(&r.Scheme, "https")
		setDefault(&r.StatusCode, defaultSchemeRedirect)
	}
	if c := s.Compression; c != nil {
		if len(c.Algorithms) == 0 {
			c.Algorithms = []string{"gzip"}
		}
		setDefault(&c.Level, defaultCompressionLevel)
		defaultSize(&c.MinSize, defaultCompressionMin)
	}
	if c := s.Cache; c != nil {
		defaultSize(&c.MaxSize, defaultCacheSize)
		entry := int64(defaultCacheEntrySize)
		if n := c.MaxSize.Bytes; n > 0 {
			entry = min(entry, n)
		}
		defaultSize(&c.MaxEntrySize, entry)
		defaultDuration(&c.MaxTTL, max(defaultCacheMaxTTL, c.DefaultTTL.D(0)))
		ttl := defaultCacheTTL
		if d := c.MaxTTL.Duration; d > 0 {
			ttl = min(ttl, d)
		}
		defaultDuration(&c.DefaultTTL, ttl)
	}
	if t := s.Tracing; t != nil {
		defaultPtr(&t.SamplingRate, 100)
	}
	if a := s.AccessLog; a != nil {
		setDefault(&a.Format, "json")
		defaultPtr(&a.SampleRate, 100)
	}
	if s.ClientLimits == nil {
		s.ClientLimits = &ClientLimits{}
	}
	defaultDuration(&s.ClientLimits.ReadHeaderTimeout, defaultReadHeaderTimeout)
	defaultDuration(&s.ClientLimits.IdleTimeout, defaultIdleTimeout)
	defaultSize(&s.ClientLimits.MaxHeaderBytes, defaultMaxHeaderBytes)
	setDefault(&s.ClientLimits.MaxHeaderCount, defaultMaxHeaderCount)
	defaultDuration(&s.ClientLimits.BodyReadTimeout, defaultBodyReadTimeout)
	defaultSize(&s.ClientLimits.MinBodyRate, defaultMinBodyRate)
	setDefault(&s.ClientLimits.HeadersWithUnderscores, defaultHeadersUnderscores)
	if s.IdentityHeaders == nil {
		s.IdentityHeaders = append([]string(nil), defaultIdentityHeaders...)
	}
}

func defaultBackend(s *BackendSpec, namespace string) {
	setDefault(&s.LBPolicy, defaultLBPolicy)
	setDefault(&s.Protocol, defaultBackendProtocol)
	defaultDuration(&s.ConnectTimeout, defaultConnectTimeout)
	defaultDuration(&s.ResponseHeaderTimeout, defaultResponseHeaderTimeout)
	if r := s.ServiceRef; r != nil {
		// No namespace default: an unqualified name is resolved as written,
		// through the resolver's search path (in a pod, its own namespace);
		// a namespace qualifies it as "name.namespace".
		defaultDuration(&r.RefreshInterval, defaultRefreshInterval)
	}
	for i := range s.Endpoints {
		defaultPtr(&s.Endpoints[i].Weight, 1)
	}
	if h := s.HealthCheck; h != nil {
		defaultDuration(&h.Interval, defaultHealthInterval)
		// The timeout must be shorter than the interval: with a short
		// interval, the default timeout is half of it.
		if h.Interval.Duration > 0 && h.Interval.Duration <= defaultHealthTimeout {
			defaultDuration(&h.Timeout, h.Interval.Duration/2)
		}
		defaultDuration(&h.Timeout, defaultHealthTimeout)
		setDefault(&h.HealthyThreshold, defaultHealthyThreshold)
		setDefault(&h.UnhealthyThreshold, defaultUnhealthyThresh)
		setDefault(&h.HTTPPath, defaultHealthPath)
	}
	if c := s.CircuitBreaker; c != nil {
		defaultDuration(&c.Interval, defaultBreakerInterval)
		defaultDuration(&c.BaseEjectionTime, defaultBaseEjectionTime)
		setDefault(&c.MaxEjectionPercent, defaultMaxEjectionPct)
		// A connection limit without a queue limit would let waiting
		// requests pile up without bound; Envoy's default queue is 1024.
		if c.MaxConnections > 0 {
			setDefault(&c.MaxPendingRequests, 1024)
		}
	}
	if s.ConnectionPool == nil {
		s.ConnectionPool = &ConnectionPool{}
	}
	p := s.ConnectionPool
	setDefault(&p.MaxIdleConns, defaultMaxIdleConns)
	setDefault(&p.MaxIdleConnsPerHost, defaultMaxIdlePerHost)
	defaultDuration(&p.IdleConnTimeout, defaultIdleConnTimeout)
}

func defaultRoute(s *RouteSpec, namespace string) {
	for i := range s.ParentRefs {
		setDefault(&s.ParentRefs[i].Namespace, namespace)
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		// No match, or a match without a path, means every path.
		if len(r.Matches) == 0 {
			r.Matches = []RouteMatch{{}}
		}
		for j := range r.Matches {
			m := &r.Matches[j]
			if m.Path == nil {
				m.Path = &PathMatch{Value: "/"}
			}
			setDefault(&m.Path.Type, "PathPrefix")
			for k := range m.Headers {
				setDefault(&m.Headers[k].Type, "Exact")
			}
			for k := range m.QueryParams {
				setDefault(&m.QueryParams[k].Type, "Exact")
			}
		}
		for j := range r.BackendRefs {
			setDefault(&r.BackendRefs[j].Namespace, namespace)
			defaultPtr(&r.BackendRefs[j].Weight, 1)
		}
		if r.Upgrades == nil {
			r.Upgrades = append([]string(nil), defaultUpgrades...)
		}
		if rt := r.Retry; rt != nil {
			if len(rt.RetryOn) == 0 {
				rt.RetryOn = append([]string(nil), defaultRetryOn...)
			}
			defaultDuration(&rt.BackoffBase, defaultBackoffBase)
			defaultDuration(&rt.BackoffMax, max(defaultBackoffMax, rt.BackoffBase.Duration))
			if rt.Budget == nil {
				rt.Budget = &RetryBudget{}
			}
			defaultPtr(&rt.Budget.Percent, defaultRetryBudgetPct)
			defaultPtr(&rt.Budget.MinRetryConcurrency, defaultMinRetryConc)
		}
		if rd := r.Redirect; rd != nil {
			setDefault(&rd.StatusCode, defaultRedirectCode)
		}
	}
}

func defaultPolicy(s *PolicySpec, namespace string) {
	setDefault(&s.FailurePolicy, defaultFailurePolicy)
	setDefault(&s.StateOnChange, "Keep")
	setDefault(&s.TargetRef.Namespace, namespace)
	if r := s.RateLimit; r != nil {
		setDefault(&r.Key, defaultRateLimitKey)
	}
	if j := s.JWT; j != nil {
		setDefault(&j.HeaderName, defaultJWTHeader)
		setDefault(&j.HeaderPrefix, defaultJWTPrefix)
	}
	if k := s.KeyAuth; k != nil {
		setDefault(&k.Header, defaultKeyAuthHeader)
		setDefault(&k.ConsumerHeader, defaultKeyAuthConsumerHeader)
	}
}

// setDefault sets *p to def if it is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// defaultPtr sets an optional value to def if it is unset.
func defaultPtr[T any](p **T, def T) {
	if *p == nil {
		*p = &def
	}
}

func defaultDuration(p **Duration, def time.Duration) {
	if *p == nil {
		*p = &Duration{def}
	}
}

func defaultSize(p **Size, def int64) {
	if *p == nil {
		*p = &Size{def}
	}
}
