package pftable

import (
	"net/netip"
	"slices"

	"github.com/spfd/spfd/prefixset"
)

// The nftables backend keeps each list in four sets: IPv4 and IPv6
// interval sets for ranges, and plain hash sets for single addresses,
// which the kernel inserts into a hundred times faster (0.1 ms against
// 11 ms in a 110 000-element interval set). This file is the pure part:
// what goes where, and what to add and delete.

// addrRange is an inclusive range of addresses.
type addrRange struct{ lo, hi netip.Addr }

// nftContent is what one list's four sets hold.
type nftContent struct {
	ranges4, ranges6 []addrRange
	hosts4, hosts6   []netip.Addr
}

func (c nftContent) len() int {
	return len(c.ranges4) + len(c.ranges6) + len(c.hosts4) + len(c.hosts6)
}

// contentOf splits a set into maximal ranges and lone addresses. Ranges
// never touch (prefixset merges adjacent ones), so interval elements never
// collide, which the kernel would refuse with EEXIST.
func contentOf(s *prefixset.Set) nftContent {
	var c nftContent
	s.EachRange(func(lo, hi netip.Addr) bool {
		switch {
		case lo == hi && lo.Is4():
			c.hosts4 = append(c.hosts4, lo)
		case lo == hi:
			c.hosts6 = append(c.hosts6, lo)
		case lo.Is4():
			c.ranges4 = append(c.ranges4, addrRange{lo, hi})
		default:
			c.ranges6 = append(c.ranges6, addrRange{lo, hi})
		}
		return true
	})
	return c
}

func cmpRange(a, b addrRange) int {
	if c := a.lo.Compare(b.lo); c != 0 {
		return c
	}
	return a.hi.Compare(b.hi)
}

// diffSorted returns what is in cur and not in want (to delete) and what
// is in want and not in cur (to add); both inputs are sorted.
func diffSorted[T any](cur, want []T, cmp func(a, b T) int) (del, add []T) {
	i, j := 0, 0
	for i < len(cur) || j < len(want) {
		switch {
		case j == len(want) || (i < len(cur) && cmp(cur[i], want[j]) < 0):
			del = append(del, cur[i])
			i++
		case i == len(cur) || cmp(cur[i], want[j]) > 0:
			add = append(add, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return del, add
}

// sortContent sorts what was read back from the kernel.
func sortContent(c *nftContent) {
	slices.SortFunc(c.ranges4, cmpRange)
	slices.SortFunc(c.ranges6, cmpRange)
	slices.SortFunc(c.hosts4, netip.Addr.Compare)
	slices.SortFunc(c.hosts6, netip.Addr.Compare)
}

// Netlink limits: one element call must stay under 64 KiB (a 16-bit
// length wraps and elements are lost silently), one Flush under what the
// socket takes. Element sizes are estimated high.
const (
	maxElemCallBytes = 48 << 10
	maxFlushBytes    = 512 << 10
)

// elemBytes estimates one element's netlink size: attribute headers,
// flags and the key.
func elemBytes(keyLen int) int { return 32 + keyLen }

// chunks cuts n elements of keyLen bytes (two elements a range when
// ranges) into call-sized runs: it returns the run lengths.
func chunks(n, keyLen, elemsPerItem int) []int {
	per := max(1, maxElemCallBytes/(elemBytes(keyLen)*elemsPerItem))
	var out []int
	for n > 0 {
		k := min(n, per)
		out = append(out, k)
		n -= k
	}
	return out
}

// next returns addr + 1, and false past the top of the address space.
func next(a netip.Addr) (netip.Addr, bool) {
	n := a.Next()
	return n, n.IsValid()
}

func sameContent(a, b nftContent) bool {
	return slices.Equal(a.ranges4, b.ranges4) && slices.Equal(a.ranges6, b.ranges6) &&
		slices.Equal(a.hosts4, b.hosts4) && slices.Equal(a.hosts6, b.hosts6)
}
