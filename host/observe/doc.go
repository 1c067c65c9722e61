// Package observe is NovaEdge's observability: the access log, the
// Prometheus metrics of the request path and tracing with OpenTelemetry.
//
// The proxy wraps each request in a Record (Start … Finish): the Record's
// ResponseWriter captures the status and the bytes sent, the proxy fills
// in what it decides (route, backend, endpoint, the policy that rejected
// the request, the upstream time), and Finish writes the access log line,
// updates the metrics and ends the server span. Records are pooled: a
// request costs no allocation for them, and none for its access log line
// (a pooled buffer handed to the Sink's writer goroutine).
//
// What is configured per ProxyGateway (accessLog, tracing) is a Gateway,
// built with each generation of the configuration and closed (its tracer
// provider flushed) when that generation is retired. Metrics and the Sink
// live as long as the process.
package observe
