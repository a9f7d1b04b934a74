package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sampleSnapshot(clk *fakeClock) *Snapshot {
	l := NewLists(clk.Now)
	l.SetSource(White, "spf:gmail.com", pfxs("192.0.2.0/24", "2001:db8::/32"), time.Time{})
	l.SetSource(White, "spf:outlook.com", pfxs("192.0.2.0/24"), time.Time{})
	l.Add(White, pfx("198.51.100.1/32"), SourceManual, clk.t.Add(time.Hour))
	l.Add(Black, pfx("203.0.113.9/32"), "log:sshd", clk.t.Add(24*time.Hour))
	l.Add(Black, pfx("203.0.113.9/32"), SourceManual, time.Time{})
	l.SetSource(Black, SourceStatic, pfxs("203.0.113.128/25"), time.Time{})
	return &Snapshot{
		Generation: 7,
		Lists:      l,
		Domains: []DomainState{{Name: "gmail.com", Origins: []string{"config"}, Status: "complete",
			Prefixes: pfxs("192.0.2.0/24"), LastWalk: clk.t, NextWalk: clk.t.Add(time.Hour), TTL: 300 * time.Second}},
		Positions: []json.RawMessage{json.RawMessage(`{"path":"/var/log/authlog","offset":42}`)},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	clk := newClock()
	in := sampleSnapshot(clk)
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadSnapshot(bytes.NewReader(buf.Bytes()), clk.Now)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if out.Generation != 7 {
		t.Errorf("generation %d", out.Generation)
	}
	for _, list := range []List{White, Black} {
		if got, want := out.Lists.Entries(list), in.Lists.Entries(list); !reflect.DeepEqual(got, want) {
			t.Errorf("%s entries:\n got %+v\nwant %+v", list, got, want)
		}
	}
	if got := out.Lists.SourcePrefixes(White, "spf:gmail.com"); !slices.Equal(got, pfxs("192.0.2.0/24", "2001:db8::/32")) {
		t.Errorf("spf:gmail.com members %v", got)
	}
	if !reflect.DeepEqual(out.Domains, in.Domains) {
		t.Errorf("domains:\n got %+v\nwant %+v", out.Domains, in.Domains)
	}
	if len(out.Positions) != 1 || string(out.Positions[0]) != string(in.Positions[0]) {
		t.Errorf("positions %s", out.Positions)
	}
	// A set-source diff still works after a restore.
	if a, r := out.Lists.SetSource(White, "spf:gmail.com", pfxs("192.0.2.0/24"), time.Time{}); a != 0 || r != 1 {
		t.Errorf("diff after restore: +%d -%d, want +0 -1", a, r)
	}
}

func TestSnapshotDamageIsDetected(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, sampleSnapshot(clk)); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for cut := 0; cut < len(good)-1; cut += 7 {
		if _, err := ReadSnapshot(bytes.NewReader(good[:cut]), clk.Now); err == nil {
			t.Fatalf("truncated at %d of %d: no error", cut, len(good))
		}
	}
	for i := len("spfd-state 1 7\n"); i < len(good)-20; i += 11 {
		bad := slices.Clone(good)
		bad[i] ^= 0x01
		if _, err := ReadSnapshot(bytes.NewReader(bad), clk.Now); err == nil {
			t.Fatalf("flipped bit at %d: no error", i)
		}
	}
}

func TestStoreJournalReplayAndFallback(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	st, snap, ops, warns, err := OpenStore(dir, clk.Now)
	if err != nil || len(ops) != 0 || len(warns) != 0 || snap.Lists.Len(White) != 0 {
		t.Fatalf("fresh store: %v %v %v", err, ops, warns)
	}
	op1 := Op{Op: "add", List: "white", Prefix: pfx("192.0.2.1/32"), Source: SourceManual}
	op2 := Op{Op: "domain-add", Domain: "example.com"}
	if err := st.Append(op1, op2); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Reopen: the journal is replayed.
	st, _, ops, warns, err = OpenStore(dir, clk.Now)
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	if !reflect.DeepEqual(ops, []Op{op1, op2}) {
		t.Fatalf("replayed %+v", ops)
	}
	// Snapshot with the op applied, then one more op.
	gen, err := st.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	s1 := &Snapshot{Generation: gen, Lists: NewLists(clk.Now)}
	s1.Lists.Add(White, pfx("192.0.2.1/32"), SourceManual, time.Time{})
	var buf bytes.Buffer
	WriteSnapshot(&buf, s1)
	if err := st.CommitSnapshot(writeBytes(buf.Bytes()), gen); err != nil {
		t.Fatal(err)
	}
	op3 := Op{Op: "add", List: "black", Prefix: pfx("203.0.113.1/32"), Source: SourceManual}
	st.Append(op3)
	// Second snapshot, so state.prev exists.
	gen2, _ := st.Rotate()
	s2 := &Snapshot{Generation: gen2, Lists: NewLists(clk.Now)}
	s2.Lists.Add(White, pfx("192.0.2.1/32"), SourceManual, time.Time{})
	s2.Lists.Add(Black, pfx("203.0.113.1/32"), SourceManual, time.Time{})
	buf.Reset()
	WriteSnapshot(&buf, s2)
	if err := st.CommitSnapshot(writeBytes(buf.Bytes()), gen2); err != nil {
		t.Fatal(err)
	}
	op4 := Op{Op: "delete", List: "white", Prefix: pfx("192.0.2.1/32")}
	st.Append(op4)
	st.Close()

	_, snap, ops, _, _ = OpenStore(dir, clk.Now)
	if snap.Generation != gen2 || snap.Lists.Len(Black) != 1 || !reflect.DeepEqual(ops, []Op{op4}) {
		t.Fatalf("after snapshots: gen %d, black %d, ops %+v", snap.Generation, snap.Lists.Len(Black), ops)
	}

	// Damage the newest snapshot: spfd falls back to state.prev and
	// replays every journal since, losing nothing.
	path := filepath.Join(dir, "state")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)/2], 0o600)
	_, snap, ops, warns, err = OpenStore(dir, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) == 0 || !strings.Contains(warns[0], "trying the previous copy") {
		t.Errorf("warnings %q", warns)
	}
	if snap.Generation != gen || !reflect.DeepEqual(ops, []Op{op3, op4}) {
		t.Fatalf("fallback: gen %d (want %d), ops %+v", snap.Generation, gen, ops)
	}

	// Both copies damaged: start empty, with a warning, not a crash.
	os.WriteFile(filepath.Join(dir, "state.prev"), []byte("garbage"), 0o600)
	_, snap, _, warns, err = OpenStore(dir, clk.Now)
	if err != nil || snap.Lists.Len(White) != 0 || !strings.Contains(strings.Join(warns, "\n"), "starting empty") {
		t.Fatalf("both damaged: %v %q", err, warns)
	}
}

func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	content := `{"op":"domain-add","domain":"a.example"}` + "\n" + `{"op":"domain-add","dom`
	os.WriteFile(filepath.Join(dir, "journal.1"), []byte(content), 0o600)
	_, _, ops, warns, err := OpenStore(dir, time.Now)
	if err != nil || len(warns) != 0 || len(ops) != 1 || ops[0].Domain != "a.example" {
		t.Fatalf("ops %+v warns %q err %v", ops, warns, err)
	}
	// Intact records after a damaged one are kept (before: all lost).
	os.WriteFile(filepath.Join(dir, "journal.1"), []byte("garbage\n"+content), 0o600)
	_, _, ops, warns, _ = OpenStore(dir, time.Now)
	if len(ops) != 1 || ops[0].Domain != "a.example" || len(warns) != 1 || !strings.Contains(warns[0], "damaged journal lines skipped: 1") {
		t.Fatalf("damaged head: ops %+v warns %q", ops, warns)
	}
	// A record glued onto a torn one (an append that failed half-way,
	// then one that worked) is read back.
	glued := `{"op":"domain-add","domain":"a.example"}` + "\n" + `{"op":"add","list":"bl` + `{"op":"domain-add","domain":"b.example"}` + "\n" +
		`{"op":"domain-add","domain":"c.example"}` + "\n"
	os.WriteFile(filepath.Join(dir, "journal.1"), []byte(glued), 0o600)
	_, _, ops, warns, _ = OpenStore(dir, time.Now)
	var names []string
	for _, op := range ops {
		names = append(names, op.Domain)
	}
	if strings.Join(names, " ") != "a.example b.example c.example" || len(warns) != 1 {
		t.Fatalf("glued: ops %q warns %q", names, warns)
	}
}

// fullDisk is a journal file whose disk fills after room bytes: a write
// that does not fit writes what fits and fails with ENOSPC, as write(2)
// does.
type fullDisk struct {
	*os.File
	room *int
}

func (f fullDisk) Write(p []byte) (int, error) {
	if len(p) <= *f.room {
		*f.room -= len(p)
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:*f.room])
	*f.room = 0
	return n, syscall.ENOSPC
}

// A full disk: the failed append is reported, leaves the journal as it
// was, and adds acknowledged after space is freed survive a restart
// (before: all 50 were lost behind the glued line).
func TestJournalFullDisk(t *testing.T) {
	dir := t.TempDir()
	room := 1 << 20
	st, _, _, _, err := OpenStore(dir, time.Now, Options{OpenJournal: func(path string) (JournalFile, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		return fullDisk{f, &room}, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(i int) error {
		return st.Append(Op{Op: "add", List: "black", Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32), Source: "manual"})
	}
	if err := add(1); err != nil {
		t.Fatal(err)
	}
	room = 20 // the next record does not fit
	if err := add(2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if st.Err() == nil {
		t.Error("the store does not report the failure")
	}
	room = 1 << 20 // space freed
	for i := 3; i < 53; i++ {
		if err := add(i); err != nil {
			t.Fatal(err)
		}
	}
	if st.Err() != nil {
		t.Errorf("failure still reported after success: %v", st.Err())
	}
	st.Close() // as kill -9 leaves it: no snapshot
	_, snap, ops, warns, err := OpenStore(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	l := snap.Lists
	for _, op := range ops {
		l.Add(Black, op.Prefix, op.Source, op.Expires)
	}
	if len(warns) != 0 || len(ops) != 51 || l.Contains(Black, netip.MustParsePrefix("203.0.113.2/32")) {
		t.Fatalf("after restart: %d ops (want 51: the first and the 50 after), warnings %q", len(ops), warns)
	}
}

func FuzzReadSnapshot(f *testing.F) {
	var buf bytes.Buffer
	WriteSnapshot(&buf, sampleSnapshot(newClock()))
	f.Add(buf.Bytes())
	f.Add([]byte("spfd-state 1 0\nEND 0 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSnapshot(bytes.NewReader(data), time.Now)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteSnapshot(&out, s); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(&out, time.Now); err != nil {
			t.Fatalf("rewritten snapshot unreadable: %v", err)
		}
	})
}
