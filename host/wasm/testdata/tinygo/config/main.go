// Command config is the proxy-wasm test plugin that reads its configuration.
//
// At VM start it reads the VM configuration (any bytes, may be empty). At
// plugin start it reads the plugin configuration, JSON
// {"header": "<name>", "value": "<value>"} with a non-empty header; anything
// else (empty, not JSON, unknown field, empty header) makes OnPluginStart
// return false, so the plugin must not start. Each request then gets the
// configured header and, when the VM configuration is not empty,
// "x-vm-config: <VM configuration>".
package main

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct {
	types.DefaultVMContext
	vmConfig string
}

func (v *vmContext) OnVMStart(size int) types.OnVMStartStatus {
	if size == 0 {
		return types.OnVMStartStatusOK
	}
	data, err := proxywasm.GetVMConfiguration()
	if err != nil {
		proxywasm.LogCriticalf("config: read VM configuration: %v", err)
		return types.OnVMStartStatusFailed
	}
	v.vmConfig = string(data)
	return types.OnVMStartStatusOK
}

// NewPluginContext runs for proxy_on_context_create of the root context,
// before proxy_on_vm_start: the plugin context keeps the VM context, not a
// copy of the VM configuration, which is not read yet.
func (v *vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{vm: v}
}

type pluginContext struct {
	types.DefaultPluginContext
	vm            *vmContext
	header, value string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err == nil {
		err = p.parse(data)
	}
	if err != nil {
		proxywasm.LogErrorf("config: plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) parse(data []byte) error {
	var cfg struct {
		Header string `json:"header"`
		Value  string `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Header == "" {
		return errors.New(`"header" is missing`)
	}
	p.header, p.value = cfg.Header, cfg.Value
	return nil
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpRequestHeader(h.plugin.header, h.plugin.value); err != nil {
		proxywasm.LogErrorf("config: add %s: %v", h.plugin.header, err)
	}
	if vmConfig := h.plugin.vm.vmConfig; vmConfig != "" {
		if err := proxywasm.AddHttpRequestHeader("x-vm-config", vmConfig); err != nil {
			proxywasm.LogErrorf("config: add x-vm-config: %v", err)
		}
	}
	return types.ActionContinue
}
