package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

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

// hold is one source's claim on an entry. expires is Unix seconds; zero
// means it does not expire.
type hold struct {
	src     sourceID
	expires int64
}

// table is one list's entries. Most entries have a single source, so the
// first hold lives in the map value and others, rarely, in extra: this
// keeps a million-entry blacklist small.
type table struct {
	first map[netip.Prefix]hold
	extra map[netip.Prefix][]hold
}

func newTable() *table {
	return &table{first: make(map[netip.Prefix]hold), extra: make(map[netip.Prefix][]hold)}
}

func (t *table) holds(p netip.Prefix) []hold {
	h, ok := t.first[p]
	if !ok {
		return nil
	}
	return append([]hold{h}, t.extra[p]...)
}

// set adds or updates src's hold on p and reports whether p is new.
func (t *table) set(p netip.Prefix, h hold) bool {
	first, ok := t.first[p]
	if !ok {
		t.first[p] = h
		return true
	}
	if first.src == h.src {
		t.first[p] = h
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
	return false
}

// remove drops src's hold on p and reports whether p left the table.
func (t *table) remove(p netip.Prefix, src sourceID) (gone bool) {
	first, ok := t.first[p]
	if !ok {
		return false
	}
	ex := t.extra[p]
	if first.src == src {
		if len(ex) == 0 {
			delete(t.first, p)
			return true
		}
		t.first[p] = ex[0]
		ex = ex[1:]
	} else {
		i := slices.IndexFunc(ex, func(h hold) bool { return h.src == src })
		if i < 0 {
			return false
		}
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
	_, ok := t.first[p]
	delete(t.first, p)
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
	ignore  *netipx.IPSet
	version uint64 // bumped on every change that can alter a table
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
	var b netipx.IPSetBuilder
	for _, p := range builtinIgnore {
		b.AddPrefix(p)
	}
	for _, p := range nets {
		b.AddPrefix(p.Masked())
	}
	l.ignore, _ = b.IPSet()
	l.version++
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

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Add makes src hold p in list until expires (zero: forever), replacing
// src's previous expiry for p.
func (l *Lists) Add(list List, p netip.Prefix, src string, expires time.Time) {
	l.tables[list].set(p.Masked(), hold{src: l.id(src), expires: unix(expires)})
	l.version++
}

// Remove drops src's hold on p; it reports whether p left the list.
func (l *Lists) Remove(list List, p netip.Prefix, src string) bool {
	id, ok := l.ids[src]
	if !ok {
		return false
	}
	gone := l.tables[list].remove(p.Masked(), id)
	l.version++
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
	l.version++
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
	h := hold{src: id, expires: unix(expires)}
	for _, p := range next {
		if _, found := slices.BinarySearchFunc(old, p, netipx.ComparePrefix); !found {
			added++
		}
		t.set(p, h)
	}
	for _, p := range old {
		if _, found := slices.BinarySearchFunc(next, p, netipx.ComparePrefix); !found {
			t.remove(p, id)
			removed++
		}
	}
	if len(next) == 0 {
		delete(l.members[list], id)
	} else {
		l.members[list][id] = next
	}
	l.version++
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
	now := l.now().Unix()
	var out []Removal
	for li, t := range l.tables {
		for p, first := range t.first {
			_, more := t.extra[p]
			if !more && (first.expires == 0 || first.expires > now) {
				continue
			}
			for _, h := range t.holds(p) {
				if h.expires != 0 && h.expires <= now {
					l.remove(List(li), p, h.src)
					out = append(out, Removal{List(li), p, l.names[h.src]})
				}
			}
		}
	}
	if len(out) > 0 {
		l.version++
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
func (l *Lists) Len(list List) int { return len(l.tables[list].first) }

// Contains reports whether list has an entry for exactly p.
func (l *Lists) Contains(list List, p netip.Prefix) bool {
	_, ok := l.tables[list].first[p.Masked()]
	return ok
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
}

// Entries returns list's entries sorted by prefix.
func (l *Lists) Entries(list List) []Entry {
	t := l.tables[list]
	out := make([]Entry, 0, len(t.first))
	for p := range t.first {
		e := Entry{Prefix: p}
		for _, h := range t.holds(p) {
			e.Holds = append(e.Holds, l.publicHold(h))
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return netipx.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// Prefixes returns list's prefixes, unsorted.
func (l *Lists) Prefixes(list List) []netip.Prefix {
	t := l.tables[list]
	out := make([]netip.Prefix, 0, len(t.first))
	for p := range t.first {
		out = append(out, p)
	}
	return out
}

func (l *Lists) publicHold(h hold) Hold {
	var exp time.Time
	if h.expires != 0 {
		exp = time.Unix(h.expires, 0).UTC()
	}
	return Hold{Source: l.names[h.src], Expires: exp}
}

// Ignore returns the ignore set.
func (l *Lists) Ignore() *netipx.IPSet { return l.ignore }

// Covers computes what each table should hold: the minimal cover of the
// whitelist, and of the blacklist less the whitelist and the ignore
// networks (whitelist wins). white and black are raw prefix lists, as
// returned by Prefixes, so the work can run outside the daemon's lock.
func Covers(white, black []netip.Prefix, ignore *netipx.IPSet) (whiteSet, blackSet *netipx.IPSet) {
	var wb netipx.IPSetBuilder
	for _, p := range white {
		wb.AddPrefix(p)
	}
	whiteSet, _ = wb.IPSet()
	var bb netipx.IPSetBuilder
	for _, p := range black {
		bb.AddPrefix(p)
	}
	bb.RemoveSet(whiteSet)
	bb.RemoveSet(ignore)
	blackSet, _ = bb.IPSet()
	return whiteSet, blackSet
}

// PushState says whether a blacklist entry reaches the table, and why not.
func PushState(p netip.Prefix, white, ignore *netipx.IPSet) string {
	switch {
	case ignore.ContainsPrefix(p):
		return "not pushed: ignored network"
	case white.ContainsPrefix(p):
		return "not pushed: whitelisted"
	case ignore.OverlapsPrefix(p):
		return "partly pushed: overlaps an ignored network"
	case white.OverlapsPrefix(p):
		return "partly pushed: overlaps the whitelist"
	}
	return "pushed"
}
