package pftable

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/spfd/spfd/prefixset"
	"golang.org/x/sys/unix"
)

// NFTables keeps spfd's lists in sets of its own nftables table (default
// inet spfd): for a list named N, N4 and N6 (interval sets of ranges) and
// N4h and N6h (hash sets of single addresses), with element counters if
// asked for.
// It reconciles with what the kernel holds at the first sync (never
// flushing), then applies diffs, and repairs drift: a missing table or
// set (nft -f with "flush ruleset") is noticed on every sync, stray or
// missing elements on a full re-read every RereadEvery, or at the next
// sync at least ForeignRereadAfter after the last read once another
// program has changed the ruleset.
type NFTables struct {
	Table              string // nftables table name
	RereadEvery        time.Duration
	ForeignRereadAfter time.Duration
	// Ports, when set, make spfd manage a base chain that accepts
	// WhiteList and drops BlackList on these TCP ports.
	Ports                []uint16
	WhiteList, BlackList string
	// ElementCounters gives every set element a counter: which entries
	// matched, at twice the cost of filling the sets. Without it, the
	// counters of the rules that use the sets tell what each list did.
	ElementCounters bool

	mu      sync.Mutex
	conn    *nftables.Conn
	genConn *netlink.Conn // for the ruleset generation; nil if unavailable
	gen     uint32        // the generation after spfd's last commit
	genOK   bool
	table   *nftables.Table
	lists   map[string]*nftList
	repairs map[string]int
	synced  map[string]time.Time
	owner   *net.UnixListener // the claim on the table in this namespace
}

type nftList struct {
	sets     [4]*nftables.Set // ranges4, ranges6, hosts4, hosts6
	cur      nftContent       // what the kernel holds, as far as we know
	known    bool             // cur was read from the kernel
	lastRead time.Time
	foreign  bool // another program changed the ruleset since lastRead
}

// NewNFTables opens a netlink connection for the table. Only one spfd
// may own a table in a network namespace: two would undo each other's
// elements. An abstract unix socket, which lives in the namespace and
// goes with the process, says which one does.
func NewNFTables(table string) (*NFTables, error) {
	if table == "" {
		table = "spfd"
	}
	owner, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@spfd-nftables-" + table, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("nftables: another spfd owns table inet %s in this network namespace (nftables-table names another)", table)
		}
		return nil, fmt.Errorf("nftables: claiming table inet %s: %w", table, err)
	}
	conn, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		// Big batches: ask for room, and take what is given.
		_ = c.SetWriteBuffer(16 << 20)
		_ = c.SetReadBuffer(16 << 20)
		return nil
	}))
	if err != nil {
		owner.Close()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	// Without it spfd still works, noticing foreign changes only at the
	// periodic re-read.
	genConn, _ := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	return &NFTables{
		Table: table, RereadEvery: 15 * time.Minute, ForeignRereadAfter: time.Minute,
		conn: conn, genConn: genConn, owner: owner,
		table:   &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		lists:   make(map[string]*nftList),
		repairs: make(map[string]int),
		synced:  make(map[string]time.Time),
	}, nil
}

// Kind implements Backend.
func (n *NFTables) Kind() string { return "nftables" }

// Close implements Backend; the table and its sets stay in the kernel.
func (n *NFTables) Close() error {
	if n.genConn != nil {
		n.genConn.Close()
	}
	if n.owner != nil {
		n.owner.Close()
	}
	return n.conn.CloseLasting()
}

// noteForeign marks every list for a re-read when the ruleset generation
// moved since spfd's last commit.
func (n *NFTables) noteForeign() {
	if n.genConn == nil {
		return
	}
	g, err := rulesetGen(n.genConn)
	if err != nil {
		n.genOK = false
		return
	}
	if n.genOK && g != n.gen {
		for _, l := range n.lists {
			l.foreign = true
		}
	}
}

// noteOwn records the generation after spfd's own commits. A foreign
// commit slipped in between goes unnoticed until the periodic re-read.
func (n *NFTables) noteOwn() {
	if n.genConn == nil {
		return
	}
	g, err := rulesetGen(n.genConn)
	n.gen, n.genOK = g, err == nil
}

func setNames(list string) [4]string {
	return [4]string{list + "4", list + "6", list + "4h", list + "6h"}
}

// ensure creates the table and the list's sets when they are missing and
// reports whether anything had to be created (the kernel's content is
// then unknown, or empty).
func (n *NFTables) ensure(list string) (*nftList, bool, error) {
	l := n.lists[list]
	if l == nil {
		l = &nftList{}
		n.lists[list] = l
	}
	// The library loses the errno when the table is missing, so look
	// for the table first.
	tables, err := n.conn.ListTablesOfFamily(n.table.Family)
	if err != nil {
		return nil, false, fmt.Errorf("listing tables: %w", err)
	}
	var existing []*nftables.Set
	if slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == n.table.Name }) {
		if existing, err = n.conn.GetSets(n.table); err != nil {
			return nil, false, fmt.Errorf("listing sets: %w", err)
		}
	}
	have := make(map[string]*nftables.Set)
	for _, s := range existing {
		have[s.Name] = s
	}
	created := false
	n.conn.AddTable(n.table)
	for i, name := range setNames(list) {
		if s, ok := have[name]; ok {
			s.Table = n.table
			l.sets[i] = s
			continue
		}
		created = true
		s := &nftables.Set{Table: n.table, Name: name, KeyType: nftables.TypeIPAddr, Counter: n.ElementCounters}
		if i%2 == 1 {
			s.KeyType = nftables.TypeIP6Addr
		}
		s.Interval = i < 2
		if err := n.conn.AddSet(s, nil); err != nil {
			return nil, false, fmt.Errorf("adding set %s: %w", name, err)
		}
		l.sets[i] = s
	}
	if err := n.conn.Flush(); err != nil {
		return nil, false, fmt.Errorf("creating table %s and sets: %w", n.Table, err)
	}
	return l, created, nil
}

// Sync implements Backend.
func (n *NFTables) Sync(ctx context.Context, list string, set *prefixset.Set) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.noteForeign()
	defer n.noteOwn()
	l, created, err := n.ensure(list)
	if err != nil {
		return fmt.Errorf("nftables %s: %w", list, err)
	}
	if created && l.known {
		n.repairs[list]++ // our sets vanished behind our back
		l.known = false   // one repair: the read below finds them empty, no news
	}
	since := time.Since(l.lastRead)
	if created || !l.known || since > n.RereadEvery || (l.foreign && since >= n.ForeignRereadAfter) {
		if err := n.read(list, l); err != nil {
			return fmt.Errorf("nftables %s: reading sets: %w", list, err)
		}
	}
	want := contentOf(set)
	if err := n.apply(ctx, l, want); err != nil {
		// Our idea of the kernel's content may be wrong (someone deleted
		// an element): read it again and retry once.
		if rerr := n.read(list, l); rerr != nil {
			return fmt.Errorf("nftables %s: %w", list, errors.Join(err, rerr))
		}
		if err2 := n.apply(ctx, l, want); err2 != nil {
			return fmt.Errorf("nftables %s: %w", list, err2)
		}
	}
	// The daemon syncs the whitelist, then the blacklist: by the
	// blacklist's turn both lists' sets are known to exist.
	if list == n.BlackList {
		if err := n.ensureRules(); err != nil {
			return fmt.Errorf("nftables %s: %w", list, err)
		}
	}
	n.synced[list] = time.Now()
	return nil
}

// read loads the sets' elements from the kernel. Slow for big sets (the
// kernel's dumps cost the square of the set's size: see
// dumpSetElements), so done at start, after an error, and every
// RereadEvery.
func (n *NFTables) read(list string, l *nftList) error {
	var c nftContent
	for i, s := range l.sets {
		elems, err := dumpSetElements(s)
		if err != nil {
			return err
		}
		switch i {
		case 0, 1:
			if err := rangesOf(elems, i == 1, &c); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
		case 2:
			for _, e := range elems {
				if len(e.Key) != 4 {
					return fmt.Errorf("set %s: bad key %x", s.Name, e.Key)
				}
				c.hosts4 = append(c.hosts4, binary.BigEndian.Uint32(e.Key))
			}
		case 3:
			for _, e := range elems {
				if len(e.Key) != 16 {
					return fmt.Errorf("set %s: bad key %x", s.Name, e.Key)
				}
				hi, lo := binary.BigEndian.Uint64(e.Key[:8]), binary.BigEndian.Uint64(e.Key[8:])
				c.hosts6 = append(c.hosts6, prefixset.Range6{LoHi: hi, LoLo: lo, HiHi: hi, HiLo: lo})
			}
		}
	}
	sortContent(&c)
	if l.known && !sameContent(l.cur, c) {
		n.repairs[list]++ // changed behind our back: the next apply repairs it
	}
	l.cur, l.known, l.lastRead, l.foreign = c, true, time.Now(), false
	return nil
}

// rangesOf pairs interval start and end elements (the end key is one
// past the range; a range up to the top of the space has none).
func rangesOf(elems []nftables.SetElement, v6 bool, c *nftContent) error {
	keyLen := 4
	if v6 {
		keyLen = 16
	}
	sort.Slice(elems, func(i, j int) bool {
		if c := bytes.Compare(elems[i].Key, elems[j].Key); c != 0 {
			return c < 0
		}
		return elems[i].IntervalEnd && !elems[j].IntervalEnd
	})
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		if len(e.Key) != keyLen {
			return fmt.Errorf("bad interval key %x", e.Key)
		}
		if e.IntervalEnd {
			continue // the implicit end at the bottom of the space
		}
		end := bytes.Repeat([]byte{0xff}, keyLen) // inclusive end
		if i+1 < len(elems) && elems[i+1].IntervalEnd {
			end = minus1(elems[i+1].Key)
			i++
		}
		if v6 {
			c.ranges6 = append(c.ranges6, prefixset.Range6{
				LoHi: binary.BigEndian.Uint64(e.Key[:8]), LoLo: binary.BigEndian.Uint64(e.Key[8:]),
				HiHi: binary.BigEndian.Uint64(end[:8]), HiLo: binary.BigEndian.Uint64(end[8:])})
		} else {
			c.ranges4 = append(c.ranges4, prefixset.Range4{Lo: binary.BigEndian.Uint32(e.Key), Hi: binary.BigEndian.Uint32(end)})
		}
	}
	return nil
}

func minus1(k []byte) []byte {
	out := bytes.Clone(k)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}

func range4Elems(rs []prefixset.Range4) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: key4(r.Lo)})
		if r.Hi != ^uint32(0) {
			out = append(out, nftables.SetElement{Key: key4(r.Hi + 1), IntervalEnd: true})
		}
	}
	return out
}

func range6Elems(rs []prefixset.Range6) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: key6(r.LoHi, r.LoLo)})
		if hi, lo, ok := plus1(r.HiHi, r.HiLo); ok {
			out = append(out, nftables.SetElement{Key: key6(hi, lo), IntervalEnd: true})
		}
	}
	return out
}

func host4Elems(hs []uint32) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(hs))
	for _, h := range hs {
		out = append(out, nftables.SetElement{Key: key4(h)})
	}
	return out
}

func host6Elems(hs []prefixset.Range6) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(hs))
	for _, h := range hs {
		out = append(out, nftables.SetElement{Key: key6(h.LoHi, h.LoLo)})
	}
	return out
}

// apply makes the kernel hold want: deletions first, then additions, in
// element calls under 64 KiB and flushes under the socket's size; it
// deletes only what it knows is there.
func (n *NFTables) apply(ctx context.Context, l *nftList, want nftContent) error {
	type op struct {
		set   *nftables.Set
		elems []nftables.SetElement
		del   bool
		items int
	}
	var ops []op
	queue := func(set *nftables.Set, del bool, elems []nftables.SetElement, keyLen, perItem int) {
		items := len(elems) / perItem
		for _, k := range chunks(items, keyLen, perItem) {
			take := min(len(elems), k*perItem)
			if perItem == 2 {
				// a range at the top of the space has no end element
				for take < len(elems) && elems[take].IntervalEnd {
					take++
				}
			}
			ops = append(ops, op{set, elems[:take], del, k})
			elems = elems[take:]
		}
		if len(elems) > 0 {
			ops = append(ops, op{set, elems, del, len(elems)})
		}
	}
	d4, a4 := diffSorted(l.cur.ranges4, want.ranges4, cmpRange4)
	d6, a6 := diffSorted(l.cur.ranges6, want.ranges6, cmpRange6)
	dh4, ah4 := diffSorted(l.cur.hosts4, want.hosts4, cmp.Compare[uint32])
	dh6, ah6 := diffSorted(l.cur.hosts6, want.hosts6, cmpRange6)
	queue(l.sets[0], true, range4Elems(d4), 4, 2)
	queue(l.sets[1], true, range6Elems(d6), 16, 2)
	queue(l.sets[2], true, host4Elems(dh4), 4, 1)
	queue(l.sets[3], true, host6Elems(dh6), 16, 1)
	queue(l.sets[0], false, range4Elems(a4), 4, 2)
	queue(l.sets[1], false, range6Elems(a6), 16, 2)
	queue(l.sets[2], false, host4Elems(ah4), 4, 1)
	queue(l.sets[3], false, host6Elems(ah6), 16, 1)
	if len(ops) == 0 {
		return nil
	}
	pending := 0
	for _, o := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if o.del {
			err = n.conn.SetDeleteElements(o.set, o.elems)
		} else {
			err = n.conn.SetAddElements(o.set, o.elems)
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", o.set.Name, err)
		}
		pending += len(o.elems) * elemBytes(len(o.elems[0].Key))
		if pending >= maxFlushBytes {
			if err := n.conn.Flush(); err != nil {
				return fmt.Errorf("set %s: %w", o.set.Name, err)
			}
			pending = 0
		}
	}
	if err := n.conn.Flush(); err != nil {
		return err
	}
	l.cur = want
	return nil
}

// Stats implements Backend: packets and bytes matched by the rules that
// use the list's sets, or summed over the element counters (a full read
// of the sets, so only on request).
// Repairs implements RepairCounter.
func (n *NFTables) Repairs(list string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.repairs[list]
}

func (n *NFTables) Stats(_ context.Context, list string) (Stats, error) {
	n.mu.Lock()
	l := n.lists[list]
	st := Stats{LastSync: n.synced[list], Repairs: n.repairs[list]}
	if l == nil {
		n.mu.Unlock()
		return st, nil
	}
	st.Entries = l.cur.len()
	p, b, ok, err := n.ruleCounters(list)
	sets := l.sets // an array: a copy
	n.mu.Unlock()
	if err != nil {
		return st, fmt.Errorf("nftables %s: %w", list, err)
	}
	if ok {
		st.Packets, st.Bytes, st.Counters = p, b, true
		return st, nil
	}
	// The library does not report whether a set read back from the
	// kernel has element counters, so trust the setting.
	if !n.ElementCounters {
		return st, nil
	}
	// Summing element counters reads whole sets: a million elements take
	// a while. Do it outside the lock syncs need, on a socket of its own
	// (dumpSetElements opens one), as replies on the shared one would
	// interleave with a sync's.
	for _, s := range sets {
		elems, err := dumpSetElements(s)
		if err != nil {
			return st, fmt.Errorf("nftables %s: %w", list, err)
		}
		st.Counters = true
		for _, e := range elems {
			if c := e.Counter; c != nil {
				st.Packets += c.Packets
				st.Bytes += c.Bytes
			}
		}
	}
	return st, nil
}
