package proxy

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/novaedge/novaedge/configs"
)

// rt builds a route in namespace "ns" whose rules are given as matches:
// each rules[i] is the list of matches of rule i.
func rt(name string, hosts []string, rules ...[]configs.RouteMatch) *configs.Route {
	r := &configs.Route{Metadata: configs.ObjectMeta{Name: name, Namespace: "ns"}}
	r.Spec.Hostnames = hosts
	for _, ms := range rules {
		r.Spec.Rules = append(r.Spec.Rules, configs.RouteRule{Matches: ms})
	}
	return r
}

func prefix(v string) configs.RouteMatch {
	return configs.RouteMatch{Path: &configs.PathMatch{Type: "PathPrefix", Value: v}}
}

func exact(v string) configs.RouteMatch {
	return configs.RouteMatch{Path: &configs.PathMatch{Type: "Exact", Value: v}}
}

func regex(v string) configs.RouteMatch {
	return configs.RouteMatch{Path: &configs.PathMatch{Type: "RegularExpression", Value: v}}
}

// router builds the host router of one port with one listener per
// hostname list in listenerHosts.
func router(t testing.TB, listenerHosts [][]string, routes ...*configs.Route) *hostRouter {
	t.Helper()
	gw := &configs.Gateway{Metadata: configs.ObjectMeta{Name: "gw", Namespace: "ns"}}
	for i, hs := range listenerHosts {
		gw.Spec.Listeners = append(gw.Spec.Listeners, configs.Listener{Name: fmt.Sprint("l", i), Port: 8080, Protocol: "HTTP", Hostnames: hs})
	}
	var ls []*listenerRoutes
	for i := range gw.Spec.Listeners {
		l := &gw.Spec.Listeners[i]
		lr := &listenerRoutes{listener: l, gateway: gw}
		for _, r := range routes {
			rules, err := compileRules(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if hosts := effectiveHosts(l.Hostnames, r.Spec.Hostnames); len(hosts) > 0 && attaches(r, gw, l) {
				lr.routes = append(lr.routes, attachedRoute{route: r, rules: rules, hosts: hosts})
			}
		}
		ls = append(ls, lr)
	}
	return buildHostRouter(ls)
}

// lookup returns "route#rule" of the winner, or "" for none.
func lookup(hr *hostRouter, method, host, target string, headers map[string]string) string {
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	t := hr.lookup(normalizeHost(r.Host))
	if t == nil {
		return ""
	}
	m := t.best(r, cleanPath(r.URL.Path))
	if m == nil {
		return ""
	}
	return m.rule.name
}

func TestRouterPrecedence(t *testing.T) {
	anyHost := [][]string{nil}
	tests := []struct {
		name    string
		lhosts  [][]string
		routes  []*configs.Route
		method  string
		host    string
		target  string
		headers map[string]string
		want    string
	}{
		{
			name:   "prefix matches itself",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")})},
			target: "/api/v1/users", want: "ns/users#0",
		},
		{
			name:   "prefix matches a sub path",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")})},
			target: "/api/v1/users/42", want: "ns/users#0",
		},
		{
			name:   "prefix matches with a trailing slash",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")})},
			target: "/api/v1/users/", want: "ns/users#0",
		},
		{
			name:   "prefix is segment aware",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")})},
			target: "/api/v1/usersX", want: "",
		},
		{
			name:   "prefix does not match a parent",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")})},
			target: "/api/v1", want: "",
		},
		{
			name:   "prefix with trailing slash equals without",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users/")})},
			target: "/api/v1/users", want: "ns/users#0",
		},
		{
			name:   "dot segments are resolved before matching",
			routes: []*configs.Route{rt("users", nil, []configs.RouteMatch{prefix("/api/v1/users")}), rt("admin", nil, []configs.RouteMatch{prefix("/admin")})},
			target: "/api/v1/users/../../../admin", want: "ns/admin#0",
		},
		{
			name: "longest prefix wins",
			routes: []*configs.Route{
				rt("a", nil, []configs.RouteMatch{prefix("/api")}),
				rt("b", nil, []configs.RouteMatch{prefix("/api/v1")}),
			},
			target: "/api/v1/x", want: "ns/b#0",
		},
		{
			name: "exact beats a longer prefix",
			routes: []*configs.Route{
				rt("a", nil, []configs.RouteMatch{prefix("/api/v1/users/me/x")}, []configs.RouteMatch{prefix("/api/v1/users/me")}),
				rt("b", nil, []configs.RouteMatch{exact("/api/v1/users/me")}),
			},
			target: "/api/v1/users/me", want: "ns/b#0",
		},
		{
			name:   "exact does not match a sub path",
			routes: []*configs.Route{rt("b", nil, []configs.RouteMatch{exact("/api/v1/users/me")})},
			target: "/api/v1/users/me/x", want: "",
		},
		{
			name:   "exact root",
			routes: []*configs.Route{rt("root", nil, []configs.RouteMatch{exact("/")}), rt("all", nil, []configs.RouteMatch{prefix("/")})},
			target: "/", want: "ns/root#0",
		},
		{
			name:   "prefix root catches all",
			routes: []*configs.Route{rt("root", nil, []configs.RouteMatch{exact("/")}), rt("all", nil, []configs.RouteMatch{prefix("/")})},
			target: "/anything/else", want: "ns/all#0",
		},
		{
			name: "regex beats prefix and is a full match",
			routes: []*configs.Route{
				rt("p", nil, []configs.RouteMatch{prefix("/api/v1/users")}),
				rt("r", nil, []configs.RouteMatch{regex(`/api/v1/users/[0-9]+`)}),
			},
			target: "/api/v1/users/42", want: "ns/r#0",
		},
		{
			name: "regex must match the whole path",
			routes: []*configs.Route{
				rt("p", nil, []configs.RouteMatch{prefix("/api/v1/users")}),
				rt("r", nil, []configs.RouteMatch{regex(`/api/v1/users/[0-9]+`)}),
			},
			target: "/api/v1/users/42/orders", want: "ns/p#0",
		},
		{
			name: "method match beats none",
			routes: []*configs.Route{
				rt("any", nil, []configs.RouteMatch{prefix("/api")}),
				rt("get", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/api"}, Method: "GET"}}),
			},
			method: "GET", target: "/api/x", want: "ns/get#0",
		},
		{
			name: "method mismatch falls through",
			routes: []*configs.Route{
				rt("get", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/api"}, Method: "GET"}}),
			},
			method: "POST", target: "/api/x", want: "",
		},
		{
			name: "more header matches win",
			routes: []*configs.Route{
				rt("one", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, Headers: []configs.ValueMatch{{Name: "x-a", Value: "1"}}}}),
				rt("two", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, Headers: []configs.ValueMatch{{Name: "x-a", Value: "1"}, {Name: "X-B", Value: "2"}}}}),
			},
			target: "/", headers: map[string]string{"X-A": "1", "X-B": "2"}, want: "ns/two#0",
		},
		{
			name: "header value mismatch falls back",
			routes: []*configs.Route{
				rt("one", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, Headers: []configs.ValueMatch{{Name: "x-a", Value: "1"}}}}),
				rt("two", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, Headers: []configs.ValueMatch{{Name: "x-a", Value: "1"}, {Name: "X-B", Value: "2"}}}}),
			},
			target: "/", headers: map[string]string{"X-A": "1", "X-B": "3"}, want: "ns/one#0",
		},
		{
			name: "header regex",
			routes: []*configs.Route{
				rt("canary", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, Headers: []configs.ValueMatch{{Name: "x-user", Value: "tester-[0-9]+", Type: "RegularExpression"}}}}),
				rt("main", nil, []configs.RouteMatch{prefix("/")}),
			},
			target: "/", headers: map[string]string{"X-User": "tester-7"}, want: "ns/canary#0",
		},
		{
			name: "query match",
			routes: []*configs.Route{
				rt("q", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, QueryParams: []configs.ValueMatch{{Name: "v", Value: "2"}}}}),
				rt("main", nil, []configs.RouteMatch{prefix("/")}),
			},
			target: "/x?v=2", want: "ns/q#0",
		},
		{
			name: "query mismatch",
			routes: []*configs.Route{
				rt("q", nil, []configs.RouteMatch{{Path: &configs.PathMatch{Type: "PathPrefix", Value: "/"}, QueryParams: []configs.ValueMatch{{Name: "v", Value: "2"}}}}),
				rt("main", nil, []configs.RouteMatch{prefix("/")}),
			},
			target: "/x?v=1", want: "ns/main#0",
		},
		{
			name: "ties go to the route name alphabetically",
			routes: []*configs.Route{
				rt("zeta", nil, []configs.RouteMatch{prefix("/api")}),
				rt("alpha", nil, []configs.RouteMatch{prefix("/api")}),
			},
			target: "/api", want: "ns/alpha#0",
		},
		{
			name: "then rule order",
			routes: []*configs.Route{
				rt("r", nil, []configs.RouteMatch{prefix("/api")}, []configs.RouteMatch{prefix("/api")}),
			},
			target: "/api", want: "ns/r#0",
		},
		{
			name: "exact hostname beats wildcard even with a shorter path",
			routes: []*configs.Route{
				rt("wild", []string{"*.example.com"}, []configs.RouteMatch{prefix("/api/v1")}),
				rt("exact", []string{"api.example.com"}, []configs.RouteMatch{prefix("/")}),
			},
			host: "api.example.com", target: "/api/v1/x", want: "ns/exact#0",
		},
		{
			name: "falls back to the wildcard route when the exact one does not match",
			routes: []*configs.Route{
				rt("wild", []string{"*.example.com"}, []configs.RouteMatch{prefix("/api/v1")}),
				rt("exact", []string{"api.example.com"}, []configs.RouteMatch{prefix("/other")}),
			},
			host: "api.example.com", target: "/api/v1/x", want: "ns/wild#0",
		},
		{
			name: "wildcard matches several labels",
			routes: []*configs.Route{
				rt("wild", []string{"*.example.com"}, []configs.RouteMatch{prefix("/")}),
			},
			host: "a.b.example.com", target: "/", want: "ns/wild#0",
		},
		{
			name: "wildcard does not match the bare domain",
			routes: []*configs.Route{
				rt("wild", []string{"*.example.com"}, []configs.RouteMatch{prefix("/")}),
			},
			host: "example.com", target: "/", want: "",
		},
		{
			name: "longer wildcard wins",
			routes: []*configs.Route{
				rt("short", []string{"*.com"}, []configs.RouteMatch{prefix("/")}),
				rt("long", []string{"*.example.com"}, []configs.RouteMatch{prefix("/")}),
			},
			host: "x.example.com", target: "/", want: "ns/long#0",
		},
		{
			name: "host is case-insensitive and loses its port",
			routes: []*configs.Route{
				rt("exact", []string{"api.example.com"}, []configs.RouteMatch{prefix("/")}),
			},
			host: "API.Example.COM:8080", target: "/", want: "ns/exact#0",
		},
		{
			name:   "listener hostnames filter requests",
			lhosts: [][]string{{"api.example.com"}},
			routes: []*configs.Route{rt("all", nil, []configs.RouteMatch{prefix("/")})},
			host:   "evil.example.org", target: "/", want: "",
		},
		{
			name:   "route hostnames outside the listener's are not attached",
			lhosts: [][]string{{"api.example.com"}},
			routes: []*configs.Route{rt("other", []string{"other.example.com"}, []configs.RouteMatch{prefix("/")})},
			host:   "other.example.com", target: "/", want: "",
		},
		{
			name:   "wildcard listener narrows to the route's exact host",
			lhosts: [][]string{{"*.example.com"}},
			routes: []*configs.Route{rt("api", []string{"api.example.com"}, []configs.RouteMatch{prefix("/")})},
			host:   "web.example.com", target: "/", want: "",
		},
		{
			name:   "most specific listener serves the host",
			lhosts: [][]string{{"*.example.com"}, {"api.example.com"}},
			routes: []*configs.Route{rt("all", nil, []configs.RouteMatch{prefix("/")})},
			host:   "api.example.com", target: "/", want: "ns/all#0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lh := tc.lhosts
			if lh == nil {
				lh = anyHost
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			host := tc.host
			if host == "" {
				host = "example.test"
			}
			hr := router(t, lh, tc.routes...)
			if got := lookup(hr, method, host, tc.target, tc.headers); got != tc.want {
				t.Errorf("%s %s%s: got %q, want %q", method, host, tc.target, got, tc.want)
			}
		})
	}
}

func TestEffectiveHosts(t *testing.T) {
	tests := []struct {
		name            string
		listener, route []string
		want            []string
	}{
		{"both empty", nil, nil, []string{""}},
		{"listener only", []string{"a.com"}, nil, []string{"a.com"}},
		{"route only", nil, []string{"b.com"}, []string{"b.com"}},
		{"exact in wildcard", []string{"*.a.com"}, []string{"x.a.com"}, []string{"x.a.com"}},
		{"wildcard over exact", []string{"x.a.com"}, []string{"*.a.com"}, []string{"x.a.com"}},
		{"disjoint", []string{"a.com"}, []string{"b.com"}, nil},
		{"nested wildcards", []string{"*.a.com"}, []string{"*.x.a.com"}, []string{"*.x.a.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := effectiveHosts(tc.listener, tc.route)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"//a//b", "/a/b"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/a/b/..", "/a"},
		{"/a/.hidden", "/a/.hidden"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := cleanPath(tc.in); got != tc.want {
				t.Errorf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// BenchmarkRouterLookup routes among 1,000 routes: 100 hostnames with
// ten prefix rules each, plus a wildcard and a catch-all.
func BenchmarkRouterLookup(b *testing.B) {
	var routes []*configs.Route
	for h := 0; h < 100; h++ {
		var rules [][]configs.RouteMatch
		for p := 0; p < 10; p++ {
			rules = append(rules, []configs.RouteMatch{prefix(fmt.Sprintf("/api/v%d/svc%d", p%3, p))})
		}
		routes = append(routes, rt(fmt.Sprintf("r%03d", h), []string{fmt.Sprintf("host%d.example.com", h)}, rules...))
	}
	routes = append(routes, rt("wild", []string{"*.example.com"}, []configs.RouteMatch{prefix("/")}))
	hr := router(b, [][]string{nil}, routes...)
	reqs := []struct{ host, path, want string }{
		{"host42.example.com", "/api/v1/svc7/items/9", "ns/r042#7"},
		{"host99.example.com", "/api/v0/svc0", "ns/r099#0"},
		{"other.example.com", "/x", "ns/wild#0"},
	}
	for _, q := range reqs {
		if got := lookup(hr, "GET", q.host, q.path, nil); got != q.want {
			b.Fatalf("%s%s: got %q, want %q", q.host, q.path, got, q.want)
		}
	}
	r := httptest.NewRequest("GET", "/api/v1/svc7/items/9", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &reqs[i%len(reqs)]
		t := hr.lookup(normalizeHost(q.host))
		if t.best(r, q.path) == nil {
			b.Fatal("no match")
		}
	}
}
