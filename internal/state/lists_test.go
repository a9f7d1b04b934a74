package state

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/spfd/spfd/prefixset"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, pfx(s))
	}
	return out
}

func TestListsExpiry(t *testing.T) {
	clk := newClock()
	l := NewLists(clk.Now)
	l.Add(Black, pfx("203.0.113.5/32"), "log:sshd", clk.t.Add(time.Hour))
	l.Add(Black, pfx("203.0.113.5/32"), SourceManual, clk.t.Add(3*time.Hour))
	l.Add(Black, pfx("198.51.100.0/24"), SourceStatic, time.Time{})
	l.Add(Black, pfx("192.0.2.9/32"), "log:httpd", clk.t.Add(30*time.Minute))

	clk.Advance(45 * time.Minute)
	got := l.Expire()
	want := []Removal{{Black, pfx("192.0.2.9/32"), "log:httpd"}}
	if !slices.Equal(got, want) {
		t.Fatalf("expired %v, want %v", got, want)
	}
	clk.Advance(30 * time.Minute)
	got = l.Expire()
	if len(got) != 1 || got[0].Source != "log:sshd" {
		t.Fatalf("expired %v, want the sshd hold", got)
	}
	if !l.Contains(Black, pfx("203.0.113.5/32")) {
		t.Fatal("entry gone while the manual hold remains")
	}
	clk.Advance(2 * time.Hour)
	l.Expire()
	if l.Contains(Black, pfx("203.0.113.5/32")) || !l.Contains(Black, pfx("198.51.100.0/24")) {
		t.Fatalf("after all TTLs: %v", l.Entries(Black))
	}
	if l.Len(Black) != 1 {
		t.Fatalf("len %d, want 1", l.Len(Black))
	}
}

func TestListsRefreshReplacesExpiry(t *testing.T) {
	clk := newClock()
	l := NewLists(clk.Now)
	p := pfx("203.0.113.5/32")
	l.Add(Black, p, "log:sshd", clk.t.Add(time.Hour))
	clk.Advance(50 * time.Minute)
	l.Add(Black, p, "log:sshd", clk.t.Add(time.Hour)) // a new event refreshes
	clk.Advance(50 * time.Minute)
	if got := l.Expire(); len(got) != 0 {
		t.Fatalf("refreshed entry expired: %v", got)
	}
	e := l.Entries(Black)
	if len(e) != 1 || len(e[0].Holds) != 1 || !e[0].Holds[0].Expires.Equal(clk.t.Add(10*time.Minute)) {
		t.Fatalf("entries %+v", e)
	}
}

func TestListsSetSourceDiffs(t *testing.T) {
	l := NewLists(newClock().Now)
	a, r := l.SetSource(White, "spf:example.com", pfxs("192.0.2.0/24", "198.51.100.0/24"), time.Time{})
	if a != 2 || r != 0 {
		t.Fatalf("first set: +%d -%d", a, r)
	}
	l.SetSource(White, "spf:other.example", pfxs("198.51.100.0/24"), time.Time{})
	a, r = l.SetSource(White, "spf:example.com", pfxs("192.0.2.0/24", "203.0.113.0/24"), time.Time{})
	if a != 1 || r != 1 {
		t.Fatalf("second set: +%d -%d, want +1 -1", a, r)
	}
	// 198.51.100.0/24 stays: the other domain still holds it.
	want := pfxs("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
	var got []netip.Prefix
	for _, e := range l.Entries(White) {
		got = append(got, e.Prefix)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	l.SetSource(White, "spf:other.example", nil, time.Time{})
	if l.Contains(White, pfx("198.51.100.0/24")) {
		t.Fatal("entry held by no source remains")
	}
	if s := l.Sources(White, PrefixSPF); !slices.Equal(s, []string{"spf:example.com"}) {
		t.Fatalf("sources %v", s)
	}
}

func TestListsDelete(t *testing.T) {
	l := NewLists(newClock().Now)
	l.SetSource(White, "spf:example.com", pfxs("192.0.2.0/24"), time.Time{})
	l.Add(White, pfx("192.0.2.0/24"), SourceManual, time.Time{})
	if !l.Delete(White, pfx("192.0.2.0/24")) || l.Contains(White, pfx("192.0.2.0/24")) {
		t.Fatal("delete did not remove the entry")
	}
	if l.Delete(White, pfx("192.0.2.0/24")) {
		t.Fatal("second delete reported a removal")
	}
	if len(l.SourcePrefixes(White, "spf:example.com")) != 0 {
		t.Fatal("source membership kept a deleted prefix")
	}
}

func TestCoversWhitelistWins(t *testing.T) {
	l := NewLists(newClock().Now)
	l.SetIgnore(pfxs("10.0.0.0/8"))
	white := pfxs("192.0.2.0/25", "192.0.2.128/25", "2001:db8::/32")
	black := pfxs("192.0.2.7/32", "198.51.100.0/24", "198.51.100.9/32", "10.1.2.3/32",
		"127.0.0.1/32", "203.0.113.0/24", "2001:db8::5/128", "2001:db8:1::/48")
	var wb, bb prefixset.Builder
	for _, p := range white {
		wb.Add(p)
	}
	for _, p := range black {
		bb.Add(p)
	}
	ws, bs := Covers(&wb, &bb, l.Ignore())
	if got, want := ws.Prefixes(), pfxs("192.0.2.0/24"); !slices.Equal(got[:1], want) {
		t.Errorf("white cover %v, want %v first", got, want)
	}
	if got, want := bs.Prefixes(), pfxs("198.51.100.0/24", "203.0.113.0/24"); !slices.Equal(got, want) {
		t.Errorf("black cover %v, want %v", got, want)
	}
	tests := []struct {
		p    string
		want string
	}{
		{"192.0.2.7/32", "not pushed: whitelisted"},
		{"10.1.2.3/32", "not pushed: ignored network"},
		{"127.0.0.1/32", "not pushed: ignored network"},
		{"192.0.0.0/16", "partly pushed: overlaps the whitelist"},
		{"198.51.100.9/32", "pushed"},
	}
	for _, tt := range tests {
		if got := PushState(pfx(tt.p), ws, l.Ignore()); got != tt.want {
			t.Errorf("PushState(%s) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParseList(t *testing.T) {
	for in, want := range map[string]List{"white": White, "whitelist": White, "black": Black, "blacklist": Black} {
		if got, err := ParseList(in); err != nil || got != want {
			t.Errorf("ParseList(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseList("grey"); err == nil {
		t.Error("ParseList(grey) gave no error")
	}
}

// One dump may be walked by several readers at once (show -v shares
// copies): run with -race.
func TestDumpEachConcurrent(t *testing.T) {
	l := NewLists(time.Now)
	var ps []netip.Prefix
	for i := range 1000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	l.SetSource(Black, "manual", ps, time.Time{})
	d := l.Dump(Black)
	counts := make(chan int, 8)
	for range 8 {
		go func() {
			n := 0
			var last netip.Prefix
			d.Each(func(e Entry) bool {
				if n > 0 && e.Prefix.Addr().Less(last.Addr()) {
					n = -1 << 30 // out of order
				}
				last = e.Prefix
				n++
				return true
			})
			counts <- n
		}()
	}
	for range 8 {
		if n := <-counts; n != 1000 {
			t.Fatalf("a reader saw %d entries in order, want 1000", n)
		}
	}
}

// The per-source counts kept as holds change agree with a count over
// the entries, after any mix of adds, removals, deletions, set sources
// and expiry.
func TestSourceCountsKeptInStep(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := NewLists(func() time.Time { return now })
	r := rand.New(rand.NewPCG(1, 2))
	sources := []string{"manual", "log:sshd", "log:httpd", "feed:x", "spf:example.com"}
	prefix := func() netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(40))}), 32)
	}
	for step := range 5000 {
		src := sources[r.IntN(len(sources))]
		switch r.IntN(6) {
		case 0, 1:
			l.Add(Black, prefix(), src, now.Add(time.Duration(r.IntN(100))*time.Second))
		case 2:
			l.Remove(Black, prefix(), src)
		case 3:
			l.Delete(Black, prefix())
		case 4:
			var ps []netip.Prefix
			for range r.IntN(5) {
				ps = append(ps, prefix())
			}
			l.SetSource(Black, "feed:y", ps, time.Time{})
		case 5:
			now = now.Add(time.Duration(r.IntN(30)) * time.Second)
			l.Expire()
		}
		want := make(map[string]int)
		for _, e := range l.Entries(Black) {
			for _, h := range e.Holds {
				want[h.Source]++
			}
		}
		if got := l.SourceCounts(Black); !maps.Equal(got, want) {
			t.Fatalf("step %d: counts %v, entries say %v", step, got, want)
		}
	}
}
