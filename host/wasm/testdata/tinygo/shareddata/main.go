// Command shareddata is the proxy-wasm test plugin that counts requests in
// the host's shared data.
//
// Every request increments the shared-data key "count" (its value is the
// count in decimal ASCII, absent before the first request) with a
// compare-and-swap retry loop, and gets the header "x-count: N" with the new
// value. Several VMs that share the key never lose an increment once the key
// exists; when the host reports CAS mismatch more than maxTries times in a
// row, the request gets "x-count: error".
package main

import (
	"errors"
	"strconv"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

const (
	key      = "count"
	maxTries = 100
)

func main() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	value := "error"
	if n, err := increment(); err != nil {
		proxywasm.LogErrorf("shareddata: increment %q: %v", key, err)
	} else {
		value = strconv.FormatUint(n, 10)
	}
	if err := proxywasm.AddHttpRequestHeader("x-count", value); err != nil {
		proxywasm.LogErrorf("shareddata: add x-count: %v", err)
	}
	return types.ActionContinue
}

// increment adds one to the counter and returns its new value.
func increment() (uint64, error) {
	for try := 0; try < maxTries; try++ {
		var n uint64
		data, cas, err := proxywasm.GetSharedData(key)
		switch {
		case errors.Is(err, types.ErrorStatusNotFound):
			// First request: cas 0 means "set whatever is there".
		case err != nil:
			return 0, err
		default:
			if n, err = strconv.ParseUint(string(data), 10, 64); err != nil {
				return 0, err
			}
		}
		n++
		err = proxywasm.SetSharedData(key, []byte(strconv.FormatUint(n, 10)), cas)
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue // another VM won the race: read again
		}
		return n, err
	}
	return 0, types.ErrorStatusCasMismatch
}
