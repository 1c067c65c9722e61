package vip

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/novaedge/novaedge/configs"
)

// SpecOf converts a validated ProxyVIP to the Spec this node carries out.
// The address must be a single address (/32 or /128) of the address
// family (defaulted from the address when empty); mode BGP needs its bgp
// block. Errors name the ProxyVIP and the field.
func SpecOf(v *configs.VIP) (Spec, error) {
	if v == nil {
		return Spec{}, fmt.Errorf("vip: no ProxyVIP")
	}
	name := v.Metadata.Name
	fail := func(field, format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("ProxyVIP %s: %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	p, err := netip.ParsePrefix(v.Spec.Address)
	if err != nil {
		return fail("spec.address", "invalid address %q: want an IP prefix such as 198.51.100.50/32", v.Spec.Address)
	}
	a := p.Addr()
	if p.Bits() != a.BitLen() {
		return fail("spec.address", "%s is not a single address: want %s/%d", p, a, a.BitLen())
	}
	family := "ipv4"
	if a.Is6() {
		family = "ipv6"
	}
	if f := v.Spec.AddressFamily; f != "" && f != family {
		return fail("spec.addressFamily", "%s does not match address %s (an %s address)", f, p, family)
	}
	s := Spec{
		Name:      name,
		Prefix:    p,
		Mode:      Mode(v.Spec.Mode),
		Interface: v.Spec.Interface,
		Ports:     slices.Clone(v.Spec.Ports),
	}
	if h := v.Spec.HealthPolicy; h != nil {
		s.MinHealthyNodes = h.MinHealthyNodes
	}
	switch s.Mode {
	case ModeL2:
		if v.Spec.BGP != nil {
			return fail("spec.bgp", "only with mode BGP (mode is %s)", s.Mode)
		}
	case ModeBGP:
		b := v.Spec.BGP
		if b == nil {
			return fail("spec.bgp", "required with mode BGP")
		}
		if b.LocalASN < 1 || b.LocalASN > 4294967294 {
			return fail("spec.bgp.localASN", "AS number %d is out of range 1–4294967294", b.LocalASN)
		}
		bs := &BGPSpec{LocalASN: uint32(b.LocalASN), RouterID: b.RouterID, HoldTime: b.HoldTime.D(0)}
		if len(b.Peers) == 0 {
			return fail("spec.bgp.peers", "at least one peer is required")
		}
		for i, peer := range b.Peers {
			field := fmt.Sprintf("spec.bgp.peers[%d]", i)
			addr, err := netip.ParseAddr(peer.Address)
			if err != nil {
				return fail(field+".address", "invalid address %q", peer.Address)
			}
			if peer.ASN < 1 || peer.ASN > 4294967294 {
				return fail(field+".asn", "AS number %d is out of range 1–4294967294", peer.ASN)
			}
			if peer.Port < 0 || peer.Port > 65535 {
				return fail(field+".port", "port %d is out of range 1–65535", peer.Port)
			}
			bs.Peers = append(bs.Peers, BGPPeer{Address: addr.Unmap(), ASN: uint32(peer.ASN), Port: peer.Port})
		}
		s.BGP = bs
	default:
		return fail("spec.mode", "unknown mode %q (want %s or %s)", v.Spec.Mode, ModeL2, ModeBGP)
	}
	return s, nil
}
