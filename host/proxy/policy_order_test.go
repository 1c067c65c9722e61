package proxy

import (
	"testing"

	"github.com/novaedge/novaedge/configs"
)

// TestPolicyOrder: a rule's policies run by spec.priority, then by their
// traits' Order (their type's place, from host/policy's registry), then
// gateway before route before rule, then by name.
func TestPolicyOrder(t *testing.T) {
	bp := func(name string, priority, order, scope int) *boundPolicy {
		return &boundPolicy{
			cfg:    &configs.Policy{Metadata: configs.ObjectMeta{Name: name, Namespace: "t"}, Spec: configs.PolicySpec{Priority: priority}},
			scope:  scope,
			traits: PolicyTraits{Order: order},
		}
	}
	tests := []struct {
		name string
		a, b *boundPolicy
		want bool
	}{
		{"lower priority first, whatever the order", bp("a", -1, 90, 2), bp("b", 0, 10, 0), true},
		{"higher priority after", bp("a", 1, 10, 0), bp("b", 0, 90, 2), false},
		{"same priority: lower order first", bp("z", 0, 10, 2), bp("a", 0, 20, 0), true},
		{"same priority: higher order after", bp("a", 0, 20, 0), bp("z", 0, 10, 2), false},
		{"same order: gateway before route", bp("z", 0, 10, 0), bp("a", 0, 10, 1), true},
		{"same order: rule after route", bp("a", 0, 10, 2), bp("z", 0, 10, 1), false},
		{"same scope: by name", bp("a", 0, 10, 1), bp("b", 0, 10, 1), true},
		{"equal: not less", bp("a", 0, 10, 1), bp("a", 0, 10, 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lessPolicy(tc.a, tc.b); got != tc.want {
				t.Errorf("lessPolicy = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPolicyTraitsBound: a policy's traits come from the policy itself
// (TraitsReporter); one without has order 0 and does not authenticate.
func TestPolicyTraitsBound(t *testing.T) {
	cfg := func(name string) *configs.Policy {
		return &configs.Policy{Metadata: configs.ObjectMeta{Name: name, Namespace: "t"},
			Spec: configs.PolicySpec{TargetRef: configs.TargetRef{Kind: configs.KindGateway, Name: "gw", Namespace: "t"}}}
	}
	gw := &configs.Gateway{Metadata: configs.ObjectMeta{Name: "gw", Namespace: "t"}}
	rt := &configs.Route{Metadata: configs.ObjectMeta{Name: "r", Namespace: "t"}}
	all := []*boundPolicy{
		{cfg: cfg("auth"), impl: &fakePolicy{traits: PolicyTraits{Order: 20, Authenticates: true}}},
		{cfg: cfg("plain"), impl: &fakePolicy{}},
		{cfg: cfg("first"), impl: &fakePolicy{traits: PolicyTraits{Order: -5}}},
	}
	got := policiesFor(all, gw, rt, "")
	var names []string
	for _, bp := range got {
		names = append(names, bp.cfg.Metadata.Name)
	}
	if len(names) != 3 || names[0] != "first" || names[1] != "plain" || names[2] != "auth" {
		t.Errorf("order %v, want [first plain auth]", names)
	}
	if !authenticates(got) || authenticates(got[:2]) {
		t.Errorf("authenticates: all %v, without auth %v", authenticates(got), authenticates(got[:2]))
	}
}
