package state

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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

// The offenders file is checked whole: a bad line, a wrong END or a
// missing one is an error (the memory is then forgotten, nothing else).
func TestReadOffenders(t *testing.T) {
	o := NewOffenders(0)
	t0 := time.Unix(1_800_000_000, 0)
	o.Record(netip.MustParseAddr("203.0.113.7"), 3, t0)
	o.Record(netip.MustParseAddr("2001:db8::7"), 1, t0.Add(time.Hour))
	good := string(o.marshal())
	back := NewOffenders(0)
	if err := readOffenders(strings.NewReader(good), back); err != nil {
		t.Fatal(err)
	}
	if off, ok := back.Get(netip.MustParseAddr("203.0.113.7")); !ok || off.Count != 3 || !off.Last.Equal(t0) {
		t.Fatalf("read back %+v %v", off, ok)
	}
	if back.Len() != 2 {
		t.Fatalf("%d read back", back.Len())
	}
	for name, bad := range map[string]string{
		"truncated":  strings.Join(strings.SplitAfter(good, "\n")[:2], ""),
		"count 0":    strings.Replace(good, " 3 ", " 0 ", 1),
		"changed":    strings.Replace(good, "203.0.113.7", "203.0.113.8", 1),
		"not ours":   "spfd-state 1 4\nEND 0 00000000\n",
		"zone":       strings.Replace(good, "2001:db8::7", "fe80::1%eth0", 1),
		"extra word": strings.Replace(good, " 3 ", " 3 x ", 1),
	} {
		if err := readOffenders(strings.NewReader(bad), NewOffenders(0)); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
}

// The snapshot holds no offender records, so that an spfd from before
// them reads it after a rollback; they are in a file of their own.
func TestSnapshotReadableWithoutOffenders(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0)
	st, _, err := Open(dir, func() time.Time { return now }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(Op{Op: "add", List: "black", Prefix: netip.MustParsePrefix("203.0.113.7/32"), Source: PrefixLog + "sshd",
		Expires: now.Add(time.Hour), Offence: 2, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.Snapshot(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	snap, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(snap), "\n") {
		if line != "" && !strings.ContainsAny(line[:1], "SWBDPEs") {
			t.Fatalf("a record an older spfd does not know: %q", line)
		}
	}
	off, err := os.ReadFile(filepath.Join(dir, offendersFile))
	if err != nil || !strings.Contains(string(off), "203.0.113.7 2 ") {
		t.Fatalf("offenders file: %q %v", off, err)
	}
	// A damaged offenders file is a warning, and the lists are intact.
	if err := os.WriteFile(filepath.Join(dir, offendersFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, warnings, err := Open(dir, func() time.Time { return now }, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "repeat offenders forgotten") || st.Len(Black) != 1 {
		t.Fatalf("warnings %q, %d black entries", warnings, st.Len(Black))
	}
}
