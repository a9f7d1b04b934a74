package pftable

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// The C layouts from OpenBSD's net/pfvar.h, per architecture. On LP64
// (amd64, arm64) pointers take 8 bytes; on i386 and armv7 4; 64-bit
// counters are aligned to 8 on arm and to 4 on i386.
func TestPFLayout(t *testing.T) {
	check := func(what string, got, want uintptr) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d (%s)", what, got, want, runtime.GOARCH)
		}
	}
	var tb pfrTable
	check("sizeof(struct pfr_table)", unsafe.Sizeof(tb), 1064)
	check("offsetof(pfrt_anchor)", unsafe.Offsetof(tb.Anchor), 0)
	check("offsetof(pfrt_name)", unsafe.Offsetof(tb.Name), 1024)
	check("offsetof(pfrt_flags)", unsafe.Offsetof(tb.Flags), 1056)
	check("offsetof(pfrt_fback)", unsafe.Offsetof(tb.Fback), 1060)

	var a pfrAddr
	check("sizeof(struct pfr_addr)", unsafe.Sizeof(a), 52)
	check("offsetof(pfra_u)", unsafe.Offsetof(a.Addr), 0)
	check("offsetof(pfra_ifname)", unsafe.Offsetof(a.Ifname), 16)
	check("offsetof(pfra_states)", unsafe.Offsetof(a.States), 32)
	check("offsetof(pfra_weight)", unsafe.Offsetof(a.Weight), 36)
	check("offsetof(pfra_af)", unsafe.Offsetof(a.Af), 38)
	check("offsetof(pfra_net)", unsafe.Offsetof(a.Net), 39)
	check("offsetof(pfra_not)", unsafe.Offsetof(a.Not), 40)
	check("offsetof(pfra_fback)", unsafe.Offsetof(a.Fback), 41)
	check("offsetof(pfra_type)", unsafe.Offsetof(a.Type), 42)

	var io pfiocTable
	ptr := unsafe.Sizeof(uintptr(0))
	check("offsetof(pfrio_table)", unsafe.Offsetof(io.Table), 0)
	check("offsetof(pfrio_buffer)", unsafe.Offsetof(io.Buffer), 1064)
	base := 1064 + ptr
	for i, off := range []uintptr{unsafe.Offsetof(io.Esize), unsafe.Offsetof(io.Size), unsafe.Offsetof(io.Size2),
		unsafe.Offsetof(io.Nadd), unsafe.Offsetof(io.Ndel), unsafe.Offsetof(io.Nchange), unsafe.Offsetof(io.Flags), unsafe.Offsetof(io.Ticket)} {
		check("offsetof(pfrio_int32 #"+string(rune('0'+i))+")", off, base+uintptr(4*i))
	}
	want := map[uintptr]uintptr{8: 1104, 4: 1100}[ptr]
	check("sizeof(struct pfioc_table)", unsafe.Sizeof(io), want)

	var ts pfrTstats
	check("offsetof(pfrts_packets)", unsafe.Offsetof(ts.Packets), 1064)
	check("offsetof(pfrts_bytes)", unsafe.Offsetof(ts.Bytes), 1128)
	check("offsetof(pfrts_match)", unsafe.Offsetof(ts.Match), 1192)
	check("offsetof(pfrts_tzero)", unsafe.Offsetof(ts.Tzero), 1208)
	check("offsetof(pfrts_cnt)", unsafe.Offsetof(ts.Cnt), 1216)
	wantTS := uintptr(1232)
	if runtime.GOARCH == "386" {
		wantTS = 1228
	}
	check("sizeof(struct pfr_tstats)", unsafe.Sizeof(ts), wantTS)

	// The ioctl numbers of DESIGN.md for LP64; ILP32 differs in size.
	if ptr == 8 {
		for _, c := range []struct {
			n    uintptr
			want uintptr
		}{{cmdRAddTables, 0xC450443D}, {cmdRSetAddrs, 0xC4504445}, {cmdRGetTStats, 0xC4504440}, {66, 0xC4504442}, {67, 0xC4504443}, {68, 0xC4504444}, {70, 0xC4504446}, {71, 0xC4504447}} {
			check("ioctl", iowr(c.n, unsafe.Sizeof(io)), c.want)
		}
	}
}

// fakePF is a pf device in memory: it decodes requests as the kernel
// does, with its errors.
type fakePF struct {
	tables map[string][]netip.Prefix
	flags  map[string]uint32
	calls  []uintptr
	fail   error
}

func newFakePF() *fakePF {
	return &fakePF{tables: make(map[string][]netip.Prefix), flags: make(map[string]uint32)}
}

func (f *fakePF) ioctl(cmd uintptr, io *pfiocTable) error {
	f.calls = append(f.calls, cmd)
	if f.fail != nil {
		return f.fail
	}
	switch cmd {
	case iowr(cmdRSetAddrs, unsafe.Sizeof(*io)):
		name := cstring(io.Table.Name[:])
		if _, ok := f.tables[name]; !ok {
			return syscall.ESRCH
		}
		if io.Esize != int32(unsafe.Sizeof(pfrAddr{})) {
			return syscall.ENODEV
		}
		var addrs []pfrAddr
		if io.Size > 0 {
			addrs = unsafe.Slice((*pfrAddr)(io.Buffer), io.Size)
		}
		var ps []netip.Prefix
		for _, a := range addrs {
			var addr netip.Addr
			switch a.Af {
			case afInet:
				addr = netip.AddrFrom4([4]byte(a.Addr[:4]))
			case afInet6:
				addr = netip.AddrFrom16(a.Addr)
			default:
				return syscall.EINVAL
			}
			p := netip.PrefixFrom(addr, int(a.Net))
			if !p.IsValid() || p.Masked() != p {
				return syscall.EINVAL // host bits set fail the whole call
			}
			ps = append(ps, p)
		}
		if len(ps) > 1000 {
			return syscall.ENOMEM
		}
		f.tables[name] = ps
		io.Nadd = int32(len(ps))
		return nil
	case iowr(cmdRAddTables, unsafe.Sizeof(*io)):
		if io.Esize != int32(unsafe.Sizeof(pfrTable{})) {
			return syscall.ENODEV
		}
		for _, t := range unsafe.Slice((*pfrTable)(io.Buffer), io.Size) {
			name := cstring(t.Name[:])
			f.tables[name] = nil
			f.flags[name] = t.Flags
		}
		return nil
	case iowr(cmdRGetTStats, unsafe.Sizeof(*io)):
		if io.Esize != int32(unsafe.Sizeof(pfrTstats{})) {
			return syscall.ENODEV // pf_ioctl.c: a wrong pfrio_esize
		}
		names := make([]string, 0, len(f.tables))
		for n := range f.tables {
			names = append(names, n)
		}
		slices.Sort(names)
		if int(io.Size) < len(names) {
			io.Size = int32(len(names))
			return nil
		}
		out := unsafe.Slice((*pfrTstats)(io.Buffer), io.Size)
		for i, n := range names {
			copy(out[i].Table.Name[:], n)
			out[i].Cnt = int32(len(f.tables[n]))
			out[i].Packets[0][0] = 10 // blocked in
			out[i].Bytes[0][0] = 600
			out[i].Packets[0][2] = 5 // passed in
			out[i].Bytes[0][2] = 300
		}
		io.Size = int32(len(names))
		return nil
	}
	return syscall.ENOTTY
}

func TestPFSync(t *testing.T) {
	dev := newFakePF()
	p := newPF(dev)
	set := setOf("192.0.2.0/24", "203.0.113.5/32", "2001:db8::/32")
	// The table does not exist: spfd creates it, persistent, and retries.
	if err := p.Sync(context.Background(), "spfd-black", set); err != nil {
		t.Fatal(err)
	}
	if got := dev.tables["spfd-black"]; !slices.Equal(got, set.Prefixes()) {
		t.Fatalf("table holds %v", got)
	}
	if dev.flags["spfd-black"]&pfrTflagPersist == 0 {
		t.Error("table not created persistent")
	}
	// Only calls pledge("pf") allows: SETADDRS, ADDTABLES, GETTSTATS.
	allowed := []uintptr{iowr(cmdRSetAddrs, unsafe.Sizeof(pfiocTable{})), iowr(cmdRAddTables, unsafe.Sizeof(pfiocTable{})), iowr(cmdRGetTStats, unsafe.Sizeof(pfiocTable{}))}
	// A replacement in one call.
	dev.calls = nil
	next := setOf("198.51.100.0/24")
	if err := p.Sync(context.Background(), "spfd-black", next); err != nil {
		t.Fatal(err)
	}
	if len(dev.calls) != 1 || !slices.Equal(dev.tables["spfd-black"], next.Prefixes()) {
		t.Fatalf("calls %x, table %v", dev.calls, dev.tables["spfd-black"])
	}
	st, err := p.Stats(context.Background(), "spfd-black")
	if err != nil || st.Packets != 15 || st.Bytes != 900 || st.Entries != 1 || !st.Counters {
		t.Fatalf("stats %+v %v", st, err)
	}
	// What the sampler and the metrics read: pf's table statistics,
	// through the one call pledge allows for them.
	if hits, err := p.Hits(context.Background(), "spfd-black"); err != nil || hits != st {
		t.Fatalf("hits %+v %v, stats %+v", hits, err, st)
	}
	for _, c := range dev.calls {
		if !slices.Contains(allowed, c) {
			t.Errorf("ioctl %x is not allowed under pledge(\"pf\")", c)
		}
	}
	// An empty list empties the table.
	if err := p.Sync(context.Background(), "spfd-black", setOf()); err != nil || len(dev.tables["spfd-black"]) != 0 {
		t.Fatalf("empty sync: %v %v", err, dev.tables["spfd-black"])
	}
}

func TestPFErrors(t *testing.T) {
	dev := newFakePF()
	p := newPF(dev)
	var b []string
	for i := range 1001 {
		// odd last octets: no two merge into a shorter prefix
		b = append(b, netip.AddrFrom4([4]byte{10, 0, byte(i / 128), byte(2*(i%128) + 1)}).String()+"/32")
	}
	err := p.Sync(context.Background(), "spfd-black", setOf(b...))
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "table-entries") {
		t.Errorf("ENOMEM: %v", err)
	}
	dev.fail = syscall.EPERM
	if err := p.Sync(context.Background(), "spfd-black", setOf("192.0.2.0/24")); err == nil || !strings.Contains(err.Error(), "securelevel") {
		t.Errorf("EPERM: %v", err)
	}
	dev.fail = syscall.ENODEV
	if _, err := p.Stats(context.Background(), "spfd-black"); !errors.Is(err, syscall.ENODEV) || !strings.Contains(err.Error(), "struct sizes differ") {
		t.Errorf("ENODEV: %v", err)
	}
	dev.fail = nil
	if err := p.Sync(context.Background(), "a-name-that-is-far-too-long-for-pf", setOf()); err == nil {
		t.Error("long table name accepted")
	}
}
