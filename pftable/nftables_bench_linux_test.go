package pftable

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/prefixset"
)

// BenchmarkNFTablesFullSync pushes 100 000 IPv4 and 10 000 IPv6 prefixes
// into empty sets, and for comparison loads the same elements with nft -f:
// both sides without element counters (spfd's default), then both with.
func BenchmarkNFTablesFullSync(b *testing.B) {
	if os.Getenv("SPFD_IN_NETNS") != "1" {
		b.Skip("needs root in a private namespace")
	}
	set := bigSet(100_000, 10_000)
	for _, counters := range []bool{false, true} {
		name := "rules"
		if counters {
			name = "elements"
		}
		b.Run("counters="+name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "load.nft")
			os.WriteFile(path, []byte(nftScript("spfdnft", set, counters)), 0o644)
			var spfd, nftf time.Duration
			for b.Loop() {
				exec.Command("nft", "delete", "table", "inet", "spfdbench").Run()
				n, err := NewNFTables("spfdbench")
				if err != nil {
					b.Fatal(err)
				}
				n.ElementCounters = counters
				start := time.Now()
				if err := n.Sync(context.Background(), "black", set); err != nil {
					b.Fatal(err)
				}
				spfd += time.Since(start)
				n.Close()
				exec.Command("nft", "delete", "table", "inet", "spfdnft").Run()
				start = time.Now()
				if out, err := exec.Command("nft", "-f", path).CombinedOutput(); err != nil {
					b.Fatalf("nft -f: %v\n%s", err, out)
				}
				nftf += time.Since(start)
			}
			b.ReportMetric(float64(spfd.Milliseconds())/float64(b.N), "ms/spfd-sync")
			b.ReportMetric(float64(nftf.Milliseconds())/float64(b.N), "ms/nft-f")
		})
	}
}

// BenchmarkNFTablesAddOne adds one address to sets already holding the
// 110 000 elements, and for comparison with nft's own CLI.
func BenchmarkNFTablesAddOne(b *testing.B) {
	if os.Getenv("SPFD_IN_NETNS") != "1" {
		b.Skip("needs root in a private namespace")
	}
	exec.Command("nft", "delete", "table", "inet", "spfdone").Run()
	n, err := NewNFTables("spfdone")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	base := bigSet(100_000, 10_000).Prefixes()
	build := func(extra ...netip.Prefix) *prefixset.Set {
		var bl prefixset.Builder
		bl.Grow(len(base)+len(extra), 0)
		for _, p := range append(base, extra...) {
			bl.Add(p)
		}
		return bl.Set()
	}
	if err := n.Sync(context.Background(), "black", build()); err != nil {
		b.Fatal(err)
	}
	var spfd, cli time.Duration
	for i := 0; b.Loop(); i++ {
		next := build(netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 32))
		start := time.Now()
		if err := n.Sync(context.Background(), "black", next); err != nil {
			b.Fatal(err)
		}
		spfd += time.Since(start)
		start = time.Now()
		ip := fmt.Sprintf("198.18.%d.%d", (i>>8)&255, i&255)
		if out, err := exec.Command("nft", "add", "element", "inet", "spfdone", "black4", "{ "+ip+" }").CombinedOutput(); err != nil {
			b.Fatalf("nft add element: %v\n%s", err, out)
		}
		cli += time.Since(start)
	}
	b.ReportMetric(float64(spfd.Microseconds())/float64(b.N), "µs/spfd-add")
	b.ReportMetric(float64(cli.Microseconds())/float64(b.N), "µs/nft-add")
}

// nftScript writes the same four sets for nft -f.
func nftScript(table string, set *prefixset.Set, counters bool) string {
	c := contentOf(set)
	var sb strings.Builder
	fmt.Fprintf(&sb, "table inet %s {\n", table)
	write := func(name, typ string, interval bool, elems []string) {
		flags := ""
		if interval {
			flags = "flags interval;"
		}
		if counters {
			flags += " counter;"
		}
		fmt.Fprintf(&sb, "set %s { type %s; %s", name, typ, flags)
		if len(elems) > 0 {
			fmt.Fprintf(&sb, " elements = { %s }", strings.Join(elems, ", "))
		}
		sb.WriteString(" }\n")
	}
	a4 := func(v uint32) string { a, _ := netip.AddrFromSlice(key4(v)); return a.String() }
	a6 := func(hi, lo uint64) string { a, _ := netip.AddrFromSlice(key6(hi, lo)); return a.String() }
	var r4, r6, h4, h6 []string
	for _, r := range c.ranges4 {
		r4 = append(r4, a4(r.Lo)+"-"+a4(r.Hi))
	}
	for _, r := range c.ranges6 {
		r6 = append(r6, a6(r.LoHi, r.LoLo)+"-"+a6(r.HiHi, r.HiLo))
	}
	for _, h := range c.hosts4 {
		h4 = append(h4, a4(h))
	}
	for _, h := range c.hosts6 {
		h6 = append(h6, a6(h.LoHi, h.LoLo))
	}
	write("black4", "ipv4_addr", true, r4)
	write("black6", "ipv6_addr", true, r6)
	write("black4h", "ipv4_addr", false, h4)
	write("black6h", "ipv6_addr", false, h6)
	sb.WriteString("}\n")
	return sb.String()
}
