package daemon

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/spfd/spfd/bgp"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/prefixset"
)

// bgpSourcePrefix marks entries received over BGP: feed:bgp:<neighbor>.
const bgpSourcePrefix = state.PrefixFeed + "bgp:"

// startBGP starts the speaker when BGP is configured.
func (d *Daemon) startBGP(ctx context.Context, cfg *config.Config) (*bgp.Speaker, error) {
	b := cfg.BGP
	if b == nil {
		return nil, nil
	}
	white, err := bgp.ParseCommunity(b.White)
	if err != nil {
		return nil, err
	}
	black, err := bgp.ParseCommunity(b.Black)
	if err != nil {
		return nil, err
	}
	sc := bgp.Config{ASN: b.ASN, RouterID: b.RouterID, Listen: b.Listen, Port: b.Port, Hold: b.Hold, White: white, Black: black,
		Logger: d.logger}
	for _, n := range b.Neighbors {
		if n.Password != "" {
			// A password that cannot be set would leave the session
			// unsigned, open to anyone who can reach the port.
			a, err := netip.ParseAddr(n.Address)
			if err == nil {
				err = bgp.CheckMD5(a)
			}
			if err != nil {
				return nil, fmt.Errorf("bgp neighbor %s password: %w", n.Address, err)
			}
		}
		sc.Neighbors = append(sc.Neighbors, bgp.Neighbor{Address: n.Address, ASN: n.ASN, Password: n.Password,
			Multihop: n.Multihop, LocalAddress: n.LocalAddress, Port: n.Port, MaxPrefix: n.MaxPrefix})
	}
	return bgp.Start(ctx, sc)
}

// bgpLoop moves received routes into the lists, a batch at a time: one
// SetSource per neighbor and list, so a hundred thousand routes cost one
// diff, not a hundred thousand.
func (d *Daemon) bgpLoop(ctx context.Context, sp *bgp.Speaker) error {
	defer sp.Wait() // the speaker stops with ctx too: its sessions are closed before spfd exits
	t := d.clock.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	seen := uint64(0)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		// Look at least every few seconds: the hold after a lost session
		// runs out without any new route.
		if v := sp.Version(); v == seen && d.now().Sub(last) < 5*time.Second {
			continue
		} else {
			seen = v
		}
		last = d.now()
		d.applyBGP(sp)
	}
}

func (d *Daemon) applyBGP(sp *bgp.Speaker) {
	changed := false
	held := sp.HeldUntil()
	d.mu.Lock()
	b := d.cfg.BGP
	d.mu.Unlock()
	hold, limits := 5*time.Minute, [2]config.Prefixlen{}
	if b != nil {
		hold, limits = b.Hold, [2]config.Prefixlen{state.White: b.WhitePrefixlen, state.Black: b.BlackPrefixlen}
	}
	if d.bgpSeen == nil {
		d.bgpSeen, d.bgpRestored = make(map[string]bool), make(map[string]bool)
	}
	for _, list := range []state.List{state.White, state.Black} {
		rx := sp.Received(list.String())
		// 0.0.0.0/0 tagged for either list would whitelist or block
		// everything; the lists' prefixlen limits come on top.
		limit := limits[list]
		what := fmt.Sprintf("the safety floor or bgp prefixlen %s (inet /%d, inet6 /%d)", list, limit.IPv4, limit.IPv6)
		for n, ps := range rx {
			// A neighbor whose session is down keeps its routes for the
			// hold; show blacklist -v says until when.
			if a, r := d.state.SetSource(list, bgpSourcePrefix+n, d.floorAt("bgp "+n, ps, limit, what), held[n]); a+r > 0 {
				changed = true
			}
			d.bgpSeen[n] = true
		}
		for _, src := range d.state.Sources(list, bgpSourcePrefix) {
			n := strings.TrimPrefix(src, bgpSourcePrefix)
			if _, ok := rx[n]; ok {
				continue
			}
			if !d.bgpSeen[n] {
				// Restored from the saved state for a neighbor not heard
				// from since the start: held for the hold time, as if its
				// session had just gone down, then expired.
				if !d.bgpRestored[src] {
					d.bgpRestored[src] = true
					d.state.ExtendSource(list, src, d.now().Add(hold))
				}
				continue
			}
			d.state.SetSource(list, src, nil, time.Time{})
			changed = true
		}
	}
	if changed {
		d.signal(d.dirty)
		d.signal(d.save)
	}
}

// announceLoop tells BGP neighbors what was pushed, after each sync but
// apart from it: finding what is local to this host is a pass over every
// entry (a quarter of a second at a million), which adds must not wait
// for on their way to the kernel. Bursts of syncs share one pass.
func (d *Daemon) announceLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.announceDue:
		}
		d.mu.Lock()
		pushed := d.pushed
		d.mu.Unlock()
		d.announce(ctx, pushed[state.White], pushed[state.Black])
	}
}

// announce sends the lists' local findings (everything not itself
// received over BGP, and for the blacklist less the whitelist) to the
// neighbors.
func (d *Daemon) announce(ctx context.Context, white, black *prefixset.Set) {
	d.mu.Lock()
	sp, cfg := d.speaker, d.cfg
	d.mu.Unlock()
	if sp == nil || cfg.BGP == nil {
		return
	}
	var local [2]*prefixset.Set
	for _, list := range []state.List{state.White, state.Black} {
		local[list] = d.state.ListExcept(list, func(src string) bool { return strings.HasPrefix(src, bgpSourcePrefix) })
	}
	pushed := [2]*prefixset.Set{white, black}
	for _, name := range cfg.BGP.Announce {
		list, _ := state.ParseList(name)
		// Only what is pushed, and only what was found here.
		set := local[list]
		var ps []netip.Prefix
		set.Each(func(p netip.Prefix) bool {
			if pushed[list].Contains(p) {
				ps = append(ps, p)
			}
			return true
		})
		if err := sp.Announce(ctx, name, ps); err != nil {
			d.recordError("bgp announce", err)
		}
	}
}

// configuredSpeaker returns the BGP speaker, or an error for spfctl
// when there is none.
func (d *Daemon) configuredSpeaker() (*bgp.Speaker, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.speaker == nil {
		return nil, fmt.Errorf("bgp is not configured")
	}
	return d.speaker, nil
}

func (d *Daemon) showNeighbors(ctx context.Context, w io.Writer, req control.Request) error {
	sp, err := d.configuredSpeaker()
	if err != nil {
		return err
	}
	ns, err := sp.Neighbors(ctx)
	if err != nil {
		return err
	}
	if req.JSON {
		return jsonLines(w, ns)
	}
	fmt.Fprintf(w, "%-40s %-10s %-12s %-8s %s\n", "NEIGHBOR", "AS", "STATE", "ROUTES", "LAST ERROR")
	for _, n := range ns {
		last := n.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(w, "%-40s %-10d %-12s %-8d %s\n", n.Address, n.ASN, n.State, n.Received, last)
	}
	return nil
}

func (d *Daemon) showRIB(_ context.Context, w io.Writer, req control.Request) error {
	sp, err := d.configuredSpeaker()
	if err != nil {
		return err
	}
	type route struct {
		Neighbor string       `json:"neighbor"`
		List     string       `json:"list"`
		Prefix   netip.Prefix `json:"prefix"`
	}
	var routes []route
	for _, list := range []string{"white", "black"} {
		for n, ps := range sp.Received(list) {
			for _, p := range ps {
				routes = append(routes, route{n, list, p})
			}
		}
	}
	sort.Slice(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if a.Neighbor != b.Neighbor {
			return a.Neighbor < b.Neighbor
		}
		if a.List != b.List {
			return a.List < b.List
		}
		return a.Prefix.Addr().Less(b.Prefix.Addr())
	})
	if req.JSON {
		return jsonLines(w, routes)
	}
	for _, r := range routes {
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Neighbor, r.List, r.Prefix)
	}
	return nil
}
