package state

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Offenders remembers the addresses that logs got listed: how many times
// each was listed and when last, so the daemon can hold a repeat offender
// longer. At most max are remembered, the least recently listed forgotten
// first, so a flood of forged addresses cannot grow it without bound.
//
// A million offenders are tens of megabytes, so nothing in it holds a
// pointer for the garbage collector to chase: addresses are their 16
// bytes (IPv4 mapped), times Unix seconds.
type Offenders struct {
	max   int
	m     map[[16]byte]offenceRec
	order []offenceAt // when each address was listed, oldest first; stale records are skipped
	head  int
}

type offenceRec struct {
	count int32
	last  int64 // Unix seconds
}

// Offence is what spfd remembers of one offender.
type Offence struct {
	Count int       // times listed
	Last  time.Time // when last listed
}

type offenceAt struct {
	key [16]byte
	at  int64 // Unix seconds, as last
}

// Parsers unmap addresses, so the 16 bytes name one.
func offenderKey(a netip.Addr) [16]byte { return a.Unmap().As16() }

func offenderAddr(k [16]byte) netip.Addr { return netip.AddrFrom16(k).Unmap() }

func (r offenceRec) public() Offence { return Offence{Count: int(r.count), Last: time.Unix(r.last, 0)} }

// DefaultMaxOffenders bounds the offenders remembered.
const DefaultMaxOffenders = 1_000_000

// NewOffenders remembers at most max offenders (DefaultMaxOffenders if
// max < 1).
func NewOffenders(max int) *Offenders {
	if max < 1 {
		max = DefaultMaxOffenders
	}
	return &Offenders{max: max, m: make(map[[16]byte]offenceRec)}
}

// SetMax changes the bound, forgetting the least recently listed beyond it.
func (o *Offenders) SetMax(max int) {
	if max < 1 {
		max = DefaultMaxOffenders
	}
	o.max = max
	o.evict()
}

// Get returns what is remembered of a.
func (o *Offenders) Get(a netip.Addr) (Offence, bool) {
	r, ok := o.m[offenderKey(a)]
	return r.public(), ok
}

// Forget drops what is remembered of a (an admin deleted its entry).
func (o *Offenders) Forget(a netip.Addr) { delete(o.m, offenderKey(a)) }

// Len reports how many offenders are remembered.
func (o *Offenders) Len() int { return len(o.m) }

// Record remembers that a was listed for the count-th time at t.
func (o *Offenders) Record(a netip.Addr, count int, t time.Time) {
	k, at := offenderKey(a), t.Unix()
	o.m[k] = offenceRec{count: int32(min(count, 1<<30)), last: at}
	o.order = append(o.order, offenceAt{k, at})
	o.evict()
	// Re-listings leave stale records behind: compact once they are as
	// many as the live ones.
	if live := len(o.order) - o.head; live > 2*len(o.m)+1024 {
		o.compact()
	}
}

func (o *Offenders) evict() {
	for len(o.m) > o.max && o.head < len(o.order) {
		r := o.order[o.head]
		o.head++
		if rec, ok := o.m[r.key]; ok && rec.last == r.at {
			delete(o.m, r.key)
		}
	}
}

// compact rebuilds the order from the live entries.
func (o *Offenders) compact() {
	o.order = o.order[:0:0]
	o.head = 0
	for k, rec := range o.m {
		o.order = append(o.order, offenceAt{k, rec.last})
	}
	slices.SortFunc(o.order, func(x, y offenceAt) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		return bytes.Compare(x.key[:], y.key[:])
	})
}

// each calls f with every offender, least recently listed first.
func (o *Offenders) each(f func(netip.Addr, Offence)) {
	done := make(map[[16]byte]bool, len(o.m))
	for _, r := range o.order[o.head:] {
		if rec, ok := o.m[r.key]; ok && rec.last == r.at && !done[r.key] {
			done[r.key] = true
			f(offenderAddr(r.key), rec.public())
		}
	}
}

// counts calls f with every offender and its count, in no order.
func (o *Offenders) counts(f func(netip.Addr, int)) {
	for k, rec := range o.m {
		f(offenderAddr(k), int(rec.count))
	}
}

// The offenders file sits beside the snapshot rather than in it, so that
// an older spfd, which knows no such records, can still read the
// snapshot after a rollback. It is written just before each snapshot;
// the journal replayed after the snapshot records offences again, which
// only repeats what the file says. A missing or damaged file costs the
// memory of past offences, nothing else.
//
//	spfd-offenders 1
//	<address> <times listed> <last listed, unix>
//	END <records> <crc32 of everything before this line>
const (
	offendersFile  = "offenders"
	offendersMagic = "spfd-offenders 1"
)

func (o *Offenders) marshal() []byte {
	return writeRecords(offendersMagic, func(emit func([]byte)) {
		var line []byte
		o.each(func(a netip.Addr, off Offence) {
			line = a.AppendTo(line[:0])
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(off.Count), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, off.Last.Unix(), 10)
			emit(line)
		})
	})
}

// readOffenders reads an offenders file into o.
func readOffenders(r io.Reader, o *Offenders) error {
	return readRecords(r, offendersMagic, func(text string) error {
		f := strings.Fields(text)
		if len(f) != 3 {
			return errors.New("malformed offender")
		}
		a, err := netip.ParseAddr(f[0])
		count, err2 := strconv.Atoi(f[1])
		last, err3 := strconv.ParseInt(f[2], 10, 64)
		if err != nil || err2 != nil || err3 != nil || count < 1 || a.Zone() != "" {
			return fmt.Errorf("bad offender %q", text)
		}
		o.Record(a, count, time.Unix(last, 0))
		return nil
	})
}
