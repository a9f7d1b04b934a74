package pftable

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/spfd/spfd/prefixset"
)

// OpenBSD's pf table ioctls (net/pfvar.h). The structs mirror the C ones
// field for field, so Go lays them out as the C compiler does on every
// architecture (pointers of 4 or 8 bytes, 64-bit counters aligned as the
// ABI says); layout_test.go checks every size and offset.

// pfrTable is struct pfr_table.
type pfrTable struct {
	Anchor [1024]byte
	Name   [32]byte
	Flags  uint32
	Fback  uint8
	_      [3]byte
}

// pfrAddr is struct pfr_addr.
type pfrAddr struct {
	Addr   [16]byte // in_addr or in6_addr
	Ifname [16]byte
	States uint32
	Weight uint16
	Af     uint8
	Net    uint8
	Not    uint8
	Fback  uint8
	Type   uint8
	_      [7]byte
}

// pfiocTable is struct pfioc_table.
type pfiocTable struct {
	Table   pfrTable
	Buffer  unsafe.Pointer
	Esize   int32
	Size    int32
	Size2   int32
	Nadd    int32
	Ndel    int32
	Nchange int32
	Flags   int32
	Ticket  uint32
}

const (
	pfTableNameSize = 32
	pfrTflagPersist = 0x01
	afInet          = 2
	afInet6         = 24 // OpenBSD's AF_INET6
)

// ioctl commands: _IOWR('D', n, struct pfioc_table).
const (
	cmdRGetTStats = 64
	cmdRAddTables = 61
	cmdRSetAddrs  = 69
)

// iowr computes _IOWR('D', n, size) as OpenBSD's sys/ioccom.h does.
func iowr(n uintptr, size uintptr) uintptr {
	const iocInOut = 0x80000000 | 0x40000000
	const iocParmMask = 0x1fff
	return iocInOut | (size&iocParmMask)<<16 | uintptr('D')<<8 | n
}

// pfIoctl is the one kernel call, behind an interface so everything else
// is tested on Linux against a fake device.
type pfIoctl interface {
	ioctl(cmd uintptr, arg *pfiocTable) error
}

// PF pushes spfd's lists into pf tables of the same names, replacing each
// table's content with DIOCRSETADDRS, which pledge("pf") allows (adding
// and deleting single addresses is not). A missing table is created with
// DIOCRADDTABLES, persistent, so a pfctl -f reload keeps it.
type PF struct {
	dev pfIoctl

	mu      sync.Mutex
	entries map[string]int
	synced  map[string]time.Time
	created map[string]int
}

func newPF(dev pfIoctl) *PF {
	return &PF{dev: dev, entries: make(map[string]int), synced: make(map[string]time.Time), created: make(map[string]int)}
}

// Kind implements Backend.
func (p *PF) Kind() string { return "pf" }

func tableOf(name string) (pfrTable, error) {
	var t pfrTable
	if name == "" || len(name) >= pfTableNameSize {
		return t, fmt.Errorf("pf table name %q: 1 to %d bytes", name, pfTableNameSize-1)
	}
	copy(t.Name[:], name)
	return t, nil
}

// encodeAddrs turns the cover into pfr_addr entries, host bits zero (one
// bad address fails the whole call with EINVAL).
func encodeAddrs(set *prefixset.Set) []pfrAddr {
	var out []pfrAddr
	set.Each(func(pr netip.Prefix) bool {
		var a pfrAddr
		a.Net = uint8(pr.Bits())
		if pr.Addr().Is4() {
			a.Af = afInet
			b := pr.Addr().As4()
			copy(a.Addr[:], b[:])
		} else {
			a.Af = afInet6
			b := pr.Addr().As16()
			copy(a.Addr[:], b[:])
		}
		out = append(out, a)
		return true
	})
	return out
}

// Sync implements Backend: one DIOCRSETADDRS replaces the table's content
// atomically; the kernel computes the difference.
func (p *PF) Sync(_ context.Context, table string, set *prefixset.Set) error {
	t, err := tableOf(table)
	if err != nil {
		return err
	}
	addrs := encodeAddrs(set)
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.setAddrs(t, addrs)
	if errors.Is(err, syscall.ESRCH) {
		// The table does not exist (pf.conf lacks it, or pfctl -F Tables):
		// create it persistent and try again.
		if cerr := p.addTable(t); cerr != nil {
			return pfError(table, "creating table", cerr)
		}
		p.created[table]++
		err = p.setAddrs(t, addrs)
	}
	if err != nil {
		return pfError(table, "replacing addresses", err)
	}
	p.entries[table] = len(addrs)
	p.synced[table] = time.Now()
	return nil
}

func (p *PF) setAddrs(t pfrTable, addrs []pfrAddr) error {
	io := pfiocTable{Table: t, Esize: int32(unsafe.Sizeof(pfrAddr{})), Size: int32(len(addrs))}
	if len(addrs) > 0 {
		io.Buffer = unsafe.Pointer(&addrs[0])
	}
	err := p.dev.ioctl(iowr(cmdRSetAddrs, unsafe.Sizeof(io)), &io)
	runtime.KeepAlive(addrs)
	return err
}

func (p *PF) addTable(t pfrTable) error {
	t.Flags = pfrTflagPersist
	tables := []pfrTable{t}
	io := pfiocTable{Buffer: unsafe.Pointer(&tables[0]), Esize: int32(unsafe.Sizeof(pfrTable{})), Size: 1}
	err := p.dev.ioctl(iowr(cmdRAddTables, unsafe.Sizeof(io)), &io)
	runtime.KeepAlive(tables)
	return err
}

// pfError names the table and the operation and says what an errno means
// here.
func pfError(table, op string, err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.ESRCH):
		hint = "table missing"
	case errors.Is(err, syscall.EINVAL):
		hint = "bad address or table"
	case errors.Is(err, syscall.ENOMEM):
		hint = "pf's table-entries limit reached: raise 'set limit table-entries' in pf.conf"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		// pf_ioctl.c: at securelevel 2 only DIOCRADDTABLES is refused;
		// DIOCRSETADDRS fails with EPERM on a const table.
		hint = "not permitted: root is needed, the table may be declared const, or at securelevel 2 a missing table cannot be created (declare it persist in pf.conf)"
	case errors.Is(err, syscall.ENODEV):
		hint = "the kernel's struct sizes differ from this build's (pfrio_esize): build spfd for this OpenBSD release and architecture"
	case errors.Is(err, syscall.EBUSY):
		hint = "busy"
	}
	if hint != "" {
		return fmt.Errorf("pf table %s: %s: %w (%s)", table, op, err, hint)
	}
	return fmt.Errorf("pf table %s: %s: %w", table, op, err)
}

// Repairs implements RepairCounter: a table created again is one spfd had
// made before (pfctl -F or a ruleset reload removed it).
func (p *PF) Repairs(table string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.created[table]
}

// Stats implements Backend with DIOCRGETTSTATS, allowed under pledge.
// Hits implements HitCounter: pf keeps per-table statistics.
func (p *PF) Hits(ctx context.Context, table string) (Stats, error) { return p.Stats(ctx, table) }

func (p *PF) Stats(_ context.Context, table string) (Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Entries: p.entries[table], LastSync: p.synced[table], Repairs: p.created[table], Counters: true}
	buf := make([]pfrTstats, 64)
	for {
		io := pfiocTable{Buffer: unsafe.Pointer(&buf[0]), Esize: int32(unsafe.Sizeof(pfrTstats{})), Size: int32(len(buf))}
		if err := p.dev.ioctl(iowr(cmdRGetTStats, unsafe.Sizeof(io)), &io); err != nil {
			return st, pfError(table, "reading counters", err)
		}
		if int(io.Size) > len(buf) {
			buf = make([]pfrTstats, io.Size) // more tables than room: ask again
			continue
		}
		for _, ts := range buf[:io.Size] {
			if cstring(ts.Table.Name[:]) != table {
				continue
			}
			for d := range ts.Packets {
				for op := range ts.Packets[d] {
					st.Packets += ts.Packets[d][op]
					st.Bytes += ts.Bytes[d][op]
				}
			}
			st.Entries = int(ts.Cnt)
			return st, nil
		}
		return st, pfError(table, "reading counters", syscall.ESRCH)
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
