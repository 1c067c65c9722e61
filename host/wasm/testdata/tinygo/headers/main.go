// Command headers is the proxy-wasm test plugin that edits headers.
//
// On request headers it adds "x-wasm: tinygo", replaces the value of
// "x-replace" with "replaced" and removes "x-remove"; on response headers it
// adds "x-wasm-response: yes". It logs one line at info level per callback.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfo("headers: on request headers")
	if err := proxywasm.AddHttpRequestHeader("x-wasm", "tinygo"); err != nil {
		proxywasm.LogErrorf("headers: add x-wasm: %v", err)
	}
	// Replace only a header that is there: replace would otherwise add it.
	if _, err := proxywasm.GetHttpRequestHeader("x-replace"); err == nil {
		if err := proxywasm.ReplaceHttpRequestHeader("x-replace", "replaced"); err != nil {
			proxywasm.LogErrorf("headers: replace x-replace: %v", err)
		}
	}
	if err := proxywasm.RemoveHttpRequestHeader("x-remove"); err != nil {
		proxywasm.LogErrorf("headers: remove x-remove: %v", err)
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	proxywasm.LogInfo("headers: on response headers")
	if err := proxywasm.AddHttpResponseHeader("x-wasm-response", "yes"); err != nil {
		proxywasm.LogErrorf("headers: add x-wasm-response: %v", err)
	}
	return types.ActionContinue
}
