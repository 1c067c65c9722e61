package vip

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// hostAddress returns the single address a VIP announces: its prefix must
// be a host prefix (/32 or /128), as configs validates a ProxyVIP's address.
func hostAddress(s Spec) (netip.Addr, error) {
	p := s.Prefix
	if !p.IsValid() {
		return netip.Addr{}, fmt.Errorf("vip %q: no address", s.Name)
	}
	if a := p.Addr(); p.Bits() != a.BitLen() {
		return netip.Addr{}, fmt.Errorf("vip %q: address %s is not a single address (want %s/%d)", s.Name, p, a, a.BitLen())
	}
	return p.Addr().Unmap(), nil
}

// loggerOr returns l, or a logger that discards everything.
func loggerOr(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
