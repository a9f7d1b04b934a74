package pftable

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/spfd/spfd/prefixset"
)

// BenchmarkSyncDuringStats measures how long a one-element sync waits
// while show stats sums the element counters of a big set (220 000
// elements): the sync-ms metric. Stats used to hold the lock syncs need
// for the whole dump. As root: go test -run - -bench SyncDuringStats ./pftable
func BenchmarkSyncDuringStats(b *testing.B) {
	needNetns(b)
	n, err := NewNFTables("spfdbench")
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	n.ElementCounters = true
	set := bigSet(200_000, 20_000)
	ctx := context.Background()
	if err := n.Sync(ctx, "black", set); err != nil {
		b.Fatal(err)
	}
	var waited, stats time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		done := make(chan time.Duration)
		go func() { n.Stats(ctx, "black"); done <- time.Since(start) }()
		time.Sleep(20 * time.Millisecond) // let the dump begin
		var bld prefixset.Builder
		bld.AddSet(set)
		bld.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32))
		set = bld.Set()
		s0 := time.Now()
		if err := n.Sync(ctx, "black", set); err != nil {
			b.Fatal(err)
		}
		waited += time.Since(s0)
		stats += <-done
	}
	b.ReportMetric(float64(waited.Milliseconds())/float64(b.N), "sync-ms")
	b.ReportMetric(float64(stats.Milliseconds())/float64(b.N), "stats-ms")
}
