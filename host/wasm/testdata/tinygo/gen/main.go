// Command gen is the proxy-wasm test plugin of the tests that swap modules
// under load. build.sh builds it twice, as gen_a.wasm and gen_b.wasm, with
// the generation of the code ("a" or "b") set by -ldflags -X main.module
// (the variants are listed in the folder's VARIANTS file).
//
// The plugin configuration is JSON {"gen": "<non-empty string>"}; anything
// else (empty, not JSON, unknown field, empty gen) makes OnPluginStart fail.
// Each request gets request header "x-gen: <module>"; each response gets
// "x-gen: <module>" and "x-plugin-gen: <gen>".
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// module is the generation of this module's code, set at build time.
var module string

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	gen string // of the plugin configuration
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if module == "" {
		proxywasm.LogCritical("gen: built without -ldflags -X main.module=…")
		return types.OnPluginStartStatusFailed
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err == nil {
		p.gen, err = parse(data)
	}
	if err != nil {
		proxywasm.LogErrorf("gen_%s: plugin configuration: %v", module, err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func parse(data []byte) (string, error) {
	var cfg struct {
		Gen string `json:"gen"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return "", err
	}
	if cfg.Gen == "" {
		return "", errors.New(`"gen" is missing`)
	}
	return cfg.Gen, nil
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{gen: p.gen} }

type httpContext struct {
	types.DefaultHttpContext
	gen string
}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpRequestHeader("x-gen", module); err != nil {
		proxywasm.LogErrorf("gen_%s: add x-gen: %v", module, err)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-gen", module); err != nil {
		proxywasm.LogErrorf("gen_%s: add x-gen: %v", module, err)
	}
	if err := proxywasm.AddHttpResponseHeader("x-plugin-gen", h.gen); err != nil {
		proxywasm.LogErrorf("gen_%s: add x-plugin-gen: %v", module, err)
	}
	return types.ActionContinue
}
