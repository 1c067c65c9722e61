// Package sdktest runs an sdk plugin against an emulated proxy-wasm host
// (the proxy-wasm-go-sdk's proxytest) in plain `go test`: no TinyGo, no
// gateway. Its results are what the gateway would do: the request headers
// that would go upstream, the local response the plugin sent, the response
// headers that would reach the client.
//
// The emulator is process-global: one Host at a time, so tests that use it
// must not run in parallel.
package sdktest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/novaedge/novaedge/sdk"
)

// Host is a plugin started in the emulator.
type Host struct {
	t testing.TB
	h proxytest.HostEmulator
}

// Option configures the emulated host.
type Option func(*proxytest.EmulatorOption, *[]func(proxytest.HostEmulator))

// Property sets a host property (path segments, value).
func Property(value string, path ...string) Option {
	return func(o *proxytest.EmulatorOption, _ *[]func(proxytest.HostEmulator)) {
		o.WithProperty(path, []byte(value))
	}
}

// Foreign registers a host function the plugin may call with sdk.CallHost.
func Foreign(name string, f func([]byte) []byte) Option {
	return func(_ *proxytest.EmulatorOption, after *[]func(proxytest.HostEmulator)) {
		*after = append(*after, func(h proxytest.HostEmulator) { h.RegisterForeignFunction(name, f) })
	}
}

// Start starts plugin p with the JSON configuration config. It returns
// the error a refused configuration gives (the plugin's critical log
// line), or the Host. The emulator is released when the test ends (use
// a subtest per Host when a test needs several).
func Start[C any](t testing.TB, p sdk.Plugin[C], config string, opts ...Option) (*Host, error) {
	t.Helper()
	o := proxytest.NewEmulatorOption().WithPluginConfiguration([]byte(config))
	var after []func(proxytest.HostEmulator)
	for _, f := range opts {
		f(o, &after)
	}
	// sdk.Run registers the VM context through proxywasm.SetVMContext;
	// the emulator wants it in its option.
	o.WithVMContext(sdk.VMContext(p))
	h, reset := proxytest.NewHostEmulator(o)
	for _, f := range after {
		f(h)
	}
	if st := h.StartPlugin(); st != types.OnPluginStartStatusOK {
		err := &StartError{Logs: h.GetCriticalLogs()}
		reset()
		return nil, err
	}
	t.Cleanup(reset)
	return &Host{t: t, h: h}, nil
}

// StartError is a plugin's refusal to start.
type StartError struct{ Logs []string }

func (e *StartError) Error() string { return "plugin refused to start: " + strings.Join(e.Logs, "; ") }

// Emulator gives the proxytest emulator, for what Host does not cover.
func (h *Host) Emulator() proxytest.HostEmulator { return h.h }

// Request is a request to send through the plugin.
type Request struct {
	Method, Path, Host string // defaults: GET, /, example.com
	Scheme             string // default http
	Headers            [][2]string
	// ClientAddr is the source.address property ("ip:port") while the
	// request runs.
	ClientAddr string
}

// Response is the upstream's answer to run through the plugin.
type Response struct {
	Status  int // default 200
	Headers [][2]string
}

// Result is what the gateway would do with the request and response.
type Result struct {
	ID uint32 // the HTTP context
	// Local is the plugin's own answer, if it sent one.
	Local *Local
	// Paused: the plugin holds the request (see Host.Resume).
	Paused bool
	// Upstream is the request headers as they would go upstream.
	Upstream Headers
	// Downstream is the response headers as they would reach the client
	// (after OnResponse), when the request went upstream.
	Downstream Headers
}

// Local is a response the plugin sent itself.
type Local struct {
	Status  int
	Headers Headers
	Body    string
}

// Headers are header pairs with lower-case names.
type Headers [][2]string

// Get returns the first value of the named header.
func (h Headers) Get(name string) string {
	name = strings.ToLower(name)
	for _, kv := range h {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// Has reports whether the named header is present.
func (h Headers) Has(name string) bool {
	name = strings.ToLower(name)
	for _, kv := range h {
		if kv[0] == name {
			return true
		}
	}
	return false
}

// Values returns every value of the named header.
func (h Headers) Values(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for _, kv := range h {
		if kv[0] == name {
			out = append(out, kv[1])
		}
	}
	return out
}

// Do sends req through the plugin and, if it goes upstream, resp back.
func (h *Host) Do(req Request, resp Response) Result {
	h.t.Helper()
	id := h.h.InitializeHttpContext()
	if req.ClientAddr != "" {
		if err := h.h.SetProperty([]string{"source", "address"}, []byte(req.ClientAddr)); err != nil {
			h.t.Fatal(err)
		}
	}
	action := h.h.CallOnRequestHeaders(id, requestHeaders(req), true)
	res := Result{ID: id}
	if h.local(&res) {
		h.h.CompleteHttpContext(id)
		return res
	}
	if action == types.ActionPause {
		res.Paused = true
		return res
	}
	h.finish(&res, resp)
	return res
}

// Resume completes a request that was paused: after the plugin resumed
// it, resp goes through OnResponse; after it answered, Local is set.
func (h *Host) Resume(res Result, resp Response) Result {
	h.t.Helper()
	res.Paused = false
	if h.local(&res) {
		h.h.CompleteHttpContext(res.ID)
		return res
	}
	if h.h.GetCurrentHttpStreamAction(res.ID) != types.ActionContinue {
		res.Paused = true
		return res
	}
	h.finish(&res, resp)
	return res
}

func (h *Host) local(res *Result) bool {
	l := h.h.GetSentLocalResponse(res.ID)
	if l == nil {
		return false
	}
	res.Local = &Local{Status: int(l.StatusCode), Headers: lower(l.Headers), Body: string(l.Data)}
	return true
}

func (h *Host) finish(res *Result, resp Response) {
	res.Upstream = lower(h.h.GetCurrentRequestHeaders(res.ID))
	status := resp.Status
	if status == 0 {
		status = 200
	}
	rh := append([][2]string{{":status", strconv.Itoa(status)}}, resp.Headers...)
	h.h.CallOnResponseHeaders(res.ID, rh, false)
	res.Downstream = lower(h.h.GetCurrentResponseHeaders(res.ID))
	h.h.CompleteHttpContext(res.ID)
}

// Callouts returns the HTTP callouts the request's context made.
func (h *Host) Callouts(res Result) []proxytest.HttpCalloutAttribute {
	return h.h.GetCalloutAttributesFromContext(res.ID)
}

// AnswerCallout delivers the answer to a callout.
func (h *Host) AnswerCallout(calloutID uint32, status int, headers [][2]string, body string) {
	hs := append([][2]string{{":status", strconv.Itoa(status)}}, headers...)
	h.h.CallOnHttpCallResponse(calloutID, hs, nil, []byte(body))
}

// Logs returns the plugin's log lines of level "debug", "info", "warn",
// "error" or "critical".
func (h *Host) Logs(level string) []string {
	switch level {
	case "debug":
		return h.h.GetDebugLogs()
	case "info":
		return h.h.GetInfoLogs()
	case "warn":
		return h.h.GetWarnLogs()
	case "error":
		return h.h.GetErrorLogs()
	}
	return h.h.GetCriticalLogs()
}

func requestHeaders(r Request) [][2]string {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	return append([][2]string{
		{":method", def(r.Method, "GET")},
		{":path", def(r.Path, "/")},
		{":authority", def(r.Host, "example.com")},
		{":scheme", def(r.Scheme, "http")},
	}, r.Headers...)
}

// lower copies the emulator's headers with lower-case names. The values
// are copied too: the emulator keeps the strings a plugin passed, which
// may be the plugin's own buffers (a real host copies a value when it is
// set, so a plugin may reuse them for its next request).
func lower(h [][2]string) Headers {
	out := make(Headers, len(h))
	for i, kv := range h {
		out[i] = [2]string{strings.ToLower(kv[0]), strings.Clone(kv[1])}
	}
	return out
}
