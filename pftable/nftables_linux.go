package pftable

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
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
// asked for, and Nsum, which holds a digest of what spfd wrote to them;
// the set spfdgen holds the ruleset generation spfd's last commit left.
// Together they are the mark, written every MarkEvery and at Close.
//
// Reading a big set back is slow (the kernel's dumps cost the square of
// the set's size), so spfd reads only what it cannot prove:
//   - At start, when spfdgen matches the ruleset generation (nobody
//     committed anything since spfd's last commit) and Nsum matches the
//     list spfd is about to push, the kernel holds exactly that: no read.
//     Otherwise (a crash, a foreign commit while spfd was down, a list
//     that changed meanwhile) everything in the list is added at once,
//     which is no error for what the sets already hold, and the sets are
//     read in the background for leftovers, deleted by the sync after
//     the read (see settle).
//   - While it runs, the ruleset generation tells whether anyone else
//     committed: then, ForeignRereadAfter later at least (and ten times
//     the last read's duration, so a big set is not read over and over),
//     the sets are read again in the background, while syncs go on; what
//     a read finds changed behind spfd's back is repaired by the next
//     sync. A missing table or set (nft -f with "flush ruleset") is
//     noticed on every sync.
//   - Every RereadEvery the sets are read in the background even when
//     the generation did not move: rules that add to spfd's sets from the
//     packet path change them without a commit.
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
	mu              sync.Mutex
	conn            *nftables.Conn
	genConn         *netlink.Conn // for the ruleset generation; nil if unavailable
	gen             uint32        // the generation after spfd's last commit
	genOK           bool
	table           *nftables.Table
	lists           map[string]*nftList
	repairs         map[string]int
	synced          map[string]time.Time
	owner           *net.UnixListener // the claim on the table in this namespace
	genSet          *nftables.Set

	// The mark: whether spfdgen was checked against the generation at
	// start and matched, and the digest last written per list.
	markChecked, markOK bool
	markDigest          map[string][16]byte
	markAt              map[string]time.Time // when each list's mark was last written
	// MarkEvery spaces the mark's writes: each costs a digest of the
	// whole list. A mark written before later commits proves nothing (the
	// generation moved), so at worst a start after a crash reads the sets
	// in the background; Close writes the marks.
	MarkEvery time.Duration
	reads     int    // whole reads of a list's sets begun, for tests
	onDrift   func() // see NotifyDrift

	ctx        context.Context // ends background reads at Close
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	beforeRead func() // test hook: runs in a background read before it reads
}

type nftList struct {
	sets  [4]*nftables.Set // ranges4, ranges6, hosts4, hosts6
	sum   *nftables.Set    // the digest of what spfd wrote
	cur   nftContent       // what the kernel holds, as far as we know
	spare nftContent       // memory for the next sync's content
	known bool             // cur was read from the kernel, proven, or added whole
	// settling: cur was added whole to sets of unknown content, and a
	// read is under way for what they hold beyond it; what it finds are
	// leftovers (entries that expired or went while spfd was down), not
	// changes behind spfd's back.
	settling bool
	lastRead time.Time
	readTook time.Duration
	// foreign: another program changed the ruleset since the last read
	// began; foreignSeq counts such changes, so a read that began before
	// the latest one does not clear it.
	foreign    bool
	foreignSeq int
	// A background read in flight: readSeq tells it from a newer
	// synchronous read, and touched collects what syncs changed meanwhile.
	reading bool
	readSeq int
	touched nftContent
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
	reread := 24 * time.Hour
	if genConn == nil {
		reread = 15 * time.Minute // foreign commits go unseen
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &NFTables{
		Table: table, RereadEvery: reread, ForeignRereadAfter: time.Minute,
		conn: conn, genConn: genConn, owner: owner,
		table:      &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		lists:      make(map[string]*nftList),
		repairs:    make(map[string]int),
		synced:     make(map[string]time.Time),
		markDigest: make(map[string][16]byte), markAt: make(map[string]time.Time), MarkEvery: 10 * time.Second,
		ctx: ctx, cancel: cancel,
	}, nil
}

// Kind implements Backend.
func (n *NFTables) Kind() string { return "nftables" }

// Close implements Backend; the table and its sets stay in the kernel. A
// background read is stopped and waited for.
func (n *NFTables) Close() error {
	n.cancel()
	n.wg.Wait()
	n.mu.Lock()
	for _, list := range slices.Sorted(maps.Keys(n.lists)) {
		n.writeMark(list, n.lists[list]) // so that the next start can skip reading
	}
	n.mu.Unlock()
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
			l.foreignSeq++
		}
		n.markOK = false
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

// genSetName is the table's set that holds the ruleset generation spfd's
// last commit left; a list's Nsum set holds the digest of its content.
const genSetName = "spfdgen"

func sumSetName(list string) string { return list + "sum" }

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
	// The mark's sets, created quietly: their absence only costs a read.
	for _, m := range []struct {
		name string
		key  nftables.SetDatatype
	}{{genSetName, nftables.TypeIPAddr}, {sumSetName(list), nftables.TypeIP6Addr}} {
		s, ok := have[m.name]
		if ok {
			s.Table = n.table
		} else {
			s = &nftables.Set{Table: n.table, Name: m.name, KeyType: m.key}
			if err := n.conn.AddSet(s, nil); err != nil {
				return nil, false, fmt.Errorf("adding set %s: %w", m.name, err)
			}
		}
		if m.name == genSetName {
			n.genSet = s
		} else {
			l.sum = s
		}
	}
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
	want := contentInto(l.spare, set)
	l.spare = nftContent{}
	// What no longer holds the kernel's content is next sync's spare.
	defer func(old nftContent) {
		switch {
		case !l.cur.shares(want):
			l.spare = want
		case !l.cur.shares(old) && !want.shares(old):
			l.spare = old
		}
	}(l.cur)
	if !created && !l.known && n.markProves(l, want) {
		l.cur, l.known, l.lastRead = want, true, time.Now()
	}
	switch {
	case !created && !l.known && n.settle(ctx, list, l, want):
	case created || !l.known:
		// Nothing to diff against yet: read before the first push (a
		// set just created is empty, and quick to read).
		if err := n.read(list, l); err != nil {
			return fmt.Errorf("nftables %s: reading sets: %w", list, err)
		}
	case !l.reading && n.readDue(l):
		n.readInBackground(list, l)
	}
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
	if time.Since(n.markAt[list]) >= n.MarkEvery {
		n.writeMark(list, l)
	}
	n.synced[list] = time.Now()
	return nil
}

// settle brings sets of unknown content (after a crash, or a foreign
// commit while spfd was down) to hold at least want without reading them
// first: at a million elements a read takes half a minute, adding them
// all two seconds, and adding what a set already holds is no error. What
// the sets hold beyond want is found by a read in the background and
// deleted by the sync after it, while syncs go on. It reports false when
// the adds failed (an interval that overlaps a different one already
// there): the caller then reads first.
func (n *NFTables) settle(ctx context.Context, list string, l *nftList, want nftContent) bool {
	l.cur = nftContent{}
	if err := n.apply(ctx, l, want); err != nil {
		return false
	}
	l.known, l.settling = true, true
	n.readInBackground(list, l)
	return true
}

// readDue reports whether a known list's sets should be read again: a
// while after a foreign commit, or every RereadEvery.
func (n *NFTables) readDue(l *nftList) bool {
	since := time.Since(l.lastRead)
	if l.foreign && since >= max(n.ForeignRereadAfter, 10*l.readTook) {
		return true
	}
	return since > n.RereadEvery
}

// markProves reports whether the mark proves the kernel holds want in
// l's sets: nobody committed since spfd last wrote the mark (checked once,
// at the first sync, and given up at any foreign commit since), and the
// digest spfd wrote for the list is want's.
func (n *NFTables) markProves(l *nftList, want nftContent) bool {
	if n.genConn == nil || n.genSet == nil || l.sum == nil {
		return false
	}
	if !n.markChecked {
		n.markChecked = true
		g, err := rulesetGen(n.genConn)
		if err != nil {
			return false
		}
		elems, err := dumpSetElements(n.ctx, n.genSet)
		if err != nil || len(elems) != 1 || len(elems[0].Key) != 4 || binary.BigEndian.Uint32(elems[0].Key) != g {
			return false
		}
		n.markOK, n.gen, n.genOK = true, g, true
	}
	if !n.markOK {
		return false
	}
	elems, err := dumpSetElements(n.ctx, l.sum)
	if err != nil || len(elems) != 1 {
		return false
	}
	d := contentDigest(want)
	if !bytes.Equal(elems[0].Key, d[:]) {
		return false
	}
	n.markDigest[l.sum.Name] = d
	return true
}

// writeMark records, in one commit, the digest of what l's sets now hold
// and the generation that commit leaves, when either moved. It certifies
// only what spfd knows: not while any list is unread or changed by
// another program since its last read. A mark that goes stale (a commit
// slips in before the generation is read back) only costs a read at the
// next start.
func (n *NFTables) writeMark(list string, l *nftList) {
	if n.genConn == nil || n.genSet == nil || l.sum == nil {
		return
	}
	for _, o := range n.lists {
		if !o.known || o.foreign || o.settling {
			return
		}
	}
	g, err := rulesetGen(n.genConn)
	if err != nil {
		return
	}
	d := contentDigest(l.cur)
	if n.genOK && g == n.gen && n.markDigest[l.sum.Name] == d {
		return // nothing committed since the mark, and the list is as marked
	}
	next := g + 1 // a commit moves the generation by one (and skips 0)
	if next == 0 {
		next = 1
	}
	n.conn.FlushSet(l.sum)
	n.conn.FlushSet(n.genSet)
	errAdd := errors.Join(n.conn.SetAddElements(l.sum, []nftables.SetElement{{Key: d[:]}}),
		n.conn.SetAddElements(n.genSet, []nftables.SetElement{{Key: binary.BigEndian.AppendUint32(nil, next)}}))
	if err := errors.Join(errAdd, n.conn.Flush()); err != nil {
		delete(n.markDigest, l.sum.Name)
		return
	}
	n.markDigest[l.sum.Name] = d
	n.markAt[list] = time.Now()
}

// ReadingBack implements BackgroundReader: the lists whose sets are
// being read in the background, sorted.
func (n *NFTables) ReadingBack() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name, l := range n.lists {
		if l.reading {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// NotifyDrift implements DriftNotifier: f is called, without locks held,
// when a background read found a list changed behind spfd's back.
func (n *NFTables) NotifyDrift(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onDrift = f
}

// readInBackground reads l's sets without holding the lock syncs need;
// syncs meanwhile note what they change, and the result is merged with
// that (mergeRead). What the read finds changed behind spfd's back
// becomes spfd's view of the kernel, which the next sync repairs.
func (n *NFTables) readInBackground(list string, l *nftList) {
	l.reading = true
	l.readSeq++
	seq, foreignSeq, sets := l.readSeq, l.foreignSeq, l.sets
	l.touched = nftContent{}
	n.reads++
	hook := n.beforeRead
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if hook != nil {
			hook()
		}
		start := time.Now()
		c, err := readContent(n.ctx, sets)
		drift := false
		n.mu.Lock()
		if seq == l.readSeq { // not overtaken by a synchronous read
			l.reading = false
			if err == nil {
				merged := mergeRead(c, l.cur, l.touched)
				if !sameContent(merged, l.cur) {
					if !l.settling {
						n.repairs[list]++
					}
					l.cur, drift = merged, true
				}
				l.settling = false
				l.readTook = time.Since(start)
				if l.foreignSeq == foreignSeq {
					l.foreign = false
				}
			}
			// A failed read is tried again at the next due time.
			l.lastRead = start
			l.touched = nftContent{}
		}
		onDrift := n.onDrift
		n.mu.Unlock()
		if drift && onDrift != nil {
			onDrift()
		}
	}()
}

// read loads the sets' elements from the kernel. Slow for big sets (the
// kernel's dumps cost the square of the set's size: see
// dumpSetElements), so done at start, after an error, and every
// RereadEvery.
func (n *NFTables) read(list string, l *nftList) error {
	start := time.Now()
	c, err := readContent(n.ctx, l.sets)
	if err != nil {
		return err
	}
	n.reads++
	l.readSeq++ // a background read in flight is out of date
	l.reading = false
	l.touched = nftContent{}
	if l.known && !l.settling && !sameContent(l.cur, c) {
		n.repairs[list]++ // changed behind our back: the next apply repairs it
	}
	l.cur, l.known, l.lastRead, l.readTook, l.foreign, l.settling = c, true, start, time.Since(start), false, false
	return nil
}

// readContent reads a list's four sets.
func readContent(ctx context.Context, sets [4]*nftables.Set) (nftContent, error) {
	var c nftContent
	for i, s := range sets {
		elems, err := dumpSetElements(ctx, s)
		if err != nil {
			return c, err
		}
		switch i {
		case 0, 1:
			if err := rangesOf(elems, i == 1, &c); err != nil {
				return c, fmt.Errorf("set %s: %w", s.Name, err)
			}
		case 2:
			for _, e := range elems {
				if len(e.Key) != 4 {
					return c, fmt.Errorf("set %s: bad key %x", s.Name, e.Key)
				}
				c.hosts4 = append(c.hosts4, binary.BigEndian.Uint32(e.Key))
			}
		case 3:
			for _, e := range elems {
				if len(e.Key) != 16 {
					return c, fmt.Errorf("set %s: bad key %x", s.Name, e.Key)
				}
				hi, lo := binary.BigEndian.Uint64(e.Key[:8]), binary.BigEndian.Uint64(e.Key[8:])
				c.hosts6 = append(c.hosts6, prefixset.Range6{LoHi: hi, LoLo: lo, HiHi: hi, HiLo: lo})
			}
		}
	}
	sortContent(&c)
	return c, nil
}

// rangesOf reads an interval set's elements as ranges.
func rangesOf(elems []nftables.SetElement, v6 bool, c *nftContent) error {
	return eachInterval(elems, v6, func(start nftables.SetElement, end []byte) {
		if v6 {
			c.ranges6 = append(c.ranges6, prefixset.Range6{
				LoHi: binary.BigEndian.Uint64(start.Key[:8]), LoLo: binary.BigEndian.Uint64(start.Key[8:]),
				HiHi: binary.BigEndian.Uint64(end[:8]), HiLo: binary.BigEndian.Uint64(end[8:])})
		} else {
			c.ranges4 = append(c.ranges4, prefixset.Range4{Lo: binary.BigEndian.Uint32(start.Key), Hi: binary.BigEndian.Uint32(end)})
		}
	})
}

// eachInterval pairs an interval set's start and end elements (the end
// key is one past the range; a range up to the top of the space has
// none) and calls f with each start element, which carries the counter,
// and the range's inclusive end.
func eachInterval(elems []nftables.SetElement, v6 bool, f func(start nftables.SetElement, end []byte)) error {
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
		f(e, end)
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
// deletes only what it knows is there. Elements are built a call at a
// time: a million of them at once would cost a few hundred megabytes.
func (n *NFTables) apply(ctx context.Context, l *nftList, want nftContent) error {
	type op struct {
		set   *nftables.Set
		del   bool
		elems func() []nftables.SetElement
	}
	var ops []op
	// queue cuts items (ranges or addresses) into calls.
	queue := func(set *nftables.Set, del bool, items, keyLen, perItem int, build func(from, to int) []nftables.SetElement) {
		from := 0
		for _, k := range chunks(items, keyLen, perItem) {
			lo, hi := from, from+k
			ops = append(ops, op{set, del, func() []nftables.SetElement { return build(lo, hi) }})
			from = hi
		}
	}
	d4, a4 := diffSorted(l.cur.ranges4, want.ranges4, cmpRange4)
	d6, a6 := diffSorted(l.cur.ranges6, want.ranges6, cmpRange6)
	dh4, ah4 := diffSorted(l.cur.hosts4, want.hosts4, cmp.Compare[uint32])
	dh6, ah6 := diffSorted(l.cur.hosts6, want.hosts6, cmpRange6)
	if l.reading {
		// A read in flight may or may not see these: its result is
		// judged by spfd's view for them.
		for _, c := range []nftContent{{ranges4: d4, ranges6: d6, hosts4: dh4, hosts6: dh6}, {ranges4: a4, ranges6: a6, hosts4: ah4, hosts6: ah6}} {
			appendContent(&l.touched, c)
		}
	}
	for _, del := range []bool{true, false} {
		r4, r6, h4, h6 := a4, a6, ah4, ah6
		if del {
			r4, r6, h4, h6 = d4, d6, dh4, dh6
		}
		queue(l.sets[0], del, len(r4), 4, 2, func(i, j int) []nftables.SetElement { return range4Elems(r4[i:j]) })
		queue(l.sets[1], del, len(r6), 16, 2, func(i, j int) []nftables.SetElement { return range6Elems(r6[i:j]) })
		queue(l.sets[2], del, len(h4), 4, 1, func(i, j int) []nftables.SetElement { return host4Elems(h4[i:j]) })
		queue(l.sets[3], del, len(h6), 16, 1, func(i, j int) []nftables.SetElement { return host6Elems(h6[i:j]) })
	}
	if len(ops) == 0 {
		return nil
	}
	pending := 0
	for _, o := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		elems := o.elems()
		if len(elems) == 0 {
			continue
		}
		var err error
		if o.del {
			err = n.conn.SetDeleteElements(o.set, elems)
		} else {
			err = n.conn.SetAddElements(o.set, elems)
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", o.set.Name, err)
		}
		pending += len(elems) * elemBytes(len(elems[0].Key))
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

// ElementCounts implements ElementHitter from the element counters, read
// outside the lock syncs take; without element counters it says so.
func (n *NFTables) ElementCounts(ctx context.Context, list string) ([]ElementCount, error) {
	n.mu.Lock()
	l := n.lists[list]
	var sets [4]*nftables.Set
	if l != nil {
		sets = l.sets
	}
	counters := n.ElementCounters
	n.mu.Unlock()
	if l == nil || !counters {
		return nil, fmt.Errorf("nftables %s: the sets have no element counters (nftables-counters rules)", list)
	}
	var out []ElementCount
	for i, s := range sets {
		elems, err := dumpSetElements(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("nftables %s: %w", list, err)
		}
		keyLen := 4
		if i%2 == 1 {
			keyLen = 16
		}
		addr := func(k []byte) netip.Addr {
			if keyLen == 4 {
				return netip.AddrFrom4([4]byte(k))
			}
			return netip.AddrFrom16([16]byte(k))
		}
		if i >= 2 {
			for _, e := range elems {
				if e.Counter != nil && e.Counter.Packets > 0 && len(e.Key) == keyLen {
					a := addr(e.Key)
					out = append(out, ElementCount{First: a, Last: a, Packets: e.Counter.Packets, Bytes: e.Counter.Bytes})
				}
			}
			continue
		}
		// An interval's counter is on its start element.
		err = eachInterval(elems, i == 1, func(start nftables.SetElement, end []byte) {
			if start.Counter != nil && start.Counter.Packets > 0 {
				out = append(out, ElementCount{First: addr(start.Key), Last: addr(end), Packets: start.Counter.Packets, Bytes: start.Counter.Bytes})
			}
		})
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	return out, nil
}

// Hits implements HitCounter with the counters of the rules that use the
// list's sets; Counters is false when no such rule counts.
func (n *NFTables) Hits(_ context.Context, list string) (Stats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Stats{LastSync: n.synced[list], Repairs: n.repairs[list]}
	if l := n.lists[list]; l != nil {
		st.Entries = l.cur.len()
	} else {
		return st, nil
	}
	rc, ok, err := n.ruleCounters(list)
	if err != nil {
		return st, fmt.Errorf("nftables %s: %w", list, err)
	}
	st.Packets, st.Bytes, st.Connections, st.Counters = rc.Packets, rc.Bytes, rc.Connections, ok
	return st, nil
}

func (n *NFTables) Stats(ctx context.Context, list string) (Stats, error) {
	n.mu.Lock()
	l := n.lists[list]
	st := Stats{LastSync: n.synced[list], Repairs: n.repairs[list]}
	if l == nil {
		n.mu.Unlock()
		return st, nil
	}
	st.Entries = l.cur.len()
	rc, ok, err := n.ruleCounters(list)
	sets := l.sets // an array: a copy
	n.mu.Unlock()
	if err != nil {
		return st, fmt.Errorf("nftables %s: %w", list, err)
	}
	st.Connections = rc.Connections
	if ok {
		st.Packets, st.Bytes, st.Counters = rc.Packets, rc.Bytes, true
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
		elems, err := dumpSetElements(ctx, s)
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
