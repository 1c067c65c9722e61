// Command properties is the proxy-wasm test plugin that reads host
// properties.
//
// On request headers it reads the properties below (proxy_get_property) and
// on response headers returns each one it could read as a response header:
//
//	request.path    x-prop-request-path
//	request.method  x-prop-request-method
//	source.address  x-prop-source-address
//	plugin_name     x-prop-plugin-name
//	route_name      x-prop-route-name
//	cluster_name    x-prop-cluster-name
//
// A property the host does not have gives no header (and an info log line).
package main

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

var properties = [][]string{
	{"request", "path"},
	{"request", "method"},
	{"source", "address"},
	{"plugin_name"},
	{"route_name"},
	{"cluster_name"},
}

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
	found [][2]string // header name, value
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	for _, path := range properties {
		name := strings.Join(path, ".")
		value, err := proxywasm.GetProperty(path)
		if err != nil {
			proxywasm.LogInfof("properties: %s: %v", name, err)
			continue
		}
		header := "x-prop-" + strings.NewReplacer(".", "-", "_", "-").Replace(name)
		h.found = append(h.found, [2]string{header, string(value)})
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	for _, kv := range h.found {
		if err := proxywasm.AddHttpResponseHeader(kv[0], kv[1]); err != nil {
			proxywasm.LogErrorf("properties: add %s: %v", kv[0], err)
		}
	}
	return types.ActionContinue
}
