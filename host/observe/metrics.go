package observe

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novaedge/novaedge/host/upstream"
)

// Metrics are the request path's Prometheus metrics. One Metrics lives as
// long as the process (register it once); the gateway's generations
// share it. Labels come from the configuration (route and backend names,
// policies, endpoint addresses) and status classes, so their number is
// bounded by the configurations served.
//
//	novaedge_http_requests_total{route,backend,code}        code: 1xx…5xx, "none" (no response sent)
//	novaedge_http_request_duration_seconds{route,backend}   arrival to the handler's end
//	novaedge_http_requests_in_flight
//	novaedge_http_open_connections                           client connections
//	novaedge_upstream_request_duration_seconds{backend}      one attempt, to its response headers
//	novaedge_upstream_retries_total{route,backend}
//	novaedge_policy_duration_seconds{policy,phase}           a policy's request or response callbacks
//	novaedge_access_log_dropped_total                        lines dropped: the writer was behind
//	novaedge_access_log_write_errors_total                   batches of lines the writer failed to write
//	novaedge_backend_endpoint_healthy{backend,endpoint}      1 when passing active health checks
//	novaedge_backend_endpoint_ejected{backend,endpoint}      1 when ejected by outlier detection
//	novaedge_backend_endpoints_available{backend}            healthy and not ejected
//	novaedge_backend_ejections_total{backend}                outlier ejections
//	novaedge_backend_breaker_rejections_total{backend}       requests refused by the circuit breaker
//	novaedge_backend_breaker_active{backend}, …_pending{backend}
//	novaedge_cache_*, novaedge_compression_*                 see CacheMetrics, CompressionMetrics
//
// Routes without a backend (redirects) and requests matching no route
// have backend="" (and route="").
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	retries    *prometheus.CounterVec
	policy     *prometheus.HistogramVec
	inflight   prometheus.Gauge
	conns      prometheus.Gauge
	logDropped prometheus.Counter
	// logWriteErrors counts the batches the access log's writer failed.
	logWriteErrors prometheus.Counter

	// Cache and Compression are incremented by the response cache and
	// the compressor; they are registered with the rest.
	Cache       CacheMetrics
	Compression CompressionMetrics

	series    cowMap[seriesKey, *series]
	policies  cowMap[policyKey, prometheus.Observer]
	upstreams cowMap[string, prometheus.Observer]

	backends atomic.Pointer[func() []upstream.BackendStatus]
}

// CacheMetrics are the response cache's counters.
type CacheMetrics struct {
	Hits      prometheus.Counter // novaedge_cache_hits_total
	Misses    prometheus.Counter // novaedge_cache_misses_total
	Stores    prometheus.Counter // novaedge_cache_stores_total
	Evictions prometheus.Counter // novaedge_cache_evictions_total
	Bytes     prometheus.Gauge   // novaedge_cache_bytes: size of what is cached
	Entries   prometheus.Gauge   // novaedge_cache_entries
}

// CompressionMetrics are the compressor's counters: bytes saved is
// BytesIn − BytesOut.
type CompressionMetrics struct {
	Responses *prometheus.CounterVec // novaedge_compression_responses_total{encoding}
	BytesIn   prometheus.Counter     // novaedge_compression_bytes_in_total: before compression
	BytesOut  prometheus.Counter     // novaedge_compression_bytes_out_total: after
}

// Buckets of the duration histograms, in seconds: from half a
// millisecond (a cached or local answer) to half a minute.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics returns the metrics, ready to register.
func NewMetrics() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novaedge_http_requests_total", Help: "Requests by route, backend and status class.",
		}, []string{"route", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "novaedge_http_request_duration_seconds", Help: "Time from a request's arrival to the end of its response.",
			Buckets: durationBuckets,
		}, []string{"route", "backend"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "novaedge_upstream_request_duration_seconds", Help: "Time of one upstream attempt, to its response headers.",
			Buckets: durationBuckets,
		}, []string{"backend"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novaedge_upstream_retries_total", Help: "Upstream attempts retried.",
		}, []string{"route", "backend"}),
		policy: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "novaedge_policy_duration_seconds", Help: "Time a policy took on a request's request or response headers.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1},
		}, []string{"policy", "phase"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novaedge_http_requests_in_flight", Help: "Requests being served.",
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novaedge_http_open_connections", Help: "Open client connections (upgraded ones included until hijacked).",
		}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novaedge_access_log_dropped_total", Help: "Access log lines dropped because the writer was behind.",
		}),
		logWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novaedge_access_log_write_errors_total", Help: "Batches of access log lines the writer failed to write (the lines are lost).",
		}),
		Cache: CacheMetrics{
			Hits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_cache_hits_total", Help: "Responses served from the cache."}),
			Misses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_cache_misses_total", Help: "Cacheable requests not found in the cache."}),
			Stores:    prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_cache_stores_total", Help: "Responses stored in the cache."}),
			Evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_cache_evictions_total", Help: "Entries evicted from the cache."}),
			Bytes:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "novaedge_cache_bytes", Help: "Size of the cached responses."}),
			Entries:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "novaedge_cache_entries", Help: "Cached responses."}),
		},
		Compression: CompressionMetrics{
			Responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novaedge_compression_responses_total", Help: "Responses compressed, by encoding."}, []string{"encoding"}),
			BytesIn:   prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_compression_bytes_in_total", Help: "Response bytes before compression."}),
			BytesOut:  prometheus.NewCounter(prometheus.CounterOpts{Name: "novaedge_compression_bytes_out_total", Help: "Response bytes after compression."}),
		},
	}
	return m
}

// SetBackends sets where the backend metrics come from: the backends of
// the running configuration, read at scrape time.
func (m *Metrics) SetBackends(f func() []upstream.BackendStatus) { m.backends.Store(&f) }

// ConnOpened and ConnClosed count client connections.
func (m *Metrics) ConnOpened() { m.conns.Inc() }

// ConnClosed is ConnOpened's counterpart (a closed or hijacked connection).
func (m *Metrics) ConnClosed() { m.conns.Dec() }

func (m *Metrics) collectors() []prometheus.Collector {
	c := m.Cache
	return []prometheus.Collector{
		m.requests, m.duration, m.upstream, m.retries, m.policy, m.inflight, m.conns, m.logDropped, m.logWriteErrors,
		c.Hits, c.Misses, c.Stores, c.Evictions, c.Bytes, c.Entries,
		m.Compression.Responses, m.Compression.BytesIn, m.Compression.BytesOut,
	}
}

var (
	descHealthy   = prometheus.NewDesc("novaedge_backend_endpoint_healthy", "1 when the endpoint passes active health checks.", []string{"backend", "endpoint"}, nil)
	descEjected   = prometheus.NewDesc("novaedge_backend_endpoint_ejected", "1 while outlier detection ejects the endpoint.", []string{"backend", "endpoint"}, nil)
	descAvailable = prometheus.NewDesc("novaedge_backend_endpoints_available", "Endpoints healthy and not ejected.", []string{"backend"}, nil)
	descEjections = prometheus.NewDesc("novaedge_backend_ejections_total", "Endpoints ejected by outlier detection.", []string{"backend"}, nil)
	descRejected  = prometheus.NewDesc("novaedge_backend_breaker_rejections_total", "Requests refused by the circuit breaker (too many pending).", []string{"backend"}, nil)
	descActive    = prometheus.NewDesc("novaedge_backend_breaker_active", "Requests holding a circuit-breaker slot.", []string{"backend"}, nil)
	descPending   = prometheus.NewDesc("novaedge_backend_breaker_pending", "Requests waiting for a circuit-breaker slot.", []string{"backend"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{descHealthy, descEjected, descAvailable, descEjections, descRejected, descActive, descPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	f := m.backends.Load()
	if f == nil {
		return
	}
	for _, b := range (*f)() {
		for _, ep := range b.Endpoints {
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, bool01(ep.Healthy), b.Name, ep.Address)
			ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, bool01(ep.Ejected), b.Name, ep.Address)
		}
		ch <- prometheus.MustNewConstMetric(descAvailable, prometheus.GaugeValue, float64(b.Available), b.Name)
		ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(b.EjectionsTotal), b.Name)
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(b.BreakerRejections), b.Name)
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(b.Active), b.Name)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(b.Pending), b.Name)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type seriesKey struct{ route, backend string }

type policyKey struct{ namespace, name, phase string }

// series is a route and backend's children of the request metrics.
type series struct {
	codes    [6]prometheus.Counter // none, 1xx … 5xx
	duration prometheus.Observer
	retries  prometheus.Counter
}

var codeClasses = [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *Metrics) observeRequest(route, backend string, status int, d time.Duration, retries int) {
	s := m.series.get(seriesKey{route, backend}, func(k seriesKey) *series {
		s := &series{
			duration: m.duration.WithLabelValues(k.route, k.backend),
			retries:  m.retries.WithLabelValues(k.route, k.backend),
		}
		for i, c := range codeClasses {
			s.codes[i] = m.requests.WithLabelValues(k.route, k.backend, c)
		}
		return s
	})
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	s.codes[class].Inc()
	s.duration.Observe(d.Seconds())
	if retries > 0 {
		s.retries.Add(float64(retries))
	}
}

func (m *Metrics) observeUpstream(backend string, d time.Duration) {
	m.upstreams.get(backend, func(b string) prometheus.Observer {
		return m.upstream.WithLabelValues(b)
	}).Observe(d.Seconds())
}

func (m *Metrics) observePolicy(k policyKey, d time.Duration) {
	m.policies.get(k, func(k policyKey) prometheus.Observer {
		return m.policy.WithLabelValues(k.namespace+"/"+k.name, k.phase)
	}).Observe(d.Seconds())
}

// cowMap is a map read without locks and copied on write: the request
// path reads; a write happens once per key (keys come from the
// configuration).
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) get(k K, create func(K) V) V {
	if m := c.p.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if p := c.p.Load(); p != nil {
		old = *p
		if v, ok := old[k]; ok {
			return v
		}
	}
	next := make(map[K]V, len(old)+1)
	for kk, vv := range old {
		next[kk] = vv
	}
	v := create(k)
	next[k] = v
	c.p.Store(&next)
	return v
}

var _ prometheus.Collector = (*Metrics)(nil)
