// Command pause is the proxy-wasm test plugin that holds requests until the
// next timer tick.
//
// At plugin start it asks for a tick every 100 ms. Each request is paused on
// request headers; on the next tick the plugin makes each paused request the
// effective context (proxy_set_effective_context), adds the request header
// "x-resumed: tick" and resumes it (proxy_continue_stream). A request whose
// stream ends before the tick is forgotten.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

const tickPeriodMS = 100

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{paused: map[uint32]struct{}{}}
}

type pluginContext struct {
	types.DefaultPluginContext
	paused map[uint32]struct{} // context ids of the paused requests
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(tickPeriodMS); err != nil {
		proxywasm.LogCriticalf("pause: set tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) OnTick() {
	// Resume in context-id order so that the host sees a deterministic sequence.
	for len(p.paused) > 0 {
		var id uint32
		first := true
		for k := range p.paused {
			if first || k < id {
				id, first = k, false
			}
		}
		delete(p.paused, id)
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogErrorf("pause: set effective context %d: %v", id, err)
			continue
		}
		if err := proxywasm.AddHttpRequestHeader("x-resumed", "tick"); err != nil {
			proxywasm.LogErrorf("pause: add x-resumed: %v", err)
		}
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogErrorf("pause: resume %d: %v", id, err)
		}
	}
}

func (p *pluginContext) NewHttpContext(id uint32) types.HttpContext {
	return &httpContext{id: id, plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	id     uint32
	plugin *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.plugin.paused[h.id] = struct{}{}
	return types.ActionPause
}

func (h *httpContext) OnHttpStreamDone() { delete(h.plugin.paused, h.id) }
