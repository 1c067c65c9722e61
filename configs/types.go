package configs

// This file holds the typed form of the five resource kinds. Field names are
// the YAML keys (the `json` tag is the key; the strict decoder reads it).
// Every field of the reference use case has a typed home here.

// APIVersion is the only accepted apiVersion.
const APIVersion = "novaedge.io/v1alpha1"

// Resource kinds.
const (
	KindVIP     = "ProxyVIP"
	KindGateway = "ProxyGateway"
	KindBackend = "ProxyBackend"
	KindRoute   = "ProxyRoute"
	KindPolicy  = "ProxyPolicy"
)

// DefaultNamespace is given to namespaced resources that name none.
const DefaultNamespace = "default"

// ObjectMeta is the metadata block of every resource.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Source says where a resource was read from; it is not part of the YAML.
type Source struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Dir  string `json:"-"` // paths are relative to it (default: File's directory)
}

// ---------------------------------------------------------------- ProxyVIP

// VIP is a ProxyVIP: a virtual address announced on the local network.
type VIP struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       VIPSpec    `json:"spec"`
	Source     Source     `json:"-"`
}

// VIPSpec is the spec of a ProxyVIP.
type VIPSpec struct {
	// Address is an IP prefix, "10.200.0.50/32".
	Address string `json:"address"`
	// Mode is how the address is announced: L2ARP (one owner puts the
	// address on its interface and announces it with gratuitous ARP or
	// unsolicited neighbour advertisements) or BGP (every healthy replica
	// advertises it as a host route to the peers of BGP).
	Mode string `json:"mode"`
	// AddressFamily is ipv4 or ipv6 (defaulted from Address).
	AddressFamily string `json:"addressFamily,omitempty"`
	// Interface is the network interface to bind on (default: the one
	// with the route to Address).
	Interface    string           `json:"interface,omitempty"`
	Ports        []int            `json:"ports,omitempty"`
	HealthPolicy *VIPHealthPolicy `json:"healthPolicy,omitempty"`
	// BGP is the speaker and peers of mode BGP (required there, refused
	// with L2ARP).
	BGP *VIPBGP `json:"bgp,omitempty"`
}

// VIPBGP is how a ProxyVIP of mode BGP is advertised: as a /32 (/128)
// route, from an embedded BGP speaker of this ASN, to each peer.
//
//	bgp:
//	  localASN: 64512
//	  routerID: 198.51.100.11   # optional: the node's IPv4 address towards the first peer
//	  holdTime: 90s             # optional (default 90s; 3s–65535s, whole seconds)
//	  peers:
//	  - {address: 203.0.113.1, asn: 64513, port: 179}   # port optional (default 179)
type VIPBGP struct {
	// LocalASN is the speaker's AS number, 1–4294967294.
	LocalASN int64 `json:"localASN"`
	// RouterID is the speaker's BGP identifier, an IPv4 address; empty
	// for the node's IPv4 address towards its first peer.
	RouterID string `json:"routerID,omitempty"`
	// HoldTime is the hold time offered to the peers (default 90s).
	HoldTime *Duration `json:"holdTime,omitempty"`
	// Peers are the BGP neighbours (at least one).
	Peers []VIPBGPPeer `json:"peers"`
}

// VIPBGPPeer is one BGP neighbour of a ProxyVIP.
type VIPBGPPeer struct {
	// Address is the neighbour's IP address.
	Address string `json:"address"`
	// ASN is the neighbour's AS number, 1–4294967294.
	ASN int64 `json:"asn"`
	// Port is the neighbour's BGP port (default 179).
	Port int `json:"port,omitempty"`
}

// VIPHealthPolicy gates ownership of the VIP on health.
type VIPHealthPolicy struct {
	MinHealthyNodes int `json:"minHealthyNodes,omitempty"`
}

// ------------------------------------------------------------ ProxyGateway

// Gateway is a ProxyGateway: listeners and edge settings.
type Gateway struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       GatewaySpec `json:"spec"`
	Source     Source      `json:"-"`
}

// GatewaySpec is the spec of a ProxyGateway.
type GatewaySpec struct {
	// VIPRef names a ProxyVIP (cluster scoped).
	VIPRef         string          `json:"vipRef,omitempty"`
	Listeners      []Listener      `json:"listeners"`
	RedirectScheme *RedirectScheme `json:"redirectScheme,omitempty"`
	Compression    *Compression    `json:"compression,omitempty"`
	Cache          *Cache          `json:"cache,omitempty"`
	Tracing        *Tracing        `json:"tracing,omitempty"`
	AccessLog      *AccessLog      `json:"accessLog,omitempty"`
	// TrustedProxies lists CIDRs whose X-Forwarded-* headers are believed.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// ClientLimits guard the listeners against slow or oversized clients.
	ClientLimits *ClientLimits `json:"clientLimits,omitempty"`
	// IdentityHeaders are request headers that carry an identity a policy
	// vouches for: the gateway removes them from every client request, on
	// every route, before the policies run, so that a backend sees only
	// the value a policy set (KeyAuth's consumer, JWT's claims). A name
	// ending in "*" is a prefix ("X-Authenticated-*"). The consumerHeader
	// of every KeyAuth policy and the forwardClaims headers of every JWT
	// policy are always added. Default: X-Consumer, X-User-ID,
	// X-Authenticated-*; an empty list leaves only the policies' headers.
	IdentityHeaders []string `json:"identityHeaders"`
}

// Listener is one port of a gateway.
type Listener struct {
	Name string `json:"name"`
	// Address is the IP to bind; empty means every interface.
	Address  string `json:"address,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // HTTP, HTTPS
	// Hostnames the listener accepts: exact or "*.example.com"; empty = any.
	Hostnames          []string     `json:"hostnames,omitempty"`
	TLS                *ListenerTLS `json:"tls,omitempty"`
	SSLRedirect        bool         `json:"sslRedirect,omitempty"`
	MaxRequestBodySize *Size        `json:"maxRequestBodySize,omitempty"`
}

// ListenerTLS configures TLS termination on an HTTPS listener.
type ListenerTLS struct {
	SecretRef  *SecretRef `json:"secretRef,omitempty"`
	MinVersion string     `json:"minVersion,omitempty"` // TLS1.2, TLS1.3
	// CipherSuites are the TLS 1.2 cipher suites offered, by Go's names
	// (crypto/tls: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", …). Default:
	// ECDHE key exchange with an AEAD cipher only (AES-GCM,
	// ChaCha20-Poly1305), no CBC. Go's insecure suites are refused. TLS
	// 1.3 suites are not configurable (Go chooses them).
	CipherSuites []string `json:"cipherSuites,omitempty"`
}

// SecretRef names a TLS secret: <secretsDir>/<namespace>/<name>/tls.{crt,key}.
type SecretRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RedirectScheme redirects plain HTTP requests to another scheme.
type RedirectScheme struct {
	Enabled    bool   `json:"enabled,omitempty"`
	Scheme     string `json:"scheme,omitempty"`
	Port       int    `json:"port,omitempty"`
	StatusCode int    `json:"statusCode,omitempty"`
}

// Compression configures response compression.
type Compression struct {
	Enabled    bool     `json:"enabled,omitempty"`
	MinSize    *Size    `json:"minSize,omitempty"`
	Level      int      `json:"level,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"` // gzip, br, zstd
}

// Cache configures the response cache.
type Cache struct {
	Enabled      bool      `json:"enabled,omitempty"`
	MaxSize      *Size     `json:"maxSize,omitempty"`
	DefaultTTL   *Duration `json:"defaultTTL,omitempty"`
	MaxTTL       *Duration `json:"maxTTL,omitempty"`
	MaxEntrySize *Size     `json:"maxEntrySize,omitempty"`
}

// Tracing configures distributed tracing.
type Tracing struct {
	Enabled bool `json:"enabled,omitempty"`
	// SamplingRate is a percentage, 0–100.
	SamplingRate *float64 `json:"samplingRate,omitempty"`
	// Endpoint is the OTLP/HTTP collector URL.
	Endpoint string `json:"endpoint,omitempty"`
}

// AccessLog configures the access log.
type AccessLog struct {
	Enabled      bool     `json:"enabled,omitempty"`
	Format       string   `json:"format,omitempty"` // json, text
	ExcludePaths []string `json:"excludePaths,omitempty"`
	// SampleRate is a percentage, 0–100 (default 100).
	SampleRate *float64 `json:"sampleRate,omitempty"`
}

// ClientLimits protects listeners from slow or oversized clients.
type ClientLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers (default 10s).
	ReadHeaderTimeout *Duration `json:"readHeaderTimeout,omitempty"`
	// IdleTimeout closes a keep-alive connection idle that long (default
	// 120s).
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
	// MaxHeaderBytes caps a request's header block, the request line and
	// every field line (default 60Ki, Envoy's max_request_headers_kb);
	// larger requests get 431.
	MaxHeaderBytes *Size `json:"maxHeaderBytes,omitempty"`
	// MaxHeaderCount caps the number of request header fields (default
	// 100, Envoy's max_request_headers_count; 1–10000); more get 431.
	MaxHeaderCount int `json:"maxHeaderCount,omitempty"`
	// BodyReadTimeout is the longest a client may leave a request body
	// without sending a byte (default 30s, as Nginx's client_body_timeout
	// measures it: between two reads). The request gets 408 if no
	// response has started, and its connection is closed; the backend's
	// endpoint is not blamed.
	BodyReadTimeout *Duration `json:"bodyReadTimeout,omitempty"`
	// MinBodyRate is the least average rate, in bytes per second, at which
	// a client must send a request body (default 240, as Kestrel's
	// MinRequestBodyDataRate; 0 turns the check off). Only the time the
	// gateway spends waiting on the client counts (not the time a slow
	// backend takes to read), and the first 5 seconds are a grace period.
	// A client below it gets 408 and its connection is closed: a body
	// trickled at a byte a second never stays idle long enough for
	// bodyReadTimeout, yet would hold a backend connection for days.
	// gRPC requests (application/grpc*) are exempt: a client stream
	// pauses between messages.
	MinBodyRate *Size `json:"minBodyRate,omitempty"`
	// HeadersWithUnderscores: what a request header whose name has an
	// underscore gets: Drop (default, as Nginx's underscores_in_headers
	// off), Reject (400, Envoy's REJECT_REQUEST) or Allow. Many backends
	// (CGI, WSGI, PHP, Rails) read X_Consumer and X-Consumer as the same
	// variable, so an underscore spelling would pass the identity headers
	// the gateway strips.
	HeadersWithUnderscores string `json:"headersWithUnderscores,omitempty"`
}

// ------------------------------------------------------------ ProxyBackend

// Backend is a ProxyBackend: a set of endpoints and how to reach them.
type Backend struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       BackendSpec `json:"spec"`
	Source     Source      `json:"-"`
}

// BackendSpec is the spec of a ProxyBackend. Exactly one of ServiceRef and
// Endpoints is set.
type BackendSpec struct {
	ServiceRef *ServiceRef `json:"serviceRef,omitempty"`
	Endpoints  []Endpoint  `json:"endpoints,omitempty"`
	// Protocol spoken to the endpoints: HTTP (HTTP/1.1) or H2C.
	Protocol string `json:"protocol,omitempty"`
	// LBPolicy: RoundRobin, LeastConn, P2C, Random, RingHash, Maglev.
	LBPolicy       string          `json:"lbPolicy,omitempty"`
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
	ConnectTimeout *Duration       `json:"connectTimeout,omitempty"`
	// ResponseHeaderTimeout bounds the wait for an endpoint's response
	// headers once the request (and its body) has been sent (default 60s,
	// as Nginx's proxy_read_timeout and HAProxy's usual timeout server).
	// Past it the request gets 504 and the endpoint's result is a
	// timeout (outlier detection counts it; a retry may follow).
	ResponseHeaderTimeout *Duration       `json:"responseHeaderTimeout,omitempty"`
	HealthCheck           *HealthCheck    `json:"healthCheck,omitempty"`
	CircuitBreaker        *CircuitBreaker `json:"circuitBreaker,omitempty"`
	ConnectionPool        *ConnectionPool `json:"connectionPool,omitempty"`
}

// ServiceRef names a DNS service; every A/AAAA record is an endpoint.
type ServiceRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Port      int    `json:"port"`
	// RefreshInterval is how often the name is re-resolved (default 30s).
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
}

// Endpoint is one explicit endpoint of a backend.
type Endpoint struct {
	// Address is "host:port" (host an IP or a name).
	Address string `json:"address"`
	Weight  *int   `json:"weight,omitempty"`
}

// ConsistentHash says what RingHash and Maglev hash on. Exactly one is set.
type ConsistentHash struct {
	Header   string `json:"header,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	SourceIP bool   `json:"sourceIP,omitempty"`
}

// HealthCheck configures active HTTP health checking.
type HealthCheck struct {
	Interval           *Duration `json:"interval,omitempty"`
	Timeout            *Duration `json:"timeout,omitempty"`
	HealthyThreshold   int       `json:"healthyThreshold,omitempty"`
	UnhealthyThreshold int       `json:"unhealthyThreshold,omitempty"`
	HTTPPath           string    `json:"httpPath,omitempty"`
	// ExpectedStatuses are the healthy status codes (default 200–399).
	ExpectedStatuses []int `json:"expectedStatuses,omitempty"`
}

// CircuitBreaker configures concurrency limits and passive outlier
// detection. MaxConnections caps the requests in flight to the backend;
// up to MaxPendingRequests more wait for a place (default 1024 when
// MaxConnections is set), and any beyond are answered 503 at once.
type CircuitBreaker struct {
	MaxConnections      int       `json:"maxConnections,omitempty"`
	MaxPendingRequests  int       `json:"maxPendingRequests,omitempty"`
	ConsecutiveFailures int       `json:"consecutiveFailures,omitempty"`
	Interval            *Duration `json:"interval,omitempty"`
	BaseEjectionTime    *Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps ejected endpoints (default and ceiling 50).
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
}

// ConnectionPool tunes the backend's transport.
type ConnectionPool struct {
	MaxIdleConns        int       `json:"maxIdleConns,omitempty"`
	MaxIdleConnsPerHost int       `json:"maxIdleConnsPerHost,omitempty"`
	IdleConnTimeout     *Duration `json:"idleConnTimeout,omitempty"`
}

// -------------------------------------------------------------- ProxyRoute

// Route is a ProxyRoute: rules that send matching requests to backends.
type Route struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       RouteSpec  `json:"spec"`
	Source     Source     `json:"-"`
}

// RouteSpec is the spec of a ProxyRoute.
type RouteSpec struct {
	// ParentRefs names the gateways (and optionally listeners) the route
	// attaches to; empty = every gateway in the route's namespace.
	ParentRefs []ParentRef `json:"parentRefs,omitempty"`
	Hostnames  []string    `json:"hostnames,omitempty"`
	Rules      []RouteRule `json:"rules"`
}

// ParentRef names a ProxyGateway and optionally one of its listeners.
type ParentRef struct {
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	SectionName string `json:"sectionName,omitempty"`
}

// RouteRule is one rule of a route. A request matches the rule if it
// matches any of Matches (or Matches is empty).
type RouteRule struct {
	Name            string          `json:"name,omitempty"`
	Matches         []RouteMatch    `json:"matches,omitempty"`
	BackendRefs     []BackendRef    `json:"backendRefs,omitempty"`
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	URLRewrite      *URLRewrite     `json:"urlRewrite,omitempty"`
	Redirect        *Redirect       `json:"redirect,omitempty"`
	Retry           *Retry          `json:"retry,omitempty"`
	Limits          *Limits         `json:"limits,omitempty"`
	// Upgrades lists the protocols a client may switch to on this rule
	// (the Upgrade header, as Envoy's upgrade_configs): the request goes
	// to the backend with its Upgrade header, and after the backend's 101
	// the connection is a tunnel. Any other Upgrade is removed and the
	// request forwarded as a plain one. Default: [websocket]; an empty
	// list allows none. h2c is never tunnelled (an h2c upgrade would give
	// the client a connection to the backend past the route's policies)
	// and may not be listed.
	Upgrades []string `json:"upgrades"`
}

// RouteMatch is one match: all of its parts must hold.
type RouteMatch struct {
	Path        *PathMatch   `json:"path,omitempty"`
	Method      string       `json:"method,omitempty"`
	Headers     []ValueMatch `json:"headers,omitempty"`
	QueryParams []ValueMatch `json:"queryParams,omitempty"`
}

// PathMatch matches the request path.
type PathMatch struct {
	Type  string `json:"type,omitempty"` // Exact, PathPrefix, RegularExpression
	Value string `json:"value"`
}

// ValueMatch matches a header or query parameter.
type ValueMatch struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Type  string `json:"type,omitempty"` // Exact, RegularExpression
}

// BackendRef sends a share of a rule's traffic to a ProxyBackend.
type BackendRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Weight    *int   `json:"weight,omitempty"`
}

// HeaderModifier edits headers: set replaces, add appends, remove deletes.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is a name and a value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// URLRewrite rewrites the request before it goes upstream.
type URLRewrite struct {
	Hostname string       `json:"hostname,omitempty"`
	Path     *PathRewrite `json:"path,omitempty"`
}

// PathRewrite replaces the matched prefix or the whole path.
type PathRewrite struct {
	Type  string `json:"type"` // ReplacePrefixMatch, ReplaceFullPath
	Value string `json:"value"`
}

// Redirect answers the request with a redirect instead of proxying it.
type Redirect struct {
	Scheme     string       `json:"scheme,omitempty"`
	Hostname   string       `json:"hostname,omitempty"`
	Port       int          `json:"port,omitempty"`
	Path       *PathRewrite `json:"path,omitempty"`
	StatusCode int          `json:"statusCode,omitempty"` // 301, 302, 303, 307, 308
}

// Retry configures retries of failed upstream attempts.
type Retry struct {
	MaxRetries int `json:"maxRetries"`
	// RetryOn: 5xx, gateway-error, connection-failure, reset.
	RetryOn       []string  `json:"retryOn,omitempty"`
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// BackoffBase and BackoffMax bound the jittered exponential backoff
	// (defaults 25ms and 250ms).
	BackoffBase *Duration `json:"backoffBase,omitempty"`
	BackoffMax  *Duration `json:"backoffMax,omitempty"`
	// Budget caps retries to a share of active requests.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryBudget caps retries: at most Percent % of active requests may be
// retries, but MinRetryConcurrency are always allowed.
type RetryBudget struct {
	Percent             *float64 `json:"percent,omitempty"`
	MinRetryConcurrency *int     `json:"minRetryConcurrency,omitempty"`
}

// Limits bounds a rule's requests.
type Limits struct {
	RequestTimeout     *Duration `json:"requestTimeout,omitempty"`
	MaxRequestBodySize *Size     `json:"maxRequestBodySize,omitempty"`
}

// ------------------------------------------------------------- ProxyPolicy

// Policy is a ProxyPolicy attached to a gateway or route.
type Policy struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       PolicySpec `json:"spec"`
	Source     Source     `json:"-"`

	external map[string]*ExternalFile // by name as written; see ReadExternal
}

// Policy types.
const (
	PolicyRateLimit       = "RateLimit"
	PolicyJWT             = "JWT"
	PolicyCORS            = "CORS"
	PolicySecurityHeaders = "SecurityHeaders"
	PolicyKeyAuth         = "KeyAuth"
	PolicyWasm            = "Wasm"
)

// PolicySpec is the spec of a ProxyPolicy: its type and the one block that
// the type names.
type PolicySpec struct {
	Type      string    `json:"type"`
	TargetRef TargetRef `json:"targetRef"`
	// FailurePolicy: FailClosed (default) or FailOpen: what a request gets
	// when the policy's plugin fails (trap, timeout, over its limits).
	FailurePolicy string `json:"failurePolicy,omitempty"`
	// Priority orders the policies that apply to a request: lower runs
	// first on the request path (and last on the response path); ties
	// follow a fixed order by type (see host/proxy).
	Priority int `json:"priority,omitempty"`
	// StateOnChange: Keep (default) or Reset: what the state the host
	// keeps for the policy's plugin outside its VMs — its rate-limit
	// buckets, and the shared data of its wasm.vmId if it has one — becomes
	// when a change rebuilds the plugin (a new config, a plugin reload).
	// Keep carries it over while the module and root id stay the same; a
	// new module or root id always starts afresh.
	StateOnChange   string           `json:"stateOnChange,omitempty"`
	RateLimit       *RateLimit       `json:"rateLimit,omitempty"`
	JWT             *JWT             `json:"jwt,omitempty"`
	CORS            *CORS            `json:"cors,omitempty"`
	SecurityHeaders *SecurityHeaders `json:"securityHeaders,omitempty"`
	KeyAuth         *KeyAuth         `json:"keyAuth,omitempty"`
	Wasm            *Wasm            `json:"wasm,omitempty"`
}

// TargetRef names the ProxyGateway (every route attached to it) or the
// ProxyRoute a policy applies to; for a route, SectionName may name one of
// its rules.
type TargetRef struct {
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Namespace   string `json:"namespace,omitempty"`
	SectionName string `json:"sectionName,omitempty"`
}

// RateLimit is a token-bucket rate limit (plugins/ratelimit).
type RateLimit struct {
	// RequestsPerSecond refills each bucket (0.001 to 1e9; thousandths
	// count, finer fractions are rounded).
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Burst is a bucket's capacity; 0 means one second's worth
	// (requestsPerSecond rounded up, at least 1).
	Burst int `json:"burst,omitempty"`
	// Key: header:NAME, ip, claim:NAME, route, global.
	Key string `json:"key,omitempty"`
	// OnMissingKey: what a request without the key (header:NAME,
	// claim:NAME) gets: ip (default: limited by its client address) or
	// reject (401).
	OnMissingKey string `json:"onMissingKey,omitempty"`
}

// JWT validates bearer tokens (plugins/jwt/README.md).
type JWT struct {
	// Issuer, if set, must equal the token's iss.
	Issuer string `json:"issuer,omitempty"`
	// Audience: the token's aud must name one of these (if any).
	Audience []string `json:"audience,omitempty"`
	// JWKSURI is the issuer's JSON Web Key Set (http(s) URL, or
	// "backend:NAMESPACE/NAME/PATH" to fetch it from a ProxyBackend).
	JWKSURI string `json:"jwksUri,omitempty"`
	// JWKS is an inline JSON Web Key Set (JSON text).
	JWKS         string `json:"jwks,omitempty"`
	HeaderName   string `json:"headerName,omitempty"`
	HeaderPrefix string `json:"headerPrefix,omitempty"`
	// Cookie and QueryParameter: where else a token may be.
	Cookie            string   `json:"cookie,omitempty"`
	QueryParameter    string   `json:"queryParameter,omitempty"`
	AllowedAlgorithms []string `json:"allowedAlgorithms,omitempty"`
	// HMACSecret is the HS256 shared secret, inline (at least 32 bytes).
	HMACSecret string `json:"hmacSecret,omitempty"`
	// ClockSkew tolerated on exp, nbf and iat (default 60s).
	ClockSkew *Duration `json:"clockSkew,omitempty"`
	// ForwardClaims: claims sent to the backend as headers (default sub
	// as X-User-ID).
	ForwardClaims []JWTClaimHeader `json:"forwardClaims,omitempty"`
	// RemoveCredential removes the token's header before the backend.
	RemoveCredential bool `json:"removeCredential,omitempty"`
	// JWKSCacheDuration: how long a JWKS without Cache-Control max-age is
	// used (default 5m).
	JWKSCacheDuration *Duration `json:"jwksCacheDuration,omitempty"`
	// JWKSRefreshInterval: the least time between fetches caused by an
	// unknown kid (default 30s).
	JWKSRefreshInterval *Duration `json:"jwksRefreshInterval,omitempty"`
}

// JWTClaimHeader forwards a JWT claim as a request header.
type JWTClaimHeader struct {
	Claim  string `json:"claim"`
	Header string `json:"header"`
}

// CORS answers preflights and decorates responses for browsers.
type CORS struct {
	AllowOrigins     []string  `json:"allowOrigins,omitempty"`
	AllowMethods     []string  `json:"allowMethods,omitempty"`
	AllowHeaders     []string  `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string  `json:"exposeHeaders,omitempty"`
	MaxAge           *Duration `json:"maxAge,omitempty"`
	AllowCredentials bool      `json:"allowCredentials,omitempty"`
}

// SecurityHeaders adds security response headers.
type SecurityHeaders struct {
	HSTS                  *HSTS  `json:"hsts,omitempty"`
	XFrameOptions         string `json:"xFrameOptions,omitempty"`
	XContentTypeOptions   bool   `json:"xContentTypeOptions,omitempty"`
	ReferrerPolicy        string `json:"referrerPolicy,omitempty"`
	ContentSecurityPolicy string `json:"contentSecurityPolicy,omitempty"`
	PermissionsPolicy     string `json:"permissionsPolicy,omitempty"`
	// CrossOriginOpenerPolicy, CrossOriginEmbedderPolicy and
	// CrossOriginResourcePolicy are the Cross-Origin-*-Policy headers.
	CrossOriginOpenerPolicy   string `json:"crossOriginOpenerPolicy,omitempty"`
	CrossOriginEmbedderPolicy string `json:"crossOriginEmbedderPolicy,omitempty"`
	CrossOriginResourcePolicy string `json:"crossOriginResourcePolicy,omitempty"`
	// RemoveHeaders are removed from responses (Server, X-Powered-By).
	RemoveHeaders []string `json:"removeHeaders,omitempty"`
	// Override: a configured header replaces the backend's own; by
	// default the backend's wins.
	Override bool `json:"override,omitempty"`
}

// HSTS is the Strict-Transport-Security header.
type HSTS struct {
	Enabled           bool  `json:"enabled,omitempty"`
	MaxAge            int64 `json:"maxAge,omitempty"` // seconds
	IncludeSubDomains bool  `json:"includeSubDomains,omitempty"`
	Preload           bool  `json:"preload,omitempty"`
}

// KeyAuth authenticates requests by API key.
type KeyAuth struct {
	// Keys maps keys to the names of their consumers.
	Keys []APIKey `json:"keys,omitempty"`
	// KeysFile is a file of keys (relative to the declaring file), one
	// "KEY CONSUMER" per line; blank lines and "#" comments are skipped.
	// The gateway reads it when it builds the policy.
	KeysFile string `json:"keysFile,omitempty"`
	// Header carries the key (default X-API-Key).
	Header string `json:"header,omitempty"`
	// Query, if set, names a query parameter that may carry the key when
	// the header does not.
	Query string `json:"query,omitempty"`
	// HideCredentials removes the key from the request before the backend
	// sees it.
	HideCredentials bool `json:"hideCredentials,omitempty"`
	// ConsumerHeader carries the consumer's name to the backend (default
	// X-Consumer); copies a client sends are removed.
	ConsumerHeader string `json:"consumerHeader,omitempty"`
}

// APIKey is one key of a KeyAuth policy: the key itself, or its SHA-256.
type APIKey struct {
	Key      string `json:"key,omitempty"`
	SHA256   string `json:"sha256,omitempty"` // hex, of the key
	Consumer string `json:"consumer"`
}

// Wasm runs a user's proxy-wasm module.
type Wasm struct {
	// Module is a file path (relative to the declaring file) or the name
	// of a module bundled in the binary.
	Module string `json:"module"`
	// SHA256 pins the module's content (hex).
	SHA256 string `json:"sha256,omitempty"`
	// RootID is the plugin's root_id: which root context of the module
	// the policy configures (SDKs that host several plugins use it).
	RootID string `json:"rootId,omitempty"`
	// VMID names a VM to share: policies with the same module, vmId,
	// vmConfig and maxMemory run in the same VMs (one root context each),
	// as Envoy's vm_id. Empty: the policy's VMs are its own.
	VMID string `json:"vmId,omitempty"`
	// Config is passed to the plugin as its configuration (JSON).
	Config any `json:"config,omitempty"`
	// VMConfig is passed to the plugin's VM at start (JSON).
	VMConfig any `json:"vmConfig,omitempty"`
	// Timeout bounds one callback into the plugin (default 100ms).
	Timeout *Duration `json:"timeout,omitempty"`
	// MaxMemory caps one VM's memory (default 32Mi).
	MaxMemory *Size `json:"maxMemory,omitempty"`
	// Authenticates declares that the plugin authenticates requests, as
	// JWT and KeyAuth do (default false). The response cache then treats
	// the responses of the rules the policy applies to as answers to
	// requests with Authorization: not shared unless the backend marks
	// them public (or s-maxage, must-revalidate). An authenticating policy
	// must fail closed: failurePolicy FailOpen is refused with it.
	Authenticates bool `json:"authenticates,omitempty"`
}
