package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/cache"
	"github.com/novaedge/novaedge/host/compress"
)

// Route precedence
//
// A request is matched against the rules attached to the listener that
// accepted it. Among the rules that match, the winner is chosen as the
// Kubernetes Gateway API orders HTTPRoute rules:
//
//  1. the most specific matching hostname: an exact hostname over any
//     wildcard, a longer wildcard over a shorter one, any hostname over a
//     route that names none;
//  2. the path match kind: Exact, then RegularExpression, then PathPrefix
//     (the API leaves regular expressions to the implementation; a regular
//     expression is taken to be more specific than a prefix);
//  3. the longest path value;
//  4. a rule that matches the method over one that does not;
//  5. the most header matches, then the most query parameter matches;
//  6. the route's namespace/name, alphabetically;
//  7. the order of rules in the route, then of matches in the rule.
//
// The order is total, so the same configuration always routes the same way.

// Path match kinds, in precedence order.
const (
	pathExact = iota
	pathRegex
	pathPrefix
)

// matchEntry is one match of one rule, compiled.
type matchEntry struct {
	rank     int // position in precedence order: lower wins
	rule     *rule
	kind     int
	value    string         // Exact value, or PathPrefix without its trailing slash
	re       *regexp.Regexp // RegularExpression
	method   string
	headers  []valueMatcher
	query    []valueMatcher
	hostSpec int // hostname specificity, for sorting

	// policies are the active policies of the rule as reached through
	// the listener's gateway, in order (see policy.go).
	policies []*boundPolicy
}

type valueMatcher struct {
	name  string // canonical header name, or query parameter name
	value string
	re    *regexp.Regexp
}

func (v *valueMatcher) match(got string, ok bool) bool {
	if !ok {
		return false
	}
	if v.re != nil {
		return v.re.MatchString(got)
	}
	return got == v.value
}

// matches reports whether everything except the path matches.
func (m *matchEntry) matchesRest(r *http.Request, query *url.Values) bool {
	if m.method != "" && r.Method != m.method {
		return false
	}
	for i := range m.headers {
		h := &m.headers[i]
		vs, ok := r.Header[h.name]
		v := ""
		if ok && len(vs) > 0 {
			v = vs[0]
		}
		if !h.match(v, ok && len(vs) > 0) {
			return false
		}
	}
	if len(m.query) > 0 {
		if *query == nil {
			*query = r.URL.Query()
		}
		for i := range m.query {
			q := &m.query[i]
			vs, ok := (*query)[q.name]
			v := ""
			if ok && len(vs) > 0 {
				v = vs[0]
			}
			if !q.match(v, ok && len(vs) > 0) {
				return false
			}
		}
	}
	return true
}

// pathTrie indexes Exact and PathPrefix matches by path segment so a
// lookup costs the depth of the path, not the number of routes.
type pathTrie struct {
	children map[string]*pathTrie
	prefix   []*matchEntry // PathPrefix matches ending here, by rank
	exact    []*matchEntry // Exact matches ending here (no trailing slash), by rank
	exactDir []*matchEntry // Exact matches ending here with a trailing slash
}

func (t *pathTrie) child(seg string) *pathTrie {
	if t.children == nil {
		t.children = make(map[string]*pathTrie)
	}
	c := t.children[seg]
	if c == nil {
		c = &pathTrie{}
		t.children[seg] = c
	}
	return c
}

// insert adds m under the segments of path.
func (t *pathTrie) insert(path string, m *matchEntry) {
	n := t
	p := strings.TrimPrefix(path, "/")
	trailing := false
	for p != "" {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			n = n.child(p)
			break
		}
		n = n.child(p[:i])
		p = p[i+1:]
		if p == "" {
			trailing = true
		}
	}
	switch {
	case m.kind == pathPrefix:
		n.prefix = append(n.prefix, m)
	case trailing:
		n.exactDir = append(n.exactDir, m)
	default:
		n.exact = append(n.exact, m)
	}
}

// routeTable is the set of rules that apply to requests for one hostname
// (or hostname pattern) on one port.
type routeTable struct {
	trie    pathTrie
	regex   []*matchEntry // by rank
	maxBody int64         // the listener's maxRequestBodySize, 0 = none
	trusted trustedNets   // the gateway's trusted proxies

	redirect *schemeRedirect // plain HTTP sent elsewhere, before routing (nil: none)
	// compress is the gateway's response compression, or nil.
	compress *compress.Config
	cache    *cache.Cache // the gateway's response cache, or nil
	gateway  *configs.Gateway
	// identity are the headers removed from every client request.
	identity *identityHeaders
}

// best returns the winning match for r, or nil.
func (t *routeTable) best(r *http.Request, path string) *matchEntry {
	var best *matchEntry
	var query url.Values
	consider := func(list []*matchEntry) {
		for _, m := range list {
			if best != nil && m.rank >= best.rank {
				return
			}
			if m.matchesRest(r, &query) {
				best = m
				return
			}
		}
	}
	n := &t.trie
	consider(n.prefix) // prefix "/"
	p := strings.TrimPrefix(path, "/")
	for p != "" {
		i := strings.IndexByte(p, '/')
		seg, rest := p, ""
		if i >= 0 {
			seg, rest = p[:i], p[i+1:]
		}
		n = n.children[seg]
		if n == nil {
			break
		}
		consider(n.prefix)
		if rest == "" {
			if i >= 0 {
				consider(n.exactDir)
			} else {
				consider(n.exact)
			}
		}
		p = rest
	}
	if path == "/" {
		consider(t.trie.exact)
	}
	for _, m := range t.regex {
		if best != nil && m.rank >= best.rank {
			break
		}
		if m.re.MatchString(path) && m.matchesRest(r, &query) {
			best = m
			break
		}
	}
	return best
}

// hostRouter maps a request's hostname to its route table on one port.
type hostRouter struct {
	exact     map[string]*routeTable
	wildcards []wildcardTable // longest suffix first
	any       *routeTable     // requests matching no hostname pattern
}

type wildcardTable struct {
	suffix string // ".example.com" for "*.example.com"
	table  *routeTable
}

// lookup finds the route table for a normalized host.
func (h *hostRouter) lookup(host string) *routeTable {
	if t, ok := h.exact[host]; ok {
		return t
	}
	for i := range h.wildcards {
		w := &h.wildcards[i]
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return w.table
		}
	}
	return h.any
}

// hostMatches reports whether hostname pattern p (exact, "*.suffix" or ""
// for any) accepts the concrete host or host pattern h. A wildcard accepts
// any number of labels before its suffix, as the Gateway API's do.
func hostMatches(p, h string) bool {
	if p == "" {
		return true
	}
	if strings.HasPrefix(p, "*.") {
		suffix := p[1:]
		if strings.HasPrefix(h, "*.") {
			return strings.HasSuffix(h[1:], suffix)
		}
		return len(h) > len(suffix) && strings.HasSuffix(h, suffix)
	}
	return p == h
}

// hostSpecificity orders hostname patterns: exact > longer wildcard >
// shorter wildcard > none.
func hostSpecificity(p string) int {
	switch {
	case p == "":
		return 0
	case strings.HasPrefix(p, "*."):
		return 1 + len(p)
	default:
		return 1 << 20
	}
}

// normalizeHost lower-cases (ASCII) a Host header and strips its port and any
// trailing dot.
func normalizeHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimRight(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			// ASCII only: a hostname is ASCII (IDNs travel as punycode),
			// and other bytes must reach no route rather than be rewritten.
			b := []byte(host)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return host
}

// attachedRoute is a route attached to a listener, with the hostname
// patterns under which it serves there.
type attachedRoute struct {
	route *configs.Route
	// policies of each rule through this listener's gateway, by rule index
	policies [][]*boundPolicy
	rules    []*rule
	hosts    []string // the route's hostnames, or [""] for none
}

// listenerRoutes is one listener and the routes attached to it.
type listenerRoutes struct {
	listener *configs.Listener
	gateway  *configs.Gateway
	routes   []attachedRoute
	redirect *schemeRedirect
	compress *compress.Config // the gateway's, or nil
	cache    *cache.Cache     // the gateway's response cache, or nil
	identity *identityHeaders // the gateway's identity headers
}

// buildHostRouter builds the router of one port from its listeners.
func buildHostRouter(listeners []*listenerRoutes) *hostRouter {
	// Every hostname pattern that may select a different set of rules.
	keys := map[string]bool{}
	for _, l := range listeners {
		for _, h := range l.listener.Hostnames {
			keys[h] = true
		}
		if len(l.listener.Hostnames) == 0 {
			keys[""] = true
		}
		for _, ar := range l.routes {
			for _, h := range ar.hosts {
				keys[h] = true
			}
		}
	}
	hr := &hostRouter{exact: map[string]*routeTable{}}
	for key := range keys {
		t := buildTable(listeners, key)
		switch {
		case key == "":
			hr.any = t
		case strings.HasPrefix(key, "*."):
			hr.wildcards = append(hr.wildcards, wildcardTable{suffix: key[1:], table: t})
		default:
			hr.exact[key] = t
		}
	}
	sort.Slice(hr.wildcards, func(i, j int) bool {
		a, b := hr.wildcards[i].suffix, hr.wildcards[j].suffix
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return hr
}

// buildTable computes the rules that serve a request whose host is key
// (a concrete hostname, a wildcard standing for the hosts it matches and
// no more specific key does, or "" for any other host). Returns nil if no
// listener accepts such a host.
func buildTable(listeners []*listenerRoutes, key string) *routeTable {
	// The listener with the most specific hostname accepting key serves it.
	var sel *listenerRoutes
	selSpec := -1
	for _, l := range listeners {
		pats := l.listener.Hostnames
		if len(pats) == 0 {
			pats = []string{""}
		}
		for _, p := range pats {
			if key == "" && p != "" {
				continue
			}
			if hostMatches(p, key) && hostSpecificity(p) > selSpec {
				sel, selSpec = l, hostSpecificity(p)
			}
		}
	}
	if sel == nil {
		return nil
	}
	var entries []*matchEntry
	for _, ar := range sel.routes {
		spec := -1
		for _, h := range ar.hosts {
			if key == "" && h != "" {
				continue
			}
			if hostMatches(h, key) && hostSpecificity(h) > spec {
				spec = hostSpecificity(h)
			}
		}
		if spec < 0 {
			continue
		}
		for ri, rl := range ar.rules {
			for _, m := range rl.matches {
				e := *m
				e.hostSpec = spec
				if ri < len(ar.policies) {
					e.policies = ar.policies[ri]
				}
				entries = append(entries, &e)
			}
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return lessMatch(entries[i], entries[j]) })
	t := &routeTable{
		maxBody:  sel.listener.MaxRequestBodySize.B(0),
		trusted:  parseTrusted(sel.gateway.Spec.TrustedProxies),
		cache:    sel.cache,
		gateway:  sel.gateway,
		identity: sel.identity,
	}
	t.redirect = sel.redirect
	t.compress = sel.compress
	for i, e := range entries {
		e.rank = i
		switch e.kind {
		case pathRegex:
			t.regex = append(t.regex, e)
		default:
			t.trie.insert(e.rawPath(), e)
		}
	}
	return t
}

// rawPath is the path the entry is indexed under.
func (m *matchEntry) rawPath() string {
	if m.kind == pathPrefix && m.value == "" {
		return "/"
	}
	return m.value
}

// lessMatch is the precedence order documented at the top of this file.
func lessMatch(a, b *matchEntry) bool {
	if a.hostSpec != b.hostSpec {
		return a.hostSpec > b.hostSpec
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if la, lb := a.pathLen(), b.pathLen(); la != lb {
		return la > lb
	}
	if (a.method != "") != (b.method != "") {
		return a.method != ""
	}
	if len(a.headers) != len(b.headers) {
		return len(a.headers) > len(b.headers)
	}
	if len(a.query) != len(b.query) {
		return len(a.query) > len(b.query)
	}
	if a.rule.routeKey != b.rule.routeKey {
		return a.rule.routeKey < b.rule.routeKey
	}
	if a.rule.index != b.rule.index {
		return a.rule.index < b.rule.index
	}
	return false
}

func (m *matchEntry) pathLen() int {
	if m.re != nil {
		return len(m.re.String())
	}
	return len(m.value)
}
