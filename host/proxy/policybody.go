package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// BodyStream is implemented by the PolicyStreams that see bodies and
// trailers (proxy-wasm plugins do). The gateway hands them the body in
// chunks, in policy order on the request and in reverse order on the
// response: each returns what goes on to the next policy, and then to the
// backend or the client. Returning nil before the end of the stream means
// "buffering": the policy keeps the chunk and hands everything back, maybe
// changed, on a later call (at the latest the one with endOfStream).
//
// endOfStream is true on the last chunk, which may be empty. Trailers, if
// any, come after it. (Envoy sets end_of_stream false on the last chunk
// when trailers follow; a Go server learns of trailers only at the end of
// the body, so here a plugin always sees the end of the body first.)
type BodyStream interface {
	RequestBody(ctx context.Context, chunk []byte, endOfStream bool) ([]byte, *LocalResponse, error)
	RequestTrailers(ctx context.Context, t http.Header) (*LocalResponse, error)
	ResponseBody(ctx context.Context, chunk []byte, endOfStream bool) ([]byte, *LocalResponse, error)
	ResponseTrailers(ctx context.Context, t http.Header) (*LocalResponse, error)
}

// ErrBodyTooLarge is what a BodyStream returns (wrapped) when buffering a
// body would pass its limit: 413 on the request, 500 on the response, as
// in Envoy, whatever the policy's failurePolicy.
var ErrBodyTooLarge = errors.New("body too large to buffer for a policy")

// bodyStep is the result of passing one chunk through the chain.
type bodyStep struct {
	local *LocalResponse
	err   error // a policy failed closed, or a body was too large
	at    int   // the policy that answered or failed
}

// hasBody reports whether some stream of the chain sees bodies.
func (cr *chainRun) hasBody() bool {
	for _, s := range cr.streams {
		if _, ok := s.(BodyStream); ok {
			return true
		}
	}
	return false
}

// skipped reports whether policy i failed open on this side of the stream.
// The request side (which may run on the transport's goroutine) and the
// response side keep separate lists, so neither writes what the other reads.
func skipped(list []bool, i int) bool { return i < len(list) && list[i] }

func skip(list []bool, i, n int) []bool {
	if list == nil {
		list = make([]bool, n)
	}
	list[i] = true
	return list
}

// passRequest hands a request body chunk through the chain. A policy that
// fails open is skipped from then on.
func (cr *chainRun) passRequest(ctx context.Context, st *state, chunk []byte, eos bool, id string) ([]byte, bodyStep) {
	return cr.pass(ctx, st, chunk, eos, id, false)
}

// passResponse hands a response body chunk through the chain in reverse.
func (cr *chainRun) passResponse(ctx context.Context, st *state, chunk []byte, eos bool, id string) ([]byte, bodyStep) {
	return cr.pass(ctx, st, chunk, eos, id, true)
}

func (cr *chainRun) pass(ctx context.Context, st *state, chunk []byte, eos bool, id string, response bool) ([]byte, bodyStep) {
	n := len(cr.streams)
	skips := &cr.reqSkip
	if response {
		skips = &cr.respSkip
	}
	for k := 0; k < n; k++ {
		i := k
		if response {
			i = n - 1 - k
		}
		bs, ok := cr.streams[i].(BodyStream)
		if !ok || skipped(*skips, i) {
			continue
		}
		if chunk == nil && !eos {
			break // buffered earlier in the chain: nothing to pass on yet
		}
		var out []byte
		var local *LocalResponse
		var err error
		if response {
			out, local, err = bs.ResponseBody(ctx, chunk, eos)
		} else {
			out, local, err = bs.RequestBody(ctx, chunk, eos)
		}
		if err != nil {
			if cr.failOpen(st, i, err, id) {
				*skips = skip(*skips, i, n)
				continue
			}
			return nil, bodyStep{err: err, at: i}
		}
		if local != nil {
			return nil, bodyStep{local: local, at: i}
		}
		chunk = out
	}
	return chunk, bodyStep{}
}

// requestTrailers runs the trailer callbacks in order over t.
func (cr *chainRun) requestTrailers(ctx context.Context, st *state, t http.Header, id string) bodyStep {
	for i, s := range cr.streams {
		if bs, ok := s.(BodyStream); ok && !skipped(cr.reqSkip, i) {
			local, err := bs.RequestTrailers(ctx, t)
			if st := cr.trailerStep(st, i, local, err, id); st != nil {
				return *st
			}
		}
	}
	return bodyStep{}
}

// responseTrailers runs the trailer callbacks in reverse order over t.
func (cr *chainRun) responseTrailers(ctx context.Context, st *state, t http.Header, id string) bodyStep {
	for i := len(cr.streams) - 1; i >= 0; i-- {
		if bs, ok := cr.streams[i].(BodyStream); ok && !skipped(cr.respSkip, i) {
			local, err := bs.ResponseTrailers(ctx, t)
			if st := cr.trailerStep(st, i, local, err, id); st != nil {
				return *st
			}
		}
	}
	return bodyStep{}
}

func (cr *chainRun) trailerStep(st *state, i int, local *LocalResponse, err error, id string) *bodyStep {
	switch {
	case err != nil && cr.failOpen(st, i, err, id):
		return nil
	case err != nil:
		return &bodyStep{err: err, at: i}
	case local != nil:
		return &bodyStep{local: local, at: i}
	}
	return nil
}

// failOpen logs a failed body callback and reports whether the policy lets
// the request go on without it. A body over the buffering limit is never
// failed open: the policy could not see the body it asked for.
func (cr *chainRun) failOpen(st *state, i int, err error, id string) bool {
	bp := cr.policies[i]
	if !bp.failOpen || errors.Is(err, ErrBodyTooLarge) {
		return false
	}
	st.g.log.Warn("policy failed; failing open", "policy", bp.name(), "request_id", id, "error", err)
	return true
}

// policyBody is a request body on its way through the policies: the
// transport reads what the last policy let through.
type policyBody struct {
	cr     *chainRun
	st     *state
	ctx    context.Context
	r      *http.Request
	src    io.ReadCloser
	id     string
	left   int64 // bytes the client still owes, -1 when unknown
	buf    *[]byte
	out    []byte // passed through, not yet read by the transport
	eos    bool   // the chain saw the end of the body
	fail   bodyStep
	total  int64 // bytes passed through
	closed atomic.Bool
}

// errPolicyAnswered ends a request body whose policy answered or failed
// while the body was on its way upstream.
var errPolicyAnswered = errors.New("a policy stopped the request body")

// fill reads from the client until the chain lets something through or
// the body ends.
func (pb *policyBody) fill() error {
	for len(pb.out) == 0 && !pb.eos {
		if pb.fail.local != nil || pb.fail.err != nil {
			return errPolicyAnswered
		}
		buf := *pb.buf
		if pb.left >= 0 && pb.left < int64(len(buf)) {
			buf = buf[:pb.left]
		}
		n, err := 0, error(nil)
		if len(buf) > 0 {
			n, err = pb.src.Read(buf)
		} else {
			err = io.EOF
		}
		if err != nil && err != io.EOF {
			return err // the client's: too large, gone, malformed
		}
		if pb.left >= 0 {
			pb.left -= int64(n)
		}
		eos := err == io.EOF || pb.left == 0
		if n == 0 && !eos {
			continue
		}
		chunk := buf[:n:n]
		if n == 0 {
			chunk = []byte{}
		}
		out, step := pb.cr.passRequest(pb.ctx, pb.st, chunk, eos, pb.id)
		if step.local == nil && step.err == nil && eos && len(pb.r.Trailer) > 0 {
			if err == nil { // known length reached: read the trailers
				var probe [1]byte
				if _, terr := pb.src.Read(probe[:]); terr != io.EOF && terr != nil {
					return terr
				}
			}
			step = pb.cr.requestTrailers(pb.ctx, pb.st, pb.r.Trailer, pb.id)
		}
		if step.local != nil || step.err != nil {
			pb.fail = step
			return errPolicyAnswered
		}
		// out may alias the read buffer: copy what is not the policy's own.
		if len(out) > 0 && &out[0] == &buf[0] {
			out = append([]byte(nil), out...)
		}
		pb.out = out
		pb.total += int64(len(out))
		pb.eos = eos
	}
	return nil
}

func (pb *policyBody) Read(p []byte) (int, error) {
	if err := pb.fill(); err != nil {
		return 0, err
	}
	if len(pb.out) == 0 && pb.eos {
		return 0, io.EOF
	}
	n := copy(p, pb.out)
	pb.out = pb.out[n:]
	return n, nil
}

// Close is called by the transport when it is done with the body (maybe
// after RoundTrip returned): only then may the read buffer be reused.
func (pb *policyBody) Close() error {
	if pb.closed.CompareAndSwap(false, true) {
		bufPool.Put(pb.buf)
	}
	return pb.src.Close()
}

// prepareRequestBody puts the policies between the client's body and the
// backend. It reads until the first bytes come through the chain (at once,
// for a policy that does not buffer), so that a policy that buffers the
// whole body can still answer the request itself, change its headers, or
// have it sent with an exact Content-Length. It returns false if the
// request was answered.
func (st *state) prepareRequestBody(ctx context.Context, w http.ResponseWriter, r *http.Request, cr *chainRun, id string) bool {
	bp := bufPool.Get().(*[]byte)
	pb := &policyBody{cr: cr, st: st, ctx: ctx, r: r, src: r.Body, id: id, left: r.ContentLength, buf: bp}
	err := pb.fill()
	if err == nil && pb.eos {
		// The whole body went through: send it with its length, and it
		// can be replayed on a retry.
		body := pb.out
		if len(body) > 0 && &body[0] == &(*bp)[0] {
			body = append([]byte(nil), body...)
		}
		bufPool.Put(bp)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if len(r.Trailer) > 0 {
			// Trailers need a chunked body.
			r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
			return true
		}
		r.ContentLength, r.TransferEncoding = int64(len(body)), nil
		if len(body) == 0 {
			r.Body = http.NoBody
		}
		return true
	}
	if err != nil {
		bufPool.Put(bp)
		st.bodyFailed(ctx, w, r, cr, pb, err, id)
		return false
	}
	// Streaming: the policies may have removed Content-Length because they
	// change the body's size; then the body goes chunked.
	switch cl := r.Header.Get("Content-Length"); {
	case cl == "":
		r.ContentLength = -1
	default:
		if n, perr := strconv.ParseInt(cl, 10, 64); perr == nil && n >= 0 {
			r.ContentLength = n
		} else {
			r.ContentLength = -1
		}
	}
	// The pooled buffer stays with the body until the transport closes it.
	r.Body = pb
	return true
}

// bodyFailed answers a request whose body a policy stopped before it went
// upstream.
func (st *state) bodyFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, cr *chainRun, pb *policyBody, err error, id string) {
	switch {
	case pb.fail.local != nil:
		cr.respond(ctx, w, pb.fail.local, pb.fail.at, id, st)
	case pb.fail.err != nil && errors.Is(pb.fail.err, ErrBodyTooLarge):
		cr.rejected(pb.fail.at)
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large for policy "+cr.policies[pb.fail.at].name(), id)
	case pb.fail.err != nil:
		cr.rejected(pb.fail.at)
		st.policyFailed(w, cr.policies[pb.fail.at], id, pb.fail.err)
	default:
		// The client's body could not be read: its fault, answered
		// 400 (408 for a stall) on a connection that then closes.
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large", id)
		default:
			writeClientError(w, r, err, id)
		}
	}
}

// answered reports, after the transport failed, whether a policy stopped
// the body while it streamed, and answers the request if so.
func (fr *forwardReq) answeredByPolicy(ctx context.Context, st *state, w http.ResponseWriter, r *http.Request) bool {
	pb, ok := r.Body.(*policyBody)
	if !ok || (pb.fail.local == nil && pb.fail.err == nil) {
		return false
	}
	st.bodyFailed(ctx, w, r, fr.chain, pb, errPolicyAnswered, fr.id)
	return true
}

// responseBody copies a response body through the policies. Headers are
// written only when the first bytes come through, so that a policy that
// buffers the whole body can still replace the response, and the client
// gets the body's exact length. It returns an error when the response
// must be aborted.
type responseBody struct {
	st       *state
	cr       *chainRun
	w        http.ResponseWriter
	id       string
	status   int
	wrote    bool // the status line is out
	trailers bool // the upstream announced trailers
	flusher  http.Flusher
}

func (rb *responseBody) emit(out []byte, eos bool) error {
	if !rb.wrote {
		h := rb.w.Header()
		switch {
		case eos && rb.trailers:
			delete(h, "Content-Length") // trailers need a chunked body
		case eos:
			h["Content-Length"] = []string{strconv.Itoa(len(out))}
		}
		rb.w.WriteHeader(rb.status)
		rb.wrote = true
	}
	if len(out) > 0 {
		if _, err := rb.w.Write(out); err != nil {
			return errClientGone
		}
	}
	if rb.flusher != nil && (len(out) > 0 || !eos) {
		rb.flusher.Flush()
	}
	return nil
}

var errClientGone = errors.New("client went away")

// stop handles a policy that answered or failed on the response body.
func (rb *responseBody) stop(step bodyStep) error {
	bp := rb.cr.policies[step.at]
	rb.cr.rejected(step.at)
	if rb.wrote {
		return fmt.Errorf("policy %s stopped a response already under way: %v", bp.name(), step.err)
	}
	// Headers of the upstream response must not leak into the answer.
	h := rb.w.Header()
	reqID := h["X-Request-Id"]
	for k := range h {
		delete(h, k)
	}
	h["X-Request-Id"] = reqID
	switch {
	case step.local != nil:
		writeLocal(rb.w, step.local.Status, step.local.Headers, step.local.Body)
	case errors.Is(step.err, ErrBodyTooLarge):
		writeError(rb.w, http.StatusInternalServerError, "response body too large for policy "+bp.name(), rb.id)
	default:
		rb.st.g.log.Warn("policy failed on the response body; failing closed", "policy", bp.name(), "request_id", rb.id, "error", step.err)
		writeError(rb.w, http.StatusServiceUnavailable, "policy "+bp.name()+" failed", rb.id)
	}
	rb.wrote = true
	return nil
}

// copy reads the upstream body and sends it through the policies to the
// client, then runs the trailer callbacks. An error aborts the response.
func (rb *responseBody) copy(ctx context.Context, resp *http.Response, buf []byte) error {
	rb.trailers = len(resp.Trailer) > 0
	for {
		n, rerr := resp.Body.Read(buf)
		eos := rerr == io.EOF
		if rerr != nil && !eos {
			if !rb.wrote {
				writeError(rb.w, http.StatusBadGateway, "upstream connection error", rb.id)
				return nil
			}
			return rerr
		}
		if n == 0 && !eos {
			continue
		}
		out, step := rb.cr.passResponse(ctx, rb.st, buf[:n:n], eos, rb.id)
		if step.local == nil && step.err == nil && eos && len(resp.Trailer) > 0 {
			step = rb.cr.responseTrailers(ctx, rb.st, resp.Trailer, rb.id)
		}
		if step.local != nil || step.err != nil {
			return rb.stop(step)
		}
		if len(out) > 0 || eos {
			if err := rb.emit(out, eos); err != nil {
				return nil // the client went away; nothing to tell it
			}
		}
		if eos {
			return nil
		}
	}
}
