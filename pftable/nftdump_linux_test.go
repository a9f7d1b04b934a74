package pftable

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/spfd/spfd/prefixset"
)

// hostSet returns n single IPv4 addresses, none adjacent.
func hostSet(n int) *prefixset.Set {
	var b prefixset.Builder
	for i := range n {
		b.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + i>>15), byte(i >> 7), byte(i << 1), 1}), 32))
	}
	return b.Set()
}

// The dump reader must read what the library reads: keys, interval ends
// and counters, in every kind of set spfd keeps, across many of the
// kernel's messages.
func TestDumpSetElementsAgreesWithLibrary(t *testing.T) {
	needNetns(t)
	n, err := NewNFTables("spfddump")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.ElementCounters = true
	var b prefixset.Builder
	b.AddSet(bigSet(30_000, 3_000))
	for i := range 3_000 {
		b.Add(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb9, 14: byte(i >> 7), 15: byte(i<<1 + 1)}), 128))
	}
	if err := n.Sync(context.Background(), "black", b.Set()); err != nil {
		t.Fatal(err)
	}
	// A packet's worth of counts on one element, so a counter is not
	// just zero.
	nft(t, "add", "element", "inet", "spfddump", "black4h", "{ 198.18.0.1 counter packets 7 bytes 420 }")
	for _, s := range n.lists["black"].sets {
		ours, err := dumpSetElements(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := n.conn.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) < 3_000 {
			t.Fatalf("set %s: %d elements, want thousands", s.Name, len(ours))
		}
		key := func(e nftables.SetElement) string {
			c := "-"
			if e.Counter != nil {
				c = fmt.Sprintf("%d/%d", e.Counter.Packets, e.Counter.Bytes)
			}
			return fmt.Sprintf("%x %v %s", e.Key, e.IntervalEnd, c)
		}
		a, b := make([]string, len(ours)), make([]string, len(theirs))
		for i, e := range ours {
			a[i] = key(e)
		}
		for i, e := range theirs {
			b[i] = key(e)
		}
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("set %s: %d elements read, the library reads %d, or they differ", s.Name, len(a), len(b))
		}
		if s.Name == "black4h" && !slices.ContainsFunc(ours, func(e nftables.SetElement) bool {
			return bytes.Equal(e.Key, []byte{198, 18, 0, 1}) && e.Counter != nil && e.Counter.Packets == 7 && e.Counter.Bytes == 420
		}) {
			t.Fatal("the counter of 198.18.0.1 was not read")
		}
	}
	// A set that does not exist is an error, not an empty answer.
	if _, err := dumpSetElements(context.Background(), &nftables.Set{Table: n.table, Name: "nosuchset"}); err == nil {
		t.Fatal("no error for a missing set")
	}
}

// BenchmarkReadBack reads SPFD_BENCH_N (default 200 000) single
// addresses back from the kernel with the library and with spfd's own
// reader: the ratio is what a re-read of the sets gains. As root:
// go test -run - -bench ReadBack ./pftable
func BenchmarkReadBack(b *testing.B) {
	needNetns(b)
	size := 200_000
	if v, err := strconv.Atoi(os.Getenv("SPFD_BENCH_N")); err == nil && v > 0 {
		size = v
	}
	n, err := NewNFTables("spfdreadback")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.Sync(context.Background(), "black", hostSet(size)); err != nil {
		b.Fatal(err)
	}
	s := n.lists["black"].sets[2]
	var lib, own time.Duration
	for b.Loop() {
		t0 := time.Now()
		e1, err := n.conn.GetSetElements(s)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		e2, err := dumpSetElements(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		lib, own = lib+t1.Sub(t0), own+time.Since(t1)
		if len(e1) != len(e2) || len(e2) != size {
			b.Fatalf("read %d and %d elements", len(e1), len(e2))
		}
	}
	b.ReportMetric(float64(lib.Milliseconds())/float64(b.N), "library-ms")
	b.ReportMetric(float64(own.Milliseconds())/float64(b.N), "own-ms")
}
