package proxy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/novaedge/novaedge/configs"
	"github.com/novaedge/novaedge/host/observe"
	"github.com/novaedge/novaedge/host/upstream"
)

// Notice is a configured feature this build parses and validates but does
// not carry out yet. Nothing configured is ignored silently: every such
// feature is listed by `novaedge validate`, logged at start and shown in
// /status.
type Notice struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"` // namespace/name, or name for ProxyVIP
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (n Notice) String() string {
	return fmt.Sprintf("%s %s: %s: %s", n.Kind, n.Name, n.Field, n.Message)
}

// Inactive lists the parts of snap that are not active yet; policies of
// the activeTypes (whose plugins this build bundles) and of type Wasm are
// active.
func Inactive(snap *configs.Snapshot, activeTypes ...string) []Notice {
	var out []Notice
	add := func(kind, name, field, msg string) {
		out = append(out, Notice{Kind: kind, Name: name, Field: field, Message: msg})
	}
	for _, v := range snap.VIPs {
		add(configs.KindVIP, v.Metadata.Name, "spec", "virtual IP announcement ("+v.Spec.Mode+") is not active yet; listeners bind their own addresses")
	}
	for _, gw := range snap.Gateways {
		name := key(gw.Metadata)
		if gw.Spec.VIPRef != "" {
			add(configs.KindGateway, name, "spec.vipRef", "binding to a ProxyVIP is not active yet")
		}
		if n := observe.TracingNotice(gw.Spec.Tracing); n != "" {
			add(configs.KindGateway, name, "spec.tracing.endpoint", n)
		}
	}
	for _, p := range snap.Policies {
		if p.Spec.Type == configs.PolicyWasm || slices.Contains(activeTypes, p.Spec.Type) {
			continue // run on the proxy-wasm host
		}
		add(configs.KindPolicy, key(p.Metadata), "spec.type", "policy type "+p.Spec.Type+" is not active in this build (its bundled proxy-wasm module is missing)")
	}
	return out
}

func key(m configs.ObjectMeta) string {
	if m.Namespace == "" {
		return m.Name
	}
	return m.Namespace + "/" + m.Name
}

// Status is the state of the running generation, as the admin API's
// /status serves it and `novaedge status` prints it.
type Status struct {
	Hash     string          `json:"hash"`
	VIPs     []VIPStatus     `json:"vips"`
	Gateways []GatewayStatus `json:"gateways"`
	Routes   []RouteStatus   `json:"routes"`
	Backends []BackendStatus `json:"backends"`
	Policies []PolicyStatus  `json:"policies"`
	Inactive []Notice        `json:"inactive"`
}

// VIPStatus is a row of the VIP table.
type VIPStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Mode    string `json:"mode"`
	State   string `json:"state"`
}

// GatewayStatus is a row of the gateway table.
type GatewayStatus struct {
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`
	VIPRef    string           `json:"vipRef,omitempty"`
	Listeners []ListenerStatus `json:"listeners"`
}

// ListenerStatus is a listener of a gateway.
type ListenerStatus struct {
	Name      string   `json:"name"`
	Protocol  string   `json:"protocol"`
	Port      int      `json:"port"`
	Hostnames []string `json:"hostnames,omitempty"`
	Address   string   `json:"address,omitempty"` // bound address, when serving
	State     string   `json:"state"`             // Serving, NotActiveYet
	Routes    int      `json:"routes"`
}

// RouteStatus is a row of the route table.
type RouteStatus struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Hostnames []string `json:"hostnames,omitempty"`
	Rules     int      `json:"rules"`
	Backends  []string `json:"backends"`
	Attached  int      `json:"attachedListeners"`
}

// BackendStatus is a row of the backend table.
type BackendStatus struct {
	Namespace string                 `json:"namespace"`
	Name      string                 `json:"name"`
	LBPolicy  string                 `json:"lbPolicy"`
	Healthy   int                    `json:"healthy"`
	Total     int                    `json:"total"`
	Detail    upstream.BackendStatus `json:"detail"`
}

// PolicyStatus is a row of the policy table.
type PolicyStatus struct {
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Type      string       `json:"type"`
	Target    string       `json:"target"`
	State     string       `json:"state"`
	Plugin    *PolicyStats `json:"plugin,omitempty"`
}

// Status reports the running generation.
func (g *Gateway) Status() Status {
	st := g.acquire()
	if st == nil {
		return Status{}
	}
	defer st.release()
	addrs := g.Addrs()
	snap := st.snap
	active := map[string]bool{}
	stats := map[string]*PolicyStats{}
	for _, bp := range st.policies {
		active[bp.name()] = true
		if r, ok := bp.impl.(StatsReporter); ok {
			ps := r.Stats()
			stats[bp.name()] = &ps
		}
	}
	s := Status{Hash: snap.Hash}
	for _, n := range Inactive(snap) {
		if !(n.Kind == configs.KindPolicy && active[n.Name]) {
			s.Inactive = append(s.Inactive, n)
		}
	}
	for _, v := range snap.VIPs {
		s.VIPs = append(s.VIPs, VIPStatus{Name: v.Metadata.Name, Address: v.Spec.Address, Mode: v.Spec.Mode, State: "NotActiveYet"})
	}
	attached := map[*configs.Route]int{}
	for _, gw := range snap.Gateways {
		gs := GatewayStatus{Namespace: gw.Metadata.Namespace, Name: gw.Metadata.Name, VIPRef: gw.Spec.VIPRef}
		for i := range gw.Spec.Listeners {
			l := &gw.Spec.Listeners[i]
			ls := ListenerStatus{Name: l.Name, Protocol: l.Protocol, Port: l.Port, Hostnames: l.Hostnames, State: "NotActiveYet"}
			if listenerActive(l) {
				ls.State = "Serving"
				ls.Address = addrs[bindKey(l)]
				for _, rt := range snap.Routes {
					if attaches(rt, gw, l) && len(effectiveHosts(l.Hostnames, rt.Spec.Hostnames)) > 0 {
						ls.Routes++
						attached[rt]++
					}
				}
			}
			gs.Listeners = append(gs.Listeners, ls)
		}
		s.Gateways = append(s.Gateways, gs)
	}
	for _, rt := range snap.Routes {
		rs := RouteStatus{Namespace: rt.Metadata.Namespace, Name: rt.Metadata.Name, Hostnames: rt.Spec.Hostnames, Rules: len(rt.Spec.Rules), Attached: attached[rt]}
		seen := map[string]bool{}
		for _, r := range rt.Spec.Rules {
			for _, b := range r.BackendRefs {
				ns := b.Namespace
				if ns == "" {
					ns = rt.Metadata.Namespace
				}
				if k := ns + "/" + b.Name; !seen[k] {
					seen[k] = true
					rs.Backends = append(rs.Backends, k)
				}
			}
		}
		s.Routes = append(s.Routes, rs)
	}
	for _, k := range st.order {
		bs := st.backends[k].Status()
		ns, name, _ := strings.Cut(k, "/")
		s.Backends = append(s.Backends, BackendStatus{Namespace: ns, Name: name, LBPolicy: bs.LBPolicy, Healthy: bs.Available, Total: bs.Total, Detail: bs})
	}
	for _, p := range snap.Policies {
		state := "NotActiveYet"
		if active[key(p.Metadata)] {
			state = "Active"
		}
		s.Policies = append(s.Policies, PolicyStatus{
			Namespace: p.Metadata.Namespace, Name: p.Metadata.Name, Type: p.Spec.Type,
			Target: p.Spec.TargetRef.Kind + "/" + p.Spec.TargetRef.Name, State: state,
			Plugin: stats[key(p.Metadata)],
		})
	}
	return s
}
