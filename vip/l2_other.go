//go:build !linux

package vip

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
)

// errL2Unsupported is what L2 announcement says outside Linux.
var errL2Unsupported = fmt.Errorf("vip: L2 announcement (address, gratuitous ARP, neighbour advertisements) is supported on Linux only, not on %s", runtime.GOOS)

// L2 is the L2 announcer; outside Linux every method fails.
type L2 struct{}

// NewL2 fails outside Linux.
func NewL2(o L2Options) (*L2, error) { return nil, errL2Unsupported }

// InterfaceFor fails outside Linux.
func InterfaceFor(addr netip.Addr, explicit string) (string, error) { return "", errL2Unsupported }

// Announce fails outside Linux.
func (l *L2) Announce(ctx context.Context, s Spec) error { return errL2Unsupported }

// Withdraw does nothing outside Linux: nothing was announced.
func (l *L2) Withdraw(ctx context.Context, s Spec) error { return nil }

// Stats reports nothing outside Linux.
func (l *L2) Stats(vip string) AnnounceStats { return AnnounceStats{Error: errL2Unsupported.Error()} }

// Close does nothing outside Linux.
func (l *L2) Close() error { return nil }

var _ Announcer = (*L2)(nil)
