package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// StreamInfo describes the HTTP stream a plugin sees through properties and
// the request pseudo-headers.
type StreamInfo struct {
	// Request supplies :method, :path, :authority and :scheme; setting them
	// through the header functions rewrites it (see Stream). May be nil.
	Request                *http.Request
	RouteName, ClusterName string
	ClientAddr, LocalAddr  netip.AddrPort
	RequestID              string
	// TLSVersion is the connection.tls_version property ("" for plain text).
	TLSVersion string
	// Start is the request.time property; zero means when NewStream ran.
	Start time.Time
	// Shared, if set, keeps the properties the plugin sets on the stream,
	// for every plugin of the request to read.
	Shared StreamProperties
}

// StreamProperties holds the properties plugins set on one request. Its
// methods may be called from several goroutines.
type StreamProperties interface {
	Property(key string) ([]byte, bool)
	SetProperty(key string, value []byte)
}

// Verdict is the outcome of a callback: nil Local means continue.
type Verdict struct {
	Local *LocalResponse
}

// LocalResponse is a response the plugin sent with proxy_send_local_response;
// the caller must send it instead of proceeding.
type LocalResponse struct {
	Status  int
	Headers http.Header
	Body    []byte
	Details string
}

// Stream is one HTTP stream (request and response) through a plugin: one
// HTTP context of one VM, bound to it for its whole life. A Stream's methods
// must be called in request order and not concurrently; Done must be called
// once.
//
// Header callbacks read and change the header map h in place. Pseudo-headers
// are mapped, not stored in h: for requests ":method", ":path", ":authority"
// and ":scheme" read StreamInfo.Request (Method, URL.RequestURI(), Host,
// URL.Scheme, defaulting to "http"/"https" by TLS); setting them rewrites the
// Request (":path" replaces URL.Path, URL.RawPath and URL.RawQuery). For
// responses ":status" reads the status given to OnResponseHeaders; setting it
// is reported by ResponseStatus. Header names reach the plugin in lower case.
//
// ctx is checked before each callback and bounds a pause; a running callback
// is bounded by CallTimeout only (stopping it would discard the VM).
//
// When a callback returns Pause, the method blocks, without holding the VM,
// until the plugin calls proxy_continue_stream or proxy_send_local_response
// from another callback (proxy_on_tick, proxy_on_http_call_response, …, after
// proxy_set_effective_context), PauseTimeout passes, or ctx ends.
//
// The caller must not touch h while a callback of the stream runs, and must
// not change the request's headers (or Request) while later callbacks run:
// the plugin may read them until Done.
//
// Bodies: a Pause from a body callback before the end of the stream means
// "buffer": the chunk is kept by the host, *body is set to nil (nothing to
// forward yet), and the next callback sees everything buffered so far; more
// than MaxBodyBytes buffered is ErrBodyTooLarge. At the end of the stream a
// Pause waits as above. On Continue *body is set to the whole buffered (and
// possibly modified) body, a copy owned by the caller.
type Stream struct {
	p    *Plugin
	vm   *vm
	root *rootCtx // the plugin's root context on vm: the stream's parent
	id   uint32
	info StreamInfo

	created time.Time

	// guarded by vm.mu
	resume       chan struct{} // signalled by continue/local response/VM close; made when first needed
	attached     bool          // the caller's maps may be used by host functions
	reqHeaders   http.Header
	respHeaders  http.Header
	reqTrailers  http.Header
	respTrailers http.Header
	status       int
	reqBody      []byte
	respBody     []byte
	reqBuffered  bool
	local        *LocalResponse
	closeErr     error
	props        map[string][]byte
	deleted      bool
	detached     bool // the plugin left the VM (Plugin.Close): the stream fails

	// proxy_on_context_create is yet to run (see NewStream).
	pendingCreate bool
}

// NewStream creates an HTTP context on the least-loaded VM of the plugin,
// whose parent is the plugin's root context on that VM.
//
// The context id is given now, but proxy_on_context_create(id, root) runs
// with the stream's first callback (or Done), in the same call into the VM
// when that is OnRequestHeaders (batch.go): each call into a VM has a fixed
// cost of about a microsecond. A failure of proxy_on_context_create is then
// that callback's error.
func (p *Plugin) NewStream(ctx context.Context, info StreamInfo) (*Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := p.newStream(ctx, info)
		// A VM discarded between pick and lock (a trap of another stream)
		// is not this stream's failure: pick again.
		if errors.Is(err, errPickAgain) && attempt < 3 {
			continue
		}
		if errors.Is(err, errPickAgain) {
			err = ErrVMDiscarded
		}
		return s, err
	}
}

var errPickAgain = errors.New("wasm: VM closed before the stream started")

func (p *Plugin) newStream(ctx context.Context, info StreamInfo) (*Stream, error) {
	v, err := p.pick(ctx)
	if err != nil {
		return nil, err
	}
	s := &Stream{p: p, vm: v, info: info, created: time.Now()}
	v.mu.Lock()
	defer v.mu.Unlock()
	s.root = v.rootOf[p]
	if v.closed.Load() || s.root == nil {
		v.active.Add(-1)
		if err := v.refused[p]; err != nil && !v.closed.Load() {
			return nil, fmt.Errorf("wasm: plugin %q: %w", p.opts.Name, err)
		}
		return nil, errPickAgain
	}
	s.id = v.nextID
	v.nextID++
	v.streams[s.id] = s
	s.pendingCreate = v.fn.contextCreate != nil
	return s, nil
}

// create runs proxy_on_context_create if it has not run yet, with the root
// context effective, and then makes the stream's context effective. vm.mu
// must be held.
func (s *Stream) create(v *vm) error {
	if !s.pendingCreate {
		return nil
	}
	s.pendingCreate = false
	v.setRoot(s.root) // the root context is effective during the create
	_, err := v.call(v.fn.contextCreate, uint64(s.id), uint64(s.root.id))
	v.effective, v.cur, v.root, v.p = s.id, s, s.root, s.p
	if err != nil {
		return fmt.Errorf("wasm: plugin %q: proxy_on_context_create: %w", s.p.opts.Name, err)
	}
	return nil
}

// ID returns the stream's context id in its VM.
func (s *Stream) ID() uint32 { return s.id }

// ResponseStatus returns the response status, as changed by the plugin
// through the ":status" pseudo-header.
func (s *Stream) ResponseStatus() int {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return s.status
}

// wake signals a paused stream. Called with vm.mu held.
func (s *Stream) wake() {
	select {
	case s.resumeChan() <- struct{}{}:
	default:
	}
}

// resumeChan returns s.resume, making it on first use (most streams never
// pause). Called with vm.mu held.
func (s *Stream) resumeChan() chan struct{} {
	if s.resume == nil {
		s.resume = make(chan struct{}, 1)
	}
	return s.resume
}

// OnRequestHeaders runs proxy_on_request_headers over h.
func (s *Stream) OnRequestHeaders(ctx context.Context, h http.Header, endOfStream bool) (Verdict, error) {
	if h == nil {
		h = http.Header{}
	}
	return s.run(ctx, func(v *vm) (uint64, error) {
		s.reqHeaders = h
		n := uint64(countHeaders(h) + len(requestPseudo))
		if s.pendingCreate && v.fnCreateRequestHeaders != nil {
			// proxy_on_context_create and proxy_on_request_headers in one
			// call; the helper switches the effective context in between.
			s.pendingCreate = false
			if !v.closed.Load() {
				v.p.calls.Add(1) // counted as the two callbacks it makes
			}
			v.setRoot(s.root)
			a, err := v.call(v.fnCreateRequestHeaders, uint64(s.id), uint64(s.root.id), n, b2u(endOfStream))
			v.effective, v.cur, v.root, v.p = s.id, s, s.root, s.p
			return a, err
		}
		if err := s.create(v); err != nil {
			return 0, err
		}
		return v.call(v.fn.requestHeaders, uint64(s.id), n, b2u(endOfStream))
	}, nil)
}

// OnResponseHeaders runs proxy_on_response_headers over status and h.
func (s *Stream) OnResponseHeaders(ctx context.Context, status int, h http.Header, endOfStream bool) (Verdict, error) {
	if h == nil {
		h = http.Header{}
	}
	return s.run(ctx, func(v *vm) (uint64, error) {
		s.respHeaders, s.status = h, status
		if err := s.create(v); err != nil {
			return 0, err
		}
		return v.call(v.fn.responseHeaders, uint64(s.id), uint64(countHeaders(h)+1), b2u(endOfStream))
	}, nil)
}

// OnRequestTrailers runs proxy_on_request_trailers over t (map type 1).
func (s *Stream) OnRequestTrailers(ctx context.Context, t http.Header) (Verdict, error) {
	if t == nil {
		t = http.Header{}
	}
	return s.run(ctx, func(v *vm) (uint64, error) {
		s.reqTrailers = t
		if err := s.create(v); err != nil {
			return 0, err
		}
		return v.call(v.fn.requestTrailers, uint64(s.id), uint64(countHeaders(t)))
	}, nil)
}

// OnResponseTrailers runs proxy_on_response_trailers over t (map type 3).
func (s *Stream) OnResponseTrailers(ctx context.Context, t http.Header) (Verdict, error) {
	if t == nil {
		t = http.Header{}
	}
	return s.run(ctx, func(v *vm) (uint64, error) {
		s.respTrailers = t
		if err := s.create(v); err != nil {
			return 0, err
		}
		return v.call(v.fn.responseTrailers, uint64(s.id), uint64(countHeaders(t)))
	}, nil)
}

// OnRequestBody runs proxy_on_request_body; see Stream for buffering.
func (s *Stream) OnRequestBody(ctx context.Context, body *[]byte, endOfStream bool) (Verdict, error) {
	return s.body(ctx, body, endOfStream, &s.reqBody, func(v *vm) api.Function { return v.fn.requestBody })
}

// OnResponseBody runs proxy_on_response_body; see Stream for buffering.
func (s *Stream) OnResponseBody(ctx context.Context, body *[]byte, endOfStream bool) (Verdict, error) {
	return s.body(ctx, body, endOfStream, &s.respBody, func(v *vm) api.Function { return v.fn.responseBody })
}

func (s *Stream) body(ctx context.Context, body *[]byte, eos bool, buf *[]byte, fn func(*vm) api.Function) (Verdict, error) {
	var chunk []byte
	if body != nil {
		chunk = *body
	}
	paused := false
	verdict, err := s.run(ctx, func(v *vm) (uint64, error) {
		limit := s.p.opts.MaxBodyBytes
		if len(*buf) > 0 && len(*buf)+len(chunk) > limit {
			return 0, ErrBodyTooLarge
		}
		*buf = append(*buf, chunk...)
		if err := s.create(v); err != nil {
			return 0, err
		}
		a, err := v.call(fn(v), uint64(s.id), uint64(len(*buf)), b2u(eos))
		if err == nil && api.DecodeU32(a) == actionPause && !eos && s.local == nil {
			if len(*buf) > limit {
				return 0, ErrBodyTooLarge
			}
			paused = true // buffer: wait for more data, not for continue
			return actionContinue, nil
		}
		return a, err
	}, func() {
		if paused {
			return
		}
		if body != nil {
			*body = *buf
		}
		*buf = nil
	})
	if paused && err == nil && body != nil {
		*body = nil
	}
	return verdict, err
}

// run makes one stream callback and, if it pauses, waits for the plugin to
// continue. after runs with vm.mu held once the stream proceeds.
func (s *Stream) run(ctx context.Context, invoke func(*vm) (uint64, error), after func()) (Verdict, error) {
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	v := s.vm
	v.mu.Lock()
	if v.closed.Load() || s.deleted || s.detached {
		v.mu.Unlock()
		return Verdict{}, v.closedErr()
	}
	if err := s.closeErr; err != nil { // the plugin closed the stream earlier
		v.mu.Unlock()
		return Verdict{}, err
	}
	if s.resume != nil {
		select { // a continue from before this callback does not count
		case <-s.resume:
		default:
		}
	}
	s.attached = true
	v.effective, v.cur = s.id, s
	v.root, v.p = s.root, s.p
	action, err := invoke(v)
	v.maybeRetireLocked()
	if err != nil || api.DecodeU32(action) != actionPause || s.local != nil || s.closeErr != nil {
		if err == nil && after != nil {
			after()
		}
		return s.finish(err)
	}
	resume := s.resumeChan()
	v.mu.Unlock()

	t := time.NewTimer(s.p.opts.PauseTimeout)
	select {
	case <-resume:
		t.Stop()
	case <-t.C:
		err = ErrPauseTimeout
	case <-ctx.Done():
		t.Stop()
		err = ctx.Err()
	}
	v.mu.Lock()
	if err == nil && (v.closed.Load() || s.detached) {
		err = v.closedErr()
	}
	if err == nil && after != nil {
		after()
	}
	return s.finish(err)
}

// finish detaches the caller's maps and unlocks vm.mu.
func (s *Stream) finish(err error) (Verdict, error) {
	v := s.vm
	s.attached = false
	local, cerr := s.local, s.closeErr
	s.local = nil
	v.mu.Unlock()
	if err != nil {
		return Verdict{}, err
	}
	if cerr != nil {
		return Verdict{}, cerr
	}
	return Verdict{Local: local}, nil
}

// Done ends the stream: proxy_on_done, proxy_on_log and proxy_on_delete,
// then releases the context. It is safe to call more than once.
func (s *Stream) Done() {
	v := s.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.deleted {
		return
	}
	s.deleted = true
	if !v.closed.Load() && !s.detached {
		v.effective, v.cur = s.id, s
		v.root, v.p = s.root, s.p
		s.attached = true
		_ = s.create(v) // a stream with no callback before Done
		// Results ignored: no waiting for proxy_done.
		if v.fnDoneLogDelete != nil && !v.closed.Load() {
			// One Go-to-wasm call for the three (batch.go), under one
			// CallTimeout; counted as the three callbacks it makes.
			v.p.calls.Add(2)
			_, _ = v.call(v.fnDoneLogDelete, uint64(s.id))
		} else {
			_, _ = v.call(v.fn.done, uint64(s.id))
			_, _ = v.call(v.fn.log, uint64(s.id))
			_, _ = v.call(v.fn.delete, uint64(s.id))
		}
		s.attached = false
		v.setRoot(s.root)
	}
	delete(v.streams, s.id)
	v.active.Add(-1)
	v.maybeRetireLocked()
}

// countHeaders counts h's values: the number of pairs the plugin will see.
func countHeaders(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
