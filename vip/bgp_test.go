package vip

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// TestBGPErrors: what the BGP announcer refuses. The peers are loopback
// addresses with no speaker behind them: nothing leaves the machine.
func TestBGPErrors(t *testing.T) {
	if _, err := NewBGP(BGPOptions{RouterID: "2001:db8::1"}); err == nil || !strings.Contains(err.Error(), "invalid router id") {
		t.Fatalf("NewBGP with an IPv6 router id = %v, want an error", err)
	}
	b, err := NewBGP(BGPOptions{RouterID: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	peer := func(a string, asn uint32) BGPPeer { return BGPPeer{Address: netip.MustParseAddr(a), ASN: asn, Port: 1} }
	vip := func(name, addr string, bgp *BGPSpec) Spec {
		return Spec{Name: name, Prefix: netip.MustParsePrefix(addr), Mode: ModeBGP, BGP: bgp}
	}
	ctx := context.Background()
	if err := b.Announce(ctx, vip("first", "198.51.100.50/32", &BGPSpec{LocalASN: 64512, Peers: []BGPPeer{peer("127.0.0.2", 64513)}})); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{name: "no bgp block", spec: vip("a", "198.51.100.51/32", nil), want: "needs a bgp block"},
		{name: "no peers", spec: vip("b", "198.51.100.51/32", &BGPSpec{LocalASN: 64512}), want: "no BGP peers"},
		{name: "no local ASN", spec: vip("c", "198.51.100.51/32", &BGPSpec{Peers: []BGPPeer{peer("127.0.0.2", 64513)}}), want: "no local ASN"},
		{name: "not a host prefix", spec: vip("d", "198.51.100.0/24", &BGPSpec{LocalASN: 64512, Peers: []BGPPeer{peer("127.0.0.2", 64513)}}), want: "not a single address"},
		{name: "bad router id", spec: vip("e", "198.51.100.51/32", &BGPSpec{LocalASN: 64512, RouterID: "x", Peers: []BGPPeer{peer("127.0.0.2", 64513)}}), want: `invalid router id "x"`},
		{name: "no peer of its family", spec: vip("g", "2001:db8::50/128", &BGPSpec{LocalASN: 64512, Peers: []BGPPeer{peer("127.0.0.2", 64513)}}), want: "no peer of the address family of 2001:db8::50/128"},
		{
			name: "peer shared with another ASN",
			spec: vip("f", "198.51.100.51/32", &BGPSpec{LocalASN: 64512, Peers: []BGPPeer{peer("127.0.0.2", 64514)}}),
			want: `peer 127.0.0.2 is configured differently by vip "f" (AS 64514, port 1, hold time 0s) and vip "first"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Announce(ctx, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Announce = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if st := b.Stats("f"); !strings.Contains(st.Error, "configured differently") {
		t.Errorf("Stats(f).Error = %q, want the conflict", st.Error)
	}
	if st := b.Stats("first"); st.Announcements != 1 || st.PeersTotal != 1 || st.Error != "" {
		t.Errorf("Stats(first) = %+v: the refused VIPs disturbed it", st)
	}
}
