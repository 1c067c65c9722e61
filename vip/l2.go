package vip

import (
	"log/slog"
	"time"
)

// L2Options configure the L2 announcer (NewL2).
type L2Options struct {
	// DefaultInterface is the node's --vip-interface: the interface of a
	// VIP whose spec names none. "" for the interface of the route to the
	// VIP's address.
	DefaultInterface string
	// Logger receives announcement events; nil discards them.
	Logger *slog.Logger
	// GARPCount is how many announcements follow the first one, made at
	// once (gratuitous ARP for IPv4, unsolicited neighbour advertisements
	// for IPv6): 0 for DefaultGARPCount, negative for none.
	GARPCount int
	// GARPInterval is the time between two announcements: 0 for
	// DefaultGARPInterval.
	GARPInterval time.Duration
}

// Defaults of L2Options.
const (
	DefaultGARPCount    = 3
	DefaultGARPInterval = time.Second
)

// withDefaults returns o with its zero fields defaulted.
func (o L2Options) withDefaults() L2Options {
	switch {
	case o.GARPCount == 0:
		o.GARPCount = DefaultGARPCount
	case o.GARPCount < 0:
		o.GARPCount = 0
	}
	if o.GARPInterval <= 0 {
		o.GARPInterval = DefaultGARPInterval
	}
	o.Logger = loggerOr(o.Logger)
	return o
}
