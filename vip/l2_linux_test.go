package vip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// otherMAC is a locally administered MAC that a client's neighbour entry
// for the VIP points to before the announcement (a previous owner's).
const otherMAC = "02:00:5e:00:53:99"

// l2Pair builds the namespaces "node" and "client" joined by a veth pair
// (veth0 in node, veth1 in client), up, with lo up. The client does no
// IPv6 duplicate address detection (its addresses are usable at once);
// the node does, as a host does by default, so that the VIP is usable at
// once only if the announcer adds it without DAD.
func l2Pair(t *testing.T, tag string) (node, client string) {
	t.Helper()
	needNetns(t)
	node, client = addNetns(t, tag+"n"), addNetns(t, tag+"c")
	inNS(t, client, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	ip(t, "-n", node, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", client)
	for ns, dev := range map[string]string{node: "veth0", client: "veth1"} {
		ip(t, "-n", ns, "link", "set", "lo", "up")
		ip(t, "-n", ns, "link", "set", dev, "up")
	}
	return node, client
}

// neighMAC returns the MAC of the client's neighbour entry for addr, ""
// if there is none.
func neighMAC(t *testing.T, ns, dev string, addr netip.Addr) string {
	t.Helper()
	f := strings.Fields(ip(t, "-n", ns, "neigh", "show", addr.String(), "dev", dev))
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// waitFor polls cond every 50 ms until it holds, or fails t after a
// generous bound (a safety limit, not a performance assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveAndDial listens on the VIP in this (the node's) namespace and
// dials it from the client's namespace: the client resolves the VIP to
// the node and reaches it.
func serveAndDial(t *testing.T, client string, vip netip.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(vip, 0).String())
	if err != nil {
		t.Fatalf("listening on the VIP: %v", err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	if err := inNetns(t, client, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second) // safety limit
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("the client cannot dial the VIP: %v", err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

// addressOn reports whether dev in this namespace holds addr.
func addressOn(t *testing.T, dev string, addr netip.Addr) bool {
	t.Helper()
	ok, err := hasAddress(dev, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// countAddress counts the entries of addr on dev (`ip addr show`).
func countAddress(t *testing.T, dev string, addr netip.Addr) int {
	t.Helper()
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr show %s: %v: %s", dev, err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == addr {
				n++
			}
		}
	}
	return n
}

// TestL2IPv4: the VIP's address goes on the node's interface, gratuitous
// ARP (request and reply, sender = target = VIP, the node's MAC) reaches
// the client and moves its stale neighbour entry to the node's MAC, the
// client reaches the VIP; Withdraw removes the address.
func TestL2IPv4(t *testing.T) {
	if isChild(t) {
		testL2IPv4Child(t)
		return
	}
	node, client := l2Pair(t, "l2")
	ip(t, "-n", node, "addr", "add", "198.51.100.1/24", "dev", "veth0")
	ip(t, "-n", client, "addr", "add", "198.51.100.2/24", "dev", "veth1")
	runInNetns(t, node, map[string]string{"client": client})
}

func testL2IPv4Child(t *testing.T) {
	client := childNS(t, "client")
	vip := netip.MustParseAddr("198.51.100.50")
	spec := Spec{Name: "public", Prefix: netip.PrefixFrom(vip, 32), Mode: ModeL2}
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	nodeMAC := ifi.HardwareAddr.String()
	ip(t, "-n", client, "neigh", "replace", vip.String(), "lladdr", otherMAC, "dev", "veth1", "nud", "stale")

	// A raw ARP socket in the client's namespace sees what reaches it.
	var c *arp.Client
	if err := inNetns(t, client, func() error {
		cifi, err := net.InterfaceByName("veth1")
		if err != nil {
			return err
		}
		c, err = arp.Dial(cifi)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	type seen struct {
		op          arp.Operation
		broadcast   bool
		sender, tgt netip.Addr
		mac         string
	}
	got := make(chan seen, 64)
	go func() {
		for {
			p, eth, err := c.Read()
			if err != nil {
				close(got)
				return
			}
			select {
			case got <- seen{p.Operation, eth.Destination.String() == ethernet.Broadcast.String(), p.SenderIP, p.TargetIP, p.SenderHardwareAddr.String()}:
			default:
			}
		}
	}()

	l2, err := NewL2(L2Options{GARPCount: 2, GARPInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	ctx := context.Background()
	if err := l2.Announce(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if !addressOn(t, "veth0", vip) {
		t.Fatal("after Announce, the VIP is not on veth0")
	}

	// Both forms of gratuitous ARP arrive, from the node's MAC.
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // safety limit
	want := map[arp.Operation]bool{arp.OperationRequest: false, arp.OperationReply: false}
	for !want[arp.OperationRequest] || !want[arp.OperationReply] {
		s, ok := <-got
		if !ok {
			t.Fatalf("no gratuitous ARP for %s from %s reached the client (got request=%v reply=%v)", vip, nodeMAC, want[arp.OperationRequest], want[arp.OperationReply])
		}
		if s.sender == vip && s.tgt == vip && s.mac == nodeMAC && s.broadcast {
			want[s.op] = true
		}
	}
	// The stale entry pointing to another MAC now has the node's: GARP,
	// not a resolution of the client's (it has not sent anything yet).
	waitFor(t, "the client's neighbour entry to move to the node's MAC", func() bool {
		return neighMAC(t, client, "veth1", vip) == nodeMAC
	})
	serveAndDial(t, client, vip)
	if m := neighMAC(t, client, "veth1", vip); m != nodeMAC {
		t.Errorf("after ping, the client's entry for %s is %q, want the node's %s", vip, m, nodeMAC)
	}
	waitFor(t, "1 + GARPCount announcements", func() bool { return l2.Stats("public").Announcements == 3 })
	if st := l2.Stats("public"); st.Interface != "veth0" || st.Error != "" {
		t.Errorf("Stats = %+v, want interface veth0 and no error", st)
	}

	t.Run("announce twice", func(t *testing.T) {
		if err := l2.Announce(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if n := countAddress(t, "veth0", vip); n != 1 {
			t.Fatalf("the VIP is on veth0 %d times, want 1", n)
		}
	})
	t.Run("withdraw", func(t *testing.T) {
		if err := l2.Withdraw(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if addressOn(t, "veth0", vip) {
			t.Fatal("after Withdraw, the VIP is still on veth0")
		}
		if err := l2.Withdraw(ctx, spec); err != nil {
			t.Fatalf("second Withdraw: %v", err)
		}
		if ln, err := net.Listen("tcp", netip.AddrPortFrom(vip, 0).String()); err == nil {
			ln.Close()
			t.Error("a listener still binds the VIP after Withdraw")
		}
	})
	t.Run("withdraw never announced", func(t *testing.T) {
		other := Spec{Name: "other", Prefix: netip.MustParsePrefix("198.51.100.51/32"), Mode: ModeL2}
		if err := l2.Withdraw(ctx, other); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("keeps an address it did not add", func(t *testing.T) {
		ip(t, "addr", "add", "198.51.100.52/32", "dev", "veth0")
		s := Spec{Name: "preset", Prefix: netip.MustParsePrefix("198.51.100.52/32"), Mode: ModeL2}
		if err := l2.Announce(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := l2.Withdraw(ctx, s); err != nil {
			t.Fatal(err)
		}
		if !addressOn(t, "veth0", s.Prefix.Addr()) {
			t.Fatal("Withdraw removed an address the operator had put on veth0")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Announce, Withdraw and Stats from several goroutines (run with
		// -race); every VIP ends withdrawn.
		var wg sync.WaitGroup
		errs := make(chan error, 4*10*2)
		for g := range 4 {
			s := Spec{Name: fmt.Sprintf("c%d", g), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(60 + g)}), 32), Mode: ModeL2}
			wg.Go(func() {
				for range 10 {
					errs <- l2.Announce(ctx, s)
					l2.Stats(s.Name)
					errs <- l2.Withdraw(ctx, s)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		for g := range 4 {
			if a := netip.AddrFrom4([4]byte{198, 51, 100, byte(60 + g)}); addressOn(t, "veth0", a) {
				t.Errorf("%s is still on veth0", a)
			}
		}
	})
	t.Run("close withdraws", func(t *testing.T) {
		l, err := NewL2(L2Options{GARPCount: 100, GARPInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s := Spec{Name: "closing", Prefix: netip.MustParsePrefix("198.51.100.53/32"), Mode: ModeL2}
		if err := l.Announce(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil { // stops the hour-long repeats at once
			t.Fatal(err)
		}
		if addressOn(t, "veth0", s.Prefix.Addr()) {
			t.Fatal("after Close, the VIP is still on veth0")
		}
		if err := l.Announce(ctx, s); err == nil {
			t.Fatal("Announce after Close succeeded")
		}
	})
}

// TestL2IPv6: the VIP's address goes on the node's interface usable at
// once (no DAD), an unsolicited neighbour advertisement (override, not
// solicited, target link-layer address = the node's MAC, to ff02::1)
// reaches the client and moves its stale neighbour entry; Withdraw
// removes the address.
func TestL2IPv6(t *testing.T) {
	if isChild(t) {
		testL2IPv6Child(t)
		return
	}
	node, client := l2Pair(t, "v6")
	ip(t, "-n", node, "addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad")
	ip(t, "-n", client, "addr", "add", "2001:db8::2/64", "dev", "veth1", "nodad")
	runInNetns(t, node, map[string]string{"client": client})
}

func testL2IPv6Child(t *testing.T) {
	client := childNS(t, "client")
	vip := netip.MustParseAddr("2001:db8::50")
	spec := Spec{Name: "public6", Prefix: netip.PrefixFrom(vip, 128), Mode: ModeL2}
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	nodeMAC := ifi.HardwareAddr.String()
	ip(t, "-n", client, "neigh", "replace", vip.String(), "lladdr", otherMAC, "dev", "veth1", "nud", "stale")

	var c *ndp.Conn
	if err := inNetns(t, client, func() error {
		cifi, err := net.InterfaceByName("veth1")
		if err != nil {
			return err
		}
		c, _, err = ndp.Listen(cifi, ndp.Unspecified)
		if err != nil {
			return err
		}
		return c.SetControlMessage(ipv6.FlagDst, true)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	l2, err := NewL2(L2Options{GARPCount: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	ctx := context.Background()
	if err := l2.Announce(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if !addressOn(t, "veth0", vip) {
		t.Fatal("after Announce, the VIP is not on veth0")
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // safety limit
	for found := false; !found; {
		m, cm, from, err := c.ReadFrom()
		if err != nil {
			t.Fatalf("no unsolicited neighbour advertisement for %s reached the client: %v", vip, err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != vip {
			continue
		}
		if !na.Override || na.Solicited {
			t.Fatalf("advertisement from %s has override=%v solicited=%v, want true/false", from, na.Override, na.Solicited)
		}
		if cm == nil || !cm.Dst.Equal(net.IPv6linklocalallnodes) {
			t.Fatalf("advertisement sent to %v, want ff02::1", cm)
		}
		var lla string
		for _, o := range na.Options {
			if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
				lla = l.Addr.String()
			}
		}
		if lla != nodeMAC {
			t.Fatalf("target link-layer address %q, want the node's %s", lla, nodeMAC)
		}
		found = true
	}
	waitFor(t, "the client's neighbour entry to move to the node's MAC", func() bool {
		return neighMAC(t, client, "veth1", vip) == nodeMAC
	})
	serveAndDial(t, client, vip)
	if st := l2.Stats("public6"); st.Announcements != 1 || st.Interface != "veth0" || st.Error != "" {
		t.Errorf("Stats = %+v, want 1 announcement on veth0, no error", st)
	}
	if err := l2.Withdraw(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if addressOn(t, "veth0", vip) {
		t.Fatal("after Withdraw, the VIP is still on veth0")
	}
}

// TestL2Errors: what Announce refuses before touching any interface.
func TestL2Errors(t *testing.T) {
	l2, err := NewL2(L2Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{name: "no address", spec: Spec{Name: "a"}, want: `vip "a": no address`},
		{name: "a network", spec: Spec{Name: "b", Prefix: netip.MustParsePrefix("198.51.100.0/24")}, want: "not a single address"},
		{name: "no such interface", spec: Spec{Name: "c", Prefix: netip.MustParsePrefix("198.51.100.50/32"), Interface: "nosuch0"}, want: `interface "nosuch0"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := l2.Announce(context.Background(), tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Announce = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestInterfaceFor: the explicit interface, else the one holding the
// address, else the one of the route to it (connected, via a gateway,
// default), in a namespace of its own.
func TestInterfaceFor(t *testing.T) {
	if isChild(t) {
		testInterfaceForChild(t)
		return
	}
	needNetns(t)
	node, other := addNetns(t, "ifn"), addNetns(t, "ifo")
	inNS(t, node, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	ip(t, "-n", node, "link", "set", "lo", "up")
	ip(t, "-n", node, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", other)
	ip(t, "-n", node, "link", "add", "veth2", "type", "veth", "peer", "name", "veth3", "netns", other)
	for _, dev := range []string{"veth0", "veth2"} {
		ip(t, "-n", node, "link", "set", dev, "up")
	}
	ip(t, "-n", node, "addr", "add", "198.51.100.1/25", "dev", "veth0")
	ip(t, "-n", node, "addr", "add", "203.0.113.11/24", "dev", "veth2")
	ip(t, "-n", node, "addr", "add", "2001:db8:1::11/64", "dev", "veth0", "nodad")
	ip(t, "-n", node, "addr", "add", "2001:db8:2::11/64", "dev", "veth2", "nodad")
	ip(t, "-n", node, "addr", "add", "198.51.100.60/32", "dev", "veth2") // held by veth2, though the route says veth0
	ip(t, "-n", node, "route", "add", "198.51.100.128/25", "via", "203.0.113.1")
	ip(t, "-n", node, "route", "add", "default", "via", "203.0.113.1")
	ip(t, "-n", node, "-6", "route", "add", "default", "via", "2001:db8:2::1")
	runInNetns(t, node, nil)
}

func testInterfaceForChild(t *testing.T) {
	tests := []struct {
		name     string
		addr     string
		explicit string
		want     string
		err      string
	}{
		{name: "explicit", addr: "198.51.100.50", explicit: "veth2", want: "veth2"},
		{name: "explicit missing", addr: "198.51.100.50", explicit: "nosuch0", err: `interface "nosuch0"`},
		{name: "connected", addr: "198.51.100.50", want: "veth0"},
		{name: "via gateway", addr: "198.51.100.200", want: "veth2"},
		{name: "default route", addr: "203.0.113.200", want: "veth2"},
		{name: "held by an interface", addr: "198.51.100.60", want: "veth2"},
		{name: "own address", addr: "198.51.100.1", want: "veth0"},
		{name: "loopback", addr: "127.0.0.1", want: "lo"},
		{name: "ipv6 connected", addr: "2001:db8:1::50", want: "veth0"},
		{name: "ipv6 default route", addr: "2001:db8:ffff::50", want: "veth2"},
		{name: "invalid address", addr: "", err: "invalid address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			got, err := InterfaceFor(a, tc.explicit)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("InterfaceFor(%s, %q) = %q, %v; want an error containing %q", tc.addr, tc.explicit, got, err, tc.err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("InterfaceFor(%s, %q) = %q, %v; want %q", tc.addr, tc.explicit, got, err, tc.want)
			}
		})
	}
	// Without a route at all, the error says so.
	ip(t, "-6", "route", "del", "default")
	if got, err := InterfaceFor(netip.MustParseAddr("2001:db8:ffff::50"), ""); err == nil || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("InterfaceFor without a route = %q, %v; want a no-route error", got, err)
	}
}
