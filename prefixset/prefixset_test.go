package prefixset

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"go4.org/netipx"
)

func randPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(2) == 0 {
		// A small corner of the space, so prefixes overlap and touch.
		a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
		return netip.PrefixFrom(a, 22+r.IntN(11)).Masked()
	}
	var b [16]byte
	b[0], b[1], b[14], b[15] = 0x20, 0x01, byte(r.IntN(4)), byte(r.IntN(256))
	return netip.PrefixFrom(netip.AddrFrom16(b), 110+r.IntN(19)).Masked()
}

// addRandom adds n random prefixes to a set of ours and to netipx's alike.
func addRandom(r *rand.Rand, n int, ours *Builder, ref *netipx.IPSetBuilder) {
	for range n {
		p := randPrefix(r)
		ours.Add(p)
		ref.AddPrefix(p)
	}
}

// The sets must agree with netipx, a well-kept reference, on random
// inputs: the cover, the difference, the union (a patch without
// removals), the count, containment and overlap.
func TestAgainstNetipx(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 300 {
		var ours, other Builder
		var ref, refOther netipx.IPSetBuilder
		addRandom(r, r.IntN(40), &ours, &ref)
		addRandom(r, r.IntN(10), &other, &refOther)
		a, b := ours.Set(), other.Set()
		ra, _ := ref.IPSet()
		rb, _ := refOther.IPSet()
		if got, want := a.Prefixes(), ra.Prefixes(); !slices.Equal(got, want) {
			t.Fatalf("round %d: cover\n got %v\nwant %v", round, got, want)
		}
		var diff netipx.IPSetBuilder
		diff.AddSet(ra)
		diff.RemoveSet(rb)
		rd, _ := diff.IPSet()
		if got, want := a.Minus(b).Prefixes(), rd.Prefixes(); !slices.Equal(got, want) {
			t.Fatalf("round %d: minus\n got %v\nwant %v", round, got, want)
		}
		var union netipx.IPSetBuilder
		union.AddSet(ra)
		union.AddSet(rb)
		ru, _ := union.IPSet()
		if got, want := a.Patch(b, nil).Prefixes(), ru.Prefixes(); !slices.Equal(got, want) {
			t.Fatalf("round %d: union\n got %v\nwant %v", round, got, want)
		}
		if got, want := a.Count(), len(ra.Prefixes()); got != want {
			t.Fatalf("round %d: count %d, netipx has %d prefixes", round, got, want)
		}
		for range 20 {
			p := randPrefix(r)
			if a.Contains(p) != ra.ContainsPrefix(p) || a.Overlaps(p) != ra.OverlapsPrefix(p) {
				t.Fatalf("round %d: %v: contains %v/%v overlaps %v/%v", round, p,
					a.Contains(p), ra.ContainsPrefix(p), a.Overlaps(p), ra.OverlapsPrefix(p))
			}
			// Every address of p that matters to ContainsAddr: its ends
			// and the ones just outside them.
			lo, hi := p.Addr(), netipx.PrefixLastIP(p)
			for _, x := range []netip.Addr{lo, hi, lo.Prev(), hi.Next()} {
				if x.IsValid() && a.ContainsAddr(x) != ra.Contains(x) {
					t.Fatalf("round %d: address %v: contains %v, netipx says %v", round, x, a.ContainsAddr(x), ra.Contains(x))
				}
			}
		}
	}
}

func TestEdges(t *testing.T) {
	var b Builder
	for _, s := range []string{"0.0.0.0/0", "::/0", "255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "::ffff:192.0.2.0/120"} {
		b.Add(netip.MustParsePrefix(s))
	}
	got := b.Set().Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	var w Builder
	w.Add(netip.MustParsePrefix("0.0.0.0/0"))
	var c Builder
	c.Add(netip.MustParsePrefix("192.0.2.0/24"))
	c.Add(netip.MustParsePrefix("::ffff:198.51.100.0/120"))
	cs := c.Set()
	if got := cs.Prefixes(); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")}) {
		t.Fatalf("mapped prefixes not unmapped: %v", got)
	}
	if !cs.Minus(w.Set()).Empty() {
		t.Fatal("x minus everything is not empty")
	}
	if !cs.ContainsAddr(netip.MustParseAddr("::ffff:198.51.100.7")) || cs.ContainsAddr(netip.MustParseAddr("198.51.101.0")) {
		t.Fatal("ContainsAddr does not read a mapped address as IPv4")
	}
	if (*Set)(nil).Contains(netip.MustParsePrefix("192.0.2.1/32")) || (*Set)(nil).ContainsAddr(netip.MustParseAddr("192.0.2.1")) || !(*Set)(nil).Empty() {
		t.Fatal("nil set misbehaves")
	}
	// Unions join ranges that touch, up to the last address.
	set := func(ps ...string) *Set {
		var b Builder
		for _, p := range ps {
			b.Add(netip.MustParsePrefix(p))
		}
		return b.Set()
	}
	for _, tc := range []struct {
		a, b *Set
		want string
	}{
		{set("255.255.255.255/32"), set("255.255.255.254/32"), "[255.255.255.254/31]"},
		{set("0.0.0.0/1"), set("128.0.0.0/1"), "[0.0.0.0/0]"},
		{set("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"), set("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127]"},
		{nil, set("192.0.2.1/32"), "[192.0.2.1/32]"},
		{set("192.0.2.1/32"), nil, "[192.0.2.1/32]"},
	} {
		if got := fmt.Sprint(tc.a.Patch(tc.b, nil).Prefixes()); got != tc.want {
			t.Errorf("%v union %v = %s, want %s", tc.a.Prefixes(), tc.b.Prefixes(), got, tc.want)
		}
	}
}

// randomHosts4 returns n random IPv4 host prefixes, the same on every run.
func randomHosts4(n int) []netip.Prefix {
	r := rand.New(rand.NewPCG(1, 2))
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}), 32)
	}
	return ps
}

func BenchmarkCoverMillion(b *testing.B) {
	ps := randomHosts4(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		var bl Builder
		bl.Grow(len(ps), 0)
		for _, p := range ps {
			bl.Add(p)
		}
		bl.Set().Count()
	}
}

func BenchmarkCoverMillionNetipx(b *testing.B) {
	ps := randomHosts4(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		var bl netipx.IPSetBuilder
		for _, p := range ps {
			bl.AddPrefix(p)
		}
		s, _ := bl.IPSet()
		_ = len(s.Prefixes())
	}
}

func TestEachRange(t *testing.T) {
	var b Builder
	for _, s := range []string{"10.0.1.0/24", "10.0.2.0/23", "10.0.0.7/32", "2001:db8::/127", "2001:db8::2/128"} {
		b.Add(netip.MustParsePrefix(s))
	}
	var got []string
	b.Set().EachRange(func(lo, hi netip.Addr) bool {
		got = append(got, lo.String()+"-"+hi.String())
		return true
	})
	want := []string{"10.0.0.7-10.0.0.7", "10.0.1.0-10.0.3.255", "2001:db8::-2001:db8::2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Ranges added as ranges make the set their prefixes make.
func TestAddRange(t *testing.T) {
	var a, b Builder
	a.AddRange4(Range4{Lo: 0x0a000001, Hi: 0x0a0000fe}) // 10.0.0.1-10.0.0.254
	a.AddRange6(Range6{LoHi: 0x20010db800000000, LoLo: 0, HiHi: 0x20010db800000000, HiLo: 0xffff})
	a.AddRange4(Range4{Lo: 5, Hi: 4}) // empty
	for _, p := range []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/29", "10.0.0.16/28", "10.0.0.32/27",
		"10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/27", "10.0.0.224/28", "10.0.0.240/29", "10.0.0.248/30", "10.0.0.252/31", "10.0.0.254/32",
		"2001:db8::/112"} {
		b.Add(netip.MustParsePrefix(p))
	}
	if got, want := a.Set().Prefixes(), b.Set().Prefixes(); !slices.Equal(got, want) {
		t.Fatalf("ranges give %v, prefixes %v", got, want)
	}
}

// A few ranges patched into many take the span path; it must agree with
// the walk through every range, at the ends of the space too.
func TestSparsePatchAgreesWithWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for round := range 200 {
		var big, small Builder
		for range 3000 {
			big.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(4) * 85), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), 28+r.IntN(5)))
			var b16 [16]byte
			b16[0], b16[14], b16[15] = byte(r.IntN(2)*255), byte(r.IntN(256)), byte(r.IntN(256))
			big.Add(netip.PrefixFrom(netip.AddrFrom16(b16), 124+r.IntN(5)))
		}
		big.Add(netip.MustParsePrefix("255.255.255.254/32"))
		big.Add(netip.MustParsePrefix("0.0.0.1/32"))
		for range 1 + r.IntN(20) {
			switch r.IntN(6) {
			case 0:
				small.Add(netip.MustParsePrefix("255.255.255.255/32"))
			case 1:
				small.Add(netip.MustParsePrefix("0.0.0.0/32"))
			case 2:
				small.Add(netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"))
			default:
				small.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(4) * 85), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), 30+r.IntN(3)))
			}
		}
		var other Builder
		for range 1 + r.IntN(10) {
			other.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(4) * 85), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), 29+r.IntN(4)))
		}
		a, b, d := big.Set(), small.Set(), other.Set()
		if len(b.v4)*64 > len(a.v4) {
			t.Fatalf("round %d: %d and %d ranges do not take the span path", round, len(a.v4), len(b.v4))
		}
		for _, tc := range []struct {
			name       string
			got, want4 []r4
			got6       []r6
			want6      []r6
		}{
			{"union", a.Patch(b, nil).v4, union4(a.v4, b.v4), a.Patch(b, nil).v6, union6(a.v6, b.v6)},
			{"minus", a.Minus(b).v4, minus4(a.v4, b.v4), a.Minus(b).v6, minus6(a.v6, b.v6)},
			{"patch", a.Patch(b, d).v4, union4(minus4(a.v4, d.v4), b.v4), a.Patch(b, d).v6, union6(minus6(a.v6, d.v6), b.v6)},
		} {
			if !slices.Equal(tc.got, tc.want4) || !slices.Equal(tc.got6, tc.want6) {
				t.Fatalf("round %d: %s differs from the walk", round, tc.name)
			}
		}
	}
}

// BenchmarkPatchMillion is the covers' patch for one added and one
// removed address at a million entries (state.Covers after an add).
func BenchmarkPatchMillion(b *testing.B) {
	var bl Builder
	for _, p := range randomHosts4(1_000_000) {
		bl.Add(p)
	}
	s := bl.Set()
	var add, del Builder
	add.Add(netip.MustParsePrefix("198.18.0.1/32"))
	del.Add(s.Prefixes()[500_000])
	as, ds := add.Set(), del.Set()
	b.ReportAllocs()
	for b.Loop() {
		s.Patch(as, ds)
	}
}

// Patch is (s less del) with add, as netipx computes it.
func TestPatchIsMinusThenUnion(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 4))
	for round := range 300 {
		var big, add, del Builder
		var ref, refAdd, refDel netipx.IPSetBuilder
		addRandom(r, 50+r.IntN(3000), &big, &ref)
		addRandom(r, r.IntN(8), &add, &refAdd)
		addRandom(r, r.IntN(8), &del, &refDel)
		ra, _ := refAdd.IPSet()
		rd, _ := refDel.IPSet()
		ref.RemoveSet(rd)
		ref.AddSet(ra)
		want, _ := ref.IPSet()
		if got := big.Set().Patch(add.Set(), del.Set()).Prefixes(); !slices.Equal(got, want.Prefixes()) {
			t.Fatalf("round %d: patch\n got %v\nwant %v", round, got, want.Prefixes())
		}
	}
	var nilSet *Set
	if got := nilSet.Patch(nil, nil); !got.Empty() {
		t.Error("nil patched with nothing is not empty")
	}
}
