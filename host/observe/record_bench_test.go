package observe

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/novaedge/novaedge/configs"
)

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkRecord is the cost of observing one request by itself, without
// the proxy: Start, Begin, SetRoute, one write, Finish. Tracing has no
// exporter here (span creation and propagation only).
func BenchmarkRecord(b *testing.B) {
	rate := func(v float64) *float64 { return &v }
	m := NewMetrics()
	sink := NewSink(io.Discard, m)
	defer sink.Close()
	for _, tc := range []struct {
		name string
		m    *Metrics
		al   *configs.AccessLog
		tr   *configs.Tracing
	}{
		{"metrics", m, nil, nil},
		{"metrics+log", m, &configs.AccessLog{Enabled: true}, nil},
		{"metrics+log+trace-100pct", m, &configs.AccessLog{Enabled: true}, &configs.Tracing{Enabled: true, SamplingRate: rate(100)}},
		{"metrics+log+trace-10pct", m, &configs.AccessLog{Enabled: true}, &configs.Tracing{Enabled: true, SamplingRate: rate(10)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			var gw *Gateway
			if tc.al != nil || tc.tr != nil {
				var err error
				if gw, err = NewGateway("t/gw", tc.al, tc.tr, sink); err != nil {
					b.Fatal(err)
				}
				defer gw.Close(b.Context())
			}
			r := &http.Request{Method: "GET", URL: &url.URL{Path: "/api/users"}, Proto: "HTTP/1.1", Host: "example.org",
				RemoteAddr: "127.0.0.1:40000", Header: http.Header{}, Body: http.NoBody}
			w := &nopWriter{h: http.Header{}}
			client := netip.MustParseAddr("127.0.0.1")
			body := []byte("hello")
			b.ReportAllocs()
			for b.Loop() {
				rec, ow := Start(tc.m, nil, w, r)
				rec.Begin(gw, "request-id", client)
				rec.SetRoute("t/r", "t/b")
				ow.WriteHeader(200)
				ow.Write(body)
				rec.Finish()
			}
		})
	}
}
