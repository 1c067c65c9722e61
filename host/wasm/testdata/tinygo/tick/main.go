// Command tick is the proxy-wasm test plugin that uses the host's timer.
//
// At VM start it asks for a tick every 100 ms (proxy_set_tick_period_milliseconds
// on the root context). Each tick increments the shared-data key "ticks"
// (decimal ASCII). Each request gets the header "x-ticks: N" with the value of
// "ticks" at that moment ("0" before the first tick).
package main

import (
	"errors"
	"strconv"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

const (
	key          = "ticks"
	tickPeriodMS = 100
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(tickPeriodMS); err != nil {
		proxywasm.LogCriticalf("tick: set tick period: %v", err)
		return types.OnVMStartStatusFailed
	}
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnTick() {
	for try := 0; try < 100; try++ {
		n, cas, err := read()
		if err != nil {
			proxywasm.LogErrorf("tick: read %q: %v", key, err)
			return
		}
		err = proxywasm.SetSharedData(key, []byte(strconv.FormatUint(n+1, 10)), cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			if err != nil {
				proxywasm.LogErrorf("tick: write %q: %v", key, err)
			}
			return
		}
	}
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	value := "error"
	if n, _, err := read(); err == nil {
		value = strconv.FormatUint(n, 10)
	}
	if err := proxywasm.AddHttpRequestHeader("x-ticks", value); err != nil {
		proxywasm.LogErrorf("tick: add x-ticks: %v", err)
	}
	return types.ActionContinue
}

// read returns the tick count (0 when the key does not exist yet) and its CAS.
func read() (uint64, uint32, error) {
	data, cas, err := proxywasm.GetSharedData(key)
	if errors.Is(err, types.ErrorStatusNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	n, err := strconv.ParseUint(string(data), 10, 64)
	return n, cas, err
}
