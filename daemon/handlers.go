package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/internal/syntax"
	"github.com/spfd/spfd/pftable"
	"github.com/spfd/spfd/prefixset"
	"github.com/spfd/spfd/spf"
)

// handle answers one control command.
func (d *Daemon) handle(ctx context.Context, req control.Request, cmd control.Command, w io.Writer) error {
	d.debug("msg", "control", "cmd", strings.Join(cmd.Words(), " "))
	switch cmd.Name {
	case "show whitelist":
		return d.showList(ctx, w, state.White, req)
	case "show blacklist":
		return d.showList(ctx, w, state.Black, req)
	case "show domains":
		return d.showDomains(w, req)
	case "show status":
		return d.showStatus(ctx, w, req)
	case "show stats":
		return d.showStats(ctx, w, req)
	case "show report":
		return d.showReport(ctx, w, req, cmd)
	case "show neighbors":
		return d.showNeighbors(ctx, w, req)
	case "show rib":
		return d.showRIB(ctx, w, req)
	case "add":
		return d.cmdAdd(w, cmd)
	case "delete":
		return d.cmdDelete(w, cmd)
	case "expire":
		return d.cmdExpire(w, cmd)
	case "domain add":
		return d.cmdDomainAdd(ctx, w, cmd)
	case "domain delete":
		return d.cmdDomainDelete(w, cmd)
	case "rewalk":
		return d.cmdRewalk(ctx, w, cmd)
	case "reload":
		if err := d.Reload(); err != nil {
			return err
		}
		fmt.Fprintln(w, "configuration reloaded")
		return nil
	case "log verbose", "log brief":
		d.verbose.Store(cmd.Name == "log verbose")
		fmt.Fprintf(w, "logging %s\n", strings.TrimPrefix(cmd.Name, "log "))
		return nil
	}
	return fmt.Errorf("command %q not supported", cmd.Name)
}

// entryView is one entry as spfctl show -v -j prints it.
type entryView struct {
	Prefix   netip.Prefix `json:"prefix"`
	Holds    []holdView   `json:"sources"`
	Pushed   string       `json:"pushed"`
	Offences int          `json:"offences,omitempty"`
}

type holdView struct {
	Source  string    `json:"source"`
	Expires time.Time `json:"expires,omitzero"`
}

// showList prints the table as pushed, one prefix a line, or with -v every
// entry held, its sources and expiries, and whether it is pushed.
func (d *Daemon) showList(ctx context.Context, w io.Writer, list state.List, req control.Request) error {
	pushed := d.covers()
	if !req.Verbose {
		if req.JSON {
			type prefixView struct {
				Prefix netip.Prefix `json:"prefix"`
			}
			var views []prefixView
			for _, p := range pushed[list].Prefixes() {
				views = append(views, prefixView{p})
			}
			return jsonLines(w, views)
		}
		bw := bufio.NewWriterSize(w, 64<<10)
		var buf []byte
		var werr error
		pushed[list].Each(func(p netip.Prefix) bool {
			buf = append(p.AppendTo(buf[:0]), '\n')
			_, werr = bw.Write(buf)
			return werr == nil
		})
		if werr != nil {
			return werr
		}
		return bw.Flush()
	}
	sd, release := d.dumps.acquire(list, d.state.Version(), control.Privileged(ctx), func() (*state.Dump, *prefixset.Set) { return d.state.Dump(list) })
	defer release()
	dump, ignore := sd.dump, sd.ignore
	white := pushed[state.White]
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	var werr error
	var line []byte
	dump.Each(func(e state.Entry) bool {
		pushState := "pushed"
		if list == state.Black {
			pushState = state.PushState(e.Prefix, white, ignore)
		}
		if req.JSON {
			v := entryView{Prefix: e.Prefix, Pushed: pushState, Offences: e.Offences}
			for _, h := range e.Holds {
				v.Holds = append(v.Holds, holdView(h))
			}
			werr = enc.Encode(v)
			return werr == nil
		}
		line = append(e.Prefix.AppendTo(line[:0]), '\t')
		for i, h := range e.Holds {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, h.Source...)
			if !h.Expires.IsZero() {
				line = append(line, "(expires "...)
				line = h.Expires.AppendFormat(line, time.RFC3339)
				line = append(line, ')')
			}
		}
		line = append(line, '\t')
		line = append(line, pushState...)
		if e.Offences > 0 {
			line = append(line, "\toffence "...)
			line = strconv.AppendInt(line, int64(e.Offences), 10)
		}
		line = append(line, '\n')
		_, werr = bw.Write(line)
		return werr == nil
	})
	if werr != nil {
		return werr
	}
	return bw.Flush()
}

func (d *Daemon) showDomains(w io.Writer, req control.Request) error {
	states := d.state.Domains()
	if req.JSON {
		views := make([]domainView, len(states))
		for i, ds := range states {
			views[i] = domainView{DomainState: ds, TTLSeconds: int64(ds.TTL / time.Second)}
		}
		return jsonLines(w, views)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%-32s %-18s %8s  %-20s  %-20s  %s\n", "DOMAIN", "STATUS", "NETWORKS", "LAST WALK", "NEXT WALK", "FROM")
	for _, ds := range states {
		status := ds.Status
		if status == "" {
			status = "pending"
		}
		fmt.Fprintf(bw, "%-32s %-18s %8d  %-20s  %-20s  %s\n", ds.Name, status, len(ds.Prefixes),
			stamp(ds.LastWalk), stamp(ds.NextWalk), strings.Join(ds.Origins, ","))
		if ds.CapturedFrom != "" {
			fmt.Fprintf(bw, "\tcaptured %s from %s\n", stamp(ds.CapturedAt), ds.CapturedFrom)
		}
		if !ds.LostSince.IsZero() {
			fmt.Fprintf(bw, "\tSPF networks lost since %s; kept for the grace period\n", stamp(ds.LostSince))
		}
		if ds.Status == statusRefused {
			fmt.Fprintf(bw, "\tnetworks refused as too broad; the last good set (%s) stays\n", syntax.Count(len(ds.Prefixes), "network", "networks"))
		}
		for _, e := range ds.Errors {
			fmt.Fprintf(bw, "\terror: %s\n", e)
		}
		if req.Verbose {
			for _, wn := range ds.Warnings {
				fmt.Fprintf(bw, "\twarning: %s\n", wn)
			}
			for _, p := range ds.Prefixes {
				fmt.Fprintf(bw, "\t%s\n", p)
			}
		}
	}
	return bw.Flush()
}

// jsonLines writes -j output as spfctl.8 documents it: one JSON object a
// line, one per element of a list (none for an empty one).
func jsonLines[T any](w io.Writer, items []T) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// domainView is a domain's state for -j, its TTL in seconds.
type domainView struct {
	state.DomainState
	// HideTTL keeps the state's own ttl (nanoseconds, as the snapshot
	// stores it) out: a shallower field of the same name wins.
	HideTTL    *struct{} `json:"ttl,omitempty"`
	TTLSeconds int64     `json:"ttl_seconds,omitempty"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

type statusView struct {
	Uptime       int64     `json:"uptime_seconds"`
	Config       string    `json:"config"`
	Backend      string    `json:"backend"`
	WhiteEntries int       `json:"white_entries"`
	WhitePushed  int       `json:"white_pushed"`
	BlackEntries int       `json:"black_entries"`
	BlackPushed  int       `json:"black_pushed"`
	Domains      int       `json:"domains"`
	DomainStatus []string  `json:"domain_status"`
	LastSync     time.Time `json:"last_sync,omitzero"`
	SyncError    string    `json:"sync_error,omitempty"`
	InSync       bool      `json:"in_sync"`
	ReadingBack  []string  `json:"reading_back,omitempty"`
	Journal      int       `json:"journal_ops"`
	StateError   string    `json:"state_error,omitempty"`
	Resolvers    []string  `json:"resolvers"`
	LastWalk     *walkPass `json:"last_walk_pass,omitempty"`
	HeapMB       uint64    `json:"heap_mb"`
	Errors       []string  `json:"recent_errors,omitempty"`
}

func (d *Daemon) showStatus(_ context.Context, w io.Writer, req control.Request) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	domains := d.state.Domains()
	version := d.state.Version()
	d.mu.Lock()
	v := statusView{
		Uptime:       int64(d.now().Sub(d.started) / time.Second),
		Config:       d.opts.ConfigPath,
		Backend:      d.backend.Kind(),
		WhiteEntries: d.state.Len(state.White),
		BlackEntries: d.state.Len(state.Black),
		Domains:      len(domains),
		LastSync:     d.lastSync,
		InSync:       d.syncVersion == version && d.syncErr == nil,
		Journal:      d.state.JournalLines(),
		HeapMB:       ms.HeapAlloc >> 20,
		Errors:       slices.Clone(d.recentErrs),
		Resolvers:    slices.Clone(d.resolvers),
	}
	if !d.lastPass.At.IsZero() {
		pass := d.lastPass
		v.LastWalk = &pass
	}
	if d.syncErr != nil {
		v.SyncError = d.syncErr.Error()
	}
	backend := d.backend
	if err := d.state.Err(); err != nil {
		v.StateError = err.Error()
	}
	v.WhitePushed, v.BlackPushed = d.pushedCount[state.White], d.pushedCount[state.Black]
	counts := map[string]int{}
	for _, ds := range domains {
		s := ds.Status
		if s == "" {
			s = "pending"
		}
		counts[s]++
	}
	d.mu.Unlock()
	if br, ok := backend.(pftable.BackgroundReader); ok {
		v.ReadingBack = br.ReadingBack()
	}
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		v.DomainStatus = append(v.DomainStatus, fmt.Sprintf("%d %s", counts[s], s))
	}
	if req.JSON {
		return json.NewEncoder(w).Encode(v)
	}
	fmt.Fprintf(w, "uptime %s\nconfig %s\nbackend %s\n", config.FormatDuration(time.Duration(v.Uptime)*time.Second), v.Config, v.Backend)
	fmt.Fprintf(w, "whitelist %s, %s pushed\n", syntax.Count(v.WhiteEntries, "entry", "entries"), syntax.Count(v.WhitePushed, "prefix", "prefixes"))
	fmt.Fprintf(w, "blacklist %s, %s pushed\n", syntax.Count(v.BlackEntries, "entry", "entries"), syntax.Count(v.BlackPushed, "prefix", "prefixes"))
	fmt.Fprintf(w, "domains %d (%s)\n", v.Domains, strings.Join(v.DomainStatus, ", "))
	fmt.Fprintf(w, "resolvers %s\n", strings.Join(v.Resolvers, " "))
	if p := v.LastWalk; p != nil {
		fmt.Fprintf(w, "last walk pass %s: %s, %d complete, %d temporary-failure, %d permanent-failure, %d refused\n",
			stamp(p.At), syntax.Count(p.Domains, "domain", "domains"), p.Complete, p.TempFail, p.PermFail, p.Refused)
		if p.AllFailed && p.Domains > 1 {
			fmt.Fprintln(w, "walk problem: every domain failed; DNS looks broken")
			for _, s := range p.Servers {
				fmt.Fprintf(w, "\tresolver %s\n", s)
			}
		}
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "walk problem: %s %s: %s\n", pr.Domain, pr.Status, pr.Error)
		}
	}
	sync := "in sync"
	if !v.InSync {
		sync = "sync pending"
	}
	fmt.Fprintf(w, "last sync %s, %s\n", stamp(v.LastSync), sync)
	if len(v.ReadingBack) > 0 {
		fmt.Fprintf(w, "reading back %s from the kernel in the background\n", strings.Join(v.ReadingBack, " "))
	}
	if v.SyncError != "" {
		fmt.Fprintf(w, "sync error: %s\n", v.SyncError)
	}
	if v.StateError != "" {
		fmt.Fprintf(w, "state error: %s (changes may not be saved)\n", v.StateError)
	}
	fmt.Fprintf(w, "journal %s since the last snapshot\nheap %d MiB\n", syntax.Count(v.Journal, "op", "ops"), v.HeapMB)
	for _, e := range v.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

type statsView struct {
	Table    string    `json:"table"`
	List     string    `json:"list"`
	Held     int       `json:"entries_held"`
	Pushed   int       `json:"prefixes_pushed"`
	Elements int       `json:"table_elements"`
	Packets  *uint64   `json:"packets,omitempty"`
	Bytes    *uint64   `json:"bytes,omitempty"`
	LastSync time.Time `json:"last_sync,omitzero"`
	Repairs  int       `json:"drift_repairs"`
}

func (d *Daemon) showStats(ctx context.Context, w io.Writer, req control.Request) error {
	d.mu.Lock()
	backend, cfg, pushed := d.backend, d.cfg, d.pushedCount
	d.mu.Unlock()
	held := [2]int{d.state.Len(state.White), d.state.Len(state.Black)}
	// Plain show stats answers at once at any size, from the counters the
	// kernel sums (rules, pf's tables); -v may read every element.
	hc, fromHits := backend.(pftable.HitCounter)
	fromHits = fromHits && !req.Verbose
	var views []statsView
	for i, t := range []string{tableName(cfg.White), tableName(cfg.Black)} {
		var st pftable.Stats
		var err error
		if fromHits {
			st, err = hc.Hits(ctx, t)
		} else {
			st, err = backend.Stats(ctx, t)
		}
		if err != nil {
			return fmt.Errorf("stats of %s: %w", t, err)
		}
		// Pushed counts prefixes, as show status does; the backend counts
		// its own elements, which nftables merges into ranges.
		v := statsView{Table: t, List: state.List(i).String(), Held: held[i], Pushed: pushed[i], Elements: st.Entries,
			LastSync: st.LastSync, Repairs: st.Repairs}
		if st.Counters {
			v.Packets, v.Bytes = &st.Packets, &st.Bytes
		}
		views = append(views, v)
	}
	if req.JSON {
		if err := jsonLines(w, views); err != nil {
			return err
		}
		return d.showTraffic(ctx, w, req)
	}
	for _, v := range views {
		counters := "packets - bytes - (not counted by the " + backend.Kind() + " backend)"
		if fromHits {
			counters = "packets - bytes - (no rule counts them; -v sums the element counters)"
		}
		if v.Packets != nil {
			counters = fmt.Sprintf("packets %d bytes %d", *v.Packets, *v.Bytes)
		}
		fmt.Fprintf(w, "%s %s: held %d, pushed %s as %s, %s, last sync %s, drift repairs %d\n",
			v.List, v.Table, v.Held, syntax.Count(v.Pushed, "prefix", "prefixes"), syntax.Count(v.Elements, "table element", "table elements"),
			counters, stamp(v.LastSync), v.Repairs)
	}
	return d.showTraffic(ctx, w, req)
}

func (d *Daemon) cmdAdd(w io.Writer, cmd control.Command) error {
	list, _ := state.ParseList(cmd.List)
	d.mu.Lock()
	walk := d.cfg.Walk
	d.mu.Unlock()
	if !cmd.Force && walk.Broad(cmd.Prefix) {
		return fmt.Errorf("%s is broader than the walk floor /%d: it would cover whole providers (say force to add it anyway)",
			cmd.Prefix, walk.Floor(cmd.Prefix))
	}
	op := state.Op{Op: "add", List: list.String(), Prefix: cmd.Prefix, Source: state.SourceManual}
	if cmd.TTL > 0 {
		op.Expires = d.now().Add(cmd.TTL).Truncate(time.Second)
	}
	err := d.commit(op)
	note := ""
	if list == state.Black {
		white := d.covers()[state.White]
		if s := state.PushState(cmd.Prefix, white, d.state.Ignore()); s != "pushed" {
			note = " (" + s + ")"
		}
	}
	if err != nil {
		return err
	}
	d.info("msg", "entry added", "list", list, "prefix", cmd.Prefix, "ttl", config.FormatDuration(cmd.TTL))
	if op.Expires.IsZero() {
		fmt.Fprintf(w, "added %s to the %slist%s\n", cmd.Prefix, list, note)
	} else {
		fmt.Fprintf(w, "added %s to the %slist until %s%s\n", cmd.Prefix, list, stamp(op.Expires), note)
	}
	return nil
}

func (d *Daemon) cmdDelete(w io.Writer, cmd control.Command) error {
	list, _ := state.ParseList(cmd.List)
	if !d.state.Contains(list, cmd.Prefix) {
		return fmt.Errorf("%s is not in the %slist", cmd.Prefix, list)
	}
	if err := d.commit(state.Op{Op: "delete", List: list.String(), Prefix: cmd.Prefix}); err != nil {
		return err
	}
	d.info("msg", "entry deleted", "list", list, "prefix", cmd.Prefix)
	fmt.Fprintf(w, "deleted %s from the %slist\n", cmd.Prefix, list)
	return nil
}

func (d *Daemon) cmdExpire(w io.Writer, cmd control.Command) error {
	if !cmd.Prefix.IsValid() {
		for _, r := range d.expire() {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.List, r.Prefix, r.Source)
		}
		return nil
	}
	var ops []state.Op
	for _, list := range []state.List{state.White, state.Black} {
		if d.state.Contains(list, cmd.Prefix) {
			ops = append(ops, state.Op{Op: "delete", List: list.String(), Prefix: cmd.Prefix})
		}
	}
	if len(ops) == 0 {
		return fmt.Errorf("%s is in neither list", cmd.Prefix)
	}
	if err := d.commit(ops...); err != nil {
		return err
	}
	for _, op := range ops {
		fmt.Fprintf(w, "%s\t%s\texpired now\n", op.List, op.Prefix)
	}
	return nil
}

func (d *Daemon) cmdDomainAdd(ctx context.Context, w io.Writer, cmd control.Command) error {
	if err := d.commit(state.Op{Op: "domain-add", Domain: cmd.Domain}); err != nil {
		return err
	}
	d.info("msg", "domain added", "domain", cmd.Domain)
	// Walk it now, so the answer says what it gave.
	return d.reportWalks(w, d.walkDomains(ctx, []string{cmd.Domain}))
}

func (d *Daemon) cmdDomainDelete(w io.Writer, cmd control.Command) error {
	ds, ok := d.state.Domain(cmd.Domain)
	origins := ds.Origins
	if !ok {
		return fmt.Errorf("no domain %s", cmd.Domain)
	}
	var ops []state.Op
	if slices.Contains(origins, OriginRuntime) {
		ops = append(ops, state.Op{Op: "domain-delete", Domain: cmd.Domain})
	}
	if slices.Contains(origins, OriginCapture) {
		// Gone for good: the next mail to it must not bring it back.
		ops = append(ops, state.Op{Op: "capture-block", Domain: cmd.Domain})
	}
	if len(ops) == 0 {
		return fmt.Errorf("%s comes from %s; remove it there", cmd.Domain, strings.Join(origins, ", "))
	}
	if err := d.commit(ops...); err != nil {
		return err
	}
	d.info("msg", "domain deleted", "domain", cmd.Domain)
	if still, ok := d.state.Domain(cmd.Domain); ok {
		origins = still.Origins
		fmt.Fprintf(w, "%s: no longer added at run time; still walked for %s\n", cmd.Domain, strings.Join(origins, ", "))
	} else {
		fmt.Fprintf(w, "deleted domain %s and its networks\n", cmd.Domain)
	}
	return nil
}

func (d *Daemon) cmdRewalk(ctx context.Context, w io.Writer, cmd control.Command) error {
	var names []string
	if cmd.Domain != "" {
		if _, ok := d.state.Domain(cmd.Domain); !ok {
			return fmt.Errorf("no domain %s", cmd.Domain)
		}
		names = []string{cmd.Domain}
	} else {
		names = d.state.DomainNames()
	}
	// A rewalk asks the servers, not the cache.
	return d.reportWalks(w, d.walkDomains(spf.Fresh(ctx, d.now()), names))
}

func (d *Daemon) reportWalks(w io.Writer, results []spf.Result) error {
	var failed []string
	for _, r := range results {
		status := r.Status.String()
		if r.Refusal != "" {
			status = statusRefused
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Domain, status, syntax.Count(len(r.Prefixes), "network", "networks"))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "\terror: %s\n", e)
		}
		if r.Status != spf.Complete {
			failed = append(failed, r.Domain)
		}
	}
	if len(failed) > 0 {
		// The output is already sent: the error goes in the trailer, and
		// spfctl exits 1 as spfctl walk does.
		return errors.New("walk failed for " + strings.Join(failed, ", "))
	}
	return nil
}
