// Package bgp shares spfd's lists over BGP in bgp-spamd's manner, with a
// small BGP-4 speaker of its own: routes carrying a list's community
// become that list's entries, and spfd's own findings are announced as
// routes with their list's community. Nothing goes into the kernel's
// routing table, and no received route is ever passed on.
//
// The speaker keeps what it needs and no more: per neighbor, the
// prefixes received and their list. A session reads its neighbor's
// messages one at a time and applies each before reading the next, so a
// neighbor that sends faster than spfd takes them waits on TCP's window
// instead of filling a queue; what goes out is worked out from the
// announced lists when the socket takes more, so a flapping list costs
// nothing while a neighbor is slow.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
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
	Listen    []string // addresses to listen on (none: all)
	Port      int32    // listen port (default 179; -1: do not listen)
	Neighbors []Neighbor
	// Communities of the lists.
	White, Black uint32
	// Hold keeps a neighbor's routes this long after its session went
	// down, so a flap does not empty the list.
	Hold time.Duration
	// Logger gets session changes (info when up, warning when down) and
	// errors; nil drops them.
	Logger log.Logger
}

// Timers. The hold time offered is the RFC's suggestion; after a session
// ends, or a connection fails, spfd waits before it dials again, longer
// after each failure, and a neighbor torn down for sending too much is
// refused for a while, as bgpd leaves it idle.
const (
	holdTime        = 90 * time.Second
	openTimeout     = 60 * time.Second
	dialTimeout     = 10 * time.Second
	firstRetry      = 5 * time.Second
	maxRetry        = 2 * time.Minute
	maxPrefixIdle   = 2 * time.Minute
	defaultBGPPort  = 179
	maxIncomingWait = 4
)

// Speaker is a running BGP speaker.
type Speaker struct {
	cfg       Config
	routerID  netip.Addr
	sessions  map[netip.Addr]*session
	listeners []net.Listener
	wg        sync.WaitGroup

	mu      sync.Mutex
	rib     map[string]*ribIn    // neighbor -> what it sent
	down    map[string]time.Time // neighbor -> when its session went down
	version uint64
	// out is what is announced, prefix -> community, replaced whole by
	// Announce; outVersion counts the replacements.
	out        map[netip.Prefix]uint32
	outVersion uint64
	announced  map[string][]netip.Prefix // list -> prefixes
	outDone    *sync.Cond                // a session caught up with out
}

// ribIn is one neighbor's routes. Each session's routes carry its
// generation: when a session comes up again the neighbor sends its table
// anew, and routes of an older session that it does not send again are
// swept once it marks the end of its table, or a while after the session
// came up. Counts per family, for max-prefix, are of this session's
// routes.
type ribIn struct {
	routes  map[netip.Prefix]ribEntry
	gen     uint32
	sweepAt time.Time // zero: nothing to sweep
	n4, n6  int
}

type ribEntry struct {
	list string
	gen  uint32
}

// staleFor is how long routes of a previous session wait for the
// neighbor to send them again, when it does not mark the end of its
// table.
const staleFor = 30 * time.Second

// familyCount is the count of this session's routes of p's family.
func (r *ribIn) familyCount(p netip.Prefix) *int {
	if p.Addr().Is4() {
		return &r.n4
	}
	return &r.n6
}

// counted reports whether p is a route of this session (and counted),
// not one left from a previous one.
func (r *ribIn) counted(p netip.Prefix) bool {
	e, ok := r.routes[p]
	return ok && e.gen == r.gen
}

func (r *ribIn) set(p netip.Prefix, list string) {
	if !r.counted(p) {
		*r.familyCount(p)++
	}
	r.routes[p] = ribEntry{list, r.gen}
}

func (r *ribIn) del(p netip.Prefix) {
	if r.counted(p) {
		*r.familyCount(p)--
	}
	delete(r.routes, p)
}

// sweep drops the routes of previous sessions.
func (r *ribIn) sweep() {
	for p, e := range r.routes {
		if e.gen != r.gen {
			delete(r.routes, p)
		}
	}
	r.sweepAt = time.Time{}
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
		cfg.Port = defaultBGPPort
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	id, err := netip.ParseAddr(cfg.RouterID)
	if err != nil || !id.Is4() || id.IsUnspecified() {
		return nil, fmt.Errorf("bgp: router id %q is not an IPv4 address", cfg.RouterID)
	}
	sp := &Speaker{
		cfg: cfg, routerID: id, sessions: make(map[netip.Addr]*session),
		rib: make(map[string]*ribIn), down: make(map[string]time.Time),
		out: map[netip.Prefix]uint32{}, announced: map[string][]netip.Prefix{},
	}
	sp.outDone = sync.NewCond(&sp.mu)
	for _, n := range cfg.Neighbors {
		s, err := newSession(sp, n)
		if err != nil {
			return nil, err
		}
		if _, dup := sp.sessions[s.addr]; dup {
			return nil, fmt.Errorf("bgp: neighbor %s given twice", s.addr)
		}
		sp.sessions[s.addr] = s
	}
	if cfg.Port >= 0 {
		addrs := cfg.Listen
		if len(addrs) == 0 {
			addrs = []string{"0.0.0.0", "::"}
		}
		for _, a := range addrs {
			ln, err := sp.listen(ctx, a)
			if err != nil {
				sp.closeListeners()
				return nil, fmt.Errorf("bgp: listening on %s: %w", a, err)
			}
			sp.listeners = append(sp.listeners, ln)
		}
	}
	for _, ln := range sp.listeners {
		sp.wg.Add(1)
		go sp.accept(ln)
	}
	for _, s := range sp.sessions {
		sp.wg.Add(1)
		go s.run(ctx)
	}
	go func() {
		<-ctx.Done()
		sp.closeListeners()
		sp.mu.Lock()
		sp.outDone.Broadcast()
		sp.mu.Unlock()
	}()
	return sp, nil
}

// Wait waits for the speaker's goroutines after its context ended.
func (sp *Speaker) Wait() { sp.wg.Wait() }

func (sp *Speaker) closeListeners() {
	for _, ln := range sp.listeners {
		ln.Close()
	}
}

// listen opens the BGP port on addr, with every neighbor's TCP-MD5 key
// of that family set on the socket, so the kernel drops unsigned
// segments from those neighbors before anything reads them.
func (sp *Speaker) listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c rawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, s := range sp.sessions {
				if s.n.Password != "" {
					serr = errors.Join(serr, setMD5(int(fd), s.addr, s.n.Password))
				}
			}
		})
		return errors.Join(err, serr)
	}}
	lc.SetMultipathTCP(false) // TCP-MD5 needs plain TCP
	return lc.Listen(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(int(sp.cfg.Port))))
}

// accept hands each connection to its neighbor's session; a connection
// from anyone else is closed at once.
func (sp *Speaker) accept(ln net.Listener) {
	defer sp.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		s := sp.sessions[ap.Addr().Unmap()]
		if s == nil {
			c.Close()
			continue
		}
		select {
		case s.incoming <- c:
		default:
			c.Close() // it is opening connections faster than they fail
		}
	}
}

// listOf maps a route's communities to a list; a route with both, or
// neither, names none.
func (sp *Speaker) listOf(communities []uint32) string {
	white, black := slices.Contains(communities, sp.cfg.White), slices.Contains(communities, sp.cfg.Black)
	switch {
	case white && !black:
		return "white"
	case black && !white:
		return "black"
	}
	return ""
}

// apply takes one UPDATE from neighbor into its routes. A route past
// max for its family is not taken, and the session is to end.
func (sp *Speaker) apply(neighbor string, u *update, max uint32) error {
	list := sp.listOf(u.communities)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	r := sp.ribOf(neighbor)
	sp.version++
	if u.endOfRIB() && !r.sweepAt.IsZero() {
		r.sweep()
		return nil
	}
	for _, p := range u.withdrawn {
		r.del(p)
	}
	for _, p := range u.announced {
		if list == "" {
			r.del(p) // a route that names no list replaces one that did
			continue
		}
		if max > 0 && !r.counted(p) && uint32(*r.familyCount(p)) >= max {
			return &notifyError{code: errCease, sub: ceaseMaxPrefix, data: maxPrefixData(p, max),
				why: fmt.Sprintf("more than %d routes of one family", max)}
		}
		r.set(p, list)
	}
	return nil
}

func (sp *Speaker) ribOf(neighbor string) *ribIn {
	r := sp.rib[neighbor]
	if r == nil {
		r = &ribIn{routes: make(map[netip.Prefix]ribEntry)}
		sp.rib[neighbor] = r
	}
	return r
}

// sessionUp and sessionDown keep the hold of a lost neighbor's routes.
func (sp *Speaker) sessionUp(neighbor string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.down, neighbor)
	r := sp.ribOf(neighbor)
	r.gen++
	r.n4, r.n6 = 0, 0
	if len(r.routes) > 0 {
		r.sweepAt = time.Now().Add(staleFor)
	}
}

func (sp *Speaker) sessionDown(neighbor string) int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	held := 0
	if r := sp.rib[neighbor]; r != nil {
		held = len(r.routes)
	}
	if _, ok := sp.down[neighbor]; !ok && held > 0 {
		sp.down[neighbor] = time.Now()
	}
	sp.outDone.Broadcast()
	return held
}

// Version changes whenever received routes change.
func (sp *Speaker) Version() uint64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.version
}

// Received returns, per neighbor, the prefixes of list it sends. A
// neighbor whose session is down keeps its routes for the hold time.
func (sp *Speaker) Received(list string) map[string][]netip.Prefix {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make(map[string][]netip.Prefix)
	for n, r := range sp.rib {
		since, down := sp.down[n]
		if down && time.Since(since) > sp.cfg.Hold {
			delete(sp.rib, n)
			delete(sp.down, n)
			sp.version++
			continue
		}
		if !down && !r.sweepAt.IsZero() && time.Now().After(r.sweepAt) {
			r.sweep()
			sp.version++
		}
		for p, e := range r.routes {
			if e.list == list {
				out[n] = append(out[n], p)
			}
		}
	}
	return out
}

// HeldUntil returns, for each neighbor whose session is down and whose
// routes are still held, when the hold runs out.
func (sp *Speaker) HeldUntil() map[string]time.Time {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make(map[string]time.Time, len(sp.down))
	for n, since := range sp.down {
		out[n] = since.Add(sp.cfg.Hold)
	}
	return out
}

// Announce makes the speaker announce exactly prefixes for list, with the
// list's community, withdrawing what is no longer in it. Sessions send
// the difference as their sockets take it.
func (sp *Speaker) Announce(_ context.Context, list string, prefixes []netip.Prefix) error {
	if list != "white" && list != "black" {
		return fmt.Errorf("bgp: no list %q", list)
	}
	ps := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if p.IsValid() {
			ps = append(ps, p.Masked())
		}
	}
	sp.mu.Lock()
	sp.announced[list] = ps
	out := make(map[netip.Prefix]uint32, len(sp.out)+len(ps))
	for _, p := range sp.announced["black"] {
		out[p] = sp.cfg.Black
	}
	for _, p := range sp.announced["white"] {
		out[p] = sp.cfg.White // in both lists: the whitelist's
	}
	sp.out = out
	sp.outVersion++
	sp.mu.Unlock()
	for _, s := range sp.sessions {
		s.wakeWriter()
	}
	return nil
}

// Flush waits until every established session has written what was
// announced so far to its socket (not that the neighbor took it), or ctx
// ends. The benchmark's flooding peer uses it to keep its sends real.
func (sp *Speaker) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sp.mu.Lock()
		sp.outDone.Broadcast()
		sp.mu.Unlock()
	})
	defer stop()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for {
		behind := false
		for _, s := range sp.sessions {
			if s.isEstablished() && s.sentVersion() < sp.outVersion {
				behind = true
			}
		}
		if !behind {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sp.outDone.Wait()
	}
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
func (sp *Speaker) Neighbors(context.Context) ([]NeighborState, error) {
	var out []NeighborState
	for _, s := range sp.sessions {
		st := NeighborState{Address: s.addr.String(), ASN: s.n.ASN}
		st.State, st.LastError = s.status()
		sp.mu.Lock()
		if r := sp.rib[st.Address]; r != nil {
			st.Received = len(r.routes)
		}
		sp.mu.Unlock()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b NeighborState) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

func (sp *Speaker) logInfo(kv ...any) { level.Info(sp.cfg.Logger).Log(kv...) }
func (sp *Speaker) logWarn(kv ...any) { level.Warn(sp.cfg.Logger).Log(kv...) }
