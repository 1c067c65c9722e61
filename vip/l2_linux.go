package vip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// L2 announces VIPs on the local network segment: the address on an
// interface of this node (so that the kernel answers ARP and neighbour
// solicitations for it, and listeners can bind it), then gratuitous ARP
// (IPv4) or unsolicited neighbour advertisements (IPv6) so that neighbours
// whose caches still point to the previous owner switch at once.
//
// L2 removes on Withdraw only an address it added itself: an address that
// was on the interface before Announce (configured by the operator) stays.
type L2 struct {
	o L2Options

	// ops serializes Announce, Withdraw and Close: mu is released while
	// a VIP's repeats stop (they take it to count).
	ops    sync.Mutex
	mu     sync.Mutex
	vips   map[string]*l2VIP   // announced, by VIP name
	stats  map[string]*l2Stats // by VIP name, kept across withdrawals until Close
	closed bool
}

// l2VIP is one announced VIP.
type l2VIP struct {
	addr  netip.Addr
	iface string
	added bool // the address was put on iface by us: Withdraw removes it
	rep   *repeater
}

// l2Stats is the account of one VIP (guarded by L2.mu).
type l2Stats struct {
	iface   string
	sent    uint64
	lastErr string
}

// NewL2 returns an L2 announcer.
func NewL2(o L2Options) (*L2, error) {
	return &L2{
		o:     o.withDefaults(),
		vips:  map[string]*l2VIP{},
		stats: map[string]*l2Stats{},
	}, nil
}

// InterfaceFor returns the name of the interface a VIP's address is
// announced on: explicit when it is not empty (it must exist); else the
// interface that already holds the address; else the interface of the
// route to the address (for a route via a gateway, or the default route,
// the interface the route leaves by).
func InterfaceFor(addr netip.Addr, explicit string) (string, error) {
	if explicit != "" {
		if _, err := netlink.LinkByName(explicit); err != nil {
			return "", fmt.Errorf("interface %q: %w", explicit, err)
		}
		return explicit, nil
	}
	if !addr.IsValid() {
		return "", errors.New("interface for an invalid address")
	}
	addr = addr.Unmap()
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil {
		return "", fmt.Errorf("interface for %s: listing addresses: %w", addr, err)
	}
	index := 0
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			index = a.LinkIndex
			break
		}
	}
	if index == 0 {
		routes, err := netlink.RouteGet(addr.AsSlice())
		if err != nil {
			return "", fmt.Errorf("interface for %s: no route: %w", addr, err)
		}
		if len(routes) == 0 || routes[0].LinkIndex == 0 {
			return "", fmt.Errorf("interface for %s: no route", addr)
		}
		index = routes[0].LinkIndex
	}
	link, err := netlink.LinkByIndex(index)
	if err != nil {
		return "", fmt.Errorf("interface for %s: interface index %d: %w", addr, index, err)
	}
	return link.Attrs().Name, nil
}

// Announce puts the VIP's address on its interface (if it is not there),
// sends an announcement at once and GARPCount more every GARPInterval in
// the background. Announcing a VIP again with the same address and
// interface puts the address back if it went missing and otherwise does
// nothing; with another address or interface, the old announcement is
// withdrawn first.
func (l *L2) Announce(ctx context.Context, s Spec) error {
	addr, err := hostAddress(s)
	if err != nil {
		return err
	}
	iface, err := InterfaceFor(addr, cmp.Or(s.Interface, l.o.DefaultInterface))
	if err != nil {
		return fmt.Errorf("vip %q: %w", s.Name, err)
	}
	l.ops.Lock()
	defer l.ops.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("vip %q: announcer is closed", s.Name)
	}
	st := l.stats[s.Name]
	if st == nil {
		st = &l2Stats{}
		l.stats[s.Name] = st
	}
	st.iface = iface
	if v := l.vips[s.Name]; v != nil {
		if v.addr == addr && v.iface == iface {
			present, err := hasAddress(iface, addr)
			if err == nil && present {
				return nil
			}
		}
		if err := l.withdrawLocked(s.Name, v); err != nil {
			st.lastErr = err.Error()
			return err
		}
	}
	added, err := ensureAddress(iface, addr)
	if err != nil {
		err = fmt.Errorf("vip %q: %w", s.Name, err)
		st.lastErr = err.Error()
		return err
	}
	v := &l2VIP{addr: addr, iface: iface, added: added}
	l.vips[s.Name] = v
	snd, err := newSender(iface, addr)
	if err == nil {
		err = snd.send()
	}
	if err != nil {
		if snd != nil {
			snd.Close()
		}
		err = fmt.Errorf("vip %q: announcing %s on %s: %w", s.Name, addr, iface, err)
		st.lastErr = err.Error()
		l.o.Logger.Warn("vip announcement failed", "vip", s.Name, "address", addr, "interface", iface, "error", err)
		return err
	}
	st.sent++
	st.lastErr = ""
	l.o.Logger.Info("vip announced", "vip", s.Name, "address", addr, "interface", iface, "addressAdded", added)
	v.rep = l.repeat(s.Name, snd)
	return nil
}

// repeat sends GARPCount more announcements with snd every GARPInterval,
// until done or stopped; it owns snd and closes it.
func (l *L2) repeat(name string, snd sender) *repeater {
	r := &repeater{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer snd.Close()
		t := time.NewTicker(l.o.GARPInterval)
		defer t.Stop()
		for range l.o.GARPCount {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			err := snd.send()
			l.mu.Lock()
			if st := l.stats[name]; st != nil {
				if err != nil {
					st.lastErr = fmt.Sprintf("vip %q: announcing again: %v", name, err)
				} else {
					st.sent++
				}
			}
			l.mu.Unlock()
		}
	}()
	return r
}

// repeater is the goroutine of a VIP's repeated announcements.
type repeater struct {
	stop, done chan struct{}
	once       sync.Once
}

// halt stops the repeats and waits for them to end. It must not be
// called with L2.mu held: the goroutine takes it to count.
func (r *repeater) halt() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// Withdraw stops the repeated announcements and removes the address if
// Announce added it. Withdrawing a VIP that is not announced does nothing.
func (l *L2) Withdraw(ctx context.Context, s Spec) error {
	l.ops.Lock()
	defer l.ops.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.vips[s.Name]
	if v == nil {
		return nil
	}
	err := l.withdrawLocked(s.Name, v)
	if st := l.stats[s.Name]; st != nil && err != nil {
		st.lastErr = err.Error()
	}
	return err
}

// withdrawLocked withdraws v (l.mu held; it is released while the
// repeats stop).
func (l *L2) withdrawLocked(name string, v *l2VIP) error {
	delete(l.vips, name)
	l.mu.Unlock()
	v.rep.halt()
	l.mu.Lock()
	if !v.added {
		l.o.Logger.Info("vip withdrawn (address kept: it was not added by NovaEdge)", "vip", name, "address", v.addr, "interface", v.iface)
		return nil
	}
	if err := removeAddress(v.iface, v.addr); err != nil {
		return fmt.Errorf("vip %q: %w", name, err)
	}
	l.o.Logger.Info("vip withdrawn", "vip", name, "address", v.addr, "interface", v.iface)
	return nil
}

// Stats reports the interface, the announcements sent (one per round: a
// gratuitous request and reply, or one neighbour advertisement) and the
// last error of the named VIP.
func (l *L2) Stats(vip string) AnnounceStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats[vip]
	if st == nil {
		return AnnounceStats{}
	}
	return AnnounceStats{Interface: st.iface, Announcements: st.sent, Error: st.lastErr}
}

// Close withdraws every VIP; Announce fails afterwards.
func (l *L2) Close() error {
	l.ops.Lock()
	defer l.ops.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var errs []error
	for name, v := range l.vips {
		errs = append(errs, l.withdrawLocked(name, v))
	}
	return errors.Join(errs...)
}

// hostPrefix is addr as a netlink address: /32 or /128, without duplicate
// address detection for IPv6 so that it is usable at once.
func hostPrefix(addr netip.Addr) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}}
	if addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// hasAddress reports whether iface holds addr (with any prefix length).
func hasAddress(iface string, addr netip.Addr) (bool, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", iface, err)
	}
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return false, fmt.Errorf("interface %q: listing addresses: %w", iface, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return true, nil
		}
	}
	return false, nil
}

// ensureAddress puts addr on iface unless it is there; added says whether
// it was put there now.
func ensureAddress(iface string, addr netip.Addr) (added bool, err error) {
	present, err := hasAddress(iface, addr)
	if err != nil || present {
		return false, err
	}
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", iface, err)
	}
	switch err := netlink.AddrAdd(link, hostPrefix(addr)); {
	case errors.Is(err, unix.EEXIST):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("interface %q: adding %s: %w", iface, addr, err)
	}
	return true, nil
}

// removeAddress removes addr from iface; an address already gone is not
// an error.
func removeAddress(iface string, addr netip.Addr) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("interface %q: %w", iface, err)
	}
	err = netlink.AddrDel(link, hostPrefix(addr))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("interface %q: removing %s: %w", iface, addr, err)
	}
	return nil
}

// sender sends one announcement of a VIP.
type sender interface {
	send() error
	Close() error
}

// newSender opens the socket that announces addr on iface: a raw ARP
// socket for IPv4, an ICMPv6 socket bound to addr for IPv6.
func newSender(iface string, addr netip.Addr) (sender, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %q has no Ethernet address (hardware address %q)", iface, ifi.HardwareAddr)
	}
	if addr.Is4() {
		c, err := arp.Dial(ifi)
		if err != nil {
			return nil, fmt.Errorf("interface %q: opening an ARP socket: %w", iface, err)
		}
		return &garp{c: c, mac: ifi.HardwareAddr, addr: addr}, nil
	}
	c, _, err := ndp.Listen(ifi, ndp.Addr(addr.String()))
	if err != nil {
		return nil, fmt.Errorf("interface %q: opening an ICMPv6 socket: %w", iface, err)
	}
	return &unsolicitedNA{c: c, mac: ifi.HardwareAddr, addr: addr}, nil
}

// garp sends gratuitous ARP: a request and a reply, both broadcast, with
// the VIP as sender and target and the interface's MAC as sender hardware
// address (RFC 5227 section 3 calls the request form an ARP Announcement;
// some hosts only heed the reply form, so both are sent).
type garp struct {
	c    *arp.Client
	mac  net.HardwareAddr
	addr netip.Addr
}

func (g *garp) send() error {
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p, err := arp.NewPacket(op, g.mac, g.addr, ethernet.Broadcast, g.addr)
		if err != nil {
			return err
		}
		if err := g.c.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("gratuitous ARP %s: %w", op, err)
		}
	}
	return nil
}

func (g *garp) Close() error { return g.c.Close() }

// unsolicitedNA sends an unsolicited neighbour advertisement (RFC 4861
// section 7.2.6) to all nodes (ff02::1): override flag set, solicited flag
// clear, the interface's MAC as target link-layer address.
type unsolicitedNA struct {
	c    *ndp.Conn
	mac  net.HardwareAddr
	addr netip.Addr
}

func (u *unsolicitedNA) send() error {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: u.addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: u.mac}},
	}
	if err := u.c.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
		return fmt.Errorf("unsolicited neighbour advertisement: %w", err)
	}
	return nil
}

func (u *unsolicitedNA) Close() error { return u.c.Close() }

var _ Announcer = (*L2)(nil)
