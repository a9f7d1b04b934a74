package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// barWidth is the longest bar of the text chart: the line fits in 80
// columns with the hour and the two numbers.
const barWidth = 24

// Text writes the report as plain text for a mail client: no line over
// 80 columns, a chart of '#' (denied) and '=' (accepted) bars.
func Text(w io.Writer, d *Data) error {
	var b strings.Builder
	span := d.To.Sub(d.From).Round(time.Hour)
	fmt.Fprintf(&b, "spfd report for %s\n", oneLine(d.Host))
	fmt.Fprintf(&b, "%s to %s (%s)\n\n", d.From.Format("2006-01-02 15:04"), d.To.Format("2006-01-02 15:04 MST"), hours(span))

	t := d.Totals()
	denied, _ := t.Denied()
	unit := d.deniedUnit()
	fmt.Fprintf(&b, "Denied by the blacklist:   %d %s (%d packets)\n", denied, unit, t.BlackPackets)
	fmt.Fprintf(&b, "Accepted by the MTA:       %d SMTP connections, %d messages delivered\n", t.MailConnections, t.MailDeliveries)
	fmt.Fprintf(&b, "Let in by the whitelist:   %d connections (%d packets)\n", t.WhiteConnections, t.WhitePackets)
	if all := denied + t.MailConnections; all > 0 {
		fmt.Fprintf(&b, "Denied of all attempts:    %s\n", pct(denied, all))
	}

	// Two days fit a mail per hour; longer reports chart per day.
	rows, per, layout := d.Hours, "hour", "Jan 02 15h"
	if len(rows) > 48 {
		rows, per, layout = byDay(rows), "day", "Mon Jan 02"
	}
	fmt.Fprintf(&b, "\nPer %s: # denied %s, = SMTP connections accepted\n", per, unit)
	var most uint64 = 1
	for _, h := range rows {
		n, _ := h.Denied()
		most = max(most, n, h.MailConnections)
	}
	for _, h := range rows {
		n, _ := h.Denied()
		fmt.Fprintf(&b, "%s %-*s %7d\n", h.Start.Format(layout), barWidth, bar('#', n, most), n)
		fmt.Fprintf(&b, "%s %-*s %7d\n", strings.Repeat(" ", len(layout)), barWidth, bar('=', h.MailConnections, most), h.MailConnections)
	}

	l := d.Lists
	fmt.Fprintf(&b, "\nWhitelist: %d entries, %d prefixes pushed\n", l.WhiteEntries, l.WhitePushed)
	fmt.Fprintf(&b, "Blacklist: %d entries, %d prefixes pushed\n", l.BlackEntries, l.BlackPushed)
	fmt.Fprintf(&b, "Repeat offenders remembered: %d\n", d.Offenders)

	fmt.Fprintf(&b, "\nSources (seen: entries a packet met since they were listed)\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "list\tsource\tentries\tseen\thit rate")
	for _, s := range d.Sources {
		seen, rate := "-", "-"
		if s.Seen != nil {
			seen, rate = fmt.Sprint(*s.Seen), pct(uint64(*s.Seen), uint64(s.Entries))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.List, oneLine(s.Source), s.Entries, seen, rate)
	}
	tw.Flush()
	if d.SeenNote != "" {
		fmt.Fprintf(&b, "(seen not counted: %s)\n", oneLine(d.SeenNote))
	}

	if len(d.TopBlocked) > 0 {
		fmt.Fprintf(&b, "\nTop blocked\n")
		tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "prefix\tpackets\tsources")
		for _, x := range d.TopBlocked {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", oneLine(x.Prefix), x.Packets, oneLine(strings.Join(x.Sources, ", ")))
		}
		tw.Flush()
	}

	wk := d.Walks
	fmt.Fprintf(&b, "\nSPF walks")
	if !wk.LastPass.IsZero() {
		fmt.Fprintf(&b, ", last pass %s", wk.LastPass.Format("2006-01-02 15:04"))
	}
	fmt.Fprintf(&b, ": %d domains, %d networks whitelisted\n", wk.Domains, wk.Whitelist)
	fmt.Fprintf(&b, "  %d complete, %d temporary failures, %d permanent failures, %d refused\n",
		wk.Complete, wk.TempFail, wk.PermFail, wk.Refused)
	for _, p := range wk.Problems {
		// A problem names a domain and what DNS said: cut to the line.
		p = oneLine(p)
		if r := []rune(p); len(r) > 76 {
			p = string(r[:75]) + "…"
		}
		fmt.Fprintf(&b, "  %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// byDay adds the hours up per day (in the hours' own zone).
func byDay(hs []Hour) []Hour {
	var out []Hour
	for _, h := range hs {
		day := time.Date(h.Start.Year(), h.Start.Month(), h.Start.Day(), 0, 0, 0, 0, h.Start.Location())
		if len(out) == 0 || !out[len(out)-1].Start.Equal(day) {
			out = append(out, Hour{Start: day})
		}
		out[len(out)-1].Add(h.Sample)
	}
	return out
}

// bar draws n of most as up to barWidth runes of c, at least one for any
// n above zero.
func bar(c byte, n, most uint64) string {
	if n == 0 || most == 0 {
		return ""
	}
	k := int(n * barWidth / most)
	return strings.Repeat(string(c), max(k, 1))
}

func pct(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func hours(d time.Duration) string {
	h := int(d.Hours())
	if h%24 == 0 && h >= 48 {
		return fmt.Sprintf("%d days", h/24)
	}
	return fmt.Sprintf("%d hours", h)
}

// oneLine keeps text from the state (a DNS error, a source's name) on
// its line and printable: a report goes into mail.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
