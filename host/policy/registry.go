package policy

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// Type is everything the host knows of one policy type (a spec.type),
// registered once, from the type's own file (firstparty_<type>.go,
// wasm.go), as CoreDNS plugins and Caddy modules are: the bundled module
// that carries it out, how a policy's block becomes that module's
// configuration, the host functions the module calls, the type's place in
// a rule's chain and whether it authenticates.
//
// The block's strict decoding, defaults and validation stay in package
// configs (the leaf, which reports every problem of a snapshot at once,
// before the host sees it); the plugin checks the configuration it is
// given again when it starts (its Config's Validate), and a refusal fails
// the build, naming the policy.
type Type struct {
	// Name is the spec.type ("JWT").
	Name string
	// Module is the bundled module that carries the type out
	// (host/policy/bundled, built from plugins/<Module>); "" for Wasm,
	// whose policies name their module.
	Module string
	// Order is the type's place in a rule's chain among policies of the
	// same spec.priority: lower runs first on the request path (see
	// proxy.PolicyTraits).
	Order int
	// Authenticates tells whether a policy of the type authenticates
	// requests (proxy.PolicyTraits.Authenticates). nil: never.
	Authenticates func(*configs.Policy) bool
	// Config converts a policy's block into its module's configuration,
	// a type of sdk/firstparty (the wire format the plugin decodes),
	// marshalled to JSON. nil for Wasm.
	Config func(*configs.Policy) (any, error)
	// HeadersOnly: the type's plugin looks at headers only (the plugins
	// built on sdk/, which has no body API, answer every body and trailer
	// callback with Continue). Its streams then get no body or trailer
	// callbacks at all: each would be an entry into the VM for nothing,
	// and a rule whose policies are all such needs no body plumbing.
	HeadersOnly bool
	// HostFuncs, if set, adds the type's host functions to one runtime's
	// set (wasm.Options.Foreign) and returns what forgets a plugin's
	// state in them ("namespace/name"), or nil if they keep none.
	HostFuncs func(map[string]wasm.ForeignFunc) (reset func(plugin string))
}

// always is Authenticates for the types that always authenticate.
func always(*configs.Policy) bool { return true }

var registry struct {
	mu    sync.RWMutex
	types map[string]Type
}

// Register adds a policy type. It panics if the type has no name or is
// already registered: registration happens once, at init.
func Register(t Type) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if t.Name == "" {
		panic("policy.Register: a type without a name")
	}
	if _, dup := registry.types[t.Name]; dup {
		panic(fmt.Sprintf("policy.Register: type %q registered twice", t.Name))
	}
	if registry.types == nil {
		registry.types = map[string]Type{}
	}
	registry.types[t.Name] = t
}

// Lookup returns the registered type of that name.
func Lookup(name string) (Type, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	t, ok := registry.types[name]
	return t, ok
}

// Types returns the registered types in their order.
func Types() []Type {
	registry.mu.RLock()
	out := make([]Type, 0, len(registry.types))
	for _, t := range registry.types {
		out = append(out, t)
	}
	registry.mu.RUnlock()
	slices.SortFunc(out, func(a, b Type) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Traits returns what the request path needs to know of a policy: its
// type's place in the order and whether it authenticates. An unknown type
// (configs validation lets none through) has the zero traits.
func Traits(p *configs.Policy) proxy.PolicyTraits {
	t, ok := Lookup(p.Spec.Type)
	if !ok {
		return proxy.PolicyTraits{}
	}
	return proxy.PolicyTraits{Order: t.Order, Authenticates: t.Authenticates != nil && t.Authenticates(p)}
}
