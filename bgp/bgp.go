// Package bgp shares spfd's lists over BGP in bgp-spamd's manner, with an
// embedded GoBGP speaker: routes carrying a list's community become that
// list's entries, and spfd's own findings are announced as routes with
// their list's community. Nothing goes into the kernel's routing table.
package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// bgp-spamd's communities.
const (
	DefaultWhiteCommunity = 65066<<16 | 42
	DefaultBlackCommunity = 65066<<16 | 666
)

// ParseCommunity reads "ASN:VALUE".
func ParseCommunity(s string) (uint32, error) {
	a, v, ok := strings.Cut(s, ":")
	hi, err1 := strconv.ParseUint(a, 10, 16)
	lo, err2 := strconv.ParseUint(v, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("invalid community %q (want ASN:VALUE)", s)
	}
	return uint32(hi<<16 | lo), nil
}

// FormatCommunity writes "ASN:VALUE".
func FormatCommunity(c uint32) string { return fmt.Sprintf("%d:%d", c>>16, c&0xffff) }

// Neighbor is one BGP peer.
type Neighbor struct {
	Address      string
	ASN          uint32
	Password     string
	Multihop     uint32 // TTL for eBGP multihop; 0: directly connected
	LocalAddress string
	Port         uint32 // the neighbor's port (default 179)
	// MaxPrefix tears the session down when the neighbor sends more
	// routes of one family; 0: no limit.
	MaxPrefix uint32
}

// Config configures the speaker.
type Config struct {
	ASN       uint32
	RouterID  string
	Listen    []string // addresses to listen on
	Port      int32    // listen port (default 179; -1: do not listen)
	Neighbors []Neighbor
	// Communities of the lists.
	White, Black uint32
	// Hold keeps a neighbor's routes this long after its session went
	// down, so a flap does not empty the list.
	Hold time.Duration
	// Logger gets session changes (info when up, warning when down) and
	// GoBGP's own warnings and errors; nil drops them.
	Logger log.Logger
}

// Speaker is a running BGP speaker.
type Speaker struct {
	cfg Config
	srv *server.BgpServer

	mu        sync.Mutex
	rib       map[string]map[netip.Prefix]string // neighbor -> prefix -> list
	down      map[string]time.Time               // neighbor -> when its session went down
	announced map[string]map[netip.Prefix]bool   // list -> prefixes announced
	version   uint64
	up        map[string]bool // neighbor -> session established

	// errMu guards lastErr apart from mu: GoBGP logs from its own
	// goroutines, which may be what a holder of mu waits for.
	errMu   sync.Mutex
	lastErr map[string]string // neighbor -> its last warning or error
}

// Start runs the speaker until ctx ends.
func Start(ctx context.Context, cfg Config) (*Speaker, error) {
	if cfg.White == 0 {
		cfg.White = DefaultWhiteCommunity
	}
	if cfg.Black == 0 {
		cfg.Black = DefaultBlackCommunity
	}
	if cfg.Port == 0 {
		cfg.Port = 179
	}
	s := &Speaker{
		cfg: cfg,
		rib: make(map[string]map[netip.Prefix]string), down: make(map[string]time.Time),
		up: make(map[string]bool), lastErr: make(map[string]string),
		announced: map[string]map[netip.Prefix]bool{"white": {}, "black": {}},
	}
	if s.cfg.Logger == nil {
		s.cfg.Logger = log.NewNopLogger()
	}
	s.srv = server.NewBgpServer(server.LoggerOption(speakerLogger{s}))

	go s.srv.Serve()
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID, ListenPort: cfg.Port, ListenAddresses: cfg.Listen,
	}}); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: %w", err)
	}
	// GoBGP's default export policy passes every received route on: a
	// neighbor's routes would reach the others with spfd in their path.
	// Only routes spfd itself adds (its own findings) go out.
	if err := exportLocalOnly(ctx, s.srv); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: export policy: %w", err)
	}
	watch := &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_ADJIN, Init: true}}},
	}
	if err := s.srv.WatchEvent(ctx, watch, s.event); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("bgp: watching: %w", err)
	}
	for _, n := range cfg.Neighbors {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer(n)}); err != nil {
			s.srv.Stop()
			return nil, fmt.Errorf("bgp: neighbor %s: %w", n.Address, err)
		}
	}
	go func() {
		<-ctx.Done()
		s.srv.Stop()
	}()
	return s, nil
}

// exportLocalOnly makes the global export policy accept the routes added
// here (route type local) and reject the rest, received ones included.
func exportLocalOnly(ctx context.Context, srv *server.BgpServer) error {
	const name = "spfd-export-local-only"
	err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name, Statements: []*api.Statement{{
		Name:       name + "-accept",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}})
	if err != nil {
		return err
	}
	return srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT,
		Policies: []*api.Policy{{Name: name}}, DefaultAction: api.RouteAction_REJECT,
	}})
}

func peer(n Neighbor) *api.Peer {
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: n.Address, PeerAsn: n.ASN, AuthPassword: n.Password},
		Transport: &api.Transport{LocalAddress: n.LocalAddress, RemotePort: n.Port},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: n.Multihop}
	}
	if n.MaxPrefix > 0 {
		// GoBGP counts what the neighbor sent and, past the limit, sends
		// a Cease (maximum number of prefixes reached) and drops the
		// update that overflowed; it warns at 90%.
		for _, a := range p.AfiSafis {
			a.PrefixLimits = &api.PrefixLimit{Family: a.Config.Family, MaxPrefixes: n.MaxPrefix, ShutdownThresholdPct: 90}
		}
	}
	return p
}

// event handles received routes and session changes.
func (s *Speaker) event(r *api.WatchEventResponse) {
	if pe := r.GetPeer(); pe != nil && pe.Peer != nil && pe.Peer.State != nil {
		addr := pe.Peer.State.NeighborAddress
		established := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
		s.mu.Lock()
		if established {
			delete(s.down, addr)
		} else if _, ok := s.down[addr]; !ok && len(s.rib[addr]) > 0 {
			s.down[addr] = time.Now()
		}
		was := s.up[addr]
		s.up[addr] = established
		held := len(s.rib[addr])
		s.mu.Unlock()
		switch {
		case established && !was:
			level.Info(s.cfg.Logger).Log("msg", "bgp session up", "neighbor", addr)
		case !established && was:
			level.Warn(s.cfg.Logger).Log("msg", "bgp session down", "neighbor", addr,
				"last-error", s.lastError(addr), "routes-held", held, "hold", s.cfg.Hold)
		}
		return
	}
	t := r.GetTable()
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range t.Paths {
		if p.NeighborIp == "" || p.NeighborIp == "<nil>" {
			continue // our own
		}
		prefix, ok := nativePrefix(p)
		if !ok {
			continue
		}
		routes := s.rib[p.NeighborIp]
		if routes == nil {
			routes = make(map[netip.Prefix]string)
			s.rib[p.NeighborIp] = routes
		}
		list := s.listOf(p)
		if p.IsWithdraw || list == "" {
			delete(routes, prefix)
		} else {
			routes[prefix] = list
		}
		s.version++
	}
}

func nativePrefix(p *api.Path) (netip.Prefix, bool) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return netip.Prefix{}, false
	}
	pr, err := netip.ParsePrefix(nlri.String())
	if err != nil || pr.Masked() != pr {
		return netip.Prefix{}, false
	}
	return pr, true
}

// listOf maps a route's communities to a list; a route with both is
// ambiguous and ignored.
func (s *Speaker) listOf(p *api.Path) string {
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return ""
	}
	white, black := false, false
	for _, a := range attrs {
		if c, ok := a.(*bgp.PathAttributeCommunities); ok {
			for _, v := range c.Value {
				white = white || v == s.cfg.White
				black = black || v == s.cfg.Black
			}
		}
	}
	switch {
	case white && !black:
		return "white"
	case black && !white:
		return "black"
	}
	return ""
}

// Version changes whenever received routes change.
func (s *Speaker) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Received returns, per neighbor, the prefixes of list it sends. A
// neighbor whose session is down keeps its routes for the hold time.
func (s *Speaker) Received(list string) map[string][]netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]netip.Prefix)
	for n, routes := range s.rib {
		if since, down := s.down[n]; down && time.Since(since) > s.cfg.Hold {
			delete(s.rib, n)
			delete(s.down, n)
			s.version++
			continue
		}
		for p, l := range routes {
			if l == list {
				out[n] = append(out[n], p)
			}
		}
	}
	return out
}

// HeldUntil returns, for each neighbor whose session is down and whose
// routes are still held, when the hold runs out.
func (s *Speaker) HeldUntil() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.down))
	for n, since := range s.down {
		out[n] = since.Add(s.cfg.Hold)
	}
	return out
}

// Announce makes the speaker announce exactly prefixes for list, with the
// list's community, withdrawing what is no longer in it.
func (s *Speaker) Announce(ctx context.Context, list string, prefixes []netip.Prefix) error {
	community := s.cfg.White
	if list == "black" {
		community = s.cfg.Black
	}
	s.mu.Lock()
	old := s.announced[list]
	s.mu.Unlock()
	want := make(map[netip.Prefix]bool, len(prefixes))
	for _, p := range prefixes {
		want[p] = true
	}
	for p := range want {
		if old[p] {
			continue
		}
		path, err := s.path(p, community, false)
		if err != nil {
			return err
		}
		if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{Path: path}); err != nil {
			return fmt.Errorf("bgp: announcing %s: %w", p, err)
		}
	}
	for p := range old {
		if want[p] {
			continue
		}
		path, err := s.path(p, community, true)
		if err != nil {
			return err
		}
		if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{Path: path}); err != nil {
			return fmt.Errorf("bgp: withdrawing %s: %w", p, err)
		}
	}
	s.mu.Lock()
	s.announced[list] = want
	s.mu.Unlock()
	return nil
}

func (s *Speaker) path(p netip.Prefix, community uint32, withdraw bool) (*api.Path, error) {
	comm := bgp.NewPathAttributeCommunities([]uint32{community})
	origin := bgp.NewPathAttributeOrigin(0)
	if p.Addr().Is4() {
		nlri := bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		return apiutil.NewPath(nlri, withdraw, []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop(s.cfg.RouterID), comm}, time.Now())
	}
	nlri := bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
	mp := bgp.NewPathAttributeMpReachNLRI("::", []bgp.AddrPrefixInterface{nlri})
	return apiutil.NewPath(nlri, withdraw, []bgp.PathAttributeInterface{origin, mp, comm}, time.Now())
}

// NeighborState is one neighbor as spfctl show neighbors prints it.
type NeighborState struct {
	Address   string `json:"address"`
	ASN       uint32 `json:"as"`
	State     string `json:"state"`
	Received  int    `json:"received"`
	LastError string `json:"last_error,omitempty"`
}

// Neighbors lists the neighbors and their sessions.
func (s *Speaker) Neighbors(ctx context.Context) ([]NeighborState, error) {
	var out []NeighborState
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		st := NeighborState{Address: p.Conf.NeighborAddress, ASN: p.Conf.PeerAsn}
		if p.State != nil {
			st.State = strings.ToLower(strings.TrimPrefix(p.State.SessionState.String(), "SESSION_STATE_"))
		}
		s.mu.Lock()
		st.Received = len(s.rib[st.Address])
		s.mu.Unlock()
		st.LastError = s.lastError(st.Address)
		out = append(out, st)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, err
}

func (s *Speaker) lastError(addr string) string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.lastErr[addr]
}

// speakerLogger takes GoBGP's warnings and errors: each is logged, and
// one about a neighbor (GoBGP's "Key" field) becomes its last error, for
// show neighbors. GoBGP's info and debug chatter is dropped.
type speakerLogger struct{ s *Speaker }

func (l speakerLogger) note(lvl func(log.Logger) log.Logger, msg string, f gobgplog.Fields) {
	text := msg
	if code, ok := f["Code"].(uint8); ok {
		sub, _ := f["Subcode"].(uint8)
		text += " (" + bgp.NewNotificationErrorCode(code, sub).String() + ")"
	}
	for _, k := range []string{"Error", "Reason", "Communicated-Reason", "Family"} {
		if v, ok := f[k]; ok && fmt.Sprint(v) != "" {
			text += fmt.Sprintf(" %s=%v", strings.ToLower(k), v)
		}
	}
	key, _ := f["Key"].(string)
	if _, err := netip.ParseAddr(key); err == nil {
		l.s.errMu.Lock()
		l.s.lastErr[key] = time.Now().UTC().Format("2006-01-02T15:04:05Z") + " " + text
		l.s.errMu.Unlock()
	} else {
		key = ""
	}
	lvl(l.s.cfg.Logger).Log("msg", "bgp: "+text, "neighbor", key)
}

func (l speakerLogger) Panic(msg string, f gobgplog.Fields) { l.note(level.Error, msg, f) }
func (l speakerLogger) Fatal(msg string, f gobgplog.Fields) { l.note(level.Error, msg, f) }
func (l speakerLogger) Error(msg string, f gobgplog.Fields) { l.note(level.Error, msg, f) }
func (l speakerLogger) Warn(msg string, f gobgplog.Fields)  { l.note(level.Warn, msg, f) }
func (speakerLogger) Info(string, gobgplog.Fields)          {}
func (speakerLogger) Debug(string, gobgplog.Fields)         {}
func (speakerLogger) SetLevel(gobgplog.LogLevel)            {}
func (speakerLogger) GetLevel() gobgplog.LogLevel           { return gobgplog.WarnLevel }
