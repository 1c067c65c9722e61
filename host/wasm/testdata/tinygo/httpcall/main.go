// Command httpcall is the proxy-wasm test plugin that calls out to another
// service before letting a request go on.
//
// On request headers it dispatches GET /check (":authority: auth") to the
// upstream cluster "auth" with a 5 s timeout and pauses the request. When the
// callout's response arrives:
//
//	status 200     the request gets "x-auth-status: 200" and resumes
//	other status   local reply 401, header "x-auth-status: <status>",
//	               body "unauthorized by wasm"
//
// If the dispatch itself fails (for instance an unknown cluster), the request
// gets a local reply 503 with body "auth callout failed".
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

const (
	cluster   = "auth"
	timeoutMS = 5000
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	headers := [][2]string{
		{":method", "GET"},
		{":path", "/check"},
		{":authority", cluster},
	}
	if _, err := proxywasm.DispatchHttpCall(cluster, headers, nil, nil, timeoutMS, onResponse); err != nil {
		proxywasm.LogErrorf("httpcall: dispatch to %q: %v", cluster, err)
		reply(503, nil, "auth callout failed")
		return types.ActionPause
	}
	return types.ActionPause // resumed by onResponse
}

// onResponse runs with the paused request's context as the effective one.
func onResponse(numHeaders, bodySize, numTrailers int) {
	status := ""
	headers, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		proxywasm.LogErrorf("httpcall: callout response headers: %v", err)
	}
	for _, h := range headers {
		if h[0] == ":status" {
			status = h[1]
		}
	}
	if status != "200" {
		reply(401, [][2]string{{"x-auth-status", status}}, "unauthorized by wasm")
		return
	}
	if err := proxywasm.AddHttpRequestHeader("x-auth-status", status); err != nil {
		proxywasm.LogErrorf("httpcall: add x-auth-status: %v", err)
	}
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("httpcall: resume request: %v", err)
	}
}

func reply(status uint32, headers [][2]string, body string) {
	if err := proxywasm.SendHttpResponse(status, headers, []byte(body), -1); err != nil {
		proxywasm.LogErrorf("httpcall: send local response %d: %v", status, err)
	}
}
