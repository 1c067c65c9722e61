package vip

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/vishvananda/netns"
)

// TestBGP: a second gobgp speaker in its own namespace (203.0.113.1, AS
// 64513, listening on 179 there) peers with the announcer (the node's
// namespace, 203.0.113.11, AS 64512); its RIB has the VIP's /32 with the
// node's address as next hop after Announce, and not after Withdraw. Two
// VIPs share the node's speaker: withdrawing one keeps the other's route
// and the session.
func TestBGP(t *testing.T) {
	if isChild(t) {
		testBGPChild(t)
		return
	}
	needNetns(t)
	node, peer := addNetns(t, "bgpn"), addNetns(t, "bgpp")
	ip(t, "-n", node, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", peer)
	for ns, dev := range map[string]string{node: "veth0", peer: "veth1"} {
		ip(t, "-n", ns, "link", "set", "lo", "up")
		ip(t, "-n", ns, "link", "set", dev, "up")
	}
	ip(t, "-n", node, "addr", "add", "203.0.113.11/24", "dev", "veth0")
	ip(t, "-n", peer, "addr", "add", "203.0.113.1/24", "dev", "veth1")
	ip(t, "-n", node, "addr", "add", "2001:db8:1::11/64", "dev", "veth0", "nodad")
	ip(t, "-n", peer, "addr", "add", "2001:db8:1::1/64", "dev", "veth1", "nodad")
	runInNetns(t, node, map[string]string{"peer": peer})
}

// peerSpeaker starts the test's gobgp speaker with its Serve loop (where
// gobgp opens its listening socket) on a thread in the namespace ns. It
// only accepts (passive): all its sockets are in ns. gobgp's Serve never
// returns; the goroutine ends with the child process.
func peerSpeaker(t *testing.T, ns string) *server.BgpServer {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewBgpServer(server.LoggerOption(&gobgpLogger{l: loggerOr(nil)}))
	entered := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := netns.Set(target)
		target.Close()
		entered <- err
		if err == nil {
			srv.Serve()
		}
	}()
	if err := <-entered; err != nil {
		t.Fatalf("entering %s: %v", ns, err)
	}
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 64513, RouterId: "203.0.113.1", ListenPort: 179, ListenAddresses: []string{"203.0.113.1", "2001:db8:1::1"},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, n := range []string{"203.0.113.11", "2001:db8:1::11"} {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: n, PeerAsn: 64512},
			Transport: &api.Transport{PassiveMode: true},
			// Both families, so that the test sees what the node offers.
			AfiSafis: []*api.AfiSafi{
				{Config: &api.AfiSafiConfig{Family: familyOf(netip.IPv4Unspecified()), Enabled: true}},
				{Config: &api.AfiSafiConfig{Family: familyOf(netip.IPv6Unspecified()), Enabled: true}},
			},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// ribNextHop returns the next hops of prefix in srv's RIB, joined by
// spaces, "" if the prefix is not there.
func ribNextHop(t *testing.T, srv *server.BgpServer, prefix string) string {
	t.Helper()
	var nhs []string
	err := srv.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL,
		Family:    familyOf(netip.MustParsePrefix(prefix).Addr()),
	}, func(d *api.Destination) {
		if d.Prefix != prefix {
			return
		}
		for _, p := range d.Paths {
			for _, a := range p.Pattrs {
				var h api.NextHopAttribute
				var mp api.MpReachNLRIAttribute
				switch {
				case a.UnmarshalTo(&h) == nil:
					nhs = append(nhs, h.NextHop)
				case a.UnmarshalTo(&mp) == nil:
					nhs = append(nhs, mp.NextHops...)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(nhs)
	return strings.Join(nhs, " ")
}

func testBGPChild(t *testing.T) {
	peer := peerSpeaker(t, childNS(t, "peer"))
	b, err := NewBGP(BGPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	bgp := &BGPSpec{LocalASN: 64512, Peers: []BGPPeer{{Address: netip.MustParseAddr("203.0.113.1"), ASN: 64513}}}
	a := Spec{Name: "a", Prefix: netip.MustParsePrefix("198.51.100.50/32"), Mode: ModeBGP, BGP: bgp}
	c := Spec{Name: "c", Prefix: netip.MustParsePrefix("198.51.100.51/32"), Mode: ModeBGP, BGP: bgp}
	ctx := context.Background()
	for _, s := range []Spec{a, c, a} { // a twice: idempotent
		if err := b.Announce(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// The router id defaults to the node's address towards the peer, and
	// the next hop is the node's address on the session.
	for _, p := range []string{"198.51.100.50/32", "198.51.100.51/32"} {
		waitFor(t, "the peer to learn "+p, func() bool { return ribNextHop(t, peer, p) != "" })
		if nh := ribNextHop(t, peer, p); nh != "203.0.113.11" {
			t.Fatalf("the peer's next hop for %s is %s, want the node's 203.0.113.11", p, nh)
		}
	}
	var routerID string
	peer.ListPeer(ctx, &api.ListPeerRequest{Address: "203.0.113.11"}, func(p *api.Peer) { routerID = p.GetState().GetRouterId() })
	if routerID != "203.0.113.11" {
		t.Errorf("the node's router id is %q, want its address towards the peer, 203.0.113.11", routerID)
	}
	if st := b.Stats("a"); st.PeersUp != 1 || st.PeersTotal != 1 || st.Announcements != 1 || st.Error != "" {
		t.Errorf("Stats(a) = %+v, want 1/1 peers up, 1 advertisement, no error", st)
	}

	if err := b.Withdraw(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer to drop 198.51.100.50/32", func() bool { return ribNextHop(t, peer, "198.51.100.50/32") == "" })
	if nh := ribNextHop(t, peer, "198.51.100.51/32"); nh == "" {
		t.Fatal("withdrawing a dropped the route of c, which shares its speaker")
	}
	if err := b.Withdraw(ctx, a); err != nil {
		t.Fatalf("second Withdraw: %v", err)
	}
	if err := b.Withdraw(ctx, Spec{Name: "never"}); err != nil {
		t.Fatalf("Withdraw of a VIP never announced: %v", err)
	}

	// Announced again, a comes back (on the session c kept up).
	if err := b.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer to learn 198.51.100.50/32 again", func() bool { return ribNextHop(t, peer, "198.51.100.50/32") != "" })
	if st := b.Stats("a"); st.Announcements != 2 {
		t.Errorf("Stats(a).Announcements = %d, want 2", st.Announcements)
	}

	// An IPv6 VIP goes to the IPv6 peer, on the same speaker (its router
	// id given), with the node's IPv6 address as next hop; IPv4 routes do
	// not go to the IPv6 session, nor the IPv6 route to the IPv4 one.
	v6 := Spec{Name: "v6", Prefix: netip.MustParsePrefix("2001:db8::50/128"), Mode: ModeBGP, BGP: &BGPSpec{
		LocalASN: 64512, RouterID: "203.0.113.11",
		Peers: []BGPPeer{{Address: netip.MustParseAddr("2001:db8:1::1"), ASN: 64513}},
	}}
	if err := b.Announce(ctx, v6); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer to learn 2001:db8::50/128", func() bool { return ribNextHop(t, peer, "2001:db8::50/128") != "" })
	if nh := ribNextHop(t, peer, "2001:db8::50/128"); nh != "2001:db8:1::11" {
		t.Fatalf("the peer's next hop for 2001:db8::50/128 is %s, want the node's 2001:db8:1::11", nh)
	}
	if nh := ribNextHop(t, peer, "198.51.100.50/32"); nh != "203.0.113.11" {
		t.Fatalf("the peer's next hop for 198.51.100.50/32 is %s, want 203.0.113.11 only", nh)
	}
	if st := b.Stats("v6"); st.PeersUp != 1 || st.PeersTotal != 1 {
		t.Errorf("Stats(v6) = %+v, want 1/1 peers up", st)
	}

	// Close withdraws everything.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer to drop every route after Close", func() bool {
		return ribNextHop(t, peer, "198.51.100.50/32") == "" && ribNextHop(t, peer, "198.51.100.51/32") == "" &&
			ribNextHop(t, peer, "2001:db8::50/128") == ""
	})
	if err := b.Announce(ctx, a); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Announce after Close = %v, want an error", err)
	}
}
