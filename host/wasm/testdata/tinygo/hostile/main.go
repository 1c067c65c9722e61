// Command hostile is the proxy-wasm test plugin that misbehaves on purpose,
// for the host's isolation tests. The plugin configuration, JSON
// {"mode": "..."}, chooses what on_request_headers does:
//
//	trap     panics: the guest traps (unreachable)
//	loop     never returns (the host must interrupt it)
//	membomb  allocates 1 MiB blocks, keeping them all, until the guest is out
//	         of memory (TinyGo's runtime then traps)
//	""       nothing (an empty configuration too): the request goes on
//
// An unknown mode or configuration that is not such JSON makes OnPluginStart
// fail. (A bad-pointer mode cannot be written with the SDK, which validates
// what it passes to the host.)
package main

import (
	"encoding/json"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	mode string
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	if size == 0 {
		return types.OnPluginStartStatusOK
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogErrorf("hostile: read plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	var cfg struct {
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogErrorf("hostile: plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	switch cfg.Mode {
	case "", "trap", "loop", "membomb":
		p.mode = cfg.Mode
	default:
		proxywasm.LogErrorf("hostile: plugin configuration: unknown mode %q", cfg.Mode)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{mode: p.mode} }

type httpContext struct {
	types.DefaultHttpContext
	mode string
}

// hoard keeps every block membomb allocates reachable, so that the garbage
// collector cannot free them and the compiler cannot drop the allocations.
var hoard [][]byte

// spins is written by loop so that the loop has a visible effect.
var spins uint64

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	switch h.mode {
	case "trap":
		panic("hostile: trap on request headers")
	case "loop":
		for {
			spins++
		}
	case "membomb":
		for {
			block := make([]byte, 1<<20)
			for i := 0; i < len(block); i += 4096 {
				block[i] = 1 // touch every page
			}
			hoard = append(hoard, block)
		}
	}
	return types.ActionContinue
}
