// Command trapconf is the proxy-wasm test plugin that traps while it is
// configured: OnPluginStart (proxy_on_configure) panics, which TinyGo turns
// into the wasm `unreachable` trap. A host must refuse to start it and keep
// serving what it served.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	panic("trapconf: trap in proxy_on_configure")
}
