package state

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
}

// The memory is bounded, and the least recently listed go first: an
// address listed again moves to the back of the line.
func TestOffendersForgetLeastRecentFirst(t *testing.T) {
	o := NewOffenders(100)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 100 {
		o.Record(addrN(i), 1, t0.Add(time.Duration(i)*time.Second))
	}
	o.Record(addrN(0), 2, t0.Add(time.Hour)) // listed again: now the newest
	for i := 100; i < 150; i++ {
		o.Record(addrN(i), 1, t0.Add(2*time.Hour+time.Duration(i)*time.Second))
	}
	if o.Len() != 100 {
		t.Fatalf("%d remembered, want 100", o.Len())
	}
	if off, ok := o.Get(addrN(0)); !ok || off.Count != 2 {
		t.Fatalf("the re-listed address was forgotten: %+v %v", off, ok)
	}
	for i := 1; i <= 50; i++ {
		if _, ok := o.Get(addrN(i)); ok {
			t.Fatalf("address %d, among the least recently listed, is remembered", i)
		}
	}
	for i := 51; i < 150; i++ {
		if _, ok := o.Get(addrN(i)); !ok {
			t.Fatalf("address %d is forgotten", i)
		}
	}
	// A flood of re-listings keeps the bookkeeping bounded too.
	for round := range 100 {
		for i := 51; i < 150; i++ {
			o.Record(addrN(i), 2+round, t0.Add(3*time.Hour+time.Duration(round*1000+i)*time.Second))
		}
	}
	if len(o.order)-o.head > 2*o.Len()+1024 {
		t.Fatalf("%d order records for %d offenders", len(o.order)-o.head, o.Len())
	}
	o.SetMax(10)
	if o.Len() != 10 {
		t.Fatalf("after SetMax(10): %d remembered", o.Len())
	}
}

// The memory survives a restart, from the journal and from a snapshot.
func TestOffendersPersist(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	st, _, err := Open(dir, clock, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("203.0.113.7")
	ban := func(st *State, count int) {
		t.Helper()
		if err := st.Commit(Op{Op: "add", List: "black", Prefix: netip.PrefixFrom(a, 32), Source: PrefixLog + "sshd",
			Expires: now.Add(48 * time.Hour), Offence: count, At: now}); err != nil {
			t.Fatal(err)
		}
	}
	ban(st, 2)
	st.Close()
	st, _, err = Open(dir, clock, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := st.Offence(a); !ok || off.Count != 2 || !off.Last.Equal(now) {
		t.Fatalf("after a journal replay: %+v %v", off, ok)
	}
	now = now.Add(time.Hour)
	ban(st, 3)
	if err := st.Snapshot(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, warnings, err := Open(dir, clock, Options{})
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	defer st.Close()
	if off, ok := st.Offence(a); !ok || off.Count != 3 || !off.Last.Equal(now) {
		t.Fatalf("after a snapshot: %+v %v", off, ok)
	}
}

// Offender records in a snapshot are checked like every other record.
func TestSnapshotOffenderRecords(t *testing.T) {
	for _, bad := range []string{"O 203.0.113.7 0 1800000000", "O 203.0.113.7 x 1", "O fe80::1%eth0 1 1", "O nothing", "O 203.0.113.7 1 1 extra"} {
		s := &Snapshot{Lists: NewLists(time.Now), Offenders: NewOffenders(0)}
		if err := s.readRecord(bad, map[uint64]sourceID{}); err == nil {
			t.Errorf("%q read without an error", bad)
		}
	}
	s := &Snapshot{Lists: NewLists(time.Now), Offenders: NewOffenders(0)}
	if err := s.readRecord(fmt.Sprintf("O 2001:db8::7 4 %d", 1_800_000_000), nil); err != nil {
		t.Fatal(err)
	}
	if off, ok := s.Offenders.Get(netip.MustParseAddr("2001:db8::7")); !ok || off.Count != 4 {
		t.Fatalf("%+v %v", off, ok)
	}
}
