package wasm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/novaedge/novaedge/host/wasm"
)

func Example() {
	ctx := context.Background()
	rt, err := wasm.NewRuntime(ctx, wasm.Options{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	code, _ := os.ReadFile("testdata/filter.wasm")
	mod, err := rt.Compile(ctx, code)
	if err != nil {
		panic(err)
	}
	plugin, err := mod.NewPlugin(ctx, wasm.PluginOptions{Name: "example"})
	if err != nil {
		panic(err)
	}
	defer plugin.Close(ctx)

	req := httptest.NewRequest(http.MethodGet, "/hello?x=1", nil)
	s, err := plugin.NewStream(ctx, wasm.StreamInfo{Request: req})
	if err != nil {
		panic(err)
	}
	defer s.Done()
	v, err := s.OnRequestHeaders(ctx, req.Header, false)
	if err != nil {
		panic(err) // apply the policy's failure policy
	}
	fmt.Println(v.Local == nil, req.Header.Get("x-wasm"), req.Header.Get("x-path"), req.Header.Get("x-plugin"))
	// Output: true on /hello?x=1 example
}
