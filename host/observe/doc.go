// Package observe is NovaEdge's observability: the access log, the
// Prometheus metrics of the request path and tracing with OpenTelemetry.
//
// The proxy wraps each request in a Record (Start … Finish): the Record's
// ResponseWriter captures the status and the bytes sent (and keeps
// http.Flusher, http.Hijacker and http.ResponseController working, so
// server-sent events and WebSocket upgrades pass), the proxy fills in what
// it decides (route, backend, endpoint, the policy that rejected the
// request, the upstream time), and Finish writes the access log line,
// updates the metrics and ends the server span. Records are pooled: with
// metrics and the access log on, a request allocates nothing for them
// (its line is formatted into a pooled buffer and copied to the Sink).
//
// # Per gateway (ProxyGateway spec), per generation
//
// accessLog and tracing are a Gateway, built with each generation of the
// configuration and closed when that generation is retired: its tracer
// provider then exports the spans it still holds. A request takes the
// settings of the gateway whose listener took its host; a request no
// listener's hostname takes gets its port's first gateway's access log.
//
// Access log: one line per request (JSON or logfmt text; fields listed at
// appendJSON), written by the Sink's goroutine to stdout (or
// proxy.Options.AccessLog) at most every 100 ms; a slow writer never
// blocks a request: past 4 MiB waiting, lines are dropped and counted
// (novaedge_access_log_dropped_total); batches the writer fails are
// counted in novaedge_access_log_write_errors_total. excludePaths and
// sampleRate are described at accessLog.
//
// Tracing: W3C traceparent/tracestate (the SDK's propagator). A request's
// server span continues the client's trace, or starts one; sampling is
// parent-based, at samplingRate for new traces. Each policy callback on
// the request and on the response headers is an internal span
// ("policy namespace/name") and each upstream attempt a client span
// ("upstream namespace/name"; a retry is a new one), all children of the
// server span; the attempt's span is the traceparent the backend gets.
// Spans go over OTLP/HTTP (protobuf) through a batch span processor to
// endpoint, or to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
// OTEL_EXPORTER_OTLP_ENDPOINT when it is empty (a URL without a path gets
// /v1/traces); with none of them, trace context is still created and
// propagated, nothing is exported, and `novaedge validate` says so.
//
// # Process-wide
//
// Metrics (see Metrics for the series) and the Sink live as long as the
// process. The response cache and the compressor report through
// Metrics.Cache and Metrics.Compression (counters registered with the
// rest), and the cache tells the access log what it did with
// Record.SetCacheStatus (RecordOf finds the Record of a ResponseWriter
// the proxy wrapped).
package observe
