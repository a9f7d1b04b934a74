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

// A read of the sets runs while spfd goes on changing them: elements spfd
// touched meanwhile are judged by its own view, all others by the read,
// so drift behind spfd's back still shows and its own changes never look
// like drift.
func TestMergeRead(t *testing.T) {
	hosts := func(xs ...uint32) nftContent { return nftContent{hosts4: xs} }
	tests := []struct {
		name               string
		read, cur, touched nftContent
		want               []uint32
	}{
		{"nothing touched: the read", hosts(1, 2, 3), hosts(1, 2, 3), hosts(), []uint32{1, 2, 3}},
		{"added after the read passed it", hosts(1, 3), hosts(1, 2, 3), hosts(2), []uint32{1, 2, 3}},
		{"added before the read passed it", hosts(1, 2, 3), hosts(1, 2, 3), hosts(2), []uint32{1, 2, 3}},
		{"deleted after the read passed it", hosts(1, 2, 3), hosts(1, 3), hosts(2), []uint32{1, 3}},
		{"added then deleted", hosts(1, 2, 3), hosts(1, 3), hosts(2, 2), []uint32{1, 3}},
		{"deleted behind spfd's back", hosts(1, 3), hosts(1, 2, 3), hosts(), []uint32{1, 3}},
		{"a stray added behind spfd's back", hosts(1, 2, 3, 9), hosts(1, 2, 3), hosts(4), []uint32{1, 2, 3, 9}},
	}
	for _, tt := range tests {
		got := mergeRead(tt.read, tt.cur, tt.touched)
		if !slices.Equal(got.hosts4, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got.hosts4, tt.want)
		}
	}
	// Ranges follow the same rule: a range spfd replaced by a wider one
	// during the read is judged by spfd's view, whichever the read saw.
	r := func(lo, hi uint32) prefixset.Range4 { return prefixset.Range4{Lo: lo, Hi: hi} }
	got := mergeRead(nftContent{ranges4: []prefixset.Range4{r(10, 20)}}, nftContent{ranges4: []prefixset.Range4{r(10, 30)}},
		nftContent{ranges4: []prefixset.Range4{r(10, 20), r(10, 30)}})
	if !slices.Equal(got.ranges4, []prefixset.Range4{r(10, 30)}) {
		t.Errorf("replaced range: %v", got.ranges4)
	}
}

// The digest tells apart any two contents, also one that moves an
// address from a range set to a host set.
func TestContentDigest(t *testing.T) {
	a := contentOf(setOf("10.0.0.0/24", "192.0.2.1/32", "2001:db8::/64", "2001:db8:1::1/128"))
	if contentDigest(a) != contentDigest(contentOf(setOf("10.0.0.0/24", "192.0.2.1/32", "2001:db8::/64", "2001:db8:1::1/128"))) {
		t.Fatal("equal contents, different digests")
	}
	for _, other := range [][]string{
		{"10.0.0.0/24", "192.0.2.1/32", "2001:db8::/64"},
		{"10.0.0.0/24", "192.0.2.2/32", "2001:db8::/64", "2001:db8:1::1/128"},
		{"10.0.0.0/25", "192.0.2.1/32", "2001:db8::/64", "2001:db8:1::1/128"},
		{},
	} {
		if contentDigest(a) == contentDigest(contentOf(setOf(other...))) {
			t.Errorf("%v: same digest as a different content", other)
		}
	}
	moved := nftContent{hosts4: []uint32{1}}
	asRange := nftContent{ranges4: []prefixset.Range4{{Lo: 1, Hi: 1}}}
	if contentDigest(moved) == contentDigest(asRange) {
		t.Error("a host and a one-address range have one digest")
	}
}

// contentInto writes into dst's memory when it is big enough, and gives
// what contentOf gives either way.
func TestContentIntoReuses(t *testing.T) {
	big := setOf("10.0.0.0/24", "192.0.2.1/32", "192.0.2.3/32", "2001:db8::/64", "2001:db8:1::1/128")
	small := setOf("192.0.2.1/32", "10.0.0.0/24")
	dst := contentOf(big)
	got := contentInto(dst, small)
	if !sameContent(got, contentOf(small)) {
		t.Fatalf("contentInto %+v, contentOf %+v", got, contentOf(small))
	}
	if !sameArray(got.hosts4, dst.hosts4) || !sameArray(got.ranges4, dst.ranges4) {
		t.Error("dst had room and was not reused")
	}
	if again := contentInto(contentOf(small), big); !sameContent(again, contentOf(big)) {
		t.Fatalf("into a short dst: %+v", again)
	}
}
