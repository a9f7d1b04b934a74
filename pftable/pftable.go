// Package pftable pushes spfd's lists into firewall tables. Every backend
// takes the desired content of a named table, a minimal non-overlapping
// set of prefixes, and makes the table match it.
package pftable

import (
	"context"
	"net/netip"
	"time"

	"github.com/spfd/spfd/prefixset"
	"go4.org/netipx"
)

// Backend makes kernel (or file) tables match spfd's state.
type Backend interface {
	// Kind names the backend ("file", "nftables", "pf").
	Kind() string
	// Sync makes table hold exactly the minimal prefix cover of set. It
	// must not flush a table to refill it.
	Sync(ctx context.Context, table string, set *prefixset.Set) error
	// Stats reports what the table holds and matched, where known.
	Stats(ctx context.Context, table string) (Stats, error)
	// Close releases the backend's resources.
	Close() error
}

// RepairCounter is a Backend that counts its drift repairs cheaply, so
// the daemon can log each one as it happens.
type RepairCounter interface {
	// Repairs is the number of times table was found changed behind the
	// backend's back and put right, since start.
	Repairs(table string) int
}

// HitCounter is a Backend whose kernel sums what a table matched, so the
// totals cost one call whatever the table's size (pf's table statistics,
// the counters of nftables rules): what a metrics scrape may ask every
// few seconds. Stats may read every element instead.
type HitCounter interface {
	Hits(ctx context.Context, table string) (Stats, error)
}

// ElementHitter is a Backend with a counter on every element (nftables'
// element counters): ElementCounts returns the table's elements that
// matched anything, with their counts. It reads the whole table, so it is
// for reports, not for every scrape. pf keeps per-address statistics
// too, but pledge "pf" does not allow DIOCRGETASTATS (kern_pledge.c).
type ElementHitter interface {
	ElementCounts(ctx context.Context, table string) ([]ElementCount, error)
}

// ElementCount is one table element (a range of addresses, first to
// last) and what its counter says.
type ElementCount struct {
	First, Last netip.Addr
	Packets     uint64
	Bytes       uint64
}

// HitSet is the addresses of the elements that matched.
func HitSet(counts []ElementCount) *prefixset.Set {
	var b prefixset.Builder
	for _, c := range counts {
		for _, p := range netipx.IPRangeFrom(c.First, c.Last).Prefixes() {
			b.Add(p)
		}
	}
	return b.Set()
}

// DriftNotifier is a Backend that may find a table changed behind its
// back outside a sync (a background read), and can say so, so that the
// caller syncs soon to repair it.
type DriftNotifier interface {
	NotifyDrift(f func())
}

// BackgroundReader is a Backend that reads its tables back in the
// background and can say which it is reading now: show status tells an
// admin why spfd is busy, and benchmarks time adds during such a read.
type BackgroundReader interface {
	ReadingBack() []string
}

// Stats describes one table.
type Stats struct {
	Entries int
	Packets uint64 // matched, where the backend counts
	Bytes   uint64
	// Connections are the new TCP connections (SYN) among Packets, where
	// the backend tells them apart: spfd's own nftables rules do.
	Connections uint64
	Counters    bool // Packets and Bytes are meaningful
	LastSync    time.Time
	Repairs     int // drift repairs since start
}
