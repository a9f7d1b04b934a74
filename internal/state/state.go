package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/spfd/spfd/internal/syntax"
	"github.com/spfd/spfd/prefixset"
)

// Origins of a domain: why it is walked.
const (
	OriginConfig  = "config"
	OriginRuntime = "runtime"
	OriginCapture = "capture"
	OriginFile    = "file:" // followed by the domain file's path
)

// State is spfd's state and its one owner: the lists, the domains, the
// captures an admin removed, and the log read positions. Every read and
// change goes through its methods, under one lock that no disk write
// holds: journalled changes are written with group commit and applied,
// in journal order, once they are on disk.
type State struct {
	now   func() time.Time
	store *Store

	mu             sync.Mutex
	lists          *Lists
	offenders      *Offenders
	series         *Series
	domains        map[string]*DomainState
	noCapture      map[string]bool // captured domains an admin deleted
	positions      []json.RawMessage
	positionsDirty bool
	// dropped collects the domains dropped with their networks since
	// the caller last asked (TakeDropped), to be logged.
	dropped []string

	covers coverCache
}

// Open loads the state directory: the newest readable snapshot and the
// journal after it. Warnings say what was damaged and skipped.
func Open(dir string, now func() time.Time, opts Options) (*State, []string, error) {
	store, snap, ops, warnings, err := OpenStore(dir, now, opts)
	if err != nil {
		return nil, nil, err
	}
	offenders := NewOffenders(0)
	if f, err := os.Open(filepath.Join(dir, offendersFile)); err == nil {
		if err := readOffenders(f, offenders); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v; repeat offenders forgotten", f.Name(), err))
			offenders = NewOffenders(0)
		}
		f.Close()
	}
	series := NewSeries()
	if f, err := os.Open(filepath.Join(dir, seriesFile)); err == nil {
		if err := readSeries(f, series); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v; the traffic history starts afresh", f.Name(), err))
			series = NewSeries()
		}
		f.Close()
	}
	s := &State{now: now, store: store, lists: snap.Lists, offenders: offenders, series: series,
		domains: make(map[string]*DomainState), noCapture: make(map[string]bool), positions: snap.Positions}
	for i := range snap.Domains {
		ds := snap.Domains[i]
		if ds.NoCapture {
			s.noCapture[ds.Name] = true
			if len(ds.Origins) == 0 {
				continue
			}
		}
		s.domains[ds.Name] = &ds
	}
	for _, op := range ops {
		if err := s.apply(op); err != nil {
			warnings = append(warnings, fmt.Sprintf("journal: replaying %+v: %v", op, err))
		}
	}
	return s, warnings, nil
}

// Close closes the journal.
func (s *State) Close() error { return s.store.Close() }

// Commit journals ops and applies them: the change is acknowledged (nil)
// only once it is on disk, and applied in journal order. Ops that do not
// apply (a domain that is not valid) are reported after the others took
// effect.
func (s *State) Commit(ops ...Op) error {
	var errs []error
	err := s.store.Commit(ops, func(batch []Op) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, op := range batch {
			if err := s.apply(op); err != nil {
				errs = append(errs, fmt.Errorf("applying %+v: %w", op, err))
			}
		}
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// apply applies one journalled op. Lock held, or not yet shared.
func (s *State) apply(op Op) error {
	switch op.Op {
	case "position":
		key := positionKey(op.Position)
		if key == "" {
			return errors.New("position without a path")
		}
		s.setPosition(func(raw json.RawMessage) bool { return positionKey(raw) == key }, op.Position)
		return nil
	case "add", "remove", "delete":
		list, err := ParseList(op.List)
		if err != nil {
			return err
		}
		if !op.Prefix.IsValid() {
			return errors.New("no prefix")
		}
		switch op.Op {
		case "add":
			s.lists.Add(list, op.Prefix, op.Source, op.Expires)
			if op.Offence > 0 && op.Prefix.IsSingleIP() {
				s.offenders.Record(op.Prefix.Addr(), op.Offence, op.At)
			}
		case "remove":
			s.lists.Remove(list, op.Prefix, op.Source)
		default:
			s.lists.Delete(list, op.Prefix)
			if list == Black && op.Prefix.IsSingleIP() {
				// An admin took it off: a mistake, or forgiven.
				s.offenders.Forget(op.Prefix.Addr())
			}
		}
	case "domain-add":
		if err := syntax.ValidateDomain(op.Domain); err != nil {
			return err
		}
		origin := op.Source
		if origin == "" {
			origin = OriginRuntime
		}
		ds := s.addOrigin(op.Domain, origin)
		if origin == OriginCapture && ds.CapturedFrom == "" {
			ds.CapturedFrom, ds.CapturedAt = op.Note, op.At
		}
	case "capture-block":
		s.noCapture[op.Domain] = true
		s.dropOrigin(op.Domain, OriginCapture)
	case "domain-delete":
		origin := op.Source
		if origin == "" {
			origin = OriginRuntime
		}
		s.dropOrigin(op.Domain, origin)
	default:
		return fmt.Errorf("unknown op %q", op.Op)
	}
	return nil
}

func (s *State) addOrigin(name, origin string) *DomainState {
	ds, ok := s.domains[name]
	if !ok {
		ds = &DomainState{Name: name, NextWalk: s.now()}
		s.domains[name] = ds
	}
	if !slices.Contains(ds.Origins, origin) {
		ds.Origins = append(ds.Origins, origin)
		slices.Sort(ds.Origins)
	}
	return ds
}

// dropOrigin takes origin from a domain, and the domain with its
// networks when nothing else asks for it.
func (s *State) dropOrigin(name, origin string) {
	ds, ok := s.domains[name]
	if !ok {
		return
	}
	ds.Origins = slices.DeleteFunc(ds.Origins, func(o string) bool { return o == origin })
	if origin == OriginCapture {
		ds.CapturedFrom, ds.CapturedAt = "", time.Time{}
	}
	if len(ds.Origins) == 0 {
		s.lists.SetSource(White, PrefixSPF+name, nil, time.Time{})
		delete(s.domains, name)
		s.dropped = append(s.dropped, name)
	}
}

// TakeDropped returns the domains dropped since the last call.
func (s *State) TakeDropped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.dropped
	s.dropped = nil
	return out
}

// SetOrigin makes origin hold exactly names, adding domains and dropping
// those nothing else asks for.
func (s *State) SetOrigin(origin string, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	for name := range s.domains {
		if !want[name] {
			s.dropOrigin(name, origin)
		}
	}
	for name := range want {
		s.addOrigin(name, origin)
	}
}

// DropOrigins takes from every domain the origins drop says to drop.
func (s *State) DropOrigins(drop func(name, origin string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ds := range s.domains {
		for _, o := range slices.Clone(ds.Origins) {
			if drop(name, o) {
				s.dropOrigin(name, o)
			}
		}
	}
}

// ExpireCaptured takes the capture origin from domains no mail went to
// for expire (from all of them when expire is 0), and returns them.
func (s *State) ExpireCaptured(expire time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []string
	for name, ds := range s.domains {
		if !slices.Contains(ds.Origins, OriginCapture) {
			continue
		}
		if expire == 0 || (!ds.LastSeen.IsZero() && now.Sub(ds.LastSeen) > expire) {
			s.dropOrigin(name, OriginCapture)
			out = append(out, name)
		}
	}
	return out
}

// CaptureBlocked reports whether an admin deleted name as a capture.
func (s *State) CaptureBlocked(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noCapture[name]
}

// Captured reports whether name is walked for outbound mail.
func (s *State) Captured(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, ok := s.domains[name]
	return ok && slices.Contains(ds.Origins, OriginCapture)
}

// SeenMail records that mail went to the captured domains at now, and
// returns those that saw mail for the first time.
func (s *State) SeenMail(names []string, now time.Time) (first []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range names {
		ds := s.domains[name]
		if ds == nil {
			continue
		}
		if ds.LastSeen.IsZero() {
			first = append(first, name)
		}
		ds.LastSeen = now
	}
	return first
}

// Domain returns a copy of a domain's state.
func (s *State) Domain(name string) (DomainState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, ok := s.domains[name]
	if !ok {
		return DomainState{}, false
	}
	return ds.clone(), true
}

// Domains returns copies of every domain's state, by name.
func (s *State) Domains() []DomainState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DomainState, 0, len(s.domains))
	for _, name := range slices.Sorted(maps.Keys(s.domains)) {
		out = append(out, s.domains[name].clone())
	}
	return out
}

// DomainNames returns the domains' names, sorted.
func (s *State) DomainNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.domains))
}

func (ds *DomainState) clone() DomainState {
	c := *ds
	c.Origins = slices.Clone(ds.Origins)
	c.Prefixes = slices.Clone(ds.Prefixes)
	c.Errors = slices.Clone(ds.Errors)
	c.Warnings = slices.Clone(ds.Warnings)
	return c
}

// Due returns the domains due at now (oldest first, at most max) and when
// the next one falls due.
func (s *State) Due(now time.Time, max int) ([]string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*DomainState
	var next time.Time
	for _, ds := range s.domains {
		if !ds.NextWalk.After(now) {
			due = append(due, ds)
		} else if next.IsZero() || ds.NextWalk.Before(next) {
			next = ds.NextWalk
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].NextWalk.Before(due[j].NextWalk) })
	var names []string
	for i, ds := range due {
		if i == max {
			break
		}
		names = append(names, ds.Name)
	}
	return names, next
}

// UpdateDomain runs f on a domain's state and the whitelist entries it
// holds, under the lock, and reports whether the domain exists. f decides
// what a walk's result does to the domain (the daemon's policy); it must
// not call back into the state.
func (s *State) UpdateDomain(name string, f func(ds *DomainState, setNetworks func([]netip.Prefix) (added, removed int))) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, ok := s.domains[name]
	if !ok {
		return false
	}
	f(ds, func(ps []netip.Prefix) (int, int) {
		return s.lists.SetSource(White, PrefixSPF+name, ps, time.Time{})
	})
	return true
}

// Len is the number of entries held in list.
func (s *State) Len(list List) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Len(list)
}

// Contains reports whether list holds exactly p.
func (s *State) Contains(list List, p netip.Prefix) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Contains(list, p)
}

// Version changes whenever the lists do.
func (s *State) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Version()
}

// ListExcept is a list without the entries only skip's sources hold
// (what spfd announces as its own findings, say).
func (s *State) ListExcept(list List, skip func(src string) bool) *prefixset.Set {
	s.mu.Lock()
	b := s.lists.BuilderExcept(list, skip)
	s.mu.Unlock()
	return b.Set()
}

// Exempt reports whether a is never counted against: in an ignore
// network, or held by an entry of the whitelist. It asks the lists, not
// the last push: the log followers ask it of every event, from the start
// (before the first sync), and a whitelist entry counts from the moment
// it is added.
func (s *State) Exempt(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Ignore().ContainsAddr(a) || s.lists.tables[White].covered(a.Unmap())
}

// Ignore returns the networks never blacklisted.
func (s *State) Ignore() *prefixset.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Ignore()
}

// SetIgnore sets the networks never blacklisted (the built-in ones too).
func (s *State) SetIgnore(nets []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists.SetIgnore(nets)
}

// AddSample records what spfd saw in the interval ending at t.
func (s *State) AddSample(t time.Time, sample Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series.Add(t, sample)
}

// SeriesPoints returns the series from from to to at step (time.Minute,
// for the last 48 hours, or time.Hour, for the last 90 days).
func (s *State) SeriesPoints(from, to time.Time, step time.Duration) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series.Points(from, to, step)
}

// SeriesSum adds up the series from from to to.
func (s *State) SeriesSum(from, to time.Time) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.series.Sum(from, to)
}

// SaveSeries writes the series beside the snapshot; the daemon also
// calls it every few minutes, as the series changes without journalled
// ops.
func (s *State) SaveSeries() error {
	s.mu.Lock()
	data := s.series.marshal()
	s.mu.Unlock()
	if err := s.store.WriteFile(seriesFile, data); err != nil {
		return fmt.Errorf("series: %w", err)
	}
	return nil
}

// Offence returns what is remembered of a as a repeat offender.
func (s *State) Offence(a netip.Addr) (Offence, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offenders.Get(a)
}

// Offenders reports how many offenders are remembered.
func (s *State) Offenders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offenders.Len()
}

// SetMaxOffenders bounds the offenders remembered.
func (s *State) SetMaxOffenders(max int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offenders.SetMax(max)
}

// SourceCounts returns how many entries of list each source holds.
func (s *State) SourceCounts(list List) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.SourceCounts(list)
}

// Holds returns the holds on exactly p in list.
func (s *State) Holds(list List, p netip.Prefix) []Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Holds(list, p)
}

// Dump returns a list's entries for showing, and the ignore networks.
func (s *State) Dump(list List) (*Dump, *prefixset.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.lists.Dump(list)
	if list == Black {
		d.offences = make(map[netip.Addr]int)
		s.offenders.counts(func(a netip.Addr, n int) {
			if s.lists.Contains(Black, netip.PrefixFrom(a, a.BitLen())) {
				d.offences[a] = n
			}
		})
	}
	return d, s.lists.Ignore()
}

// SetSource makes src hold exactly prefixes in list, until expires.
func (s *State) SetSource(list List, src string, prefixes []netip.Prefix, expires time.Time) (added, removed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.SetSource(list, src, prefixes, expires)
}

// ExtendSource keeps what src holds in list, until expires.
func (s *State) ExtendSource(list List, src string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists.SetSource(list, src, s.lists.SourcePrefixes(list, src), expires)
}

// SourcePrefixes returns what src holds in list.
func (s *State) SourcePrefixes(list List, src string) []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.SourcePrefixes(list, src)
}

// Sources returns the names of the sources in list whose name starts with
// prefix.
func (s *State) Sources(list List, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Sources(list, prefix)
}

// Expire drops the holds that are due.
func (s *State) Expire() []Removal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists.Expire()
}

// Position returns the saved read position stored under key (a path or
// journal unit), nil when none.
func (s *State) Position(match func(raw json.RawMessage) bool) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range s.positions {
		if match(raw) {
			return raw
		}
	}
	return nil
}

// SetPosition stores raw in place of the position match finds, or adds
// it; it is saved with the next snapshot.
func (s *State) SetPosition(match func(raw json.RawMessage) bool, raw json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPosition(match, raw)
}

// positionKey is what names a position: its "path" (a file, or
// "journal:UNIT").
func positionKey(raw json.RawMessage) string {
	var p struct {
		Path string `json:"path"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	return p.Path
}

// setPosition is SetPosition with the lock held.
func (s *State) setPosition(match func(raw json.RawMessage) bool, raw json.RawMessage) {
	s.positionsDirty = true
	for i, old := range s.positions {
		if match(old) {
			s.positions[i] = raw
			return
		}
	}
	s.positions = append(s.positions, raw)
}

// PositionsMoved reports whether read positions moved since the last
// snapshot.
func (s *State) PositionsMoved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.positionsDirty
}

// Snapshot writes the state and starts a new journal generation.
func (s *State) Snapshot() error {
	// Rotate first: it waits for a batch being written to be applied, so
	// the state taken below holds every op of the journals before gen.
	gen, err := s.store.Rotate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	// The offenders first: the journal after either snapshot repeats
	// what they say (see offendersFile).
	offenders := s.offenders.marshal()
	// A copy of the tables, written out after the lock is let go: at a
	// million entries the copy takes 20 ms, the writing ten times that,
	// which adds and syncs would otherwise wait for.
	snap := &Snapshot{Generation: gen, Lists: s.lists.tablesCopy(), Positions: slices.Clone(s.positions)}
	for _, name := range slices.Sorted(maps.Keys(s.domains)) {
		ds := s.domains[name].clone() // written out after the lock is let go
		ds.NoCapture = s.noCapture[name]
		snap.Domains = append(snap.Domains, ds)
	}
	for _, name := range slices.Sorted(maps.Keys(s.noCapture)) {
		if _, walked := s.domains[name]; !walked {
			snap.Domains = append(snap.Domains, DomainState{Name: name, NoCapture: true})
		}
	}
	s.positionsDirty = false
	s.mu.Unlock()
	if err := s.store.WriteFile(offendersFile, offenders); err != nil {
		return fmt.Errorf("offenders: %w", err)
	}
	if err := s.SaveSeries(); err != nil {
		return err
	}
	return s.store.CommitSnapshot(func(w io.Writer) error { return WriteSnapshot(w, snap) }, gen)
}

// JournalLines reports the ops journalled since the last snapshot.
func (s *State) JournalLines() int { return s.store.JournalLines() }

// Err reports the last failure to write the journal or a snapshot.
func (s *State) Err() error { return s.store.Err() }
