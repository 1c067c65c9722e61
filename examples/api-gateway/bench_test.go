package apigateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkReferencePolicies: one GET through the example's gateway to a
// demo service, over loopback, without policies and with the reference's
// four (JWT with a cached RS256 token, rate limit per API key, CORS,
// security headers). The rate limit is raised to 10^6/s so that every
// request passes: the benchmark measures the policies' cost, not the
// limit. Compare the two ns/op for the cost per request.
func BenchmarkReferencePolicies(b *testing.B) {
	for _, tc := range []struct {
		name string
		edit func(string) string
	}{
		{"no-policies", func(s string) string {
			if strings.Contains(s, "kind: ProxyPolicy") {
				return "" // policies.yaml holds only the four policies
			}
			return s
		}},
		{"four-policies", func(s string) string {
			return strings.NewReplacer("requestsPerSecond: 100", "requestsPerSecond: 1000000", "burst: 200", "burst: 1000000").Replace(s)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ex := startExample(b, tc.edit)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 32<<10)
				for pb.Next() {
					req, _ := http.NewRequest("GET", ex.base+"/api/v1/products", nil)
					req.Header.Set("Origin", "https://app.example.com")
					authorize(req, ex.token, "bench")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.CopyBuffer(io.Discard, resp.Body, buf)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
