package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// Resolver resolves a service name to its addresses; *net.Resolver is
// one. Tests give a fake.
type Resolver interface {
	// LookupNetIP returns the addresses of host; network is "ip" (A and
	// AAAA records).
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

const (
	defaultRefreshInterval = 30 * time.Second
	// maxLookupTime bounds one resolution (and is further bounded by the
	// refresh interval).
	maxLookupTime = 10 * time.Second
)

// serviceConfig is a serviceRef: the name to resolve, the port of its
// endpoints and how often to resolve it again.
type serviceConfig struct {
	host    string
	port    uint16
	refresh time.Duration
}

// newServiceConfig reads a serviceRef. The name is resolved as written
// when it has a dot or no namespace is given; otherwise as
// "name.namespace", which a Kubernetes pod's resolver completes with its
// search path (svc.cluster.local), as a Service's DNS name works.
func newServiceConfig(ref *configs.ServiceRef) (*serviceConfig, error) {
	if ref.Name == "" {
		return nil, errors.New("name is empty")
	}
	if ref.Port < 1 || ref.Port > 65535 {
		return nil, fmt.Errorf("port %d is out of range 1–65535", ref.Port)
	}
	host := ref.Name
	if ref.Namespace != "" && !strings.Contains(host, ".") {
		host += "." + ref.Namespace
	}
	refresh := ref.RefreshInterval.D(defaultRefreshInterval)
	if refresh <= 0 {
		refresh = defaultRefreshInterval
	}
	return &serviceConfig{host: host, port: uint16(ref.Port), refresh: refresh}, nil
}

// errNoAddresses is a resolution that succeeded with no address.
var errNoAddresses = errors.New("no addresses")

// resolve resolves the service once. Every address becomes an endpoint of
// weight 1 at the service's port; endpoints whose address persists keep
// their state. A failure (or an empty answer) keeps the last known set:
// a DNS outage must not empty a healthy backend. The first failure of a
// run of failures is logged, and the recovery.
func (b *Backend) resolve(ctx context.Context) {
	s := b.service
	lookupCtx, cancel := context.WithTimeout(ctx, min(maxLookupTime, s.refresh))
	defer cancel()
	addrs, err := b.resolver.LookupNetIP(lookupCtx, "ip", s.host)
	if err != nil && ctx.Err() != nil {
		return // Start's context ended, or Close: not a DNS failure
	}
	if err == nil && len(addrs) == 0 {
		err = errNoAddresses
	}

	b.mu.Lock()
	wasFailing := b.dnsFailing
	b.dnsFailing = err != nil
	known := len(b.eps)
	b.mu.Unlock()
	if err != nil {
		if !wasFailing {
			b.log.Warn("service name does not resolve; keeping the last known endpoints",
				"service", s.host, "endpoints", known, "error", err)
		}
		return
	}
	if wasFailing {
		b.log.Info("service name resolves again", "service", s.host, "addresses", len(addrs))
	}

	specs := make([]endpointSpec, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		specs = append(specs, endpointSpec{
			addr:   netip.AddrPortFrom(a, s.port).String(),
			weight: 1,
		})
	}
	slices.SortFunc(specs, func(x, y endpointSpec) int { return strings.Compare(x.addr, y.addr) })
	specs = slices.CompactFunc(specs, func(x, y endpointSpec) bool { return x.addr == y.addr })
	b.setEndpoints(specs)
}

// refreshDNS is the DNS job: resolve, then schedule the next resolution.
func (b *Backend) refreshDNS() {
	b.resolve(b.ctx)
	b.mu.Lock()
	if b.dns != nil {
		b.dns.schedule(b.service.refresh)
	}
	b.mu.Unlock()
}

var _ Resolver = (*net.Resolver)(nil)
