package pftable

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/spfd/spfd/prefixset"
)

// The nftables backend keeps each list in four sets: IPv4 and IPv6
// interval sets for ranges, and plain hash sets for single addresses,
// which the kernel inserts into a hundred times faster (0.1 ms against
// 11 ms in a 110 000-element interval set). This file is the pure part:
// what goes where, and what to add and delete, on pointer-free numbers so
// a hundred thousand elements cost the garbage collector nothing.

// nftContent is what one list's four sets hold.
type nftContent struct {
	ranges4 []prefixset.Range4
	ranges6 []prefixset.Range6
	hosts4  []uint32
	hosts6  []prefixset.Range6 // Lo == Hi
}

func (c nftContent) len() int {
	return len(c.ranges4) + len(c.ranges6) + len(c.hosts4) + len(c.hosts6)
}

// contentOf splits a set into maximal ranges and lone addresses. Ranges
// never touch (prefixset merges adjacent ones), so interval elements never
// collide, which the kernel would refuse with EEXIST.
func contentOf(s *prefixset.Set) nftContent {
	r4, r6 := s.Ranges()
	// Count first: exact allocations keep a sync of 110 000 entries
	// from growing slices on every call.
	h4, h6 := 0, 0
	for _, r := range r4 {
		if r.Lo == r.Hi {
			h4++
		}
	}
	for _, r := range r6 {
		if r.LoHi == r.HiHi && r.LoLo == r.HiLo {
			h6++
		}
	}
	c := nftContent{
		ranges4: make([]prefixset.Range4, 0, len(r4)-h4), hosts4: make([]uint32, 0, h4),
		ranges6: make([]prefixset.Range6, 0, len(r6)-h6), hosts6: make([]prefixset.Range6, 0, h6),
	}
	for _, r := range r4 {
		if r.Lo == r.Hi {
			c.hosts4 = append(c.hosts4, r.Lo)
		} else {
			c.ranges4 = append(c.ranges4, r)
		}
	}
	for _, r := range r6 {
		if r.LoHi == r.HiHi && r.LoLo == r.HiLo {
			c.hosts6 = append(c.hosts6, r)
		} else {
			c.ranges6 = append(c.ranges6, r)
		}
	}
	return c
}

func cmpRange4(a, b prefixset.Range4) int {
	if c := cmp.Compare(a.Lo, b.Lo); c != 0 {
		return c
	}
	return cmp.Compare(a.Hi, b.Hi)
}

func cmpRange6(a, b prefixset.Range6) int {
	for _, c := range [4]int{cmp.Compare(a.LoHi, b.LoHi), cmp.Compare(a.LoLo, b.LoLo), cmp.Compare(a.HiHi, b.HiHi), cmp.Compare(a.HiLo, b.HiLo)} {
		if c != 0 {
			return c
		}
	}
	return 0
}

// diffSorted returns what is in cur and not in want (to delete) and what
// is in want and not in cur (to add); both inputs are sorted.
func diffSorted[T comparable](cur, want []T, cmp func(a, b T) int) (del, add []T) {
	// A sync usually changes a few entries among many: skip the common
	// head and tail with plain comparisons before the merge.
	head := 0
	for head < len(cur) && head < len(want) && cur[head] == want[head] {
		head++
	}
	cur, want = cur[head:], want[head:]
	tail := 0
	for tail < len(cur) && tail < len(want) && cur[len(cur)-1-tail] == want[len(want)-1-tail] {
		tail++
	}
	cur, want = cur[:len(cur)-tail], want[:len(want)-tail]
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
	slices.SortFunc(c.ranges4, cmpRange4)
	slices.SortFunc(c.ranges6, cmpRange6)
	slices.Sort(c.hosts4)
	slices.SortFunc(c.hosts6, cmpRange6)
}

func sameContent(a, b nftContent) bool {
	return slices.Equal(a.ranges4, b.ranges4) && slices.Equal(a.ranges6, b.ranges6) &&
		slices.Equal(a.hosts4, b.hosts4) && slices.Equal(a.hosts6, b.hosts6)
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

// chunks cuts n items of keyLen-byte keys (two elements an item for
// ranges) into call-sized runs and returns the run lengths.
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

func key4(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

func key6(hi, lo uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

// plus1 adds one to a 128-bit number, reporting overflow.
func plus1(hi, lo uint64) (uint64, uint64, bool) {
	lo++
	if lo == 0 {
		hi++
		if hi == 0 {
			return 0, 0, false
		}
	}
	return hi, lo, true
}
