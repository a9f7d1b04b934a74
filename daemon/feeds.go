package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/feed"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/pftable"
	"github.com/spfd/spfd/prefixset"
)

// runFeed fetches one feed now and every refresh interval. A failed fetch
// keeps the last good copy; with a TTL, its entries go that long after
// the last good fetch.
// A reload (refetch) fetches at once, with the same validators.
func (d *Daemon) runFeed(ctx context.Context, f config.Feed, fetcher *feed.Fetcher, refetch <-chan struct{}) {
	src := feed.Source{Name: f.Name, Path: f.Path, URL: f.URL, MaxSize: f.MaxSize}
	list, _ := state.ParseList(f.List)
	if list == state.White {
		// A whitelist feed must not whitelist the Internet, in one line
		// or in a range's pieces.
		d.mu.Lock()
		walk := d.cfg.Walk
		d.mu.Unlock()
		src.Refuse = func(ps []netip.Prefix) bool { return broaderThanFloor(walk, ps) }
	}
	source := state.PrefixFeed + f.Name
	for {
		res, err := fetcher.Fetch(ctx, src)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.metrics.feedFetches.WithLabelValues(f.Name, "error").Inc()
			d.recordError("feed "+f.Name, fmt.Errorf("%w (keeping the last good copy)", err))
		case res.NotModified:
			d.metrics.feedFetches.WithLabelValues(f.Name, "not-modified").Inc()
			d.refreshFeed(list, source, f.TTL)
		default:
			d.metrics.feedFetches.WithLabelValues(f.Name, "loaded").Inc()
			if res.BadLines > 0 {
				d.warn("feed", fmt.Sprintf("%s: %d bad lines skipped, first: %v", f.Name, res.BadLines, res.FirstBad))
			}
			ps := res.Prefixes
			if list == state.White {
				ps = d.floor(f.Name, ps)
			}
			added, removed := d.state.SetSource(list, source, ps, expiry(d.now(), f.TTL))
			d.info("msg", "feed loaded", "feed", f.Name, "list", list, "entries", len(ps), "added", added, "removed", removed)
			d.signal(d.dirty)
			d.signal(d.save)
		}
		next := d.clock.NewTimer(f.Refresh)
		select {
		case <-ctx.Done():
			next.Stop()
			return
		case <-refetch:
			next.Stop()
		case <-next.C():
		}
	}
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// refreshFeed extends an unchanged feed's entries by its TTL.
func (d *Daemon) refreshFeed(list state.List, source string, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	d.state.ExtendSource(list, source, expiry(d.now(), ttl))
}

// floor drops feed and BGP entries broader than the walk's safety floor:
// a feed must not whitelist the Internet, nor blacklist it. Each refusal
// is logged once, not at every look at the routes.
func (d *Daemon) floor(name string, ps []netip.Prefix) []netip.Prefix {
	return d.floorAt(name, ps, config.Prefixlen{}, "the safety floor")
}

// floorAt refuses the prefixes broader than the walk floor or than
// limit, whichever is narrower, and logs each refusal once, naming what
// was exceeded.
func (d *Daemon) floorAt(name string, ps []netip.Prefix, limit config.Prefixlen, what string) []netip.Prefix {
	d.mu.Lock()
	defer d.mu.Unlock()
	v4, v6 := max(d.cfg.Walk.FloorIPv4, limit.IPv4), max(d.cfg.Walk.FloorIPv6, limit.IPv6)
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if (p.Addr().Is4() && p.Bits() < v4) || (p.Addr().Is6() && p.Bits() < v6) {
			key := name + " " + p.String()
			if _, told := d.refusedTold[key]; !told {
				if d.refusedTold == nil || len(d.refusedTold) >= maxRefusedTold {
					d.refusedTold = make(map[string]struct{})
				}
				d.refusedTold[key] = struct{}{}
				d.warn("feed", fmt.Sprintf("%s: %s is broader than %s, refused", name, p, what))
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// maxRefusedTold bounds the refusals remembered as logged.
const maxRefusedTold = 10_000

// export writes the pushed lists to the configured export files.
func (d *Daemon) export(ctx context.Context, cfg *config.Config, white, black *prefixset.Set) error {
	tables := map[string]pftable.FileTable{}
	sets := map[string]*prefixset.Set{}
	// spamd-setup misreads IPv6 lines (2a01:4f8::1/128 as 2.0.0.0), so
	// each export is two files: IPv4 at the path, IPv6 beside it.
	for path, set := range map[string]*prefixset.Set{cfg.ExportWhite: white, cfg.ExportBlack: black} {
		if path == "" {
			continue
		}
		v4, v6 := splitFamilies(set)
		tables[path] = pftable.FileTable{Path: path}
		sets[path] = v4
		p6 := ExportIPv6Path(path)
		tables[p6] = pftable.FileTable{Path: p6}
		sets[p6] = v6
	}
	if len(tables) == 0 {
		return nil
	}
	d.mu.Lock()
	if d.exporter == nil {
		d.exporter = pftable.NewFile(tables)
	}
	d.exporter.Tables = tables
	ex := d.exporter
	d.mu.Unlock()
	for path, set := range sets {
		if err := ex.Sync(ctx, path, set); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// ExportIPv6Path is where an export's IPv6 entries go: "-ipv6" before the
// extension ("spfd-black.txt" gives "spfd-black-ipv6.txt").
func ExportIPv6Path(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-ipv6" + ext
}

func splitFamilies(set *prefixset.Set) (v4, v6 *prefixset.Set) {
	var b4, b6 prefixset.Builder
	set.Each(func(p netip.Prefix) bool {
		if p.Addr().Is4() {
			b4.Add(p)
		} else {
			b6.Add(p)
		}
		return true
	})
	return b4.Set(), b6.Set()
}
