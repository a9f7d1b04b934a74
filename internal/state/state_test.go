package state

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The owner's rules: a domain lives while an origin asks for it and goes
// with its networks when none does; an admin's removal of a capture
// lasts across a snapshot and a reopen; journalled changes survive a
// reopen without a snapshot.
func TestStateOriginsCapturesAndReopen(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) }
	st, warns, err := Open(dir, now, Options{})
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	st.SetOrigin(OriginConfig, []string{"a.example", "b.example"})
	if err := st.Commit(Op{Op: "domain-add", Domain: "b.example", Source: OriginCapture, Note: "maillog: line", At: now()},
		Op{Op: "domain-add", Domain: "c.example", Source: OriginCapture}); err != nil {
		t.Fatal(err)
	}
	st.UpdateDomain("a.example", func(ds *DomainState, set func([]netip.Prefix) (int, int)) {
		ds.Prefixes = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		set(ds.Prefixes)
	})
	if !st.Contains(White, netip.MustParsePrefix("192.0.2.0/24")) {
		t.Fatal("the walk's networks are not in the whitelist")
	}
	st.SetOrigin(OriginConfig, []string{"b.example"}) // a.example leaves the configuration
	if _, ok := st.Domain("a.example"); ok || st.Contains(White, netip.MustParsePrefix("192.0.2.0/24")) {
		t.Error("a domain nothing asks for stayed, or its networks did")
	}
	if got := st.TakeDropped(); !slices.Equal(got, []string{"a.example"}) {
		t.Errorf("dropped %v", got)
	}
	if b, _ := st.Domain("b.example"); !slices.Equal(b.Origins, []string{OriginCapture, OriginConfig}) || b.CapturedFrom != "maillog: line" {
		t.Errorf("b.example %+v", b)
	}
	if err := st.Commit(Op{Op: "capture-block", Domain: "b.example"}, Op{Op: "capture-block", Domain: "c.example"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := st.Domain("b.example"); !slices.Equal(b.Origins, []string{OriginConfig}) || b.CapturedFrom != "" {
		t.Errorf("b.example after the block: %+v", b)
	}
	if err := st.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(Op{Op: "add", List: "black", Prefix: netip.MustParsePrefix("203.0.113.7/32"), Source: SourceManual}); err != nil {
		t.Fatal(err)
	}
	st.Close() // no snapshot after the add: the journal carries it

	st2, _, err := Open(dir, now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if !st2.CaptureBlocked("b.example") || !st2.CaptureBlocked("c.example") || st2.Captured("b.example") {
		t.Error("the removal of captures did not last")
	}
	if got := st2.DomainNames(); !slices.Equal(got, []string{"b.example"}) {
		t.Errorf("domains after reopen %v", got)
	}
	if !st2.Contains(Black, netip.MustParsePrefix("203.0.113.7/32")) {
		t.Error("a journalled add was lost")
	}
}
