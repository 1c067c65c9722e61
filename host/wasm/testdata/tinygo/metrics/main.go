// Command metrics is the proxy-wasm test plugin that defines metrics.
//
// At plugin start it defines the counter "wasm_requests_total" and the gauge
// "wasm_requests_gauge" (proxy_define_metric); every request adds 1 to both
// (proxy_increment_metric), so after N requests both read N.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	requests proxywasm.MetricCounter
	gauge    proxywasm.MetricGauge
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	// Define* panic when the host refuses: the VM traps and the plugin does
	// not start, which is what a host test should see.
	p.requests = proxywasm.DefineCounterMetric("wasm_requests_total")
	p.gauge = proxywasm.DefineGaugeMetric("wasm_requests_gauge")
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.plugin.requests.Increment(1)
	h.plugin.gauge.Add(1)
	return types.ActionContinue
}
