// Package vip owns NovaEdge's virtual IPs (ProxyVIP): which replica
// answers for an address, how the address is announced, and when a replica
// gives it up.
//
// Three seams, each an interface so that the Kubernetes mode (Leases) and
// other announcement modes plug in beside the standalone ones:
//
//   - an Elector says who owns a VIP. The standalone one (NewMemberlist)
//     runs on hashicorp/memberlist: every replica publishes its health per
//     VIP in its node metadata, and every replica computes the same owner
//     from the same members (Owner), without a vote.
//   - an Announcer makes a VIP reach this node and stops it: L2 (the
//     address on the interface, gratuitous ARP or unsolicited neighbour
//     advertisements) or BGP (a /32 or /128 route to configured peers from
//     an embedded gobgp speaker).
//   - a HealthFunc reads this node's fitness for a VIP from the running
//     generation (listeners bound, backends healthy); health is read, not
//     pushed.
//
// A Manager ties them together: it follows the configuration (Apply), the
// elector's view and the local health, announces and withdraws, and reports
// a Status per VIP.
package vip

import (
	"context"
	"net/netip"
	"time"
)

// Mode is how a VIP is announced.
type Mode string

const (
	// ModeL2 puts the address on the owner's interface and announces it
	// with gratuitous ARP (IPv4) or unsolicited neighbour advertisements
	// (IPv6). One owner per VIP.
	ModeL2 Mode = "L2ARP"
	// ModeBGP announces the address as a host route to BGP peers from
	// every healthy replica (ECMP): no single owner.
	ModeBGP Mode = "BGP"
)

// Spec is a ProxyVIP as this node carries it out.
type Spec struct {
	Name   string
	Prefix netip.Prefix // a single address: /32 or /128
	Mode   Mode
	// Interface is the ProxyVIP's spec.interface: "" for the node's
	// --vip-interface, or else the interface with the route to the address.
	Interface       string
	Ports           []int
	MinHealthyNodes int
	BGP             *BGPSpec // mode BGP
}

// BGPSpec is a BGP-mode VIP's speaker and peers.
type BGPSpec struct {
	LocalASN uint32
	// RouterID is the speaker's router id; "" for the node's address.
	RouterID string
	Peers    []BGPPeer
	HoldTime time.Duration // 0: the speaker's default (90 s)
}

// BGPPeer is a BGP neighbour.
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    int // 0: 179
}

// Health is this node's fitness to serve a VIP, from the running
// generation.
type Health struct {
	// Listening: every listener of the gateways on the VIP is bound.
	Listening bool
	// Healthy: Listening, and the gateways' backends are healthy as the
	// VIP's health policy asks.
	Healthy bool
	// Reason says why not, when either is false.
	Reason string
}

// HealthFunc reads this node's health for the named VIP.
type HealthFunc func(vip string) Health

// Claim is what a node publishes about one VIP.
type Claim struct {
	Listening bool `json:"listening"`
	Healthy   bool `json:"healthy"`
	// Holding: the node has the VIP announced (L2: the address is on its
	// interface). An owner that holds a VIP keeps it while it stays a
	// candidate: a returning replica does not take it back (no flapping).
	Holding bool `json:"holding"`
}

// Local is what this node publishes to the elector.
type Local struct {
	// Draining: the node is leaving (SIGTERM); it is nobody's candidate.
	Draining bool
	VIPs     map[string]Claim // by VIP name
}

// MemberView is a member as the elector sees it.
type MemberView struct {
	Name     string `json:"name"`
	Addr     string `json:"addr,omitempty"`
	Draining bool   `json:"draining,omitempty"`
	Claim    Claim  `json:"claim"` // for the VIP of the View
}

// View is the elector's decision about one VIP.
type View struct {
	// Owner is the member that should hold the VIP ("" if no member is a
	// candidate: none is listening, or all are draining).
	Owner   string       `json:"owner"`
	Members []MemberView `json:"members"`
	// Healthy is the number of healthy, non-draining members.
	Healthy int `json:"healthy"`
}

// Elector says who owns a VIP. Implementations: NewMemberlist (standalone
// replicas); a Kubernetes one on Leases.
type Elector interface {
	// LocalName is this node's name among the members.
	LocalName() string
	// Publish makes this node's state known to the other members.
	Publish(l Local) error
	// View returns the decision about the named VIP from the members seen
	// now. Every member that sees the same members decides the same.
	View(vip string) View
	// Changed is signalled (buffered, never blocking the elector) when the
	// members or what they publish change.
	Changed() <-chan struct{}
	// Leave tells the others this node is going, so they need not wait
	// for failure detection, and stops taking part.
	Leave(ctx context.Context) error
}

// Announcer makes a VIP reach this node, and stops it.
type Announcer interface {
	// Announce starts answering for s (idempotent).
	Announce(ctx context.Context, s Spec) error
	// Withdraw stops answering for s (idempotent).
	Withdraw(ctx context.Context, s Spec) error
	// Stats reports the announcement of the named VIP.
	Stats(vip string) AnnounceStats
	// Close withdraws everything and releases the announcer's resources.
	Close() error
}

// AnnounceStats is an announcer's account of a VIP.
type AnnounceStats struct {
	Interface string `json:"interface,omitempty"` // L2
	// Announcements: gratuitous ARPs or unsolicited neighbour
	// advertisements sent (L2); route advertisements (BGP).
	Announcements uint64 `json:"announcements"`
	// Peers: BGP sessions established / configured.
	PeersUp    int `json:"peersUp,omitempty"`
	PeersTotal int `json:"peersTotal,omitempty"`
	// Error is the last announcement failure, "" if none.
	Error string `json:"error,omitempty"`
}

// State is a VIP's state on this node.
type State string

const (
	// Active: this node answers for the VIP.
	Active State = "Active"
	// Standby: another member owns it; this node is ready to take over.
	Standby State = "Standby"
	// Withdrawn: this node cannot take it (unhealthy, not listening,
	// draining, or the announcement failed); Status.Reason says why.
	Withdrawn State = "Withdrawn"
)

// Status is a VIP as `novaedge status`, the admin /status and /metrics
// report it.
type Status struct {
	Name            string        `json:"name"`
	Address         string        `json:"address"`
	Mode            Mode          `json:"mode"`
	State           State         `json:"state"`
	Reason          string        `json:"reason,omitempty"`
	Owner           string        `json:"owner,omitempty"` // L2
	Node            string        `json:"node"`            // this node
	Members         []MemberView  `json:"members"`
	Healthy         int           `json:"healthyMembers"`
	MinHealthyNodes int           `json:"minHealthyNodes,omitempty"`
	Degraded        bool          `json:"degraded,omitempty"` // fewer healthy members than MinHealthyNodes
	LastTransition  time.Time     `json:"lastTransition"`
	Transitions     uint64        `json:"transitions"`
	Announce        AnnounceStats `json:"announce"`
}
