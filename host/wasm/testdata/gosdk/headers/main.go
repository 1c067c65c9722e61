// Command headers is the header-editing test plugin of ../tinygo/headers,
// written against the official-Go SDK (github.com/proxy-wasm/proxy-wasm-go-sdk,
// //go:wasmexport) and built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// The module is a WASI reactor: the host calls _initialize once (which runs
// init below), never _start.
//
// On request headers it adds "x-wasm: gosdk" (the TinyGo build says "tinygo"),
// replaces the value of "x-replace" with "replaced" and removes "x-remove"; on
// response headers it adds "x-wasm-response: yes". It logs one line at info
// level per callback.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func init() { proxywasm.SetVMContext(&vmContext{}) }

// main is never run in a c-shared (reactor) module.
func main() {}

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfo("headers: on request headers")
	if err := proxywasm.AddHttpRequestHeader("x-wasm", "gosdk"); err != nil {
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
