package configs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Checks across resources: duplicates, references to other resources, and
// listeners that would fight over the same socket.

// resourceKey identifies a resource.
type resourceKey struct{ kind, namespace, name string }

// catalog is every named resource of a load, by key (the first definition
// when a resource is defined twice).
type catalog struct {
	byKey map[resourceKey]*object
	// complete is false when some document could not be read as a
	// resource (a YAML syntax error, an unknown kind, no name): a
	// reference to something missing may then point into that document,
	// so dangling references are not reported.
	complete bool
}

// newCatalog indexes the objects, reporting every resource defined twice.
func newCatalog(objects []*object, complete bool) *catalog {
	c := &catalog{byKey: map[resourceKey]*object{}, complete: complete}
	for _, o := range objects {
		if o.name == "" {
			continue
		}
		k := resourceKey{o.kind, o.namespace, o.name}
		if first, dup := c.byKey[k]; dup {
			o.errorf("metadata.name", "duplicate of %s:%d", first.src.File, first.src.Line)
			continue
		}
		c.byKey[k] = o
	}
	return c
}

// lookup returns the resource, or nil.
func (c *catalog) lookup(kind, namespace, name string) *object {
	return c.byKey[resourceKey{kind, namespace, name}]
}

// missing reports a reference to a resource that does not exist, with a
// suggestion when a resource of that kind has a close name.
func (c *catalog) missing(o *object, path, kind, namespace, name string) {
	if !c.complete {
		return
	}
	var names []string
	for k := range c.byKey {
		if k.kind == kind && k.namespace == namespace {
			names = append(names, k.name)
		}
	}
	where := ""
	if namespace != "" {
		where = fmt.Sprintf(" in namespace %q", namespace)
	}
	msg := fmt.Sprintf("no %s %q%s", kind, clip(name), where)
	slices.Sort(names) // for a deterministic suggestion
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	o.errorf(path, "%s", msg)
}

// checkReferences checks that every reference names an existing resource.
func (c *catalog) checkReferences(objects []*object) {
	for _, o := range objects {
		if !o.hasSpec {
			continue
		}
		switch r := o.res.(type) {
		case *Gateway:
			if v := r.Spec.VIPRef; v != "" && c.lookup(KindVIP, "", v) == nil {
				c.missing(o, "spec.vipRef", KindVIP, "", v)
			}
		case *Route:
			c.checkRoute(o, &r.Spec)
		case *Policy:
			t := r.Spec.TargetRef
			if (t.Kind == KindGateway || t.Kind == KindRoute) && t.Name != "" {
				target := c.lookup(t.Kind, t.Namespace, t.Name)
				if target == nil {
					c.missing(o, "spec.targetRef.name", t.Kind, t.Namespace, t.Name)
				} else if rt, ok := target.res.(*Route); ok && t.SectionName != "" && !hasRule(rt, t.SectionName) {
					o.errorf("spec.targetRef.sectionName", "ProxyRoute %s/%s has no rule named %q", t.Namespace, t.Name, t.SectionName)
				}
			}
		}
	}
}

func (c *catalog) checkRoute(o *object, s *RouteSpec) {
	for i, p := range s.ParentRefs {
		path := index("spec.parentRefs", i)
		if p.Name == "" {
			continue
		}
		g := c.lookup(KindGateway, p.Namespace, p.Name)
		if g == nil {
			c.missing(o, path+".name", KindGateway, p.Namespace, p.Name)
			continue
		}
		if p.SectionName == "" {
			continue
		}
		var names []string
		for _, l := range g.res.(*Gateway).Spec.Listeners {
			names = append(names, l.Name)
		}
		if !slices.Contains(names, p.SectionName) {
			msg := fmt.Sprintf("ProxyGateway %s has no listener %q", g.id(), clip(p.SectionName))
			if s := suggest(p.SectionName, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf(" (it has %s)", orList(quoteAll(names)))
			}
			o.errorf(path+".sectionName", "%s", msg)
		}
	}
	for i, r := range s.Rules {
		for j, b := range r.BackendRefs {
			if b.Name != "" && c.lookup(KindBackend, b.Namespace, b.Name) == nil {
				c.missing(o, index(index("spec.rules", i)+".backendRefs", j)+".name", KindBackend, b.Namespace, b.Name)
			}
		}
	}
}

// boundListener is a listener and the gateway it belongs to.
type boundListener struct {
	o *object
	i int // index in spec.listeners
	l *Listener
}

// checkListenerConflicts reports listeners, of any gateways, that would
// share a socket ambiguously: the same port on overlapping addresses with
// different protocols, or with the same protocol and overlapping hostnames
// (a request could not tell which listener it is for). Listeners with the
// same protocol and disjoint hostnames share a socket; that is fine.
func (c *catalog) checkListenerConflicts(objects []*object) {
	var all []boundListener
	for _, o := range objects {
		g, ok := o.res.(*Gateway)
		if !ok || c.lookup(o.kind, o.namespace, o.name) != o {
			continue // not a gateway, or a duplicate (reported as such)
		}
		for i := range g.Spec.Listeners {
			l := &g.Spec.Listeners[i]
			_, err := netip.ParseAddr(l.Address)
			if l.Port < 1 || l.Port > 65535 || (l.Protocol != "HTTP" && l.Protocol != "HTTPS") || (l.Address != "" && err != nil) {
				continue // invalid, and already reported
			}
			all = append(all, boundListener{o, i, l})
		}
	}
	// Each listener reports the first listener it conflicts with: moving
	// it to another port or hostname usually settles every conflict.
	for j, b := range all {
		for _, a := range all[:j] {
			if a.l.Port != b.l.Port || !addressesOverlap(a.l.Address, b.l.Address) {
				continue
			}
			var why string
			if a.l.Protocol != b.l.Protocol {
				why = fmt.Sprintf("%s and %s on the same port", a.l.Protocol, b.l.Protocol)
			} else if host, ok := hostnamesOverlap(a.l.Hostnames, b.l.Hostnames); ok {
				why = fmt.Sprintf("both accept %s for %s", b.l.Protocol, host)
			} else {
				continue
			}
			who := fmt.Sprintf("listener %q", a.l.Name)
			if a.o != b.o {
				who = fmt.Sprintf("%s %s %s", a.o.kind, a.o.id(), who)
			}
			b.o.errorf(index("spec.listeners", b.i), "listener conflicts with %s at %s (%s)",
				who, net.JoinHostPort(a.l.Address, strconv.Itoa(a.l.Port)), why)
			break
		}
	}
}

// addressesOverlap reports whether two listen addresses can take the same
// connections: equal, or either one every interface ("", 0.0.0.0, ::).
func addressesOverlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	x, y := netip.MustParseAddr(a), netip.MustParseAddr(b)
	return x.IsUnspecified() || y.IsUnspecified() || x == y
}

// hostnamesOverlap reports whether two hostname lists (empty = any) share
// a hostname, and names one.
func hostnamesOverlap(a, b []string) (string, bool) {
	switch {
	case len(a) == 0 && len(b) == 0:
		return "any hostname", true
	case len(a) == 0:
		return b[0], true
	case len(b) == 0:
		return a[0], true
	}
	for _, x := range a {
		for _, y := range b {
			if h, ok := hostOverlap(x, y); ok {
				return h, true
			}
		}
	}
	return "", false
}

// hostOverlap reports whether two hostnames, exact or "*.suffix", match a
// common name, and returns the narrower one.
func hostOverlap(x, y string) (string, bool) {
	if x == y {
		return x, true
	}
	if covers(x, y) {
		return y, true
	}
	if covers(y, x) {
		return x, true
	}
	return "", false
}

// covers reports whether the wildcard w ("*.example.com") matches h (a name
// or a narrower wildcard).
func covers(w, h string) bool {
	suffix, ok := strings.CutPrefix(w, "*")
	return ok && strings.HasSuffix(strings.TrimPrefix(h, "*"), suffix) && len(strings.TrimPrefix(h, "*")) > len(suffix)
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Quote(x)
	}
	return out
}

// hasRule reports whether a route has a rule of that name.
func hasRule(rt *Route, name string) bool {
	for _, r := range rt.Spec.Rules {
		if r.Name == name {
			return true
		}
	}
	return false
}
