package policy

import "github.com/novaedge/novaedge/host/wasm"

// hostFuncMakers add the host functions of the first-party plugins (fast
// primitives outside the VMs, such as the rate limiter's token buckets) to
// a runtime's set. Each first-party policy registers its own, in its file.
var hostFuncMakers []func(map[string]wasm.ForeignFunc)

// HostFunctions returns fresh host functions for one wasm runtime
// (wasm.Options.Foreign): state such as token buckets belongs to the
// runtime that serves, and lives across configuration reloads.
func HostFunctions() map[string]wasm.ForeignFunc {
	m := map[string]wasm.ForeignFunc{}
	for _, add := range hostFuncMakers {
		add(m)
	}
	return m
}
