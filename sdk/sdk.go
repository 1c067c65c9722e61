// Package sdk is what NovaEdge policy plugins are written against: the
// five bundled policies (plugins/: CORS, JWT, KeyAuth, RateLimit,
// SecurityHeaders) and users' own. Package firstparty holds the bundled
// policies' configuration wire format, shared with the host. A plugin is a proxy-wasm module
// built with TinyGo; this package hides the ABI's context bookkeeping and
// leaves a plugin three things to write: its configuration type, what it
// does with a request, and what it does with the response.
//
//	type Config struct {
//		Header string `json:"header"`
//	}
//
//	func (c *Config) Validate() error {
//		if c.Header == "" {
//			return errors.New("header: required")
//		}
//		return nil
//	}
//
//	var plugin = sdk.Plugin[Config]{
//		Name: "tag",
//		Start: func(cfg *Config) (sdk.NewFilter, error) {
//			return func() sdk.Filter { return &tag{cfg: cfg} }, nil
//		},
//	}
//
//	func main() { sdk.Run(plugin) }
//
//	type tag struct {
//		sdk.BaseFilter
//		cfg *Config
//	}
//
//	func (t *tag) OnRequest(r *sdk.Request) sdk.Action {
//		r.SetHeader(t.cfg.Header, "yes")
//		return sdk.Continue
//	}
//
// The configuration arrives as JSON (the ProxyPolicy's block, or a Wasm
// policy's config). It is decoded strictly — an unknown field is an error —
// and validated (Validate, if the type has it) when the plugin starts: a
// plugin with a bad configuration refuses to start, and the gateway
// reports why, naming the ProxyPolicy.
//
// Build a plugin with
//
//	tinygo build -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug -o x.wasm .
//
// and test it with package sdktest, which runs it against an emulated host
// in plain `go test`.
package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Plugin describes a plugin whose configuration type is C.
type Plugin[C any] struct {
	// Name is the plugin's name in its log lines.
	Name string
	// Start is called once per configuration, after it was decoded and
	// validated. It returns the maker of per-request filters; an error
	// refuses the configuration.
	Start func(cfg *C) (NewFilter, error)
	// Tick, if set, is called every TickPeriodMillis milliseconds.
	Tick             func()
	TickPeriodMillis uint32
	// HeapReserve, if set, is how many bytes the guest's heap is grown
	// by when the plugin starts. TinyGo's collector runs whenever its heap
	// has no free run of blocks left; on the heap a small plugin starts
	// with (tens of KiB, much of it live) that is every few requests, and
	// each cycle marks every live object and sweeps the whole heap. A heap
	// grown once makes cycles rare: a request's few small allocations
	// then cost a short walk to the next free block. The VM's memory
	// grows accordingly (512 KiB: about 1 MiB), and a VM whose memory
	// ceiling cannot hold it fails to start.
	HeapReserve int
}

// NewFilter makes the filter of one request.
type NewFilter func() Filter

// Filter is a plugin's work on one request and its response. Embed
// BaseFilter for the methods you do not need.
type Filter interface {
	// OnRequest runs on the request headers, before the request goes
	// upstream. Return Continue, or the result of Request.Deny,
	// Request.Respond or Request.Pause.
	OnRequest(r *Request) Action
	// OnResponse runs on the response headers, before they go to the
	// client.
	OnResponse(r *Response) Action
	// OnDone runs when the request is over, whatever happened.
	OnDone()
}

// Filters keeps the filters of ended requests for later requests: a TinyGo
// guest pays for every allocation (its allocator and collector walk the
// heap), so a plugin whose filter is a struct can make none per request.
// A plugin's NewFilter takes one with Get (making a new one when Get
// returns nil) and its filter's OnDone resets it and gives it back with
// Put. Like everything in a VM, it is used by one callback at a time.
type Filters[F any] struct{ free []*F }

// Get returns the filter an ended request gave back last, or nil if none
// is left.
func (fs *Filters[F]) Get() *F {
	n := len(fs.free)
	if n == 0 {
		return nil
	}
	f := fs.free[n-1]
	fs.free[n-1] = nil
	fs.free = fs.free[:n-1]
	return f
}

// Put keeps f, reset by its owner, for a later Get.
func (fs *Filters[F]) Put(f *F) { fs.free = append(fs.free, f) }

// BaseFilter implements Filter doing nothing.
type BaseFilter struct{}

func (BaseFilter) OnRequest(*Request) Action   { return Continue }
func (BaseFilter) OnResponse(*Response) Action { return Continue }
func (BaseFilter) OnDone()                     {}

// Action tells the gateway what to do after a callback.
type Action = types.Action

const (
	// Continue lets the request (or response) go on.
	Continue = types.ActionContinue
	// Pause holds it until Request.Resume (or a local response).
	Pause = types.ActionPause
)

// Validator is implemented by configuration types that check themselves.
type Validator interface{ Validate() error }

// Run registers the plugin with the host. Call it from main.
func Run[C any](p Plugin[C]) {
	proxywasm.SetVMContext(VMContext(p))
}

// VMContext is the proxy-wasm VM context that runs p (what Run
// registers); test harnesses take it.
func VMContext[C any](p Plugin[C]) types.VMContext {
	return &vmContext[C]{p: p}
}

// DecodeConfig decodes and validates a configuration as Run does: strict
// JSON (unknown fields are errors; empty input is the zero value), then
// Validate if C has it.
func DecodeConfig[C any](data []byte) (*C, error) {
	cfg := new(C)
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			return nil, errors.New("configuration: " + strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if v, ok := any(cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, errors.New("configuration: " + err.Error())
		}
	}
	return cfg, nil
}

type vmContext[C any] struct {
	types.DefaultVMContext
	p Plugin[C]
}

func (v *vmContext[C]) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext[C]{p: v.p}
}

type pluginContext[C any] struct {
	types.DefaultPluginContext
	p   Plugin[C]
	new NewFilter
	// free holds the contexts of ended streams for reuse: a request
	// allocates nothing for its context once the VM has served as many
	// concurrent requests before (TinyGo's allocator and collector are
	// slow; see httpContext.OnHttpStreamDone).
	free []*httpContext
}

// heapSink holds the allocation that grows the heap (Plugin.HeapReserve)
// from the plugin's start to its first request, which drops it: allocated,
// the heap has grown; dropped, the next cycle frees it and the heap keeps
// its size. (Dropped in another callback than the one that allocates it,
// so that the compiler cannot drop the allocation.)
var heapSink []byte

func (pc *pluginContext[C]) OnPluginStart(int) types.OnPluginStartStatus {
	if pc.p.HeapReserve > 0 && heapSink == nil {
		heapSink = make([]byte, pc.p.HeapReserve)
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("%s: read configuration: %v", pc.p.Name, err)
		return types.OnPluginStartStatusFailed
	}
	cfg, err := DecodeConfig[C](data)
	if err == nil && pc.p.Start != nil {
		pc.new, err = pc.p.Start(cfg)
	}
	if err != nil {
		// The host logs this line with the policy's name.
		proxywasm.LogCriticalf("%s: %v", pc.p.Name, err)
		return types.OnPluginStartStatusFailed
	}
	if pc.p.Tick != nil && pc.p.TickPeriodMillis > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(pc.p.TickPeriodMillis); err != nil {
			proxywasm.LogCriticalf("%s: set tick period: %v", pc.p.Name, err)
			return types.OnPluginStartStatusFailed
		}
	}
	return types.OnPluginStartStatusOK
}

func (pc *pluginContext[C]) OnTick() {
	if pc.p.Tick != nil {
		pc.p.Tick()
	}
}

func (pc *pluginContext[C]) NewHttpContext(id uint32) types.HttpContext {
	heapSink = nil // see Plugin.HeapReserve
	var hc *httpContext
	if n := len(pc.free); n > 0 {
		hc, pc.free[n-1] = pc.free[n-1], nil
		pc.free = pc.free[:n-1]
		hc.ended = false
	} else {
		hc = &httpContext{free: &pc.free}
	}
	hc.req.ctxID = id
	if pc.new != nil {
		hc.f = pc.new()
	}
	return hc
}

// httpContext adapts a Filter to the SDK's HttpContext.
type httpContext struct {
	types.DefaultHttpContext
	f    Filter
	req  Request
	resp Response
	// free is the plugin context's list of reusable contexts; ended says
	// the stream ended (the context is on the list unless called).
	free  *[]*httpContext
	ended bool
	// called: the stream made an HTTP callout. Its answer may come after
	// the stream ended, to a callback that holds this context's Request:
	// such a context is never reused.
	called bool
}

// active is the HTTP context whose callback runs (nil if none), for
// HTTPCall to mark.
var active *httpContext

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if h.f == nil {
		return Continue
	}
	active = h
	a := h.f.OnRequest(&h.req)
	active = nil
	return a
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if h.f == nil || h.req.answered {
		return Continue // the plugin's own answer: nothing to decorate
	}
	h.resp.req = &h.req
	active = h
	a := h.f.OnResponse(&h.resp)
	active = nil
	return a
}

// OnHttpStreamDone ends the stream (proxy_on_log, the stream's last
// callback before proxy_on_delete, which only forgets its id) and puts the
// context up for reuse by a later stream. A second call for the same
// stream does nothing.
func (h *httpContext) OnHttpStreamDone() {
	if h.ended {
		return
	}
	h.ended = true
	if h.f != nil {
		active = h
		h.f.OnDone()
		active = nil
	}
	if h.called {
		return // see called
	}
	*h = httpContext{free: h.free, ended: true}
	*h.free = append(*h.free, h)
}
