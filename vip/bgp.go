package vip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// BGPOptions configure the BGP announcer (NewBGP).
type BGPOptions struct {
	// RouterID is the router id of a VIP's speaker when its spec names
	// none; "" for this node's IPv4 address towards the VIP's first IPv4
	// peer (the source address the routing table picks).
	RouterID string
	// Logger receives the speakers' events (gobgp's log at Debug, Info,
	// Warn and Error); nil discards them.
	Logger *slog.Logger
}

// bgpConnectRetry is the speakers' connect retry interval, in seconds:
// gobgp's default (120 s) would leave a peer that was not up at the first
// attempt without the route for minutes. The first attempt is made within
// 1–2 s.
const bgpConnectRetry = 5

// BGP announces VIPs as host routes (/32, /128) to BGP peers from
// speakers embedded in this process (github.com/osrg/gobgp/v3). Every
// healthy replica announces (the peers spread traffic by ECMP); the
// Manager decides when, BGP only announces and withdraws.
//
// VIPs with the same local ASN and router id share a speaker; the speaker's
// peers are the union of the peers of its announced VIPs (a peer listed by
// several must agree on ASN, port and hold time), and each route is
// advertised to every peer of its speaker of its address family (a
// session carries its peer's family only, so that next hops match). A
// speaker does not listen on port 179: it connects to its peers. A peer
// leaves its speaker when no announced VIP lists it any more, so
// withdrawing the last VIP of a peer also closes that session.
//
// gobgp's BgpServer.Serve never returns: Close stops every speaker (its
// sessions and timers), but one parked goroutine per speaker ever created
// stays until the process ends. A speaker is kept, idle, when its last
// VIP is withdrawn, and reused, so that their number is bounded by the
// distinct (local ASN, router id) pairs configured.
type BGP struct {
	o BGPOptions

	mu       sync.Mutex
	speakers map[speakerKey]*speaker
	vips     map[string]*bgpVIP   // announced, by VIP name
	stats    map[string]*bgpStats // by VIP name, until Close
	closed   bool
}

// speakerKey identifies a speaker.
type speakerKey struct {
	asn      uint32
	routerID string
}

// speaker is one embedded gobgp server.
type speaker struct {
	key   speakerKey
	srv   *server.BgpServer
	peers map[netip.Addr]peerConf // configured on srv
}

// peerConf is a peer as configured on a speaker.
type peerConf struct {
	asn      uint32
	port     int
	holdTime time.Duration
}

// bgpVIP is one announced VIP.
type bgpVIP struct {
	key    speakerKey
	prefix netip.Prefix
	peers  map[netip.Addr]peerConf
	uuid   []byte // of the path on the speaker
}

// bgpStats is the account of one VIP (guarded by BGP.mu).
type bgpStats struct {
	key     speakerKey
	peers   []netip.Addr
	adverts uint64
	lastErr string
}

// NewBGP returns a BGP announcer.
func NewBGP(o BGPOptions) (*BGP, error) {
	if o.RouterID != "" {
		if a, err := netip.ParseAddr(o.RouterID); err != nil || !a.Is4() {
			return nil, fmt.Errorf("bgp: invalid router id %q: want an IPv4 address", o.RouterID)
		}
	}
	o.Logger = loggerOr(o.Logger)
	return &BGP{
		o:        o,
		speakers: map[speakerKey]*speaker{},
		vips:     map[string]*bgpVIP{},
		stats:    map[string]*bgpStats{},
	}, nil
}

// Announce advertises the VIP's address as a host route to the peers of
// its spec (starting the speaker and adding the peers as needed).
// Announcing it again with the same speaker, peers and address does
// nothing; otherwise the old route is withdrawn and the new one advertised.
func (b *BGP) Announce(ctx context.Context, s Spec) error {
	addr, err := hostAddress(s)
	if err != nil {
		return err
	}
	if s.BGP == nil {
		return fmt.Errorf("vip %q: mode BGP needs a bgp block", s.Name)
	}
	peers, err := peersOf(s)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("vip %q: announcer is closed", s.Name)
	}
	st := b.stats[s.Name]
	if st == nil {
		st = &bgpStats{}
		b.stats[s.Name] = st
	}
	fail := func(err error) error {
		st.lastErr = err.Error()
		b.o.Logger.Warn("vip announcement failed", "vip", s.Name, "error", err)
		return err
	}
	routerID, err := b.routerID(s)
	if err != nil {
		return fail(fmt.Errorf("vip %q: %w", s.Name, err))
	}
	key := speakerKey{asn: s.BGP.LocalASN, routerID: routerID}
	prefix := netip.PrefixFrom(addr, addr.BitLen())
	if v := b.vips[s.Name]; v != nil {
		if v.key == key && v.prefix == prefix && maps.Equal(v.peers, peers) {
			return nil
		}
		if err := b.withdrawLocked(ctx, s.Name, v); err != nil {
			return fail(err)
		}
	}
	sp, err := b.speaker(ctx, key)
	if err != nil {
		return fail(fmt.Errorf("vip %q: %w", s.Name, err))
	}
	v := &bgpVIP{key: key, prefix: prefix, peers: peers}
	b.vips[s.Name] = v
	if err := b.reconcile(ctx, sp); err != nil {
		delete(b.vips, s.Name)
		b.reconcile(ctx, sp) // back to the peers of the others
		return fail(fmt.Errorf("vip %q: %w", s.Name, err))
	}
	resp, err := sp.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: hostRoute(prefix)})
	if err != nil {
		delete(b.vips, s.Name)
		b.reconcile(ctx, sp)
		return fail(fmt.Errorf("vip %q: advertising %s: %w", s.Name, prefix, err))
	}
	v.uuid = resp.Uuid
	st.key, st.peers, st.lastErr = key, slices.SortedFunc(maps.Keys(peers), netip.Addr.Compare), ""
	st.adverts++
	b.o.Logger.Info("vip announced", "vip", s.Name, "prefix", prefix, "asn", key.asn, "routerID", key.routerID, "peers", st.peers)
	return nil
}

// Withdraw withdraws the VIP's route, and the peers no other announced VIP
// lists. Withdrawing a VIP that is not announced does nothing.
func (b *BGP) Withdraw(ctx context.Context, s Spec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.vips[s.Name]
	if v == nil {
		return nil
	}
	err := b.withdrawLocked(ctx, s.Name, v)
	if st := b.stats[s.Name]; st != nil && err != nil {
		st.lastErr = err.Error()
	}
	return err
}

// withdrawLocked deletes v's path and reconciles its speaker's peers.
func (b *BGP) withdrawLocked(ctx context.Context, name string, v *bgpVIP) error {
	delete(b.vips, name)
	sp := b.speakers[v.key]
	if sp == nil {
		return nil
	}
	var errs []error
	if v.uuid != nil {
		if err := sp.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: v.uuid}); err != nil {
			errs = append(errs, fmt.Errorf("vip %q: withdrawing %s: %w", name, v.prefix, err))
		}
	}
	if err := b.reconcile(ctx, sp); err != nil {
		errs = append(errs, fmt.Errorf("vip %q: %w", name, err))
	}
	b.o.Logger.Info("vip withdrawn", "vip", name, "prefix", v.prefix)
	return errors.Join(errs...)
}

// Stats reports the sessions established with the VIP's peers, the route
// advertisements made for it and its last error.
func (b *BGP) Stats(vip string) AnnounceStats {
	b.mu.Lock()
	st := b.stats[vip]
	if st == nil {
		b.mu.Unlock()
		return AnnounceStats{}
	}
	out := AnnounceStats{Announcements: st.adverts, PeersTotal: len(st.peers), Error: st.lastErr}
	sp := b.speakers[st.key]
	peers := slices.Clone(st.peers)
	b.mu.Unlock()
	if sp == nil {
		return out
	}
	for _, p := range peers {
		sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: p.String()}, func(p *api.Peer) {
			if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
				out.PeersUp++
			}
		})
	}
	return out
}

// Close withdraws every VIP and stops every speaker; Announce fails
// afterwards.
func (b *BGP) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var errs []error
	ctx := context.Background()
	for name, v := range b.vips {
		errs = append(errs, b.withdrawLocked(ctx, name, v))
	}
	for key, sp := range b.speakers {
		sp.srv.Stop()
		delete(b.speakers, key)
	}
	return errors.Join(errs...)
}

// routerID is s's router id: its spec's, the options', or this node's
// IPv4 address towards its first IPv4 peer.
func (b *BGP) routerID(s Spec) (string, error) {
	if id := cmp.Or(s.BGP.RouterID, b.o.RouterID); id != "" {
		if a, err := netip.ParseAddr(id); err != nil || !a.Is4() {
			return "", fmt.Errorf("invalid router id %q: want an IPv4 address", id)
		}
		return id, nil
	}
	for _, p := range s.BGP.Peers {
		if !p.Address.Is4() {
			continue
		}
		a, err := sourceAddress(p.Address)
		if err != nil {
			return "", fmt.Errorf("router id: %w", err)
		}
		return a.String(), nil
	}
	return "", errors.New("router id: no IPv4 peer to take this node's address from; set spec.bgp.routerID")
}

// sourceAddress returns the local address the routing table picks to
// reach dst (a connected UDP socket sends nothing).
func sourceAddress(dst netip.Addr) (netip.Addr, error) {
	c, err := net.Dial("udp", netip.AddrPortFrom(dst, 179).String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s: %w", dst, err)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// speaker returns the speaker of key, started if need be.
func (b *BGP) speaker(ctx context.Context, key speakerKey) (*speaker, error) {
	if sp := b.speakers[key]; sp != nil {
		return sp, nil
	}
	log := b.o.Logger.With("asn", key.asn, "routerID", key.routerID)
	srv := server.NewBgpServer(server.LoggerOption(&gobgpLogger{l: log, level: gobgplog.InfoLevel}))
	go srv.Serve()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        key.asn,
		RouterId:   key.routerID,
		ListenPort: -1, // connect to the peers; never listen on 179
	}})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("starting the BGP speaker (AS %d, router id %s): %w", key.asn, key.routerID, err)
	}
	sp := &speaker{key: key, srv: srv, peers: map[netip.Addr]peerConf{}}
	b.speakers[key] = sp
	return sp, nil
}

// reconcile makes sp's peers the union of the peers of the announced VIPs
// on it.
func (b *BGP) reconcile(ctx context.Context, sp *speaker) error {
	want := map[netip.Addr]peerConf{}
	owner := map[netip.Addr]string{}
	for _, name := range slices.Sorted(maps.Keys(b.vips)) {
		v := b.vips[name]
		if v.key != sp.key {
			continue
		}
		for a, c := range v.peers {
			if have, ok := want[a]; ok && have != c {
				return fmt.Errorf("peer %s is configured differently by vip %q (AS %d, port %d, hold time %s) and vip %q (AS %d, port %d, hold time %s)",
					a, owner[a], have.asn, have.port, have.holdTime, name, c.asn, c.port, c.holdTime)
			}
			want[a], owner[a] = c, name
		}
	}
	var errs []error
	for a, c := range sp.peers {
		if w, ok := want[a]; ok && w == c {
			continue
		}
		if err := sp.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("removing peer %s: %w", a, err))
			continue
		}
		delete(sp.peers, a)
	}
	for a, c := range want {
		if _, ok := sp.peers[a]; ok {
			continue
		}
		if err := sp.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(a, c)}); err != nil {
			errs = append(errs, fmt.Errorf("adding peer %s (AS %d): %w", a, c.asn, err))
			continue
		}
		sp.peers[a] = c
	}
	return errors.Join(errs...)
}

// peersOf returns the peers of a BGP spec by address.
func peersOf(s Spec) (map[netip.Addr]peerConf, error) {
	if len(s.BGP.Peers) == 0 {
		return nil, fmt.Errorf("vip %q: no BGP peers", s.Name)
	}
	if s.BGP.LocalASN == 0 {
		return nil, fmt.Errorf("vip %q: no local ASN", s.Name)
	}
	peers := map[netip.Addr]peerConf{}
	family := false
	for i, p := range s.BGP.Peers {
		switch {
		case !p.Address.IsValid():
			return nil, fmt.Errorf("vip %q: peer %d: no address", s.Name, i)
		case p.ASN == 0:
			return nil, fmt.Errorf("vip %q: peer %s: no ASN", s.Name, p.Address)
		case p.Port < 0 || p.Port > 65535:
			return nil, fmt.Errorf("vip %q: peer %s: port %d is out of range 1–65535", s.Name, p.Address, p.Port)
		}
		peers[p.Address.Unmap()] = peerConf{asn: p.ASN, port: cmp.Or(p.Port, 179), holdTime: s.BGP.HoldTime}
		family = family || p.Address.Unmap().Is4() == s.Prefix.Addr().Unmap().Is4()
	}
	if !family {
		return nil, fmt.Errorf("vip %q: no peer of the address family of %s (a route goes to the peers of its family)", s.Name, s.Prefix)
	}
	return peers, nil
}

// apiPeer is a peer as gobgp takes it, with the unicast family of its
// address only: an IPv4 VIP goes to IPv4 peers, an IPv6 VIP to IPv6
// peers, so that every next hop is of the route's family.
func apiPeer(a netip.Addr, c peerConf) *api.Peer {
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: a.String(), PeerAsn: c.asn},
		Transport: &api.Transport{RemotePort: uint32(c.port)},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: bgpConnectRetry}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: familyOf(a), Enabled: true}}},
	}
	if h := c.holdTime; h > 0 {
		s := uint64(h / time.Second)
		p.Timers.Config.HoldTime = s
		p.Timers.Config.KeepaliveInterval = max(s/3, 1)
	}
	return p
}

// familyOf is the unicast family of a.
func familyOf(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// hostRoute is the path of a VIP: origin IGP, next hop unspecified, so
// that the speaker sets its own address on each session (next-hop-self).
func hostRoute(p netip.Prefix) *api.Path {
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	fam := familyOf(p.Addr())
	var nh *anypb.Any
	if p.Addr().Is4() {
		nh, _ = anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		nh, _ = anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}
}

// gobgpLogger writes gobgp's log to a slog.Logger.
type gobgpLogger struct {
	l     *slog.Logger
	mu    sync.Mutex
	level gobgplog.LogLevel
}

func (g *gobgpLogger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	args := make([]any, 0, 2*len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, k, fmt.Sprint(fields[k]))
	}
	g.l.Log(context.Background(), level, "bgp: "+msg, args...)
}

// Panic logs and panics, as gobgp expects.
func (g *gobgpLogger) Panic(msg string, fields gobgplog.Fields) {
	g.log(slog.LevelError, msg, fields)
	panic("bgp: " + msg)
}

// Fatal logs at Error level: gobgp calls it only for its gRPC server,
// which is not started, and an embedded speaker must not end the gateway.
func (g *gobgpLogger) Fatal(msg string, fields gobgplog.Fields) { g.log(slog.LevelError, msg, fields) }
func (g *gobgpLogger) Error(msg string, fields gobgplog.Fields) { g.log(slog.LevelError, msg, fields) }
func (g *gobgpLogger) Warn(msg string, fields gobgplog.Fields)  { g.log(slog.LevelWarn, msg, fields) }
func (g *gobgpLogger) Info(msg string, fields gobgplog.Fields)  { g.log(slog.LevelInfo, msg, fields) }
func (g *gobgpLogger) Debug(msg string, fields gobgplog.Fields) { g.log(slog.LevelDebug, msg, fields) }

// SetLevel sets the level gobgp reads back with GetLevel (it skips
// building some debug messages below it).
func (g *gobgpLogger) SetLevel(level gobgplog.LogLevel) {
	g.mu.Lock()
	g.level = level
	g.mu.Unlock()
}

// GetLevel returns the level set.
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.level
}

var (
	_ Announcer       = (*BGP)(nil)
	_ gobgplog.Logger = (*gobgpLogger)(nil)
)
