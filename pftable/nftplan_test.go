package pftable

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/spfd/spfd/prefixset"
)

// TestDiffSorted checks the diff against a map on edge cases and random
// sorted sets, including changes at the ends where the trimming works.
func TestDiffSorted(t *testing.T) {
	ref := func(cur, want []uint32) (del, add []uint32) {
		in := func(s []uint32, v uint32) bool { _, ok := slices.BinarySearch(s, v); return ok }
		for _, v := range cur {
			if !in(want, v) {
				del = append(del, v)
			}
		}
		for _, v := range want {
			if !in(cur, v) {
				add = append(add, v)
			}
		}
		return del, add
	}
	cases := [][2][]uint32{
		{nil, nil},
		{{1, 2, 3}, nil},
		{nil, {1, 2, 3}},
		{{1, 2, 3}, {1, 2, 3}},
		{{1, 2, 3}, {2, 3}},
		{{1, 2, 3}, {1, 2}},
		{{1, 2, 3}, {0, 1, 2, 3, 4}},
		{{1, 3, 5}, {2, 3, 4}},
		{{1, 2, 4, 5}, {1, 2, 3, 4, 5}},
		{{1, 5}, {1, 2, 3, 4}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	sortedSet := func() []uint32 {
		var s []uint32
		for range r.IntN(40) {
			s = append(s, r.Uint32N(50))
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	for range 2000 {
		cases = append(cases, [2][]uint32{sortedSet(), sortedSet()})
	}
	for _, c := range cases {
		del, add := diffSorted(c[0], c[1], cmp.Compare[uint32])
		wdel, wadd := ref(c[0], c[1])
		if !slices.Equal(del, wdel) || !slices.Equal(add, wadd) {
			t.Fatalf("diff %v -> %v: del %v add %v, want del %v add %v", c[0], c[1], del, add, wdel, wadd)
		}
	}
}

// TestContentOf splits single addresses from ranges, per family.
func TestContentOf(t *testing.T) {
	var b prefixset.Builder
	for _, s := range []string{"10.0.0.0/24", "192.0.2.7/32", "192.0.2.9/32", "2001:db8::/64", "2001:db8:1::1/128"} {
		b.Add(netip.MustParsePrefix(s))
	}
	c := contentOf(b.Set())
	if len(c.ranges4) != 1 || !slices.Equal(c.hosts4, []uint32{0xc0000207, 0xc0000209}) || len(c.ranges6) != 1 || len(c.hosts6) != 1 {
		t.Fatalf("content %+v", c)
	}
	if r := c.ranges4[0]; r.Lo != 0x0a000000 || r.Hi != 0x0a0000ff {
		t.Errorf("range %+v", r)
	}
}
