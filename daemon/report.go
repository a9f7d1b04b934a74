package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/report"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/pftable"
	"go4.org/netipx"
)

// topBlocked is how many of the blacklist's busiest elements a report
// names.
const topBlocked = 10

// reportData gathers a report of the last days up to now.
func (d *Daemon) reportData(ctx context.Context, days int) *report.Data {
	now := d.now()
	host, _ := os.Hostname()
	from, to := state.Window(now, time.Duration(days)*24*time.Hour, time.Hour)
	r := &report.Data{Host: host, Generated: now, From: from, To: to, Offenders: d.state.Offenders()}
	for _, p := range d.state.SeriesPoints(from, to, time.Hour) {
		r.Hours = append(r.Hours, report.Hour{Start: p.Start, Sample: p.Sample})
	}
	d.mu.Lock()
	pushed := d.pushedCount
	d.mu.Unlock()
	r.Lists = report.Lists{WhiteEntries: d.state.Len(state.White), WhitePushed: pushed[state.White],
		BlackEntries: d.state.Len(state.Black), BlackPushed: pushed[state.Black]}

	counts, unseen := d.blackCounts(ctx)
	r.SeenNote = unseen
	for _, s := range d.sourceViews(counts, unseen == "") {
		r.Sources = append(r.Sources, report.Source{List: s.List, Source: s.Source, Entries: s.Entries, Seen: s.Seen})
	}
	r.TopBlocked = d.topBlocked(counts)

	w := &r.Walks
	w.ByStatus = make(map[string]int)
	for _, ds := range d.state.Domains() {
		w.Domains++
		status := ds.Status
		if status == "" {
			status = "unwalked"
		}
		w.ByStatus[status]++
		switch status {
		case "complete":
			w.Complete++
		case "temporary-failure":
			w.TempFail++
		case statusRefused:
			w.Refused++
		case "unwalked":
		default:
			w.PermFail++
		}
		w.Whitelist += len(ds.Prefixes)
		if ds.LastWalk.After(w.LastPass) {
			w.LastPass = ds.LastWalk
		}
		if status != "complete" && len(w.Problems) < maxProblems {
			why := status
			if len(ds.Errors) > 0 {
				why += ": " + ds.Errors[0]
			}
			w.Problems = append(w.Problems, ds.Name+": "+why)
		}
	}
	return r
}

// topBlocked names the blacklist's busiest elements and the sources of
// the entries inside them.
func (d *Daemon) topBlocked(counts []pftable.ElementCount) []report.Blocked {
	counts = slices.Clone(counts)
	slices.SortFunc(counts, func(a, b pftable.ElementCount) int {
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		return a.First.Compare(b.First)
	})
	counts = counts[:min(len(counts), topBlocked)]
	out := make([]report.Blocked, len(counts))
	ranges := make([]netipx.IPRange, len(counts))
	for i, c := range counts {
		ranges[i] = netipx.IPRangeFrom(c.First, c.Last)
		name := ranges[i].String()
		if p, ok := ranges[i].Prefix(); ok {
			name = p.String()
		}
		out[i] = report.Blocked{Prefix: name, Packets: c.Packets}
	}
	if len(out) == 0 {
		return nil
	}
	d.eachEntry(state.Black, func(e state.Entry) {
		for i, r := range ranges {
			if !overlaps(r, e.Prefix) {
				continue
			}
			for _, h := range e.Holds {
				if src := sourceLabel(h.Source); !slices.Contains(out[i].Sources, src) && len(out[i].Sources) < 4 {
					out[i].Sources = append(out[i].Sources, src)
				}
			}
		}
	})
	return out
}

func overlaps(r netipx.IPRange, p netip.Prefix) bool {
	return r.Overlaps(netipx.RangeOfPrefix(p))
}

// showReport answers show report: the data as JSON (what spfctl report
// draws), or the text report.
func (d *Daemon) showReport(ctx context.Context, w io.Writer, req control.Request, cmd control.Command) error {
	days := cmd.Days
	if days == 0 {
		days = 1
	}
	r := d.reportData(ctx, days)
	if req.JSON {
		return json.NewEncoder(w).Encode(r)
	}
	return report.Text(w, r)
}
