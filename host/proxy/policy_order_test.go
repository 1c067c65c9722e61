package proxy

import (
	"testing"

	"github.com/novaedge/novaedge/configs"
)

// TestKeyAuthOrder: KeyAuth authenticates after CORS (preflights first)
// and JWT, and before RateLimit (which may key on its consumer).
func TestKeyAuthOrder(t *testing.T) {
	bp := func(typ string) *boundPolicy {
		return &boundPolicy{cfg: &configs.Policy{Metadata: configs.ObjectMeta{Name: "p", Namespace: "t"}, Spec: configs.PolicySpec{Type: typ}}}
	}
	order := []string{configs.PolicyCORS, configs.PolicyJWT, configs.PolicyKeyAuth, configs.PolicyRateLimit, configs.PolicyWasm, configs.PolicySecurityHeaders}
	for i := range order {
		for j := range order {
			if got := lessPolicy(bp(order[i]), bp(order[j])); got != (i < j) {
				t.Errorf("less(%s, %s) = %v", order[i], order[j], got)
			}
		}
	}
}
