package daemon

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/pftable"
	"github.com/spfd/spfd/prefixset"
)

// periodView is what the series says of one period up to now.
type periodView struct {
	Period string `json:"period"` // hour, day, week
	state.Sample
}

// sourceView is one source's share of a list, and, where the kernel
// counts each element, how many of its entries were seen since: met by
// a packet on the ports the rules watch.
type sourceView struct {
	List    string `json:"list"`
	Source  string `json:"source"`
	Entries int    `json:"entries"`
	Seen    *int   `json:"seen,omitempty"`
}

var periods = []struct {
	name string
	span time.Duration
}{{"hour", time.Hour}, {"day", 24 * time.Hour}, {"week", 7 * 24 * time.Hour}}

func (d *Daemon) periodViews(now time.Time) []periodView {
	var out []periodView
	for _, p := range periods {
		step := time.Minute
		if p.span > state.MinuteSpan {
			step = time.Hour
		}
		out = append(out, periodView{Period: p.name, Sample: d.state.SeriesSum(state.Window(now, p.span, step))})
	}
	return out
}

// blackCounts reads the blacklist's element counters (the whole table:
// for -v and reports); where the backend cannot tell, unseen says why.
func (d *Daemon) blackCounts(ctx context.Context) (counts []pftable.ElementCount, unseen string) {
	d.mu.Lock()
	backend, cfg := d.backend, d.cfg
	d.mu.Unlock()
	eh, ok := backend.(pftable.ElementHitter)
	if !ok {
		return nil, "the " + backend.Kind() + " backend does not count each element"
	}
	counts, err := eh.ElementCounts(ctx, tableName(cfg.Black))
	if err != nil {
		return nil, err.Error()
	}
	return counts, ""
}

// sourceViews counts each list's entries by source; given the
// blacklist's element counts, it also counts, per source, the entries a
// packet met.
func (d *Daemon) sourceViews(counts []pftable.ElementCount, seen bool) []sourceView {
	var hits *prefixset.Set
	if seen {
		hits = pftable.HitSet(counts)
	}
	var out []sourceView
	for _, l := range []state.List{state.White, state.Black} {
		entries := make(map[string]int)
		for src, n := range d.state.SourceCounts(l) {
			entries[sourceLabel(src)] += n
		}
		met := make(map[string]int)
		if hits != nil && l == state.Black {
			d.eachEntry(l, func(e state.Entry) {
				if hits.Overlaps(e.Prefix) {
					for _, h := range e.Holds {
						met[sourceLabel(h.Source)]++
					}
				}
			})
		}
		for _, src := range slices.Sorted(maps.Keys(entries)) {
			v := sourceView{List: l.String(), Source: src, Entries: entries[src]}
			if hits != nil && l == state.Black {
				n := met[src]
				v.Seen = &n
			}
			out = append(out, v)
		}
	}
	return out
}

// eachEntry walks a shared copy of list.
func (d *Daemon) eachEntry(l state.List, f func(state.Entry)) {
	sd, release := d.dumps.acquire(l, d.state.Version(), true, func() (*state.Dump, *prefixset.Set) { return d.state.Dump(l) })
	defer release()
	sd.dump.Each(func(e state.Entry) bool {
		f(e)
		return true
	})
}

// writeTraffic prints the periods and the sources under show stats.
func writeTraffic(w io.Writer, ps []periodView, ss []sourceView, unseen string) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlast\twhite packets\twhite connections\tblack packets\tblack connections\tmail connections\tmail delivered")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Period, p.WhitePackets, p.WhiteConnections, p.BlackPackets, p.BlackConnections, p.MailConnections, p.MailDeliveries)
	}
	fmt.Fprintln(tw, "\nlist\tsource\tentries\tseen since listed")
	for _, s := range ss {
		seen := "-"
		if s.Seen != nil {
			seen = fmt.Sprintf("%d (%s)", *s.Seen, percent(*s.Seen, s.Entries))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.List, s.Source, s.Entries, seen)
	}
	tw.Flush()
	if unseen != "" {
		fmt.Fprintf(w, "(seen since listed: not counted: %s)\n", unseen)
	}
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// showTraffic is the part of show stats that the series and the sources
// answer; verbose reads the element counters for the seen column.
func (d *Daemon) showTraffic(ctx context.Context, w io.Writer, req control.Request) error {
	ps := d.periodViews(d.now())
	var counts []pftable.ElementCount
	unseen := ""
	if req.Verbose {
		counts, unseen = d.blackCounts(ctx)
	}
	ss := d.sourceViews(counts, req.Verbose && unseen == "")
	if req.JSON {
		if err := jsonLines(w, ps); err != nil {
			return err
		}
		return jsonLines(w, ss)
	}
	writeTraffic(w, ps, ss, unseen)
	return nil
}
