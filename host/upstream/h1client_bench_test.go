package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares net/http's Transport (as the backend tunes
// it) with the native client: one GET with a 1 KB answer from an httptest
// server, body read and closed, run in parallel (-cpu sets how many).
// Compare ns/op and allocs/op between the two sub-benchmarks.
func BenchmarkRoundTrip(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, payload)
	}))
	b.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	spec := explicitSpec("RoundRobin", 1)
	for _, tt := range []struct {
		name string
		rt   func(*Backend) http.RoundTripper
	}{
		{"nethttp", func(be *Backend) http.RoundTripper { return be.transport }},
		{"native", func(be *Backend) http.RoundTripper { return be.native }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			be := newTestBackend(b, spec, Options{})
			rt := tt.rt(be)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 32<<10)
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/bench", nil)
					req.Header["User-Agent"] = []string{""}
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					resp.Body.Close()
				}
			})
			b.StopTimer()
			time.Sleep(10 * time.Millisecond)
		})
	}
}
