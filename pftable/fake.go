package pftable

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/spfd/spfd/prefixset"
)

// Fake is an in-memory backend for tests.
type Fake struct {
	mu      sync.Mutex
	tables  map[string][]netip.Prefix
	syncs   map[string]int
	reading []string
	// Fail, when set, is returned by Sync for the named table.
	Fail map[string]error
	hits map[string]Stats
	// ElementHits, when set, is what ElementCounts answers for a table.
	ElementHits map[string][]ElementCount
}

// NewFake returns an empty fake backend.
func NewFake() *Fake {
	return &Fake{tables: make(map[string][]netip.Prefix), syncs: make(map[string]int), Fail: make(map[string]error), hits: make(map[string]Stats)}
}

// Kind implements Backend.
func (f *Fake) Kind() string { return "fake" }

// Close implements Backend.
func (f *Fake) Close() error { return nil }

// Sync implements Backend.
func (f *Fake) Sync(_ context.Context, table string, set *prefixset.Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Fail[table]; err != nil {
		return fmt.Errorf("fake: table %s: %w", table, err)
	}
	f.tables[table] = set.Prefixes()
	f.syncs[table]++
	return nil
}

// SetHits sets what the table's counters say, as a kernel's would.
func (f *Fake) SetHits(table string, packets, connections uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits[table] = Stats{Packets: packets, Connections: connections, Counters: true}
}

// Hits implements HitCounter: what SetHits said.
func (f *Fake) Hits(_ context.Context, table string) (Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[table], nil
}

// ElementCounts implements ElementHitter: what ElementHits says.
func (f *Fake) ElementCounts(_ context.Context, table string) ([]ElementCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.ElementHits[table]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("fake: table %s has no element counters", table)
}

// Stats implements Backend.
func (f *Fake) Stats(_ context.Context, table string) (Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Entries: len(f.tables[table]), LastSync: time.Time{}}, nil
}

// Table returns what the table holds.
func (f *Fake) Table(name string) []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tables[name])
}

// Syncs reports how often the table was synced.
func (f *Fake) Syncs(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs[name]
}

// SetReadingBack sets what ReadingBack reports.
func (f *Fake) SetReadingBack(tables ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reading = tables
}

// ReadingBack implements BackgroundReader.
func (f *Fake) ReadingBack() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reading)
}
