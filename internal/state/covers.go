package state

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/spfd/spfd/prefixset"
)

// Building the covers of a million entries takes a quarter of a second,
// most of it sorting; an add or a delete must reach the kernel sooner
// than that. So the lists log the single addresses whose entries change,
// and the covers last computed are patched with what the log says when it
// can: a lone address is in a cover or not by a few dozen lookups of the
// prefixes that could contain it. Anything else (a network, a new ignore
// list, a burst past the log's size) costs one full computation.

// maxLoggedChanges bounds the change log: past it, patching costs more
// than it saves, and the next covers are computed afresh.
const maxLoggedChanges = 4096

// loggedChange is an address whose entry changed, by the lists' version
// after the change.
type loggedChange struct {
	version uint64
	addr    netip.Addr
}

// changeLog holds every change after version base, as long as all were
// to single addresses.
type changeLog struct {
	base    uint64
	changes []loggedChange
}

// changed bumps the version after a change to ps.
func (l *Lists) changed(ps ...netip.Prefix) {
	l.version++
	for _, p := range ps {
		l.logChange(p)
	}
}

// logChange records a change to p at the current version.
func (l *Lists) logChange(p netip.Prefix) {
	if !p.IsSingleIP() || len(l.log.changes) >= maxLoggedChanges {
		l.forgetChanges()
		return
	}
	l.log.changes = append(l.log.changes, loggedChange{l.version, p.Addr().Unmap()})
}

// forgetChanges makes every version up to the current one unpatchable.
func (l *Lists) forgetChanges() {
	l.log.base = l.version
	l.log.changes = l.log.changes[:0]
}

// changesSince returns the addresses changed after version v, or false
// when the log does not go back that far or holds a change to a network.
func (l *Lists) changesSince(v uint64) ([]netip.Addr, bool) {
	if v < l.log.base {
		return nil, false
	}
	var out []netip.Addr
	for _, c := range l.log.changes {
		if c.version > v {
			out = append(out, c.addr)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), true
}

// dropChangesUpTo forgets what no one needs: the covers are at v.
func (l *Lists) dropChangesUpTo(v uint64) {
	i := 0
	for i < len(l.log.changes) && l.log.changes[i].version <= v {
		i++
	}
	l.log.changes = append(l.log.changes[:0], l.log.changes[i:]...)
	l.log.base = max(l.log.base, v)
}

// covered reports whether any entry of t contains a (unmapped), in
// either form the cover reads as a: an IPv4 prefix, or an IPv4-mapped
// IPv6 one. Only the prefix lengths t has are looked up.
func (t *table) covered(a netip.Addr) bool {
	if a.Is4() {
		mapped := netip.AddrFrom16(a.As16())
		for bits := 32; bits >= 0; bits-- {
			if t.lens[0][bits] > 0 {
				if _, ok := t.get(netip.PrefixFrom(a, bits).Masked()); ok {
					return true
				}
			}
			if t.lens[1][96+bits] > 0 {
				if _, ok := t.get(netip.PrefixFrom(mapped, 96+bits).Masked()); ok {
					return true
				}
			}
		}
		return false
	}
	for bits := 128; bits >= 0; bits-- {
		if t.lens[1][bits] > 0 {
			if _, ok := t.get(netip.PrefixFrom(a, bits).Masked()); ok {
				return true
			}
		}
	}
	return false
}

// coverPatch is what changes in the covers: addresses that join and
// leave each.
type coverPatch struct {
	add, del [2]*prefixset.Set
}

// patch works out where each changed address now belongs, with the
// same rule as Covers: in the whitelist when an entry holds it, in the
// blacklist when an entry holds it and neither the whitelist nor the
// ignore list does.
func (l *Lists) patch(addrs []netip.Addr, white, black *prefixset.Set) coverPatch {
	var add, del [2]prefixset.Builder
	was := [2]*prefixset.Set{white, black}
	for _, a := range addrs {
		inWhite := l.tables[White].covered(a)
		in := [2]bool{inWhite, !inWhite && l.tables[Black].covered(a) && !l.ignore.ContainsAddr(a)}
		for list, now := range in {
			if now == was[list].ContainsAddr(a) {
				continue
			}
			if now {
				add[list].Add(netip.PrefixFrom(a, a.BitLen()))
			} else {
				del[list].Add(netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	var p coverPatch
	for list := range add {
		p.add[list], p.del[list] = add[list].Set(), del[list].Set()
	}
	return p
}

// apply returns s with the patch for list applied; s itself when the
// patch leaves it as it is.
func (p coverPatch) apply(list List, s *prefixset.Set) *prefixset.Set {
	return s.Patch(p.add[list], p.del[list])
}

// coverCache keeps the last covers computed. Its lock serialises the
// computations, so concurrent callers wait for one rather than each
// building its own; the state's lock is held only to read the lists.
type coverCache struct {
	mu           sync.Mutex
	version      uint64
	white, black *prefixset.Set // nil until the first computation
	full         int            // full computations, for tests
}

// Covers returns what the tables should hold now, with the version of the
// lists it reflects: patched from the last covers when only single
// addresses changed since, else computed afresh.
func (s *State) Covers() (white, black *prefixset.Set, version uint64) {
	c := &s.covers
	c.mu.Lock()
	defer c.mu.Unlock()
	s.mu.Lock()
	v := s.lists.Version()
	if c.white != nil && c.version == v {
		s.mu.Unlock()
		return c.white, c.black, v
	}
	if c.white != nil {
		if addrs, ok := s.lists.changesSince(c.version); ok {
			p := s.lists.patch(addrs, c.white, c.black)
			s.lists.dropChangesUpTo(v)
			s.mu.Unlock()
			c.white, c.black, c.version = p.apply(White, c.white), p.apply(Black, c.black), v
			return c.white, c.black, v
		}
	}
	wb, bb, ignore := s.lists.Builder(White), s.lists.Builder(Black), s.lists.Ignore()
	s.lists.dropChangesUpTo(v)
	s.mu.Unlock()
	c.white, c.black = Covers(wb, bb, ignore)
	c.version = v
	c.full++
	return c.white, c.black, v
}
