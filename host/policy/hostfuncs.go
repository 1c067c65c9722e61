package policy

import "github.com/novaedge/novaedge/host/wasm"

// Host is the host functions of one wasm runtime (wasm.Options.Foreign)
// and their state, such as token buckets, which belongs to the runtime
// that serves and lives across configuration changes.
type Host struct {
	Funcs  map[string]wasm.ForeignFunc
	resets []func(string)
}

// NewHost returns fresh host functions for one wasm runtime: those of
// every registered policy type (Type.HostFuncs: fast primitives outside
// the VMs, such as the rate limiter's token buckets).
func NewHost() *Host {
	h := &Host{Funcs: map[string]wasm.ForeignFunc{}}
	for _, t := range Types() {
		if t.HostFuncs == nil {
			continue
		}
		if reset := t.HostFuncs(h.Funcs); reset != nil {
			h.resets = append(h.resets, reset)
		}
	}
	return h
}

// Reset forgets the state the host functions keep for a plugin (by its
// name, "namespace/name"), such as its rate-limit buckets.
func (h *Host) Reset(plugin string) {
	for _, r := range h.resets {
		r(plugin)
	}
}

// HostFunctions returns fresh host functions for one wasm runtime, for
// callers that never reset a plugin's state.
func HostFunctions() map[string]wasm.ForeignFunc { return NewHost().Funcs }
