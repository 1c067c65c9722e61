package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/upstream"
)

// rule is one compiled rule of a ProxyRoute: what to do with the requests
// its matches select.
type rule struct {
	routeKey string // namespace/name of the route
	index    int    // position in the route's rules
	name     string // "namespace/name#index" or the rule's name, for logs
	section  string // the rule's name in the route ("" if unnamed)
	matches  []*matchEntry

	backends    []weightedBackend
	totalWeight int

	reqHeaders  *headerMod
	respHeaders *headerMod
	rewrite     *configs.URLRewrite
	redirect    *configs.Redirect

	retry   *retryPolicy
	timeout time.Duration // 0 = none
	maxBody int64         // 0 = listener's limit only
	// upgrades are the protocols (lower case) a client may switch to.
	upgrades []string

	cacheScope string // route fingerprint and rule index: the cache's keys (cache.go)
}

type weightedBackend struct {
	backend *upstream.Backend
	name    string
	weight  int
	// headerTimeout is the backend's responseHeaderTimeout (0: none).
	headerTimeout time.Duration
}

// pickBackend chooses one of the rule's backends by weight (the canary
// split). Zero-weight backends receive nothing.
func (rl *rule) pickBackend() *weightedBackend {
	if len(rl.backends) == 1 {
		return &rl.backends[0]
	}
	n := rand.IntN(rl.totalWeight)
	for i := range rl.backends {
		n -= rl.backends[i].weight
		if n < 0 {
			return &rl.backends[i]
		}
	}
	return &rl.backends[len(rl.backends)-1]
}

// headerMod is a compiled HeaderModifier.
type headerMod struct {
	set    []configs.Header // canonical names
	add    []configs.Header
	remove []string
}

func compileHeaderMod(m *configs.HeaderModifier) *headerMod {
	if m == nil {
		return nil
	}
	hm := &headerMod{}
	for _, h := range m.Set {
		hm.set = append(hm.set, configs.Header{Name: textproto.CanonicalMIMEHeaderKey(h.Name), Value: h.Value})
	}
	for _, h := range m.Add {
		hm.add = append(hm.add, configs.Header{Name: textproto.CanonicalMIMEHeaderKey(h.Name), Value: h.Value})
	}
	for _, n := range m.Remove {
		hm.remove = append(hm.remove, textproto.CanonicalMIMEHeaderKey(n))
	}
	return hm
}

func (m *headerMod) apply(h http.Header) {
	if m == nil {
		return
	}
	for _, n := range m.remove {
		delete(h, n)
	}
	for _, kv := range m.set {
		h[kv.Name] = []string{kv.Value}
	}
	for _, kv := range m.add {
		h[kv.Name] = append(h[kv.Name], kv.Value)
	}
}

// Retry conditions.
const (
	retryOn5xx = 1 << iota
	retryOnGatewayError
	retryOnConnectFailure
	retryOnReset
)

// retryPolicy is a rule's compiled retry settings and its retry budget.
type retryPolicy struct {
	maxRetries int
	on         int
	perTry     time.Duration
	base, max  time.Duration
	percent    float64
	minConc    int64

	active  atomic.Int64 // requests of the rule in flight
	retries atomic.Int64 // retries of the rule in flight
}

func compileRetry(r *configs.Retry) *retryPolicy {
	if r == nil || r.MaxRetries == 0 {
		return nil
	}
	p := &retryPolicy{
		maxRetries: r.MaxRetries,
		perTry:     r.PerTryTimeout.D(0),
		base:       r.BackoffBase.D(25 * time.Millisecond),
		max:        r.BackoffMax.D(250 * time.Millisecond),
		percent:    20,
		minConc:    3,
	}
	if p.max < p.base {
		p.max = p.base
	}
	if b := r.Budget; b != nil {
		if b.Percent != nil {
			p.percent = *b.Percent
		}
		if b.MinRetryConcurrency != nil {
			p.minConc = int64(*b.MinRetryConcurrency)
		}
	}
	on := r.RetryOn
	if len(on) == 0 {
		on = []string{"5xx", "connection-failure", "reset"}
	}
	for _, c := range on {
		switch c {
		case "5xx":
			p.on |= retryOn5xx
		case "gateway-error":
			p.on |= retryOnGatewayError
		case "connection-failure":
			p.on |= retryOnConnectFailure
		case "reset":
			p.on |= retryOnReset
		}
	}
	return p
}

// allowRetry takes a place in the retry budget: retries in flight may not
// exceed percent % of the rule's requests in flight, except that
// minConc retries are always allowed. It keeps retries from multiplying
// load when a backend is down. A true result must be paired with doneRetry.
func (p *retryPolicy) allowRetry() bool {
	limit := int64(float64(p.active.Load()) * p.percent / 100)
	if limit < p.minConc {
		limit = p.minConc
	}
	if p.retries.Add(1) > limit {
		p.retries.Add(-1)
		return false
	}
	return true
}

func (p *retryPolicy) doneRetry() { p.retries.Add(-1) }

// backoff returns the jittered wait before retry number n (1-based):
// uniformly random in [0, min(max, base·2^(n-1))] ("full jitter").
func (p *retryPolicy) backoff(n int) time.Duration {
	d := p.base << (n - 1)
	if d > p.max || d <= 0 {
		d = p.max
	}
	return rand.N(d + 1)
}

// compileRules compiles the rules of a route; backends maps
// "namespace/name" to the running backend.
func compileRules(rt *configs.Route, backends map[string]*upstream.Backend) ([]*rule, error) {
	key := rt.Metadata.Namespace + "/" + rt.Metadata.Name
	var rules []*rule
	for i := range rt.Spec.Rules {
		cr := &rt.Spec.Rules[i]
		rl := &rule{
			routeKey:    key,
			index:       i,
			name:        fmt.Sprintf("%s#%d", key, i),
			reqHeaders:  compileHeaderMod(cr.RequestHeaders),
			respHeaders: compileHeaderMod(cr.ResponseHeaders),
			rewrite:     cr.URLRewrite,
			redirect:    cr.Redirect,
			retry:       compileRetry(cr.Retry),
		}
		for _, u := range cr.Upgrades {
			rl.upgrades = append(rl.upgrades, strings.ToLower(u))
		}
		if cr.Name != "" {
			rl.name = key + "#" + cr.Name
			rl.section = cr.Name
		}
		if cr.Limits != nil {
			rl.timeout = cr.Limits.RequestTimeout.D(0)
			rl.maxBody = cr.Limits.MaxRequestBodySize.B(0)
		}
		for _, br := range cr.BackendRefs {
			ns := br.Namespace
			if ns == "" {
				ns = rt.Metadata.Namespace
			}
			w := 1
			if br.Weight != nil {
				w = *br.Weight
			}
			if w == 0 {
				continue
			}
			be := backends[ns+"/"+br.Name]
			if be == nil {
				return nil, fmt.Errorf("route %q rule %d: backend %s/%s is not running", key, i, ns, br.Name)
			}
			rl.backends = append(rl.backends, weightedBackend{backend: be, name: ns + "/" + br.Name, weight: w})
			rl.totalWeight += w
		}
		matches := cr.Matches
		if len(matches) == 0 {
			matches = []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}}}
		}
		for j := range matches {
			m, err := compileMatch(&matches[j], rl)
			if err != nil {
				return nil, fmt.Errorf("route %q rule %d match %d: %w", key, i, j, err)
			}
			rl.matches = append(rl.matches, m)
		}
		rules = append(rules, rl)
	}
	return rules, nil
}

func compileMatch(cm *configs.RouteMatch, rl *rule) (*matchEntry, error) {
	m := &matchEntry{rule: rl, kind: pathPrefix, method: strings.ToUpper(cm.Method)}
	if p := cm.Path; p != nil {
		switch p.Type {
		case "Exact":
			m.kind, m.value = pathExact, p.Value
		case "RegularExpression":
			re, err := regexp.Compile("^(?:" + p.Value + ")$")
			if err != nil {
				return nil, err
			}
			m.kind, m.re, m.value = pathRegex, re, p.Value
		default:
			m.value = strings.TrimSuffix(p.Value, "/")
		}
	}
	var err error
	if m.headers, err = compileValueMatches(cm.Headers, true); err != nil {
		return nil, err
	}
	if m.query, err = compileValueMatches(cm.QueryParams, false); err != nil {
		return nil, err
	}
	return m, nil
}

func compileValueMatches(vms []configs.ValueMatch, header bool) ([]valueMatcher, error) {
	var out []valueMatcher
	for _, vm := range vms {
		v := valueMatcher{name: vm.Name, value: vm.Value}
		if header {
			v.name = textproto.CanonicalMIMEHeaderKey(vm.Name)
		}
		if vm.Type == "RegularExpression" {
			re, err := regexp.Compile("^(?:" + vm.Value + ")$")
			if err != nil {
				return nil, err
			}
			v.re = re
		}
		out = append(out, v)
	}
	return out, nil
}
