package observe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/novaedge/novaedge/configs"
)

// Gateway is what one ProxyGateway asks of observability in one
// generation: its access log and its tracer. Build it with NewGateway,
// close it (which flushes its spans) when the generation is retired.
type Gateway struct {
	name   string
	log    *accessLog
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// Span kinds, made once (an option is an interface value).
var (
	kindServer   = trace.WithSpanKind(trace.SpanKindServer)
	kindInternal = trace.WithSpanKind(trace.SpanKindInternal)
	kindClient   = trace.WithSpanKind(trace.SpanKindClient)
)

// propagator reads and writes W3C traceparent and tracestate.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

func headerCarrier(h http.Header) propagation.HeaderCarrier { return propagation.HeaderCarrier(h) }

// Exporter endpoints from the environment, used when a gateway's tracing
// names no endpoint (the OpenTelemetry SDK's own variables).
const (
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// TracingEndpoint returns where a gateway's spans go: its endpoint, else
// the OTLP environment variables, else "" (spans are not exported; trace
// context is still created and propagated).
func TracingEndpoint(t *configs.Tracing) string {
	if t == nil || !t.Enabled {
		return ""
	}
	if t.Endpoint != "" {
		return tracesURL(t.Endpoint)
	}
	if v := os.Getenv(envTracesEndpoint); v != "" {
		return v
	}
	if v := os.Getenv(envEndpoint); v != "" {
		return tracesURL(v)
	}
	return ""
}

// tracesURL adds OTLP/HTTP's /v1/traces to a base URL without a path.
func tracesURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return s
	}
	u.Path = "/v1/traces"
	return u.String()
}

// NewGateway builds the observability of the gateway named name
// ("namespace/name") from its accessLog and tracing settings (either may
// be nil or disabled). Access log lines go to sink. It returns nil, nil
// when nothing is enabled.
func NewGateway(name string, al *configs.AccessLog, tr *configs.Tracing, sink *Sink) (*Gateway, error) {
	g := &Gateway{name: name}
	if al != nil && al.Enabled {
		if sink == nil {
			return nil, errors.New("access log: no sink")
		}
		g.log = newAccessLog(al, sink)
	}
	if tr != nil && tr.Enabled {
		rate := 100.0
		if tr.SamplingRate != nil {
			rate = *tr.SamplingRate
		}
		opts := []sdktrace.TracerProviderOption{
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate / 100))),
			sdktrace.WithResource(resource.NewSchemaless(
				attribute.String("service.name", "novaedge"),
				attribute.String("novaedge.gateway", name),
			)),
		}
		if ep := TracingEndpoint(tr); ep != "" {
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(ep), otlptracehttp.WithTimeout(5*time.Second))
			if err != nil {
				return nil, fmt.Errorf("tracing: exporter for %s: %w", ep, err)
			}
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
		g.tp = sdktrace.NewTracerProvider(opts...)
		g.tracer = g.tp.Tracer("github.com/novaedge/novaedge/host/proxy")
	}
	if g.log == nil && g.tracer == nil {
		return nil, nil
	}
	return g, nil
}

// Close flushes the spans the gateway's tracer still holds and stops it,
// within ctx.
func (g *Gateway) Close(ctx context.Context) error {
	if g == nil || g.tp == nil {
		return nil
	}
	return g.tp.Shutdown(ctx)
}

// PolicySpan times one policy's callback on one request.
type PolicySpan struct {
	rec   *Record
	span  trace.Span
	start time.Time
	key   policyKey
}

// StartPolicy begins a policy's work on the request: phase is "request"
// or "response". The policy is named by namespace and name.
func (rec *Record) StartPolicy(namespace, name, phase string) PolicySpan {
	if rec == nil || (rec.m == nil && rec.span == nil) {
		return PolicySpan{}
	}
	ps := PolicySpan{rec: rec, start: time.Now(), key: policyKey{namespace, name, phase}}
	if rec.recording {
		_, ps.span = rec.gw.tracer.Start(rec.ctx, "policy "+namespace+"/"+name,
			kindInternal,
			trace.WithTimestamp(ps.start),
			trace.WithAttributes(
				attribute.String("novaedge.policy", namespace+"/"+name),
				attribute.String("novaedge.phase", phase)))
	}
	return ps
}

// End ends the policy's span: err is its failure, if it failed;
// answered is true when it answered the request itself.
func (ps PolicySpan) End(err error, answered bool) {
	if ps.rec == nil {
		return
	}
	now := time.Now()
	if m := ps.rec.m; m != nil {
		m.observePolicy(ps.key, now.Sub(ps.start))
	}
	if ps.span != nil {
		if err != nil {
			ps.span.SetStatus(codes.Error, err.Error())
		}
		if answered {
			ps.span.SetAttributes(attribute.Bool("novaedge.answered", true))
		}
		ps.span.End(trace.WithTimestamp(now))
	}
}

// AttemptSpan is one upstream attempt.
type AttemptSpan struct {
	rec   *Record
	span  trace.Span
	start time.Time
}

// StartAttempt begins an upstream attempt to the endpoint addr, with
// the outgoing request's headers h: when the request is traced, the
// attempt's client span is their traceparent (and the request's
// tracestate goes along).
func (rec *Record) StartAttempt(addr string, h http.Header) AttemptSpan {
	if rec == nil {
		return AttemptSpan{}
	}
	now := time.Now()
	rec.attempts++
	rec.endpoint = addr
	if rec.upFirst.IsZero() {
		rec.upFirst = now
	}
	a := AttemptSpan{rec: rec, start: now}
	switch {
	case rec.recording:
		var ctx context.Context
		ctx, a.span = rec.gw.tracer.Start(rec.ctx, "upstream "+rec.backend,
			kindClient,
			trace.WithTimestamp(now),
			trace.WithAttributes(
				attribute.String("server.address", addr),
				attribute.String("novaedge.backend", rec.backend),
				attribute.Int("novaedge.attempt", rec.attempts)))
		propagator.Inject(ctx, headerCarrier(h))
	case rec.span != nil:
		// Not sampled: the backend still gets the trace, as a child of
		// the server span, not sampled either.
		propagator.Inject(rec.ctx, headerCarrier(h))
	}
	return a
}

// Headers records the attempt's response headers (status), or its
// failure (err): the upstream time ends here.
func (a AttemptSpan) Headers(status int, err error) {
	rec := a.rec
	if rec == nil {
		return
	}
	now := time.Now()
	rec.upLast = now.Sub(rec.upFirst)
	if rec.m != nil {
		rec.m.observeUpstream(rec.backend, now.Sub(a.start))
	}
	if a.span != nil {
		if err != nil {
			a.span.SetStatus(codes.Error, err.Error())
		} else {
			a.span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				a.span.SetStatus(codes.Error, "")
			}
		}
	}
}

// End ends the attempt (its response body copied, or abandoned).
func (a AttemptSpan) End() {
	if a.span != nil {
		a.span.End()
	}
}

// HasTracer reports whether the gateway traces (for tests and status).
func (g *Gateway) HasTracer() bool { return g != nil && g.tracer != nil }

// Name is the gateway's "namespace/name".
func (g *Gateway) Name() string { return g.name }

// TracingNotice returns what a gateway's tracing settings leave out, or "".
func TracingNotice(t *configs.Tracing) string {
	if t == nil || !t.Enabled || TracingEndpoint(t) != "" {
		return ""
	}
	return "no collector: endpoint is empty and " + envEndpoint + " is unset; trace context is created and propagated to backends, spans are not exported"
}
