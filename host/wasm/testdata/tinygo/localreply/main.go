// Command localreply is the proxy-wasm test plugin that answers a request
// itself.
//
// A request that carries the header "x-deny" (any value) gets a local reply:
// status 403, header "x-denied-by: wasm", body "denied by wasm". Any other
// request goes on untouched.
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
	if _, err := proxywasm.GetHttpRequestHeader("x-deny"); err != nil {
		return types.ActionContinue
	}
	headers := [][2]string{{"x-denied-by", "wasm"}}
	if err := proxywasm.SendHttpResponse(403, headers, []byte("denied by wasm"), -1); err != nil {
		proxywasm.LogErrorf("localreply: send local response: %v", err)
	}
	// After a local reply the stream must not go on.
	return types.ActionPause
}
