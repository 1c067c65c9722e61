// Package policy turns ProxyPolicies into running proxy-wasm plugins: it
// finds a policy's module, checks its pin, compiles it through the wasm
// runtime (once per content hash), starts the plugin with the policy's
// configuration, and adapts it to the request path's proxy.Policy.
//
// Each policy type is registered once (Register, registry.go), from its
// own file: firstparty_<type>.go for the first-party types (the bundled
// module, the conversion of the ProxyPolicy block into the plugin's
// configuration, sdk/firstparty's wire format, the type's host
// functions), wasm.go for users' Wasm policies. The registration also
// gives the type's place in a rule's chain and whether it authenticates,
// which the request path reads (proxy.PolicyTraits) instead of lists of
// its own.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/policy/bundled"
	"github.com/novaedge/novaedge/host/proxy"
	"github.com/novaedge/novaedge/host/wasm"
)

// Builder builds the policies of a snapshot on one wasm runtime.
type Builder struct {
	Runtime *wasm.Runtime
	// Bundled maps the names of modules shipped in the binary to their
	// code; nil means package bundled's (the first-party policies, which
	// Wasm policies may also name as their module).
	Bundled map[string][]byte
	// Host is the runtime's host functions (NewHost), whose state for a
	// policy a rebuild may reset (spec.stateOnChange); nil: never reset.
	Host *Host

	once sync.Once

	mu     sync.Mutex
	states map[string]stateKey // by policy: what its last plugin's state belongs to
}

// stateKey is what a plugin's state outside its VMs belongs to: a new
// module or root id starts afresh, whatever spec.stateOnChange says.
type stateKey struct{ module, rootID, vmID string }

// Build is a proxy.PolicyBuilder: it makes the plugin of a Wasm policy,
// or of a first-party policy (CORS, SecurityHeaders, RateLimit, JWT,
// KeyAuth) from its bundled module, and returns nil for the types whose
// module this build does not bundle. The policy reports its type's
// traits (Traits) to the request path.
func (b *Builder) Build(ctx context.Context, p *configs.Policy) (proxy.Policy, error) {
	opts := wasm.PluginOptions{Name: p.Metadata.Namespace + "/" + p.Metadata.Name}
	var code []byte
	var label string // the module, for errors
	if w := p.Spec.Wasm; p.Spec.Type == configs.PolicyWasm && w != nil {
		var err error
		if code, err = b.load(p); err != nil {
			return nil, fmt.Errorf("module %q: %w", w.Module, err)
		}
		if w.SHA256 != "" {
			sum := sha256.Sum256(code)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, w.SHA256) {
				return nil, fmt.Errorf("module %s: sha256 is %s, the policy pins %s", w.Module, got, w.SHA256)
			}
		}
		label = w.Module
		opts.RootID, opts.VMID = w.RootID, w.VMID
		if opts.Configuration, err = jsonOf(w.Config); err != nil {
			return nil, fmt.Errorf("wasm.config: %w", err)
		}
		if opts.VMConfiguration, err = jsonOf(w.VMConfig); err != nil {
			return nil, fmt.Errorf("wasm.vmConfig: %w", err)
		}
		if w.Timeout != nil {
			opts.CallTimeout = w.Timeout.Duration
		}
		if w.MaxMemory != nil {
			opts.MaxMemoryPages = uint32(w.MaxMemory.Bytes >> 16)
		}
	} else {
		t, ok := Lookup(p.Spec.Type)
		if code = b.bundled()[t.Module]; !ok || t.Module == "" || code == nil {
			return nil, nil // not bundled in this build: reported as not active
		}
		var err error
		if _, opts.Configuration, err = firstPartyConfig(p); err != nil {
			return nil, err
		}
		label = "bundled " + t.Module
	}
	mod, err := b.Runtime.Compile(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", label, err)
	}
	// The plugin holds its own reference to the module; this one is only
	// for starting it.
	defer mod.Close(ctx)
	b.carryState(p, opts.Name, stateKey{module: mod.Hash(), rootID: opts.RootID, vmID: opts.VMID})
	plugin, err := mod.NewPlugin(ctx, opts)
	if err != nil {
		return nil, err
	}
	t, _ := Lookup(p.Spec.Type)
	return &wasmPolicy{plugin: plugin, module: mod.Hash(), traits: Traits(p), headersOnly: t.HeadersOnly}, nil
}

// carryState decides what becomes of the state the host keeps for a
// policy whose plugin is being built again: kept (spec.stateOnChange Keep,
// the default) while its module and root id stay the same, otherwise
// forgotten — its rate-limit buckets, and the shared data of its vmId —
// before the new plugin starts. The old plugin, serving until the new one
// takes over, then sees the fresh state too.
func (b *Builder) carryState(p *configs.Policy, name string, key stateKey) {
	b.mu.Lock()
	if b.states == nil {
		b.states = map[string]stateKey{}
	}
	prev, had := b.states[name]
	b.states[name] = key
	b.mu.Unlock()
	if !had || prev == key && p.Spec.StateOnChange != "Reset" {
		return
	}
	if b.Host != nil {
		b.Host.Reset(name)
	}
	if key.vmID == prev.vmID {
		// A vmId the policy moves to is another scope, not its own past.
		b.Runtime.ResetSharedData(key.vmID)
	}
}

func (b *Builder) bundled() map[string][]byte {
	b.once.Do(func() {
		if b.Bundled == nil {
			b.Bundled = bundled.Modules()
		}
	})
	return b.Bundled
}

// load returns a policy's module: a bundled module by name, or a file,
// relative to the directory of the file that declares the policy, as the
// snapshot read it (configs.Snapshot.ReadExternal) or, if it did not, as
// it is on disk now.
func (b *Builder) load(p *configs.Policy) ([]byte, error) {
	name := p.Spec.Wasm.Module
	if code, ok := b.bundled()[name]; ok {
		return code, nil
	}
	return readExternal(p, name)
}

// readExternal returns the content of a file a policy names.
func readExternal(p *configs.Policy, name string) ([]byte, error) {
	if f, ok := p.File(name); ok {
		return f.Data, f.Err
	}
	return os.ReadFile(p.Source.ResolvePath(name))
}

func jsonOf(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// wasmPolicy adapts a wasm plugin to the request path.
type wasmPolicy struct {
	plugin *wasm.Plugin
	module string // content hash
	traits proxy.PolicyTraits
	// headersOnly: streams without body and trailer callbacks (Type.HeadersOnly).
	headersOnly bool
}

// Traits reports the policy's place in the order and whether it
// authenticates, from its type's registration.
func (w *wasmPolicy) Traits() proxy.PolicyTraits { return w.traits }

// Stats reports the plugin's VMs and counters for /status.
func (w *wasmPolicy) Stats() proxy.PolicyStats {
	s := w.plugin.Stats()
	return proxy.PolicyStats{Module: w.module, VMs: s.VMs, MemoryBytes: s.MemoryBytes, Calls: s.Calls, Failures: s.Failures, VMRebuilds: s.VMRebuilds}
}

func (w *wasmPolicy) NewStream(ctx context.Context, r *http.Request, info proxy.StreamInfo) (proxy.PolicyStream, error) {
	si := wasm.StreamInfo{
		Request:     r,
		RouteName:   info.Route,
		ClusterName: info.Backend,
		ClientAddr:  info.Client,
		LocalAddr:   info.Local,
		RequestID:   info.RequestID,
	}
	if info.State != nil {
		si.Shared = info.State
	}
	s, err := w.plugin.NewStream(ctx, si)
	if err != nil {
		return nil, err
	}
	if w.headersOnly {
		return headerStream{&wasmStream{s: s}}, nil
	}
	return &wasmStream{s: s}, nil
}

// headerStream is a wasmStream without the body and trailer methods: the
// proxy hands it no body (it is not a proxy.BodyStream).
type headerStream struct{ ws *wasmStream }

func (h headerStream) RequestHeaders(ctx context.Context, r *http.Request) (*proxy.LocalResponse, error) {
	return h.ws.RequestHeaders(ctx, r)
}

func (h headerStream) ResponseHeaders(ctx context.Context, status int, hdr http.Header, eos bool) (*proxy.LocalResponse, error) {
	return h.ws.ResponseHeaders(ctx, status, hdr, eos)
}

func (h headerStream) Done() { h.ws.Done() }

func (w *wasmPolicy) Close() { w.plugin.Close(context.Background()) }

type wasmStream struct{ s *wasm.Stream }

func (ws *wasmStream) RequestHeaders(ctx context.Context, r *http.Request) (*proxy.LocalResponse, error) {
	end := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	v, err := ws.s.OnRequestHeaders(ctx, r.Header, end)
	return local(v), err
}

func (ws *wasmStream) ResponseHeaders(ctx context.Context, status int, h http.Header, eos bool) (*proxy.LocalResponse, error) {
	v, err := ws.s.OnResponseHeaders(ctx, status, h, eos)
	return local(v), err
}

func (ws *wasmStream) RequestBody(ctx context.Context, chunk []byte, eos bool) ([]byte, *proxy.LocalResponse, error) {
	v, err := ws.s.OnRequestBody(ctx, &chunk, eos)
	return chunk, local(v), bodyErr(err)
}

func (ws *wasmStream) ResponseBody(ctx context.Context, chunk []byte, eos bool) ([]byte, *proxy.LocalResponse, error) {
	v, err := ws.s.OnResponseBody(ctx, &chunk, eos)
	return chunk, local(v), bodyErr(err)
}

func (ws *wasmStream) RequestTrailers(ctx context.Context, t http.Header) (*proxy.LocalResponse, error) {
	v, err := ws.s.OnRequestTrailers(ctx, t)
	return local(v), err
}

func (ws *wasmStream) ResponseTrailers(ctx context.Context, t http.Header) (*proxy.LocalResponse, error) {
	v, err := ws.s.OnResponseTrailers(ctx, t)
	return local(v), err
}

// bodyErr marks a body over the plugin's buffering limit for the gateway,
// which answers it with 413 (request) or 500 (response).
func bodyErr(err error) error {
	if errors.Is(err, wasm.ErrBodyTooLarge) {
		return fmt.Errorf("%w: %w", proxy.ErrBodyTooLarge, err)
	}
	return err
}

func (ws *wasmStream) Done() { ws.s.Done() }

func local(v wasm.Verdict) *proxy.LocalResponse {
	if v.Local == nil {
		return nil
	}
	return &proxy.LocalResponse{Status: v.Local.Status, Headers: v.Local.Headers, Body: v.Local.Body}
}

var (
	_ proxy.Policy         = (*wasmPolicy)(nil)
	_ proxy.StatsReporter  = (*wasmPolicy)(nil)
	_ proxy.TraitsReporter = (*wasmPolicy)(nil)
	_ proxy.BodyStream     = (*wasmStream)(nil)
)
