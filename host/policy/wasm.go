package policy

import "github.com/novaedge/novaedge/configs"

// A Wasm policy runs a module of the user's (or a bundled one by name)
// with its free-form config; Builder.Build loads it. It runs after the
// first-party authentication and rate limiting and before the response
// decoration, and authenticates if it says so (spec.wasm.authenticates).
func init() {
	Register(Type{
		Name:  configs.PolicyWasm,
		Order: 50,
		Authenticates: func(p *configs.Policy) bool {
			return p.Spec.Wasm != nil && p.Spec.Wasm.Authenticates
		},
	})
}
