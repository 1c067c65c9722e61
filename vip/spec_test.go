package vip

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/novaedge/novaedge/configs"
)

// TestSpecOf: ProxyVIPs as configs loads them, and what SpecOf makes of
// them or refuses.
func TestSpecOf(t *testing.T) {
	tests := []struct {
		name string
		yaml string // the spec block
		want Spec
		err  string
	}{
		{
			name: "reference-like L2",
			yaml: "address: 198.51.100.50/32\nmode: L2ARP\nports: [443, 80]\nhealthPolicy: {minHealthyNodes: 1}\n",
			want: Spec{Name: "v", Prefix: netip.MustParsePrefix("198.51.100.50/32"), Mode: ModeL2, Ports: []int{443, 80}, MinHealthyNodes: 1},
		},
		{
			name: "ipv6 with interface",
			yaml: "address: 2001:db8::50/128\nmode: L2ARP\ninterface: eth1\n",
			want: Spec{Name: "v", Prefix: netip.MustParsePrefix("2001:db8::50/128"), Mode: ModeL2, Interface: "eth1"},
		},
		{
			name: "bgp with defaults",
			yaml: "address: 198.51.100.50/32\nmode: BGP\nbgp:\n  localASN: 64512\n  peers: [{address: 203.0.113.1, asn: 64513}]\n",
			want: Spec{Name: "v", Prefix: netip.MustParsePrefix("198.51.100.50/32"), Mode: ModeBGP, BGP: &BGPSpec{
				LocalASN: 64512, HoldTime: 90 * time.Second,
				Peers: []BGPPeer{{Address: netip.MustParseAddr("203.0.113.1"), ASN: 64513, Port: 179}},
			}},
		},
		{
			name: "bgp spelled out",
			yaml: "address: 198.51.100.50/32\nmode: BGP\nbgp:\n  localASN: 4200000000\n  routerID: 198.51.100.11\n  holdTime: 9s\n" +
				"  peers: [{address: 203.0.113.1, asn: 64513, port: 1179}, {address: '2001:db8::1', asn: 64514}]\n",
			want: Spec{Name: "v", Prefix: netip.MustParsePrefix("198.51.100.50/32"), Mode: ModeBGP, BGP: &BGPSpec{
				LocalASN: 4200000000, RouterID: "198.51.100.11", HoldTime: 9 * time.Second,
				Peers: []BGPPeer{
					{Address: netip.MustParseAddr("203.0.113.1"), ASN: 64513, Port: 1179},
					{Address: netip.MustParseAddr("2001:db8::1"), ASN: 64514, Port: 179},
				},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: novaedge.io/v1alpha1\nkind: ProxyVIP\nmetadata: {name: v}\nspec:\n  " +
				strings.ReplaceAll(strings.TrimSuffix(tc.yaml, "\n"), "\n", "\n  ") + "\n"
			s, err := configs.LoadFiles([]configs.File{{Name: "vip.yaml", Data: []byte(doc)}})
			if err != nil {
				t.Fatalf("LoadFiles:\n%v\n%s", err, doc)
			}
			got, err := SpecOf(s.VIPs[0])
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("SpecOf = %+v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SpecOf =\n%+v %+v\nwant\n%+v %+v", got, got.BGP, tc.want, tc.want.BGP)
			}
		})
	}
}

// TestSpecOfUnvalidated: SpecOf refuses what validation would have
// refused, naming the ProxyVIP and the field, without panicking.
func TestSpecOfUnvalidated(t *testing.T) {
	vip := func(spec configs.VIPSpec) *configs.VIP {
		return &configs.VIP{Metadata: configs.ObjectMeta{Name: "v"}, Spec: spec}
	}
	bgp := func(asn, peerASN int64, addr string) *configs.VIPBGP {
		return &configs.VIPBGP{LocalASN: asn, Peers: []configs.VIPBGPPeer{{Address: addr, ASN: peerASN}}}
	}
	tests := []struct {
		name string
		v    *configs.VIP
		err  string
	}{
		{name: "nil", v: nil, err: "vip: no ProxyVIP"},
		{name: "bad address", v: vip(configs.VIPSpec{Address: "x", Mode: "L2ARP"}), err: "ProxyVIP v: spec.address: invalid address"},
		{name: "not a single address", v: vip(configs.VIPSpec{Address: "198.51.100.0/24", Mode: "L2ARP"}), err: "ProxyVIP v: spec.address: 198.51.100.0/24 is not a single address: want 198.51.100.0/32"},
		{name: "family mismatch", v: vip(configs.VIPSpec{Address: "2001:db8::50/128", AddressFamily: "ipv4", Mode: "L2ARP"}), err: "spec.addressFamily: ipv4 does not match"},
		{name: "unknown mode", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "VRRP"}), err: `spec.mode: unknown mode "VRRP"`},
		{name: "bgp with L2ARP", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "L2ARP", BGP: bgp(1, 2, "203.0.113.1")}), err: "spec.bgp: only with mode BGP"},
		{name: "bgp missing", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "BGP"}), err: "spec.bgp: required"},
		{name: "local ASN", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "BGP", BGP: bgp(0, 2, "203.0.113.1")}), err: "spec.bgp.localASN"},
		{name: "peer ASN", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "BGP", BGP: bgp(1, 1<<32, "203.0.113.1")}), err: "spec.bgp.peers[0].asn"},
		{name: "peer address", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "BGP", BGP: bgp(1, 2, "peer")}), err: "spec.bgp.peers[0].address"},
		{name: "no peers", v: vip(configs.VIPSpec{Address: "198.51.100.50/32", Mode: "BGP", BGP: &configs.VIPBGP{LocalASN: 1}}), err: "spec.bgp.peers: at least one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SpecOf(tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("SpecOf = %+v, %v; want an error containing %q", got, err, tc.err)
			}
		})
	}
}

// TestSpecOfReference: the reference use case's ProxyVIP, unchanged,
// converts (its address is only parsed here, never configured).
func TestSpecOfReference(t *testing.T) {
	s, err := configs.Load("../configs/testdata/reference")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.VIPs) != 1 {
		t.Fatalf("%d ProxyVIPs in the reference, want 1", len(s.VIPs))
	}
	got, err := SpecOf(s.VIPs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "api-gateway-vip", Prefix: netip.MustParsePrefix("10.200.0.50/32"), Mode: ModeL2, Ports: []int{443, 80}, MinHealthyNodes: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SpecOf(reference) = %+v, want %+v", got, want)
	}
}
