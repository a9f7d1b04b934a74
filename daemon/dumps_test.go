package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/prefixset"
)

// Readers of show -v share copies: one per version while it is current;
// past maxSharedDumps copies being read, an unprivileged reader gets the
// newest copy instead of a new one, and a privileged one still gets the
// current version.
func TestDumpShareBoundsCopies(t *testing.T) {
	st, _, err := state.Open(t.TempDir(), time.Now, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var s dumpShare
	copies := 0
	take := func() (*state.Dump, *prefixset.Set) {
		copies++
		return st.Dump(state.Black)
	}
	change := func(i int) {
		t.Helper()
		st.SetSource(state.Black, "manual", []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32)}, time.Time{})
	}
	acquire := func(privileged bool) (*sharedDump, func()) {
		return s.acquire(state.Black, st.Version(), privileged, take)
	}
	// Many readers of one version: one copy.
	var releases []func()
	for range 10 {
		_, release := acquire(false)
		releases = append(releases, release)
	}
	if copies != 1 {
		t.Fatalf("10 readers of one version made %d copies", copies)
	}
	// A change between each reader: a copy each, up to the bound.
	for i := range 10 {
		change(i)
		sd, release := acquire(false)
		releases = append(releases, release)
		if i+2 <= maxSharedDumps && sd.dump.Version() != st.Version() {
			t.Fatalf("reader %d got version %d, the lists are at %d", i, sd.dump.Version(), st.Version())
		}
	}
	if copies != maxSharedDumps || s.live != maxSharedDumps {
		t.Fatalf("%d copies made, %d being read; want %d", copies, s.live, maxSharedDumps)
	}
	// Past the bound, root still sees its change.
	change(99)
	sd, release := acquire(true)
	if sd.dump.Version() != st.Version() {
		t.Fatal("a privileged reader past the bound got an old copy")
	}
	var seen bool
	sd.dump.Each(func(e state.Entry) bool {
		seen = seen || e.Prefix == netip.MustParsePrefix("198.51.100.99/32")
		return true
	})
	if !seen {
		t.Fatal("the privileged reader's copy lacks the change")
	}
	release()
	release() // twice is once
	for _, r := range releases {
		r()
	}
	if s.live != 0 {
		t.Fatalf("%d copies still counted as read", s.live)
	}
	// Once the readers are gone, an unprivileged reader sees the current
	// version again.
	change(100)
	if sd, release := acquire(false); sd.dump.Version() != st.Version() {
		t.Fatal("an unprivileged reader got an old copy with nobody reading")
	} else {
		release()
	}
}
