package sdk

import (
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// seen records the HTTP context of each request of calloutPlugin.
var seen []*httpContext

type calloutFilter struct{ BaseFilter }

func (*calloutFilter) OnRequest(r *Request) Action {
	seen = append(seen, active)
	if r.Header("x-call") == "" {
		return Continue
	}
	if err := HTTPCall("auth", [][2]string{{":method", "GET"}, {":path", "/"}}, nil, 1000, func(*CallResponse, error) {}); err != nil {
		return r.Deny(500, err.Error())
	}
	return Pause
}

var calloutPlugin = Plugin[struct{}]{
	Name:  "callout",
	Start: func(*struct{}) (NewFilter, error) { return func() Filter { return &calloutFilter{} }, nil },
}

// TestCalloutContextNotReused: the context of a stream that made an HTTP
// callout is not reused when the stream ends (a host may deliver the
// callout's answer, whose callback holds the stream's Request, between
// proxy_on_log and proxy_on_delete); the contexts of other streams are.
func TestCalloutContextNotReused(t *testing.T) {
	seen = nil
	h, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(VMContext(calloutPlugin)))
	defer reset()
	if st := h.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatal("start")
	}
	request := func(hdr ...[2]string) {
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, append([][2]string{{":method", "GET"}, {":path", "/"}}, hdr...), true)
		h.CompleteHttpContext(id)
	}
	request()                         // 0
	request()                         // 1: reuses 0's context
	request([2]string{"x-call", "1"}) // 2: reuses it, makes a callout
	request()                         // 3: a new context
	request()                         // 4: reuses 3's
	if len(seen) != 5 {
		t.Fatalf("%d requests seen", len(seen))
	}
	if seen[1] != seen[0] || seen[2] != seen[0] {
		t.Error("an ended stream's context was not reused")
	}
	if !seen[2].called || seen[3] == seen[2] || seen[4] == seen[2] {
		t.Errorf("the context of the stream that made a callout was reused (called %v)", seen[2].called)
	}
	if seen[4] != seen[3] {
		t.Error("a later stream's context was not reused")
	}
}
