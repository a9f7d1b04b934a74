package state

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fullCovers computes the covers from scratch, the reference the patched
// ones must match.
func fullCovers(s *State) (white, black []netip.Prefix) {
	s.mu.Lock()
	wb, bb, ignore := s.lists.Builder(White), s.lists.Builder(Black), s.lists.Ignore()
	s.mu.Unlock()
	ws, bs := Covers(wb, bb, ignore)
	return ws.Prefixes(), bs.Prefixes()
}

func openTestState(t *testing.T, clock *fakeClock) *State {
	t.Helper()
	s, _, err := Open(t.TempDir(), clock.Now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Random changes to both lists, in every form that reaches them, must
// leave the patched covers equal to covers computed afresh; and single
// addresses must be patched, not recomputed.
func TestCoversPatchedMatchFull(t *testing.T) {
	clock := newClock()
	s := openTestState(t, clock)
	r := rand.New(rand.NewPCG(3, 5))
	// A small corner of the space, so entries overlap, touch, and meet
	// the ignore list and the whitelist.
	addr := func() netip.Addr {
		switch r.IntN(6) {
		case 0:
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(16))})
		case 1:
			return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: byte(r.IntN(16))}) // IPv4-mapped
		case 2:
			return netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(16))}) // ignored below
		}
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(16))})
	}
	host := func() netip.Prefix { a := addr(); return netip.PrefixFrom(a, a.BitLen()) }
	network := func() netip.Prefix {
		a := addr()
		return netip.PrefixFrom(a, a.BitLen()-1-r.IntN(3)).Masked()
	}
	sources := []string{"manual", "log:sshd", "feed:x", "spf:example.org"}
	patched := 0
	for round := range 2000 {
		list := List(r.IntN(2))
		s.mu.Lock()
		switch op := r.IntN(20); {
		case op < 8:
			s.lists.Add(list, host(), sources[r.IntN(2)], clock.Now().Add(time.Duration(1+r.IntN(30))*time.Minute))
		case op < 11:
			s.lists.Remove(list, host(), sources[r.IntN(2)])
		case op < 13:
			s.lists.Delete(list, host())
		case op < 15:
			var ps []netip.Prefix
			for range r.IntN(4) {
				ps = append(ps, host())
			}
			s.lists.SetSource(list, sources[2+r.IntN(2)], ps, time.Time{})
		case op < 17:
			s.mu.Unlock()
			clock.Advance(time.Duration(r.IntN(10)) * time.Minute)
			s.mu.Lock()
			s.lists.Expire()
		case op < 19:
			s.lists.Add(list, network(), "manual", time.Time{})
		default:
			if r.IntN(10) == 0 {
				s.lists.SetIgnore([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/29")})
			} else {
				s.lists.Delete(list, network())
			}
		}
		s.mu.Unlock()
		if r.IntN(3) > 0 {
			continue // several changes between covers
		}
		full := s.covers.full
		ws, bs, _ := s.Covers()
		if s.covers.full == full {
			patched++
		}
		wantW, wantB := fullCovers(s)
		if got := ws.Prefixes(); !slices.Equal(got, wantW) {
			t.Fatalf("round %d: white\n got %v\nwant %v", round, got, wantW)
		}
		if got := bs.Prefixes(); !slices.Equal(got, wantB) {
			t.Fatalf("round %d: black\n got %v\nwant %v", round, got, wantB)
		}
	}
	if patched < 300 {
		t.Errorf("only %d covers were patched; the rest were computed afresh", patched)
	}
	// The length counts covered relies on match the entries.
	for li, tb := range s.lists.tables {
		var want [2][129]int32
		tb.each(func(p netip.Prefix, _ hold) {
			fam := 0
			if !p.Addr().Is4() {
				fam = 1
			}
			want[fam][p.Bits()]++
		})
		if tb.lens != want {
			t.Errorf("list %d: length counts %v, entries say %v", li, tb.lens, want)
		}
	}
}

// The rules of Covers hold for patched covers: whitelist wins, the
// ignore list is never pushed, and an address leaves a cover only when
// nothing holds it any more.
func TestCoversPatchedRules(t *testing.T) {
	s := openTestState(t, newClock())
	s.SetIgnore(pfxs("10.0.0.0/8"))
	s.Covers()
	fulls := s.covers.full
	a := pfx("192.0.2.7/32")
	commit := func(op, list string, p netip.Prefix, src string) {
		t.Helper()
		if err := s.Commit(Op{Op: op, List: list, Prefix: p, Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, white, black bool) {
		t.Helper()
		ws, bs, _ := s.Covers()
		if ws.Contains(a) != white || bs.Contains(a) != black {
			t.Errorf("%s: white %v black %v, want %v %v", step, ws.Contains(a), bs.Contains(a), white, black)
		}
	}
	commit("add", "black", a, "log:sshd")
	check("blacklisted", false, true)
	commit("add", "black", a, "manual")
	commit("remove", "black", a, "log:sshd")
	check("one of two holds gone", false, true)
	commit("add", "white", a, "manual")
	check("whitelisted too", true, false)
	commit("delete", "white", a, "")
	check("whitelist entry deleted", false, true)
	commit("delete", "black", a, "")
	check("deleted", false, false)
	commit("add", "black", pfx("10.1.2.3/32"), "log:sshd")
	if _, bs, _ := s.Covers(); bs.Contains(pfx("10.1.2.3/32")) {
		t.Error("an ignored address was pushed")
	}
	if s.covers.full != fulls {
		t.Errorf("%d full computations for single addresses", s.covers.full-fulls)
	}
	// A network changes many addresses at once: computed afresh.
	commit("add", "white", pfx("192.0.2.0/24"), "manual")
	commit("add", "black", a, "log:sshd")
	check("inside a whitelisted network", true, false)
	if s.covers.full == fulls {
		t.Error("a network's change was patched")
	}
}
