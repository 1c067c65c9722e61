package proxy

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/compress"
	"github.com/novaedge/novaedge/host/tlsconf"
	"github.com/novaedge/novaedge/host/upstream"
)

// bindKey is the address a listener binds.
func bindKey(l *configs.Listener) string {
	return net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
}

// build makes a generation from a snapshot: it starts the backends and
// compiles the routing tables. Nothing is bound or swapped here.
func (g *Gateway) build(ctx context.Context, snap *configs.Snapshot) (st *state, err error) {
	st = &state{
		g:        g,
		snap:     snap,
		ports:    map[string]*portRouter{},
		backends: map[string]*upstream.Backend{},
		drained:  make(chan struct{}),
	}
	st.refs.Store(1)
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	for _, b := range snap.Backends {
		key := b.Metadata.Namespace + "/" + b.Metadata.Name
		fp := b.Fingerprint()
		be, reused, err := g.keptBackends.get(fp, func() (*upstream.Backend, error) {
			be, err := upstream.New(key, &b.Spec, upstream.Options{Resolver: g.opts.Resolver, Logger: g.log})
			if err != nil {
				return nil, err
			}
			if err := be.Start(ctx); err != nil {
				be.Close()
				return nil, err
			}
			return be, nil
		}, (*upstream.Backend).Close)
		if err != nil {
			return st, fmt.Errorf("backend %s: %w", key, err)
		}
		st.heldBackends = append(st.heldBackends, fp)
		if reused {
			st.keptB++
		}
		st.backends[key] = be
		st.order = append(st.order, key)
	}
	if g.opts.Policies != nil {
		for _, p := range snap.Policies {
			name := p.Metadata.Namespace + "/" + p.Metadata.Name
			fp := p.Fingerprint()
			if n := g.epochs[name]; n > 0 {
				fp += "#" + strconv.Itoa(n)
			}
			impl, reused, err := g.keptPolicies.get(fp, func() (Policy, error) {
				return g.opts.Policies(ctx, p)
			}, func(impl Policy) {
				if impl != nil {
					impl.Close()
				}
			})
			if err != nil {
				return st, fmt.Errorf("policy %s: %w", name, err)
			}
			st.heldPolicies = append(st.heldPolicies, fp)
			if reused {
				st.keptP++
			}
			if impl != nil {
				st.policies = append(st.policies, &boundPolicy{cfg: p, impl: impl, failOpen: p.Spec.FailurePolicy == "FailOpen"})
			}
		}
	}
	headerTimeouts := map[string]time.Duration{}
	for _, b := range snap.Backends {
		headerTimeouts[b.Metadata.Namespace+"/"+b.Metadata.Name] = b.Spec.ResponseHeaderTimeout.D(0)
	}
	rules := map[*configs.Route][]*rule{}
	for _, rt := range snap.Routes {
		rs, err := compileRules(rt, st.backends)
		if err != nil {
			return st, err
		}
		for _, rl := range rs {
			for i := range rl.backends {
				rl.backends[i].headerTimeout = headerTimeouts[rl.backends[i].name]
			}
		}
		setCacheScopes(rt, rs)
		rules[rt] = rs
	}

	if err := st.buildObserve(snap); err != nil {
		return st, err
	}
	byPort := map[string][]*listenerRoutes{}
	limits := map[string]configs.ClientLimits{}
	snis := map[string]*tlsconf.SNI{}
	for _, gw := range snap.Gateways {
		cz, err := compress.New(gw.Spec.Compression)
		if err != nil {
			return st, fmt.Errorf("gateway %s: compression: %w", key(gw.Metadata), err)
		}
		if m := g.opts.Metrics; cz != nil && m != nil {
			cz.OnDone(func(alg compress.Algorithm, in, out int64) {
				m.Compression.Responses.WithLabelValues(alg.String()).Inc()
				m.Compression.BytesIn.Add(float64(in))
				m.Compression.BytesOut.Add(float64(out))
			})
		}
		gc, err := g.cacheFor(st, gw)
		if err != nil {
			return st, err
		}
		identity := compileIdentityHeaders(gw.Spec.IdentityHeaders, snap.Policies)
		for i := range gw.Spec.Listeners {
			l := &gw.Spec.Listeners[i]
			if !listenerActive(l) {
				continue
			}
			lr := &listenerRoutes{listener: l, gateway: gw, redirect: schemeRedirectFor(gw, l), compress: cz, cache: gc, identity: identity}
			if l.Protocol == "HTTPS" {
				sni := snis[bindKey(l)]
				if sni == nil {
					sni = &tlsconf.SNI{}
					snis[bindKey(l)] = sni
				}
				if err := g.loadListenerTLS(st, gw, l, sni); err != nil {
					return st, err
				}
			}
			for _, rt := range snap.Routes {
				if !attaches(rt, gw, l) {
					continue
				}
				hosts := effectiveHosts(l.Hostnames, rt.Spec.Hostnames)
				if len(hosts) == 0 {
					continue
				}
				ar := attachedRoute{route: rt, rules: rules[rt], hosts: hosts}
				if len(st.policies) > 0 {
					for _, rl := range ar.rules {
						ar.policies = append(ar.policies, policiesFor(st.policies, gw, rt, rl.section))
					}
				}
				lr.routes = append(lr.routes, ar)
			}
			key := bindKey(l)
			byPort[key] = append(byPort[key], lr)
			if _, ok := limits[key]; !ok && gw.Spec.ClientLimits != nil {
				limits[key] = *gw.Spec.ClientLimits
			}
		}
	}
	for key, ls := range byPort {
		st.ports[key] = &portRouter{key: key, hosts: buildHostRouter(ls), limits: limits[key], tls: snis[key], obs: st.portObserve(ls)}
	}
	return st, nil
}

// listenerActive reports whether this build serves the listener.
func listenerActive(l *configs.Listener) bool { return l.Protocol == "HTTP" || l.Protocol == "HTTPS" }

// attaches reports whether a route attaches to a gateway's listener:
// through a parentRef naming the gateway (and the listener, if it names
// one), or, for a route with no parentRefs, by living in the gateway's
// namespace.
func attaches(rt *configs.Route, gw *configs.Gateway, l *configs.Listener) bool {
	if len(rt.Spec.ParentRefs) == 0 {
		return rt.Metadata.Namespace == gw.Metadata.Namespace
	}
	for _, pr := range rt.Spec.ParentRefs {
		ns := pr.Namespace
		if ns == "" {
			ns = rt.Metadata.Namespace
		}
		if pr.Name == gw.Metadata.Name && ns == gw.Metadata.Namespace && (pr.SectionName == "" || pr.SectionName == l.Name) {
			return true
		}
	}
	return false
}

// effectiveHosts intersects a listener's hostnames with a route's, as the
// Gateway API does: the more specific of each matching pair survives. An
// empty list on either side accepts everything of the other; [""] stands
// for "any host".
func effectiveHosts(listener, route []string) []string {
	switch {
	case len(listener) == 0 && len(route) == 0:
		return []string{""}
	case len(route) == 0:
		return append([]string(nil), listener...)
	case len(listener) == 0:
		return append([]string(nil), route...)
	}
	seen := map[string]bool{}
	var out []string
	for _, rh := range route {
		for _, lh := range listener {
			h := ""
			switch {
			case hostMatches(lh, rh) || lh == rh:
				h = rh
			case hostMatches(rh, lh):
				h = lh
			default:
				continue
			}
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}
