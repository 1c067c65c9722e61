package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/observe"
)

// Policy is a ProxyPolicy made ready to serve: a proxy-wasm plugin, in
// practice. The gateway builds one per ProxyPolicy and generation (through
// Options.Policies) and closes it when the generation is retired.
type Policy interface {
	// NewStream starts the policy's work on one request.
	NewStream(ctx context.Context, r *http.Request, info StreamInfo) (PolicyStream, error)
	// Close releases the policy (its VMs). The gateway calls it once no
	// request uses the policy any more.
	Close()
}

// PolicyStats is what a policy reports about itself in /status (a policy
// implementing StatsReporter).
type PolicyStats struct {
	Module      string `json:"module"` // content hash of its code
	VMs         int    `json:"vms"`
	MemoryBytes uint64 `json:"memoryBytes"`
	Calls       uint64 `json:"calls"`
	Failures    uint64 `json:"failures"`
	VMRebuilds  uint64 `json:"vmRebuilds"`
}

// StatsReporter is implemented by policies that report PolicyStats.
type StatsReporter interface{ Stats() PolicyStats }

// StreamInfo is what a policy may learn about a request besides the
// request itself.
type StreamInfo struct {
	RequestID string
	Route     string // namespace/name of the route
	Rule      string // the rule's name, or "namespace/name#index"
	Backend   string // namespace/name of the backend chosen for the request
	Client    netip.AddrPort
	Local     netip.AddrPort
	// State is shared by the policies of the request: what one sets,
	// those after it read (the proxy-wasm properties plugins set).
	State *RequestState
}

// RequestState is a request's properties set by its policies (Envoy's
// filter state). Safe for concurrent use: a request body's policies run on
// the transport's goroutine.
type RequestState struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Property returns the value set under key.
func (s *RequestState) Property(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// SetProperty sets key to value.
func (s *RequestState) SetProperty(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = value
}

// PolicyStream is one policy's view of one request. The gateway calls
// RequestHeaders before anything goes upstream and ResponseHeaders before
// the response's status line goes to the client (endOfStream when the
// response has no body), then Done exactly once. Streams that also see
// bodies and trailers implement BodyStream.
// A non-nil LocalResponse ends the request with that response; an error
// means the policy failed (its failurePolicy decides what happens).
type PolicyStream interface {
	RequestHeaders(ctx context.Context, r *http.Request) (*LocalResponse, error)
	ResponseHeaders(ctx context.Context, status int, h http.Header, endOfStream bool) (*LocalResponse, error)
	Done()
}

// LocalResponse is a response a policy makes itself.
type LocalResponse struct {
	Status  int
	Headers http.Header
	Body    []byte
}

// PolicyBuilder makes the Policy of a ProxyPolicy. It returns nil, nil for
// a policy type this build does not carry out (Inactive reports those).
type PolicyBuilder func(ctx context.Context, p *configs.Policy) (Policy, error)

// PolicyTraits is what the request path needs to know of a policy besides
// running it. They belong to the policy's type and are declared once, in
// the registry of policy types (host/policy: policy.Register); a policy
// reports its own through TraitsReporter.
type PolicyTraits struct {
	// Order is the policy's place in its rule's chain among policies of
	// the same spec.priority: lower runs first on the request path (and
	// last on the response path).
	Order int
	// Authenticates: the policy authenticates requests, and may remove
	// their credentials (KeyAuth does). The response cache then treats
	// the rule's responses as answers to requests with Authorization:
	// not shared unless the backend marks them public (or s-maxage,
	// must-revalidate), RFC 9111 §3.5.
	Authenticates bool
}

// TraitsReporter is implemented by policies that have PolicyTraits. A
// policy that does not has the zero PolicyTraits: order 0, not
// authenticating.
type TraitsReporter interface{ Traits() PolicyTraits }

// traitsOf returns a built policy's traits.
func traitsOf(p Policy) PolicyTraits {
	if tr, ok := p.(TraitsReporter); ok {
		return tr.Traits()
	}
	return PolicyTraits{}
}

// Policy order
//
// The policies that apply to a rule run on the request path in this order,
// and in the reverse order on the response path:
//
//  1. ascending spec.priority (default 0);
//  2. ascending PolicyTraits.Order, their type's place (host/policy's
//     registry: CORS, so preflights are answered before anything asks
//     for credentials; JWT and KeyAuth, authentication; RateLimit, which
//     may key on a JWT claim or an API key's consumer; Wasm, users' own;
//     SecurityHeaders, response decoration);
//  3. policies targeting the gateway before those targeting the route,
//     and those targeting the route before those targeting one rule;
//  4. namespace/name.

// boundPolicy is a policy attached to a rule.
type boundPolicy struct {
	cfg      *configs.Policy
	impl     Policy
	failOpen bool
	scope    int          // 0 gateway, 1 route, 2 rule
	traits   PolicyTraits // impl's
}

func (b *boundPolicy) name() string { return b.cfg.Metadata.Namespace + "/" + b.cfg.Metadata.Name }

// at returns the policy bound at a scope, with its traits.
func (b *boundPolicy) at(scope int) *boundPolicy {
	return &boundPolicy{cfg: b.cfg, impl: b.impl, failOpen: b.failOpen, scope: scope, traits: traitsOf(b.impl)}
}

// lessPolicy tells whether a runs before b on the request path (see
// Policy order).
func lessPolicy(a, b *boundPolicy) bool {
	if a.cfg.Spec.Priority != b.cfg.Spec.Priority {
		return a.cfg.Spec.Priority < b.cfg.Spec.Priority
	}
	if ta, tb := a.traits.Order, b.traits.Order; ta != tb {
		return ta < tb
	}
	if a.scope != b.scope {
		return a.scope < b.scope
	}
	return a.name() < b.name()
}

// policiesFor returns, in order, the active policies that apply to rule i
// of route rt reached through gateway gw.
func policiesFor(all []*boundPolicy, gw *configs.Gateway, rt *configs.Route, ruleName string) []*boundPolicy {
	var out []*boundPolicy
	for _, bp := range all {
		t := bp.cfg.Spec.TargetRef
		switch {
		case t.Kind == configs.KindGateway && t.Name == gw.Metadata.Name && t.Namespace == gw.Metadata.Namespace:
			out = append(out, bp.at(0))
		case t.Kind == configs.KindRoute && t.Name == rt.Metadata.Name && t.Namespace == rt.Metadata.Namespace:
			if t.SectionName == "" {
				out = append(out, bp.at(1))
			} else if t.SectionName == ruleName {
				out = append(out, bp.at(2))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return lessPolicy(out[i], out[j]) })
	return out
}

// chainRun is the policies of one request in flight.
type chainRun struct {
	policies []*boundPolicy
	streams  []PolicyStream // parallel to policies; nil where skipped
	// Policies that failed open on a body: parallel to streams, nil until
	// one does. reqSkip belongs to the request body's reader (which may be
	// the transport's goroutine), respSkip to the response's copy.
	reqSkip, respSkip []bool
	rec               *observe.Record // nil: not observed
}

// runRequest runs the request side of the chain. It returns false if the
// request was answered (by a policy, or with an error).
func (st *state) runRequest(ctx context.Context, w http.ResponseWriter, r *http.Request, policies []*boundPolicy, info StreamInfo, cr *chainRun) bool {
	cr.policies = policies
	cr.streams = make([]PolicyStream, len(policies))
	cr.rec = observe.RecordOf(w)
	for i, bp := range policies {
		ps := cr.rec.StartPolicy(bp.cfg.Metadata.Namespace, bp.cfg.Metadata.Name, "request")
		s, err := bp.impl.NewStream(ctx, r, info)
		if err != nil {
			ps.End(err, false)
			if bp.failOpen {
				st.g.log.Warn("policy failed; failing open", "policy", bp.name(), "request_id", info.RequestID, "error", err)
				continue
			}
			cr.rejected(i)
			st.policyFailed(w, bp, info.RequestID, err)
			return false
		}
		cr.streams[i] = s
		local, err := s.RequestHeaders(ctx, r)
		ps.End(err, local != nil)
		if err != nil {
			if bp.failOpen {
				st.g.log.Warn("policy failed; failing open", "policy", bp.name(), "request_id", info.RequestID, "error", err)
				continue
			}
			cr.rejected(i)
			st.policyFailed(w, bp, info.RequestID, err)
			return false
		}
		if local != nil {
			cr.respond(ctx, w, local, i, info.RequestID, st)
			return false
		}
	}
	return true
}

// runResponse runs the response side of the chain on the upstream's
// status and headers, in reverse order. A non-nil LocalResponse replaces
// the upstream response.
func (cr *chainRun) runResponse(ctx context.Context, st *state, status int, h http.Header, eos bool, requestID string) (*LocalResponse, error) {
	return cr.responseFrom(ctx, st, len(cr.streams)-1, status, h, eos, requestID)
}

func (cr *chainRun) responseFrom(ctx context.Context, st *state, from, status int, h http.Header, eos bool, requestID string) (*LocalResponse, error) {
	for i := from; i >= 0; i-- {
		s := cr.streams[i]
		if s == nil {
			continue
		}
		bp := cr.policies[i]
		ps := cr.rec.StartPolicy(bp.cfg.Metadata.Namespace, bp.cfg.Metadata.Name, "response")
		local, err := s.ResponseHeaders(ctx, status, h, eos)
		ps.End(err, local != nil)
		if err != nil {
			if bp.failOpen {
				st.g.log.Warn("policy failed; failing open", "policy", bp.name(), "request_id", requestID, "error", err)
				continue
			}
			cr.rejected(i)
			return nil, fmt.Errorf("policy %s: %w", bp.name(), err)
		}
		if local != nil {
			cr.rejected(i)
			return local, nil
		}
	}
	return nil, nil
}

// respond sends a policy's local response; the policies before it (which
// saw the request) see its headers on the response path, as Envoy's
// filters do.
func (cr *chainRun) respond(ctx context.Context, w http.ResponseWriter, local *LocalResponse, at int, requestID string, st *state) {
	cr.rejected(at)
	h := local.Headers
	if h == nil {
		h = http.Header{}
	}
	if again, err := cr.responseFrom(ctx, st, at-1, local.Status, h, len(local.Body) == 0, requestID); err == nil && again != nil {
		local, h = again, again.Headers
	}
	writeLocal(w, local.Status, h, local.Body)
}

func writeLocal(w http.ResponseWriter, status int, h http.Header, body []byte) {
	wh := w.Header()
	for k, vv := range h {
		wh[k] = vv
	}
	wh["Content-Length"] = []string{strconv.Itoa(len(body))}
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	w.Write(body)
}

// done ends every stream of the chain.
func (cr *chainRun) done() {
	for _, s := range cr.streams {
		if s != nil {
			s.Done()
		}
	}
}

func (st *state) policyFailed(w http.ResponseWriter, bp *boundPolicy, id string, err error) {
	st.g.log.Warn("policy failed; failing closed", "policy", bp.name(), "request_id", id, "error", err)
	writeError(w, http.StatusServiceUnavailable, "policy "+bp.name()+" failed", id)
}
