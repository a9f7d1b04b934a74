package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/feed"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/logwatch"
)

// logSet runs the followers of the configured log sources and the feeds,
// one unit per statement. A reload stops the units whose statement is gone
// or changed and starts the new ones; the others keep their followers,
// their open files and their counters.
type logSet struct {
	ctx     context.Context
	running map[string]*unit
}

// unit is one running log source or feed.
type unit struct {
	cancel context.CancelFunc
	done   chan struct{}
	poke   chan struct{} // a reload kept the unit: feeds fetch again
}

func newLogSet(ctx context.Context) *logSet {
	return &logSet{ctx: ctx, running: make(map[string]*unit)}
}

// update makes the set run exactly cfg's log sources and feeds. Callers
// serialise it (reloadMu).
func (ls *logSet) update(d *Daemon, cfg *config.Config) {
	want := make(map[string]func(context.Context, <-chan struct{}))
	for _, f := range cfg.Feeds {
		want[fmt.Sprintf("feed %#v", f)] = func(ctx context.Context, poke <-chan struct{}) {
			d.runFeed(ctx, f, feed.NewFetcher(), poke)
		}
	}
	for _, src := range cfg.Logs {
		want[fmt.Sprintf("log %#v", src)] = func(ctx context.Context, _ <-chan struct{}) { d.runSource(ctx, src) }
	}
	for key, u := range ls.running {
		if _, ok := want[key]; !ok {
			u.stop()
			delete(ls.running, key)
		}
	}
	for key, run := range want {
		if u, ok := ls.running[key]; ok {
			select {
			case u.poke <- struct{}{}:
			default:
			}
			continue
		}
		ctx, cancel := context.WithCancel(ls.ctx)
		u := &unit{cancel: cancel, done: make(chan struct{}), poke: make(chan struct{}, 1)}
		go func() {
			defer close(u.done)
			run(ctx, u.poke)
		}()
		ls.running[key] = u
	}
}

func (u *unit) stop() {
	u.cancel()
	<-u.done
}

// stop stops every unit.
func (ls *logSet) stop() {
	for key, u := range ls.running {
		u.stop()
		delete(ls.running, key)
	}
}

// runSource follows one log statement's files (or its journal unit) until
// ctx ends. One processor serves all its files: a threshold counts across
// them.
func (d *Daemon) runSource(ctx context.Context, src config.LogSource) {
	proc := logwatch.NewProcessor(src, d.state.Exempt)
	// Unauthenticated sessions from the host's own and the ignore
	// networks submit local users' mail (capture).
	proc.LocalNet = func(a netip.Addr) bool { return d.state.Ignore().ContainsAddr(a) }
	if src.Journal != "" {
		d.runJournal(ctx, src, proc)
		return
	}
	var pmu sync.Mutex
	var wg sync.WaitGroup
	for _, path := range src.Files {
		f := &logwatch.Follower{Path: path, Start: d.position(path), Logf: func(format string, args ...any) {
			d.warn("log", fmt.Sprintf(format, args...))
		}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runFollower(ctx, f, src, proc, &pmu)
		}()
	}
	wg.Wait()
}

func (d *Daemon) runFollower(ctx context.Context, f *logwatch.Follower, src config.LogSource, proc *logwatch.Processor, pmu *sync.Mutex) {
	out := make(chan logwatch.Batch, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx, out); err != nil {
			d.recordError("log "+f.Path, err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case b := <-out:
			now := d.now()
			var outcomes []logwatch.Outcome
			pmu.Lock()
			for _, line := range b.Lines {
				n := len(outcomes)
				outcomes = append(outcomes, proc.Line(line, now)...)
				for i := n; i < len(outcomes); i++ {
					if outcomes[i].Action == logwatch.Capture {
						outcomes[i].Evidence = evidence(f.Path, line)
					}
				}
			}
			d.noteMailTraffic(proc.TakeMailTraffic())
			pmu.Unlock()
			d.applyOutcomes(src, outcomes, b.Pos)
			d.setPosition(b.Pos)
		}
	}
}

// maxEvidence bounds the log line kept as a capture's evidence.
const maxEvidence = 300

// evidence is a log line as shown beside the domain it captured: cut
// short, control bytes escaped, so an attacker's text stays inert.
func evidence(source, line string) string {
	if len(line) > maxEvidence {
		line = line[:maxEvidence] + "..."
	}
	return source + ": " + strconv.QuoteToASCII(line)
}

// applyOutcomes blacklists and captures what a batch of lines asked for,
// in one journal write with pos, the position after the batch: after a
// crash, spfd resumes there and never counts those lines again.
func (d *Daemon) applyOutcomes(src config.LogSource, outcomes []logwatch.Outcome, pos logwatch.Position) {
	var ops []state.Op
	var captured []logwatch.Outcome
	type ban struct {
		o        logwatch.Outcome
		offence  int
		duration time.Duration
	}
	var bans []ban
	now := d.now()
	d.mu.Lock()
	ignore, repeat := d.cfg.CaptureIgnore, d.cfg.RepeatOffenders
	d.mu.Unlock()
	for _, o := range outcomes {
		switch o.Action {
		case logwatch.Ban:
			p := netip.PrefixFrom(o.Addr, o.Addr.BitLen())
			offence := d.offence(p, now, repeat)
			ttl := repeat.TTL(o.TTL, offence)
			ops = append(ops, state.Op{Op: "add", List: "black", Prefix: p, Source: state.PrefixLog + o.Rule,
				Expires: now.Add(ttl).Truncate(time.Second), Offence: offence, At: now.Truncate(time.Second)})
			bans = append(bans, ban{o, offence, ttl})
		case logwatch.Capture:
			captured = append(captured, o)
		}
	}
	if len(ops) == 0 && len(captured) == 0 {
		return
	}
	var names []string
	for _, o := range captured {
		name := o.Domain
		if d.state.CaptureBlocked(name) || config.CaptureIgnored(ignore, name) {
			continue
		}
		names = append(names, name)
		if !d.state.Captured(name) {
			ops = append(ops, state.Op{Op: "domain-add", Domain: name, Source: OriginCapture, Note: o.Evidence, At: now.Truncate(time.Second)})
		}
	}
	if len(ops) == 0 && len(names) == 0 {
		return
	}
	if len(ops) > 0 {
		if raw, err := json.Marshal(pos); err == nil {
			ops = append(ops, state.Op{Op: "position", Position: raw})
		}
	}
	if err := d.commitIfAny(ops...); err != nil {
		d.recordError("log", err)
		return
	}
	// Said once it is so: on disk and in the lists.
	for _, b := range bans {
		d.metrics.logEvents.WithLabelValues(b.o.Rule, "blacklist").Inc()
		d.info("msg", "blacklisted", "addr", b.o.Addr, "rule", b.o.Rule, "reason", b.o.Reason, "count", b.o.Count,
			"offence", b.offence, "ttl", config.FormatDuration(b.duration))
	}
	for _, o := range captured {
		d.metrics.logEvents.WithLabelValues(o.Rule, "capture").Inc()
	}
	for _, name := range d.state.SeenMail(names, now) {
		ds, _ := d.state.Domain(name)
		d.info("msg", "domain captured from outbound mail", "domain", name, "from", ds.CapturedFrom)
		d.signal(d.wake)
	}
}

// maxOffence caps the offence count kept: the hold stops growing long
// before.
const maxOffence = 1000

// offence returns which listing of p a ban from a log is. While a log
// still holds p, it is the same offence (held anew at its level); listed
// again within repeat-offenders within of its last listing, it is the
// next one; otherwise the first.
func (d *Daemon) offence(p netip.Prefix, now time.Time, r config.RepeatOffenders) int {
	prev, known := d.state.Offence(p.Addr())
	if !known {
		return 1
	}
	for _, h := range d.state.Holds(state.Black, p) {
		if strings.HasPrefix(h.Source, state.PrefixLog) && (h.Expires.IsZero() || h.Expires.After(now)) {
			return prev.Count
		}
	}
	if now.Sub(prev.Last) <= r.Within {
		return min(prev.Count+1, maxOffence)
	}
	return 1
}

// expireCaptured drops captured domains no mail went to for the capture
// period (all of them when no log captures any more).
func (d *Daemon) expireCaptured() {
	d.mu.Lock()
	expire := time.Duration(0)
	for _, l := range d.cfg.Logs {
		if m := logwatch.MailOptions(l); m.Capture {
			expire = max(expire, m.CaptureExpire)
		}
	}
	d.mu.Unlock()
	for _, name := range d.state.ExpireCaptured(expire) {
		d.info("msg", "captured domain expired", "domain", name)
	}
	d.logDropped()
}

// position returns the saved position of a followed file.
func (d *Daemon) position(path string) *logwatch.Position {
	raw := d.state.Position(positionOf(path))
	if raw == nil {
		return nil
	}
	var p logwatch.Position
	if json.Unmarshal(raw, &p) != nil {
		return nil
	}
	return &p
}

func (d *Daemon) setPosition(p logwatch.Position) {
	raw, err := json.Marshal(p)
	if err != nil {
		return
	}
	d.state.SetPosition(positionOf(p.Path), raw)
}

// positionOf matches the saved position of path (logwatch owns the
// format).
func positionOf(path string) func(json.RawMessage) bool {
	return func(raw json.RawMessage) bool {
		var p logwatch.Position
		return json.Unmarshal(raw, &p) == nil && p.Path == path
	}
}

func (d *Daemon) runJournal(ctx context.Context, src config.LogSource, proc *logwatch.Processor) {
	key := "journal:" + src.Journal
	j := &logwatch.Journal{Unit: src.Journal, Logf: func(format string, args ...any) {
		d.warn("journal", fmt.Sprintf(format, args...))
	}}
	if p := d.position(key); p != nil {
		j.Cursor = p.Cursor
	}
	out := make(chan []logwatch.JournalEntry, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.Run(ctx, out)
	}()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case entries := <-out:
			var outcomes []logwatch.Outcome
			for _, e := range entries {
				n := len(outcomes)
				outcomes = append(outcomes, proc.Message(e, d.now())...)
				for i := n; i < len(outcomes); i++ {
					if outcomes[i].Action == logwatch.Capture {
						outcomes[i].Evidence = evidence(key, e.Message)
					}
				}
			}
			d.noteMailTraffic(proc.TakeMailTraffic())
			if n := len(entries); n > 0 {
				pos := logwatch.Position{Path: key, Cursor: entries[n-1].Cursor}
				d.applyOutcomes(src, outcomes, pos)
				d.setPosition(pos)
			}
		}
	}
}
