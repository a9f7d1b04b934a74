package state

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spfd/spfd/prefixset"
	"go4.org/netipx"
)

// List names one of spfd's two lists.
type List uint8

// The lists.
const (
	White List = iota
	Black
)

func (l List) String() string {
	if l == White {
		return "white"
	}
	return "black"
}

// ParseList accepts white, whitelist, black, blacklist.
func ParseList(s string) (List, error) {
	switch s {
	case "white", "whitelist":
		return White, nil
	case "black", "blacklist":
		return Black, nil
	}
	return 0, fmt.Errorf("unknown list %q (want white or black)", s)
}

// Source names: what holds an entry in a list.
const (
	SourceStatic  = "static"
	SourceManual  = "manual"
	PrefixSPF     = "spf:"
	PrefixLog     = "log:"
	PrefixFeed    = "feed:"
	PrefixCapture = "capture:"
)

type sourceID uint32

// hold is one source's claim on an entry: 8 bytes, no pointers.
type hold struct {
	src     sourceID
	expires uint32 // seconds since holdEpoch; 0: never
}

// holdEpoch is 2000-01-01T00:00:00Z; uint32 seconds from it last to 2136.
const holdEpoch = 946684800

func toExpires(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	return uint32(min(max(t.Unix()-holdEpoch, 1), 1<<32-1))
}

func fromExpires(e uint32) time.Time {
	if e == 0 {
		return time.Time{}
	}
	return time.Unix(int64(e)+holdEpoch, 0).UTC()
}

// key6 is an IPv6 prefix as a map key without pointers.
type key6 struct {
	hi, lo uint64
	bits   uint8
}

// table is one list's entries. Keys are packed without pointers (an IPv4
// prefix is one uint64) and most entries have a single source, so the
// first hold lives in the map value and others, rarely, in extra: a
// million-entry blacklist takes tens of megabytes and costs the garbage
// collector nothing to scan.
type table struct {
	v4    map[uint64]hold
	v6    map[key6]hold
	extra map[netip.Prefix][]hold
	// held counts each source's holds, kept as they change, so metrics
	// need not walk a million entries.
	held map[sourceID]int
	// lens counts the entries of each prefix length, IPv4 then IPv6, so
	// covered looks up only the lengths there are.
	lens [2][129]int32
}

// count adds d to the entries of p's length.
func (t *table) count(p netip.Prefix, d int32) {
	fam := 0
	if !p.Addr().Is4() {
		fam = 1
	}
	t.lens[fam][p.Bits()] += d
}

func newTable() *table {
	return &table{v4: make(map[uint64]hold), v6: make(map[key6]hold), extra: make(map[netip.Prefix][]hold), held: make(map[sourceID]int)}
}

func (t *table) unheld(src sourceID) {
	if t.held[src]--; t.held[src] <= 0 {
		delete(t.held, src)
	}
}

func pack4(p netip.Prefix) uint64 {
	b := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(b[:]))<<8 | uint64(p.Bits())
}

func unpack4(k uint64) netip.Prefix {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(k>>8))
	return netip.PrefixFrom(netip.AddrFrom4(b), int(k&0xff))
}

func pack6(p netip.Prefix) key6 {
	b := p.Addr().As16()
	return key6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint8(p.Bits())}
}

func unpack6(k key6) netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(k.bits))
}

func (t *table) get(p netip.Prefix) (hold, bool) {
	if p.Addr().Is4() {
		h, ok := t.v4[pack4(p)]
		return h, ok
	}
	h, ok := t.v6[pack6(p)]
	return h, ok
}

func (t *table) put(p netip.Prefix, h hold) {
	if p.Addr().Is4() {
		t.v4[pack4(p)] = h
	} else {
		t.v6[pack6(p)] = h
	}
}

func (t *table) del(p netip.Prefix) {
	if p.Addr().Is4() {
		delete(t.v4, pack4(p))
	} else {
		delete(t.v6, pack6(p))
	}
}

func (t *table) len() int { return len(t.v4) + len(t.v6) }

// each calls f for every entry with its first hold; f may delete or
// update the entry it is given.
func (t *table) each(f func(p netip.Prefix, first hold)) {
	for k, h := range t.v4 {
		f(unpack4(k), h)
	}
	for k, h := range t.v6 {
		f(unpack6(k), h)
	}
}

func (t *table) holds(p netip.Prefix) []hold {
	h, ok := t.get(p)
	if !ok {
		return nil
	}
	return append([]hold{h}, t.extra[p]...)
}

// set adds or updates src's hold on p and reports whether p is new.
func (t *table) set(p netip.Prefix, h hold) bool {
	first, ok := t.get(p)
	if !ok {
		t.put(p, h)
		t.count(p, 1)
		t.held[h.src]++
		return true
	}
	if first.src == h.src {
		t.put(p, h)
		return false
	}
	ex := t.extra[p]
	for i := range ex {
		if ex[i].src == h.src {
			ex[i] = h
			return false
		}
	}
	t.extra[p] = append(ex, h)
	t.held[h.src]++
	return false
}

// remove drops src's hold on p and reports whether p left the table.
func (t *table) remove(p netip.Prefix, src sourceID) (gone bool) {
	first, ok := t.get(p)
	if !ok {
		return false
	}
	ex := t.extra[p]
	if first.src == src {
		t.unheld(src)
		if len(ex) == 0 {
			t.del(p)
			t.count(p, -1)
			return true
		}
		t.put(p, ex[0])
		ex = ex[1:]
	} else {
		i := slices.IndexFunc(ex, func(h hold) bool { return h.src == src })
		if i < 0 {
			return false
		}
		t.unheld(src)
		ex = slices.Delete(slices.Clone(ex), i, i+1)
	}
	if len(ex) == 0 {
		delete(t.extra, p)
	} else {
		t.extra[p] = ex
	}
	return false
}

func (t *table) drop(p netip.Prefix) bool {
	first, ok := t.get(p)
	if ok {
		t.unheld(first.src)
		for _, x := range t.extra[p] {
			t.unheld(x.src)
		}
		t.count(p, -1)
	}
	t.del(p)
	delete(t.extra, p)
	return ok
}

// Lists holds the whitelist and the blacklist: prefixes, each held by one
// or more sources with their own expiry. It is not safe for concurrent use;
// the daemon serialises access.
type Lists struct {
	now    func() time.Time
	names  []string
	ids    map[string]sourceID
	tables [2]*table
	// members records the prefixes of sources that are set as a whole
	// (spf:<domain>, static, feeds), so a new set can be diffed.
	members [2]map[sourceID][]netip.Prefix
	ignore  *prefixset.Set
	version uint64 // bumped on every change that can alter a table
	log     changeLog
}

// Builtin ignore networks: never blacklisted, whatever the logs say.
var builtinIgnore = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("0.0.0.0/32"),
	netip.MustParsePrefix("::/128"),
}

// NewLists returns empty lists using now as the clock.
func NewLists(now func() time.Time) *Lists {
	l := &Lists{now: now, ids: make(map[string]sourceID)}
	for i := range l.tables {
		l.tables[i] = newTable()
		l.members[i] = make(map[sourceID][]netip.Prefix)
	}
	l.SetIgnore(nil)
	return l
}

// SetIgnore sets the configured ignore networks (the builtin ones always
// apply).
func (l *Lists) SetIgnore(nets []netip.Prefix) {
	var b prefixset.Builder
	for _, p := range builtinIgnore {
		b.Add(p)
	}
	for _, p := range nets {
		b.Add(p)
	}
	l.ignore = b.Set()
	l.version++
	l.forgetChanges()
}

// tablesCopy returns a copy of the lists' entries and source names, all
// that WriteSnapshot reads, to be written without the lock.
func (l *Lists) tablesCopy() *Lists {
	c := &Lists{now: l.now, names: slices.Clone(l.names), ignore: l.ignore, version: l.version}
	for i, t := range l.tables {
		ct := &table{v4: maps.Clone(t.v4), v6: maps.Clone(t.v6), extra: make(map[netip.Prefix][]hold, len(t.extra))}
		for p, hs := range t.extra {
			ct.extra[p] = slices.Clone(hs)
		}
		c.tables[i] = ct
	}
	return c
}

// Version changes whenever the lists change.
func (l *Lists) Version() uint64 { return l.version }

func (l *Lists) id(name string) sourceID {
	if id, ok := l.ids[name]; ok {
		return id
	}
	id := sourceID(len(l.names))
	l.names = append(l.names, name)
	l.ids[name] = id
	return id
}

// Add makes src hold p in list until expires (zero: forever), replacing
// src's previous expiry for p.
func (l *Lists) Add(list List, p netip.Prefix, src string, expires time.Time) {
	l.tables[list].set(p.Masked(), hold{src: l.id(src), expires: toExpires(expires)})
	l.changed(p.Masked())
}

// Remove drops src's hold on p; it reports whether p left the list.
func (l *Lists) Remove(list List, p netip.Prefix, src string) bool {
	id, ok := l.ids[src]
	if !ok {
		return false
	}
	gone := l.tables[list].remove(p.Masked(), id)
	l.changed(p.Masked())
	return gone
}

// Delete removes p from list whatever holds it.
func (l *Lists) Delete(list List, p netip.Prefix) bool {
	p = p.Masked()
	t := l.tables[list]
	for _, h := range t.holds(p) {
		if m := l.members[list][h.src]; m != nil {
			l.members[list][h.src] = slices.DeleteFunc(m, func(q netip.Prefix) bool { return q == p })
		}
	}
	if !t.drop(p) {
		return false
	}
	l.changed(p)
	return true
}

// SetSource replaces the prefixes src holds in list with prefixes, added
// and removed as a diff. It returns how many were added and removed.
func (l *Lists) SetSource(list List, src string, prefixes []netip.Prefix, expires time.Time) (added, removed int) {
	id := l.id(src)
	next := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		next = append(next, p.Masked())
	}
	slices.SortFunc(next, netipx.ComparePrefix)
	next = slices.Compact(next)
	old := l.members[list][id]
	t := l.tables[list]
	h := hold{src: id, expires: toExpires(expires)}
	var changed []netip.Prefix
	for _, p := range next {
		if _, found := slices.BinarySearchFunc(old, p, netipx.ComparePrefix); !found {
			changed = append(changed, p)
		}
		t.set(p, h)
	}
	added = len(changed)
	for _, p := range old {
		if _, found := slices.BinarySearchFunc(next, p, netipx.ComparePrefix); !found {
			t.remove(p, id)
			changed = append(changed, p)
		}
	}
	removed = len(changed) - added
	l.changed(changed...)
	if len(next) == 0 {
		delete(l.members[list], id)
	} else {
		l.members[list][id] = next
	}
	return added, removed
}

// SourcePrefixes returns the prefixes a set-as-a-whole source holds.
func (l *Lists) SourcePrefixes(list List, src string) []netip.Prefix {
	id, ok := l.ids[src]
	if !ok {
		return nil
	}
	return slices.Clone(l.members[list][id])
}

// Sources lists the names of set-as-a-whole sources that hold something
// and start with prefix.
func (l *Lists) Sources(list List, prefix string) []string {
	var out []string
	for id := range l.members[list] {
		if name := l.names[id]; strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Removal records an entry that expired.
type Removal struct {
	List   List
	Prefix netip.Prefix
	Source string
}

// Expire drops every hold whose time has come and returns them.
func (l *Lists) Expire() []Removal {
	now := toExpires(l.now())
	var out []Removal
	for li, t := range l.tables {
		t.each(func(p netip.Prefix, first hold) {
			_, more := t.extra[p]
			if !more && (first.expires == 0 || first.expires > now) {
				return
			}
			for _, h := range t.holds(p) {
				if h.expires != 0 && h.expires <= now {
					l.remove(List(li), p, h.src)
					out = append(out, Removal{List(li), p, l.names[h.src]})
				}
			}
		})
	}
	if len(out) > 0 {
		gone := make([]netip.Prefix, len(out))
		for i, r := range out {
			gone[i] = r.Prefix
		}
		l.changed(gone...)
	}
	slices.SortFunc(out, func(a, b Removal) int {
		if a.List != b.List {
			return int(a.List) - int(b.List)
		}
		return netipx.ComparePrefix(a.Prefix, b.Prefix)
	})
	return out
}

func (l *Lists) remove(list List, p netip.Prefix, id sourceID) {
	l.tables[list].remove(p, id)
	if m := l.members[list][id]; m != nil {
		l.members[list][id] = slices.DeleteFunc(m, func(q netip.Prefix) bool { return q == p })
	}
}

// Len reports the number of entries in list.
func (l *Lists) Len(list List) int { return l.tables[list].len() }

// Contains reports whether list has an entry for exactly p.
func (l *Lists) Contains(list List, p netip.Prefix) bool {
	_, ok := l.tables[list].get(p.Masked())
	return ok
}

// SourceCounts returns how many entries of list each source holds.
func (l *Lists) SourceCounts(list List) map[string]int {
	out := make(map[string]int, len(l.tables[list].held))
	for id, n := range l.tables[list].held {
		out[l.names[id]] = n
	}
	return out
}

// Holds returns the holds on exactly p in list.
func (l *Lists) Holds(list List, p netip.Prefix) []Hold {
	var out []Hold
	for _, h := range l.tables[list].holds(p.Masked()) {
		out = append(out, l.publicHold(h))
	}
	return out
}

// Hold describes one source's claim, for display and persistence.
type Hold struct {
	Source  string
	Expires time.Time // zero: never
}

// Entry is one list entry with its holds.
type Entry struct {
	Prefix netip.Prefix
	Holds  []Hold
	// Offences is how many times logs listed the address (Dump of the
	// blacklist only; 0: never).
	Offences int
}

// Entries returns list's entries sorted by prefix.
func (l *Lists) Entries(list List) []Entry {
	t := l.tables[list]
	out := make([]Entry, 0, t.len())
	t.each(func(p netip.Prefix, _ hold) {
		e := Entry{Prefix: p}
		for _, h := range t.holds(p) {
			e.Holds = append(e.Holds, l.publicHold(h))
		}
		out = append(out, e)
	})
	slices.SortFunc(out, func(a, b Entry) int { return netipx.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// BuilderExcept returns a builder of list's prefixes held by at least one
// source that skip does not reject.
func (l *Lists) BuilderExcept(list List, skip func(src string) bool) *prefixset.Builder {
	t := l.tables[list]
	b := &prefixset.Builder{}
	t.each(func(p netip.Prefix, first hold) {
		for _, h := range t.holds(p) {
			if !skip(l.names[h.src]) {
				b.Add(p)
				return
			}
		}
	})
	return b
}

// Builder returns a prefix-set builder loaded with list's prefixes, so
// the covers can be computed outside the daemon's lock.
func (l *Lists) Builder(list List) *prefixset.Builder {
	t := l.tables[list]
	b := &prefixset.Builder{}
	b.Grow(len(t.v4), len(t.v6))
	t.each(func(p netip.Prefix, _ hold) { b.Add(p) })
	return b
}

func (l *Lists) publicHold(h hold) Hold {
	return Hold{Source: l.names[h.src], Expires: fromExpires(h.expires)}
}

// Ignore returns the ignore set.
func (l *Lists) Ignore() *prefixset.Set { return l.ignore }

// Covers computes what each table should hold: the whitelist, and the
// blacklist less the whitelist and the ignore networks (whitelist wins).
// The builders come from Lists.Builder, so this runs outside the lock.
func Covers(white, black *prefixset.Builder, ignore *prefixset.Set) (whiteSet, blackSet *prefixset.Set) {
	whiteSet = white.Set()
	blackSet = black.Set().Minus(whiteSet).Minus(ignore)
	return whiteSet, blackSet
}

// PushState says whether a blacklist entry reaches the table, and why not.
func PushState(p netip.Prefix, white, ignore *prefixset.Set) string {
	switch {
	case ignore.Contains(p):
		return "not pushed: ignored network"
	case white.Contains(p):
		return "not pushed: whitelisted"
	case ignore.Overlaps(p):
		return "partly pushed: overlaps an ignored network"
	case white.Overlaps(p):
		return "partly pushed: overlaps the whitelist"
	}
	return "pushed"
}

type dump4 struct {
	key uint64
	h   hold
}

type dump6 struct {
	key key6
	h   hold
}

// Dump is a compact copy of one list: cheap to take under the daemon's
// lock (16 bytes an IPv4 entry), sorted and printed after it is released.
type Dump struct {
	v4      []dump4
	v6      []dump6
	extra   map[netip.Prefix][]hold
	names   []string
	version uint64
	sorted  sync.Once // sorted on first use, outside the state's lock
	// offences: how often each listed address was listed from logs
	offences map[netip.Addr]int
}

// Version is the lists' version the dump was taken at.
func (d *Dump) Version() uint64 { return d.version }

// Dump copies list.
func (l *Lists) Dump(list List) *Dump {
	t := l.tables[list]
	d := &Dump{
		v4:      make([]dump4, 0, len(t.v4)),
		v6:      make([]dump6, 0, len(t.v6)),
		extra:   make(map[netip.Prefix][]hold, len(t.extra)),
		names:   slices.Clone(l.names),
		version: l.Version(),
	}
	for k, h := range t.v4 {
		d.v4 = append(d.v4, dump4{k, h})
	}
	for k, h := range t.v6 {
		d.v6 = append(d.v6, dump6{k, h})
	}
	for p, ex := range t.extra {
		d.extra[p] = slices.Clone(ex)
	}
	return d
}

// Each calls f with every entry in prefix order until f returns false.
// The Entry's Holds slice is reused between calls. Several goroutines
// may walk one dump at once.
func (d *Dump) Each(f func(Entry) bool) {
	d.sorted.Do(func() {
		slices.SortFunc(d.v4, func(a, b dump4) int { return cmp.Compare(a.key, b.key) })
		slices.SortFunc(d.v6, func(a, b dump6) int {
			if c := cmp.Compare(a.key.hi, b.key.hi); c != 0 {
				return c
			}
			if c := cmp.Compare(a.key.lo, b.key.lo); c != 0 {
				return c
			}
			return cmp.Compare(a.key.bits, b.key.bits)
		})
	})
	var e Entry
	emit := func(p netip.Prefix, h hold) bool {
		e.Prefix = p
		e.Offences = 0
		if p.IsSingleIP() {
			e.Offences = d.offences[p.Addr()]
		}
		e.Holds = append(e.Holds[:0], Hold{Source: d.names[h.src], Expires: fromExpires(h.expires)})
		for _, x := range d.extra[p] {
			e.Holds = append(e.Holds, Hold{Source: d.names[x.src], Expires: fromExpires(x.expires)})
		}
		return f(e)
	}
	for _, x := range d.v4 {
		if !emit(unpack4(x.key), x.h) {
			return
		}
	}
	for _, x := range d.v6 {
		if !emit(unpack6(x.key), x.h) {
			return
		}
	}
}
