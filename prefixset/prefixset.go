// Package prefixset is a compact set of IP address ranges: sorted,
// non-overlapping, IPv4 and IPv6 apart, with no pointers for the garbage
// collector to chase. It computes the minimal prefix cover of a million
// entries in a few tens of megabytes, where a general-purpose set needs
// several times that.
package prefixset

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
)

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) add1() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

func (a u128) sub1() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

var maxU128 = u128{^uint64(0), ^uint64(0)}

// hostMask returns the mask of the low (128-n) bits.
func hostMask(n int) u128 {
	switch {
	case n <= 0:
		return maxU128
	case n >= 128:
		return u128{}
	case n <= 64:
		return u128{^uint64(0) >> n, ^uint64(0)}
	}
	return u128{0, ^uint64(0) >> (n - 64)}
}

type r4 struct{ lo, hi uint32 }
type r6 struct{ lo, hi u128 }

// Builder collects prefixes; Set sorts and merges them.
type Builder struct {
	v4 []r4
	v6 []r6
}

// Add adds p (host bits ignored). IPv4-mapped IPv6 prefixes count as IPv4.
func (b *Builder) Add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	if a, c, is4 := toRange(p); is4 {
		b.v4 = append(b.v4, a)
	} else {
		b.v6 = append(b.v6, c)
	}
}

// AddRange4 adds the inclusive range r of IPv4 addresses.
func (b *Builder) AddRange4(r Range4) {
	if r.Lo <= r.Hi {
		b.v4 = append(b.v4, r4{r.Lo, r.Hi})
	}
}

// AddRange6 adds the inclusive range r of IPv6 addresses.
func (b *Builder) AddRange6(r Range6) {
	lo, hi := u128{r.LoHi, r.LoLo}, u128{r.HiHi, r.HiLo}
	if lo.cmp(hi) <= 0 {
		b.v6 = append(b.v6, r6{lo, hi})
	}
}

// AddSet adds every address of s: its ranges as they are, without
// going back through prefixes.
func (b *Builder) AddSet(s *Set) {
	if s == nil {
		return
	}
	b.v4 = append(b.v4, s.v4...)
	b.v6 = append(b.v6, s.v6...)
}

// RangeCount reports how many IPv4 and IPv6 ranges s holds: what AddSet
// adds to a builder, for Grow.
func (s *Set) RangeCount() (v4, v6 int) {
	if s == nil {
		return 0, 0
	}
	return len(s.v4), len(s.v6)
}

// Grow reserves room for n more IPv4 and m more IPv6 prefixes.
func (b *Builder) Grow(n4, n6 int) {
	b.v4 = slices.Grow(b.v4, n4)
	b.v6 = slices.Grow(b.v6, n6)
}

// Set returns the set of everything added and resets the builder.
func (b *Builder) Set() *Set {
	s := &Set{v4: merge4(b.v4), v6: merge6(b.v6)}
	b.v4, b.v6 = nil, nil
	return s
}

// smallSort is the size up to which merge4 sorts by insertion.
const smallSort = 24

func merge4(rs []r4) []r4 {
	if len(rs) <= smallSort {
		// One domain's few networks: an inline insertion sort, without
		// the comparison calls of SortFunc.
		for i := 1; i < len(rs); i++ {
			for j := i; j > 0 && rs[j].lo < rs[j-1].lo; j-- {
				rs[j], rs[j-1] = rs[j-1], rs[j]
			}
		}
	} else {
		slices.SortFunc(rs, func(a, b r4) int { return cmp.Compare(a.lo, b.lo) })
	}
	out := rs[:0]
	for _, r := range rs {
		out = join4(out, r)
	}
	return slices.Clip(out)
}

func merge6(rs []r6) []r6 {
	slices.SortFunc(rs, func(a, b r6) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		out = join6(out, r)
	}
	return slices.Clip(out)
}

// join4 appends r to out, ranges in order of their start, joining it to
// the last when the two overlap or touch.
func join4(out []r4, r r4) []r4 {
	if n := len(out); n > 0 && (r.lo <= out[n-1].hi || (out[n-1].hi != ^uint32(0) && r.lo == out[n-1].hi+1)) {
		out[n-1].hi = max(out[n-1].hi, r.hi)
		return out
	}
	return append(out, r)
}

// join6 is join4 for IPv6.
func join6(out []r6, r r6) []r6 {
	if n := len(out); n > 0 && (r.lo.cmp(out[n-1].hi) <= 0 || (out[n-1].hi != maxU128 && r.lo == out[n-1].hi.add1())) {
		if r.hi.cmp(out[n-1].hi) > 0 {
			out[n-1].hi = r.hi
		}
		return out
	}
	return append(out, r)
}

// Set is an immutable set of addresses.
type Set struct {
	v4 []r4
	v6 []r6
}

// Empty reports whether the set holds no address.
func (s *Set) Empty() bool { return s == nil || (len(s.v4) == 0 && len(s.v6) == 0) }

// Patch returns s less del, with add (Patch(add, nil) is the union):
// one pass, and when the changes are few next to s, one copy of it (a
// cover patched for an add at a million entries).
func (s *Set) Patch(add, del *Set) *Set {
	if add.Empty() && del.Empty() {
		return s
	}
	s, add, del = s.orEmpty(), add.orEmpty(), del.orEmpty()
	keys4, keys6 := merge4(slices.Concat(add.v4, del.v4)), merge6(slices.Concat(add.v6, del.v6))
	return &Set{
		v4: spans(s.v4, keys4, first4, past4, func(a, k []r4) []r4 {
			lo, hi := k[0].lo, k[len(k)-1].hi
			in := func(r r4) bool { return r.lo >= lo && r.hi <= hi }
			return union4(minus4(a, filter(del.v4, in)), filter(add.v4, in))
		}),
		v6: spans(s.v6, keys6, first6, past6, func(a, k []r6) []r6 {
			lo, hi := k[0].lo, k[len(k)-1].hi
			in := func(r r6) bool { return r.lo.cmp(lo) >= 0 && r.hi.cmp(hi) <= 0 }
			return union6(minus6(a, filter(del.v6, in)), filter(add.v6, in))
		}),
	}
}

func (s *Set) orEmpty() *Set {
	if s == nil {
		return &Set{}
	}
	return s
}

// filter returns the elements of rs that keep takes, in order.
func filter[R any](rs []R, keep func(R) bool) []R {
	var out []R
	for _, r := range rs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// spans computes op(a, b) as op over the stretches of a that b's ranges
// touch, copying the rest of a as it is: patching a million ranges with
// a few costs a copy, not a walk through every range. op is union or
// minus, which change nothing outside those stretches. first and past
// bound a stretch: the first range of a that ends at or after the
// address before r, and the first that starts after the address past r.
func spans[R any](a, b []R, first, past func(a []R, r R) int, op func(a, b []R) []R) []R {
	if len(b)*64 > len(a) {
		return op(a, b) // not sparse: one walk is as good
	}
	out := make([]R, 0, len(a)+len(b))
	i := 0
	for j := 0; j < len(b); {
		k, m := max(first(a, b[j]), i), past(a, b[j])
		end := j + 1
		for end < len(b) && first(a, b[end]) <= m {
			m = max(m, past(a, b[end]))
			end++
		}
		out = append(out, a[i:k]...)
		out = append(out, op(a[k:m], b[j:end])...)
		i, j = m, end
	}
	return append(out, a[i:]...)
}

func first4(a []r4, r r4) int {
	if r.lo == 0 {
		return 0
	}
	return sort.Search(len(a), func(i int) bool { return a[i].hi >= r.lo-1 })
}

func past4(a []r4, r r4) int {
	if r.hi == ^uint32(0) {
		return len(a)
	}
	return sort.Search(len(a), func(i int) bool { return a[i].lo > r.hi+1 })
}

func first6(a []r6, r r6) int {
	if r.lo == (u128{}) {
		return 0
	}
	before := r.lo.sub1()
	return sort.Search(len(a), func(i int) bool { return a[i].hi.cmp(before) >= 0 })
}

func past6(a []r6, r r6) int {
	if r.hi == maxU128 {
		return len(a)
	}
	after := r.hi.add1()
	return sort.Search(len(a), func(i int) bool { return a[i].lo.cmp(after) > 0 })
}

// union4 merges two sorted, joined runs of ranges into one.
func union4(a, b []r4) []r4 {
	out := make([]r4, 0, len(a)+len(b))
	inOrder(a, b, func(x, y r4) bool { return x.lo <= y.lo }, func(r r4) { out = join4(out, r) })
	return slices.Clip(out)
}

func union6(a, b []r6) []r6 {
	out := make([]r6, 0, len(a)+len(b))
	inOrder(a, b, func(x, y r6) bool { return x.lo.cmp(y.lo) <= 0 }, func(r r6) { out = join6(out, r) })
	return slices.Clip(out)
}

// inOrder calls f with the elements of a and b, two sorted slices, in
// order; first reports whether x goes before y.
func inOrder[T any](a, b []T, first func(x, y T) bool, f func(T)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || (i < len(a) && first(a[i], b[j])) {
			f(a[i])
			i++
		} else {
			f(b[j])
			j++
		}
	}
}

// Minus returns s less o.
func (s *Set) Minus(o *Set) *Set {
	if s == nil {
		return &Set{}
	}
	if o == nil {
		return s
	}
	return &Set{v4: spans(s.v4, o.v4, first4, past4, minus4), v6: spans(s.v6, o.v6, first6, past6, minus6)}
}

func minus4(a, b []r4) []r4 {
	out := make([]r4, 0, len(a))
	j := 0
	for _, r := range a {
		lo := r.lo
		for j < len(b) && b[j].hi < lo {
			j++
		}
		done := false
		for k := j; k < len(b) && b[k].lo <= r.hi; k++ {
			if b[k].lo > lo {
				out = append(out, r4{lo, b[k].lo - 1})
			}
			if b[k].hi >= r.hi {
				done = true
				break
			}
			lo = b[k].hi + 1
		}
		if !done {
			out = append(out, r4{lo, r.hi})
		}
	}
	return out
}

func minus6(a, b []r6) []r6 {
	out := make([]r6, 0, len(a))
	j := 0
	for _, r := range a {
		lo := r.lo
		for j < len(b) && b[j].hi.cmp(lo) < 0 {
			j++
		}
		done := false
		for k := j; k < len(b) && b[k].lo.cmp(r.hi) <= 0; k++ {
			if b[k].lo.cmp(lo) > 0 {
				out = append(out, r6{lo, b[k].lo.sub1()})
			}
			if b[k].hi.cmp(r.hi) >= 0 {
				done = true
				break
			}
			lo = b[k].hi.add1()
		}
		if !done {
			out = append(out, r6{lo, r.hi})
		}
	}
	return out
}

// toRange returns the addresses of a valid prefix as a range, IPv4 (with
// IPv4-mapped IPv6 unmapped) or IPv6. It allocates nothing: Contains runs
// on every log event.
func toRange(p netip.Prefix) (r4, r6, bool) {
	p = p.Masked()
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		a = a.Unmap()
		p = netip.PrefixFrom(a, p.Bits()-96)
	}
	if a.Is4() {
		b4 := a.As4()
		lo := binary.BigEndian.Uint32(b4[:])
		return r4{lo, lo | uint32(uint64(1)<<(32-p.Bits())-1)}, r6{}, true
	}
	b16 := a.As16()
	lo := u128{binary.BigEndian.Uint64(b16[:8]), binary.BigEndian.Uint64(b16[8:])}
	m := hostMask(p.Bits())
	return r4{}, r6{lo, u128{lo.hi | m.hi, lo.lo | m.lo}}, false
}

// Contains reports whether every address of p is in s.
func (s *Set) Contains(p netip.Prefix) bool {
	if s == nil || !p.IsValid() {
		return false
	}
	a, b, is4 := toRange(p)
	if is4 {
		i, _ := slices.BinarySearchFunc(s.v4, a.lo, func(r r4, x uint32) int { return cmp.Compare(r.hi, x) })
		return i < len(s.v4) && s.v4[i].lo <= a.lo && s.v4[i].hi >= a.hi
	}
	i, _ := slices.BinarySearchFunc(s.v6, b.lo, func(r r6, x u128) int { return r.hi.cmp(x) })
	return i < len(s.v6) && s.v6[i].lo.cmp(b.lo) <= 0 && s.v6[i].hi.cmp(b.hi) >= 0
}

// ContainsAddr reports whether a is in s. Log parsers ask this for every
// line, so it skips the prefix arithmetic of Contains.
func (s *Set) ContainsAddr(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// The first range that ends at or after x.
		lo, hi := 0, len(s.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s.v4[m].hi < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(s.v4) && s.v4[lo].lo <= x
	}
	b := a.As16()
	x := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	lo, hi := 0, len(s.v6)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.v6[m].hi.cmp(x) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(s.v6) && s.v6[lo].lo.cmp(x) <= 0
}

// Overlaps reports whether any address of p is in s.
func (s *Set) Overlaps(p netip.Prefix) bool {
	if s == nil || !p.IsValid() {
		return false
	}
	a, b, is4 := toRange(p)
	if is4 {
		i, _ := slices.BinarySearchFunc(s.v4, a.lo, func(r r4, x uint32) int { return cmp.Compare(r.hi, x) })
		return i < len(s.v4) && s.v4[i].lo <= a.hi
	}
	i, _ := slices.BinarySearchFunc(s.v6, b.lo, func(r r6, x u128) int { return r.hi.cmp(x) })
	return i < len(s.v6) && s.v6[i].lo.cmp(b.hi) <= 0
}

// Each calls f with the minimal prefix cover of s, IPv4 first, in
// address order, until f returns false.
func (s *Set) Each(f func(netip.Prefix) bool) {
	if s == nil {
		return
	}
	for _, r := range s.v4 {
		if !blocks4(r, func(lo uint32, n int) bool { return f(netip.PrefixFrom(addr4(lo), 32-n)) }) {
			return
		}
	}
	for _, r := range s.v6 {
		if !blocks6(r, func(lo u128, n int) bool { return f(netip.PrefixFrom(addr6(lo), 128-n)) }) {
			return
		}
	}
}

// blocks4 calls f with the aligned blocks that make up r, in order, each
// of 2^n addresses from lo, until f returns false; it reports whether f
// never did.
func blocks4(r r4, f func(lo uint32, n int) bool) bool {
	lo := r.lo
	for {
		// The largest block aligned at lo that ends by r.hi.
		n := bits.TrailingZeros32(lo)
		for n > 0 && (uint64(lo)+uint64(1)<<n-1) > uint64(r.hi) {
			n--
		}
		if !f(lo, n) {
			return false
		}
		end := uint64(lo) + uint64(1)<<n - 1
		if end >= uint64(r.hi) {
			return true
		}
		lo = uint32(end + 1)
	}
}

// blocks6 is blocks4 for IPv6.
func blocks6(r r6, f func(lo u128, n int) bool) bool {
	lo := r.lo
	for {
		n := trailingZeros128(lo)
		for n > 0 && lo.blockEnd(n).cmp(r.hi) > 0 {
			n--
		}
		if !f(lo, n) {
			return false
		}
		end := lo.blockEnd(n)
		if end.cmp(r.hi) >= 0 {
			return true
		}
		lo = end.add1()
	}
}

func trailingZeros128(a u128) int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	if a.hi != 0 {
		return 64 + bits.TrailingZeros64(a.hi)
	}
	return 128
}

// blockEnd is the last address of the 2^n block starting at a.
func (a u128) blockEnd(n int) u128 {
	m := hostMask(128 - n)
	return u128{a.hi | m.hi, a.lo | m.lo}
}

// Prefixes returns the minimal prefix cover of s.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, len(s.v4)+len(s.v6)) // a range is one prefix or more
	s.Each(func(p netip.Prefix) bool { out = append(out, p); return true })
	return out
}

// Count returns the number of prefixes in the minimal cover. Each sync
// asks it of a million-entry set, so a lone address, the common range,
// skips the prefix arithmetic.
func (s *Set) Count() int {
	if s == nil {
		return 0
	}
	n := 0
	count4 := func(uint32, int) bool { n++; return true }
	count6 := func(u128, int) bool { n++; return true }
	for _, r := range s.v4 {
		if r.lo == r.hi {
			n++
			continue
		}
		blocks4(r, count4)
	}
	for _, r := range s.v6 {
		if r.lo == r.hi {
			n++
			continue
		}
		blocks6(r, count6)
	}
	return n
}

// EachRange calls f with the set's maximal ranges, IPv4 first, in
// address order, until f returns false. Adjacent addresses are always in
// one range, so no two ranges touch: what an nftables interval set wants.
func (s *Set) EachRange(f func(lo, hi netip.Addr) bool) {
	if s == nil {
		return
	}
	for _, r := range s.v4 {
		if !f(addr4(r.lo), addr4(r.hi)) {
			return
		}
	}
	for _, r := range s.v6 {
		if !f(addr6(r.lo), addr6(r.hi)) {
			return
		}
	}
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addr6(v u128) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	return netip.AddrFrom16(b)
}

// Range4 is an inclusive range of IPv4 addresses as numbers.
type Range4 struct{ Lo, Hi uint32 }

// Range6 is an inclusive range of IPv6 addresses as 128-bit numbers.
type Range6 struct{ LoHi, LoLo, HiHi, HiLo uint64 }

// Ranges4 and Ranges6 yield the set's maximal ranges in order without
// copying them: a sync at a million entries walks them every time.
func (s *Set) Ranges4() iter.Seq[Range4] {
	return func(yield func(Range4) bool) {
		if s == nil {
			return
		}
		for _, r := range s.v4 {
			if !yield(Range4{r.lo, r.hi}) {
				return
			}
		}
	}
}

// Ranges6 is Ranges4 for IPv6.
func (s *Set) Ranges6() iter.Seq[Range6] {
	return func(yield func(Range6) bool) {
		if s == nil {
			return
		}
		for _, r := range s.v6 {
			if !yield(Range6{r.lo.hi, r.lo.lo, r.hi.hi, r.hi.lo}) {
				return
			}
		}
	}
}
