package configs

import (
	"strings"
	"testing"
)

// TestRateLimitValidation checks spec.rateLimit's fields (the golden bad
// cases cover requestsPerSecond 0, a negative burst and a bad key).
func TestRateLimitValidation(t *testing.T) {
	for _, tc := range []struct {
		block string
		err   string // "" valid
	}{
		{"{requestsPerSecond: 100, burst: 200, key: \"header:X-API-Key\"}", ""},
		{"{requestsPerSecond: 0.5, key: \"claim:sub\", onMissingKey: reject}", ""},
		{"{requestsPerSecond: 10, onMissingKey: ip}", ""},
		{"{requestsPerSecond: 10, onMissingKey: allow}", `spec.rateLimit.onMissingKey: unknown value "allow" (want ip or reject)`},
		{"{requestsPerSecond: 0.0001}", "spec.rateLimit.requestsPerSecond: must be between 0.001 and 1e9, got 0.0001"},
		{"{requestsPerSecond: 2e9}", "spec.rateLimit.requestsPerSecond: must be between 0.001 and 1e9, got 2e+09"},
		{"{requestsPerSecond: 1, burst: 2000000000}", "spec.rateLimit.burst: must be at most 1000000000, got 2000000000"},
	} {
		t.Run(tc.block, func(t *testing.T) {
			doc := `apiVersion: novaedge.io/v1alpha1
kind: ProxyGateway
metadata: {name: edge}
spec:
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: novaedge.io/v1alpha1
kind: ProxyPolicy
metadata: {name: rate}
spec:
  type: RateLimit
  targetRef: {kind: ProxyGateway, name: edge}
  rateLimit: ` + tc.block + "\n"
			_, err := LoadFiles([]File{{Name: "rl.yaml", Data: []byte(doc)}})
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}
