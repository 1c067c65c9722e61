// Command body is the proxy-wasm test plugin that rewrites bodies.
//
// The request body is buffered until the end of the stream (each earlier
// chunk returns Pause) and then replaced with its upper-cased form. The
// response body is buffered the same way and then changed according to the
// plugin configuration, JSON {"mode": "replace|append|prepend"}:
//
//	append (the default, also for an empty configuration)  body + "-appended"
//	prepend                                                "prepended-" + body
//	replace                                                "replaced"
//
// Any other mode, or configuration that is not such JSON, makes
// OnPluginStart fail.
package main

import (
	"bytes"
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
	p.mode = "append"
	if size == 0 {
		return types.OnPluginStartStatusOK
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogErrorf("body: read plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	var cfg struct {
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogErrorf("body: plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	switch cfg.Mode {
	case "":
	case "append", "prepend", "replace":
		p.mode = cfg.Mode
	default:
		proxywasm.LogErrorf("body: plugin configuration: unknown mode %q", cfg.Mode)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{mode: p.mode}
}

type httpContext struct {
	types.DefaultHttpContext
	mode string
}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	// The body changes length: the old content-length would be wrong.
	_ = proxywasm.RemoveHttpRequestHeader("content-length")
	return types.ActionContinue
}

func (*httpContext) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is there
	}
	if size == 0 {
		return types.ActionContinue
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("body: read request body: %v", err)
		return types.ActionContinue
	}
	if err := proxywasm.ReplaceHttpRequestBody(bytes.ToUpper(body)); err != nil {
		proxywasm.LogErrorf("body: replace request body: %v", err)
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.RemoveHttpResponseHeader("content-length")
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(size int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	var err error
	switch h.mode {
	case "append":
		err = proxywasm.AppendHttpResponseBody([]byte("-appended"))
	case "prepend":
		err = proxywasm.PrependHttpResponseBody([]byte("prepended-"))
	case "replace":
		err = proxywasm.ReplaceHttpResponseBody([]byte("replaced"))
	}
	if err != nil {
		proxywasm.LogErrorf("body: %s response body: %v", h.mode, err)
	}
	return types.ActionContinue
}
