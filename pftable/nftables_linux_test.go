package pftable

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/runtest"
	"github.com/spfd/spfd/prefixset"
)

// TestMain runs this package's tests as root inside a private network
// namespace (unshare -n), so the nftables tests use the real kernel
// without touching the host's ruleset.
func TestMain(m *testing.M) {
	if code, ran := runtest.Unshare("SPFD_IN_NETNS", "-n"); ran {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// needNetns skips unless the test runs as root in its own namespace with
// nft installed; under CI a skip is a failure.
func needNetns(t testing.TB) {
	t.Helper()
	_, nftErr := exec.LookPath("nft")
	if os.Getuid() == 0 && os.Getenv("SPFD_IN_NETNS") == "1" && nftErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nftables tests need root, unshare and nft (apt-get install nftables); CI must run them")
	}
	t.Skip("needs root, unshare -n and nft")
}

func nft(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// kernelSet reads a list's four sets with nft -j and returns what they
// cover, as prefixes.
func kernelSet(t *testing.T, table, list string) []netip.Prefix {
	t.Helper()
	var b prefixset.Builder
	for _, name := range setNames(list) {
		var doc struct {
			Nftables []struct {
				Set *struct {
					Elem []json.RawMessage `json:"elem"`
				} `json:"set"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(nft(t, "-j", "list", "set", "inet", table, name)), &doc); err != nil {
			t.Fatal(err)
		}
		for _, item := range doc.Nftables {
			if item.Set == nil {
				continue
			}
			for _, raw := range item.Set.Elem {
				addElem(t, &b, raw)
			}
		}
	}
	return b.Set().Prefixes()
}

func addElem(t *testing.T, b *prefixset.Builder, raw json.RawMessage) {
	var wrapped struct {
		Elem *struct {
			Val json.RawMessage `json:"val"`
		} `json:"elem"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Elem != nil {
		raw = wrapped.Elem.Val
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a := netip.MustParseAddr(s)
		b.Add(netip.PrefixFrom(a, a.BitLen()))
		return
	}
	var v struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("element %s: %v", raw, err)
	}
	switch {
	case v.Prefix != nil:
		b.Add(netip.PrefixFrom(netip.MustParseAddr(v.Prefix.Addr), v.Prefix.Len))
	case len(v.Range) == 2:
		for _, p := range rangePrefixes(netip.MustParseAddr(v.Range[0]), netip.MustParseAddr(v.Range[1])) {
			b.Add(p)
		}
	default:
		t.Fatalf("element %s", raw)
	}
}

func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for a := lo; ; a = a.Next() {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
		if a == hi || len(out) > 1<<16 {
			break
		}
	}
	return out
}

func TestNFTablesSyncDiffAndRepair(t *testing.T) {
	needNetns(t)
	n, err := NewNFTables("spfdtest")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.ElementCounters = true
	ctx := context.Background()
	check := func(want *prefixset.Set) {
		t.Helper()
		if got := kernelSet(t, "spfdtest", "black"); !slices.Equal(got, want.Prefixes()) {
			t.Fatalf("kernel holds\n%v\nwant\n%v", got, want.Prefixes())
		}
	}
	// Ranges, adjacent prefixes that are one range, lone addresses, IPv6,
	// and a range at the top of the space (no end element).
	first := setOf("10.0.1.0/24", "10.0.2.0/23", "203.0.113.5/32", "198.51.100.0/24",
		"2001:db8::/64", "2001:db8:1::7/128", "240.0.0.0/4")
	if err := n.Sync(ctx, "black", first); err != nil {
		t.Fatal(err)
	}
	check(first)
	if out := nft(t, "list", "set", "inet", "spfdtest", "black4h"); !strings.Contains(out, "counter") {
		t.Errorf("hash set without counters:\n%s", out)
	}

	// A diff: some go, some come, a range grows.
	second := setOf("10.0.1.0/24", "10.0.2.0/22", "203.0.113.6/32", "2001:db8:2::/48", "240.0.0.0/4")
	if err := n.Sync(ctx, "black", second); err != nil {
		t.Fatal(err)
	}
	check(second)

	// Drift: an element deleted and a stray added behind spfd's back.
	nft(t, "delete", "element", "inet", "spfdtest", "black4h", "{ 203.0.113.6 }")
	nft(t, "add", "element", "inet", "spfdtest", "black4h", "{ 192.0.2.99 }")
	// The read runs in the background; the sync after it repairs.
	n.ForeignRereadAfter = 0
	if err := n.Sync(ctx, "black", second); err != nil {
		t.Fatal(err)
	}
	n.wg.Wait()
	if err := n.Sync(ctx, "black", second); err != nil {
		t.Fatal(err)
	}
	check(second)
	st, err := n.Stats(ctx, "black")
	if err != nil || st.Repairs == 0 || !st.Counters {
		t.Fatalf("stats %+v, %v", st, err)
	}

	// nft -f with "flush ruleset" removes everything: the next sync
	// brings the table, the sets and the elements back.
	before := st.Repairs
	nft(t, "flush", "ruleset")
	n.RereadEvery = time.Hour
	if err := n.Sync(ctx, "black", second); err != nil {
		t.Fatal(err)
	}
	check(second)
	if st, _ := n.Stats(ctx, "black"); st.Repairs != before+1 {
		t.Errorf("flush ruleset counted as %d repairs, want 1", st.Repairs-before)
	}

	// An element we think is there but is not: the delete fails, spfd
	// reads the sets again and retries, never leaving a half-applied set.
	nft(t, "delete", "element", "inet", "spfdtest", "black6", "{ 2001:db8:2::/48 }")
	third := setOf("10.0.1.0/24", "203.0.113.6/32")
	if err := n.Sync(ctx, "black", third); err != nil {
		t.Fatal(err)
	}
	check(third)

	// A second backend (spfd restarted) reconciles without flushing.
	n.Close()
	n2, err := NewNFTables("spfdtest")
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	n2.ElementCounters = true
	if err := n2.Sync(ctx, "black", setOf("10.0.1.0/24", "203.0.113.6/32", "203.0.113.8/32")); err != nil {
		t.Fatal(err)
	}
	check(setOf("10.0.1.0/24", "203.0.113.6/32", "203.0.113.8/32"))
}

// TestNFTablesLarge pushes 100 000 IPv4 and 10 000 IPv6 prefixes, which
// must be split into many netlink calls (a call over 64 KiB silently
// loses elements), and checks every one arrived.
func TestNFTablesLarge(t *testing.T) {
	needNetns(t)
	n, err := NewNFTables("spfdbig")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.ElementCounters = true // so that nft -j lists every element alike
	set := bigSet(100_000, 10_000)
	if err := n.Sync(context.Background(), "black", set); err != nil {
		t.Fatal(err)
	}
	want := contentOf(set)
	count := func(name string) int {
		out := nft(t, "-j", "list", "set", "inet", "spfdbig", name)
		return strings.Count(out, `{"elem": {`) // with counters, every element is an object
	}
	got := count("black4") + count("black6") + count("black4h") + count("black6h")
	if got != want.len() {
		t.Fatalf("kernel holds %d elements, want %d", got, want.len())
	}
	// Stats sums the element counters outside the lock syncs take, on a
	// connection of its own: syncs running meanwhile must neither fail
	// nor mix their netlink replies with its dump.
	var wg sync.WaitGroup
	statsErr := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := n.Stats(context.Background(), "black")
			if err == nil && !st.Counters {
				err = fmt.Errorf("no counters in %+v", st)
			}
			statsErr <- err
		}()
	}
	for i := range 20 {
		var b prefixset.Builder
		b.AddSet(set)
		b.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i * 2)}), 32))
		set = b.Set()
		if err := n.Sync(context.Background(), "black", set); err != nil {
			t.Fatalf("sync %d during stats: %v", i, err)
		}
	}
	wg.Wait()
	close(statsErr)
	for err := range statsErr {
		if err != nil {
			t.Errorf("stats during syncs: %v", err)
		}
	}
	if got := count("black4") + count("black6") + count("black4h") + count("black6h"); got != contentOf(set).len() {
		t.Errorf("after syncs during stats the kernel holds %d elements, want %d", got, contentOf(set).len())
	}
}

// bigSet makes n4 IPv4 and n6 IPv6 prefixes that do not merge: hosts and
// /28s spread over the space.
func bigSet(n4, n6 int) *prefixset.Set {
	var b prefixset.Builder
	for i := range n4 {
		a := netip.AddrFrom4([4]byte{byte(11 + i>>16), byte(i >> 8), byte(i), 0})
		if i%2 == 0 {
			b.Add(netip.PrefixFrom(a.Next(), 32))
		} else {
			b.Add(netip.PrefixFrom(a, 28))
		}
	}
	for i := range n6 {
		var x [16]byte
		x[0], x[1], x[2], x[3], x[4], x[5] = 0x20, 0x01, 0x0d, 0xb8, byte(i>>8), byte(i)
		b.Add(netip.PrefixFrom(netip.AddrFrom16(x), 64))
	}
	return b.Set()
}

// With ports set, spfd keeps a base chain that accepts the whitelist and
// drops the blacklist, and brings it back after flush ruleset.
func TestNFTablesManagedRules(t *testing.T) {
	needNetns(t)
	n, err := NewNFTables("spfdrules")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Ports, n.WhiteList, n.BlackList = []uint16{25, 587}, "white", "black"
	ctx := context.Background()
	sync := func() {
		t.Helper()
		if err := n.Sync(ctx, "white", setOf("192.0.2.0/24")); err != nil {
			t.Fatal(err)
		}
		if err := n.Sync(ctx, "black", setOf("203.0.113.5/32", "2001:db8::/32")); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	out := nft(t, "list", "chain", "inet", "spfdrules", "input")
	for _, want := range []string{"hook input priority filter - 10", "tcp dport 25 ip saddr @white4 counter packets 0 bytes 0 accept",
		"tcp dport 587 ip6 saddr @black6h counter packets 0 bytes 0 drop",
		"tcp dport 25 tcp flags syn / syn,ack ip saddr @black4h counter packets 0 bytes 0 drop\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("chain lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "accept") > strings.Index(out, "drop") {
		t.Errorf("whitelist rules are not first:\n%s", out)
	}
	if c := strings.Count(out, "counter"); c != 32 {
		t.Errorf("%d rules, want 32 (2 lists x 2 ports x 4 sets, SYNs and the rest)", c)
	}
	st, err := n.Stats(ctx, "black")
	if err != nil || !st.Counters || st.Packets != 0 {
		t.Errorf("stats %+v %v", st, err)
	}

	// A blacklisted client that connects, and a whitelisted one whose
	// connection is refused by the closed port: one new connection each,
	// which the SYN counts tell from the packets.
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	if err := n.Sync(ctx, "white", setOf("127.0.0.3/32")); err != nil {
		t.Fatal(err)
	}
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32")); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		if c, err := d.Dial("tcp", "127.0.0.1:25"); err == nil {
			c.Close()
		}
	}
	for _, list := range []string{"white", "black"} {
		hits, err := n.Hits(ctx, list)
		if err != nil || !hits.Counters || hits.Connections != 1 || hits.Packets < 1 {
			t.Errorf("%s: hits %+v %v, want one connection", list, hits, err)
		}
	}

	nft(t, "flush", "ruleset")
	sync()
	if out := nft(t, "list", "chain", "inet", "spfdrules", "input"); strings.Count(out, "counter") != 32 {
		t.Errorf("chain not restored after flush ruleset:\n%s", out)
	}
}

// TestNFTablesExampleRules loads etc/nftables.conf.example as an admin
// would, lets spfd fill the sets it declares, and sends packets through
// the rules: show stats must report the rules' counters, since the sets
// have no element counters by default.
func TestNFTablesExampleRules(t *testing.T) {
	needNetns(t)
	nft(t, "-f", "../etc/nftables.conf.example")
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", "spfd").Run() })
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	n, err := NewNFTables("spfd")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if err := n.Sync(ctx, "white", setOf("127.0.0.3/32")); err != nil {
		t.Fatal(err)
	}
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfd", "black"); len(got) != 2 {
		t.Fatalf("black sets hold %v", got)
	}
	send := func(from string, port int) {
		d := net.Dialer{Timeout: 200 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		if c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
		}
	}
	send("127.0.0.2", 9)  // dropped: the SYN meets the blacklist rule
	send("127.0.0.3", 25) // accepted by the whitelist rule, then refused
	send("127.0.0.4", 25) // on no list: counted nowhere
	for list, want := range map[string]bool{"black": true, "white": true} {
		st, err := n.Stats(ctx, list)
		if err != nil || !st.Counters || (st.Packets > 0) != want || st.Entries == 0 {
			t.Errorf("%s stats %+v %v", list, st, err)
		}
		// What a metrics scrape reads: the rules' counters, the same sums.
		hits, err := n.Hits(ctx, list)
		if err != nil || !hits.Counters || hits.Packets != st.Packets || hits.Bytes != st.Bytes {
			t.Errorf("%s hits %+v %v, stats %+v", list, hits, err, st)
		}
	}
	if out := nft(t, "list", "set", "inet", "spfd", "black4h"); strings.Contains(out, "counter") {
		t.Errorf("element counters without nftables-counters elements:\n%s", out)
	}

	// An nftables reload as Debian does it: the file starts with flush
	// ruleset and declares the sets again, empty. The sets exist, so only
	// the ruleset generation tells spfd to look; a sync of our own must
	// not trigger a re-read, a foreign commit must.
	n.ForeignRereadAfter = 0
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	readAt := n.lists["black"].lastRead
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	if n.lists["black"].lastRead != readAt {
		t.Errorf("spfd's own commits made it re-read its sets")
	}
	reload := exec.Command("nft", "-f", "-")
	reload.Stdin = strings.NewReader("flush ruleset\ninclude \"../etc/nftables.conf.example\"\n")
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("nft -f reload: %v\n%s", err, out)
	}
	if got := kernelSet(t, "spfd", "black"); len(got) != 0 {
		t.Fatalf("after the reload the sets hold %v", got)
	}
	// The sync finds the generation moved and reads in the background;
	// the sync after the read repairs.
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	n.wg.Wait()
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfd", "black"); len(got) != 2 {
		t.Errorf("after the reload and a sync the sets hold %v", got)
	}
}

// Two spfd in one network namespace would undo each other's elements:
// the second to claim a table is refused, another table is fine, and the
// claim goes with Close.
func TestNFTablesOneOwnerPerNamespace(t *testing.T) {
	needNetns(t)
	first, err := NewNFTables("spfdowner")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewNFTables("spfdowner"); err == nil || !strings.Contains(err.Error(), "another spfd owns table inet spfdowner") {
		t.Fatalf("second owner: %v", err)
	}
	other, err := NewNFTables("spfdother")
	if err != nil {
		t.Fatalf("another table: %v", err)
	}
	other.Close()
	first.Close()
	again, err := NewNFTables("spfdowner")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

// A restart reads nothing when the mark proves the kernel holds what
// spfd is about to push, and reads whenever it cannot prove it: after a
// foreign commit, elements deleted behind its back, or a list that
// changed while spfd was down.
func TestNFTablesRestartProvesWithoutReading(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	white := setOf("192.0.2.0/24", "2001:db8:ffff::/48")
	black := bigSet(20_000, 2_000)
	// start runs one daemon start: whitelist then blacklist, as the
	// daemon syncs them, then waits for reads in the background and
	// syncs again, as the daemon does when a read found something. It
	// reports how many lists were read back.
	start := func(black *prefixset.Set) int {
		t.Helper()
		n, err := NewNFTables("spfdmark")
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		t0 := time.Now()
		syncs := func() {
			for _, l := range []struct {
				name string
				set  *prefixset.Set
			}{{"white", white}, {"black", black}} {
				if err := n.Sync(ctx, l.name, l.set); err != nil {
					t.Fatal(err)
				}
			}
		}
		syncs()
		t.Logf("first syncs: %v, %d lists read", time.Since(t0), n.reads)
		// Whatever the kernel held, it holds the lists now: not
		// necessarily only them (leftovers wait for the read).
		var held prefixset.Builder
		for _, p := range kernelSet(t, "spfdmark", "black") {
			held.Add(p)
		}
		if lack := black.Minus(held.Set()); !lack.Empty() {
			t.Fatalf("after the first syncs the kernel lacks %v", lack.Prefixes())
		}
		n.wg.Wait()
		syncs()
		if got := kernelSet(t, "spfdmark", "black"); !slices.Equal(got, black.Prefixes()) {
			t.Fatalf("kernel holds %d prefixes, want %d", len(got), len(black.Prefixes()))
		}
		if r := n.Repairs("black"); r != 0 {
			t.Fatalf("%d repairs counted for a start", r)
		}
		return n.reads
	}
	if got := start(black); got != 2 {
		t.Fatalf("the first start read %d lists, want 2 (sets just created)", got)
	}
	if got := start(black); got != 0 {
		t.Fatalf("a restart with nothing changed read %d lists, want 0", got)
	}
	nft(t, "add", "table", "ip", "someoneelse")
	if got := start(black); got != 2 {
		t.Fatalf("a restart after a foreign commit read %d lists, want 2", got)
	}
	if got := start(black); got != 0 {
		t.Fatalf("the mark was not renewed: %d lists read", got)
	}
	nft(t, "delete", "element", "inet", "spfdmark", "black4h", "{ 11.0.0.1 }")
	if got := start(black); got != 2 {
		t.Fatalf("a restart after an element was deleted read %d lists, want 2", got)
	}
	var b prefixset.Builder
	b.AddSet(black)
	b.Add(netip.MustParsePrefix("198.18.0.9/32"))
	if got := start(b.Set()); got != 1 {
		t.Fatalf("a restart with the blacklist changed read %d lists, want 1", got)
	}
	// An entry that went while spfd was down is a leftover in the
	// kernel: deleted once the read finds it, and no repair.
	if got := start(black); got != 1 {
		t.Fatalf("a restart with an entry gone read %d lists, want 1", got)
	}
}

// holdReads makes n's next background read wait: started is closed when
// it begins, it reads once release is closed, and drifted gets a value
// when a read found the sets changed.
func holdReads(n *NFTables) (started, release, drifted chan struct{}) {
	started, release, drifted = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	n.beforeRead = func() {
		close(started)
		<-release
	}
	n.NotifyDrift(func() { drifted <- struct{}{} })
	return started, release, drifted
}

// A read of the sets after a foreign commit runs in the background:
// syncs go on meanwhile, what they change is not mistaken for drift, and
// what changed behind spfd's back is repaired by the sync after the read.
// Close stops a read in progress.
func TestNFTablesReadDoesNotBlockSyncs(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	n, err := NewNFTables("spfdbg")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	set := setOf("10.0.0.0/24", "192.0.2.1/32", "192.0.2.3/32", "2001:db8::/64")
	if err := n.Sync(ctx, "black", set); err != nil {
		t.Fatal(err)
	}
	nft(t, "delete", "element", "inet", "spfdbg", "black4h", "{ 192.0.2.1 }")
	nft(t, "add", "element", "inet", "spfdbg", "black4h", "{ 192.0.2.99 }")
	n.ForeignRereadAfter = 0
	started, release, drifted := holdReads(n)
	if err := n.Sync(ctx, "black", set); err != nil {
		t.Fatal(err)
	}
	<-started
	if got := n.ReadingBack(); !slices.Equal(got, []string{"black"}) {
		t.Errorf("ReadingBack during the read: %v", got)
	}
	// While the read is held: one address added, one deleted.
	during := setOf("10.0.0.0/24", "192.0.2.1/32", "198.18.0.7/32", "2001:db8::/64")
	done := make(chan error, 1)
	go func() { done <- n.Sync(ctx, "black", during) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a sync waited for the read")
	}
	if got := kernelSet(t, "spfdbg", "black"); !slices.Contains(got, netip.MustParsePrefix("198.18.0.7/32")) || slices.Contains(got, netip.MustParsePrefix("192.0.2.3/32")) {
		t.Fatalf("the sync during the read did not reach the kernel: %v", got)
	}
	before := n.Repairs("black")
	close(release)
	<-drifted
	n.wg.Wait()
	if got := n.Repairs("black"); got != before+1 {
		t.Fatalf("%d repairs counted, want 1", got-before)
	}
	if got := n.ReadingBack(); len(got) != 0 {
		t.Errorf("ReadingBack after the read: %v", got)
	}
	if err := n.Sync(ctx, "black", during); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfdbg", "black"); !slices.Equal(got, during.Prefixes()) {
		t.Fatalf("after the read and a sync the kernel holds %v, want %v", got, during.Prefixes())
	}

	// Close ends a read in progress and waits for it.
	nft(t, "add", "table", "ip", "someoneelse2")
	n.beforeRead = func() { <-n.ctx.Done() }
	if err := n.Sync(ctx, "black", during); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not stop the read")
	}
}

// With element counters, ElementCounts names the elements that matched:
// a single address and a range that real packets met, not the one that
// stayed quiet.
func TestNFTablesHitAddresses(t *testing.T) {
	needNetns(t)
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	n, err := NewNFTables("spfdhits")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.ElementCounters = true
	n.Ports, n.WhiteList, n.BlackList = []uint16{25}, "white", "black"
	ctx := context.Background()
	if err := n.Sync(ctx, "white", setOf("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := n.Sync(ctx, "black", setOf("127.0.0.2/32", "127.0.0.5/32", "127.0.0.16/29", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"127.0.0.2", "127.0.0.17"} {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		if c, err := d.Dial("tcp", "127.0.0.1:25"); err == nil {
			c.Close()
		}
	}
	counts, err := n.ElementCounts(ctx, "black")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := HitSet(counts).Prefixes(), []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("127.0.0.16/29")}; !slices.Equal(got, want) {
		t.Fatalf("hit %v, want %v", got, want)
	}
	// One lookup per packet: the SYN rule tests the flags first.
	for _, c := range counts {
		if c.Packets != 1 {
			t.Errorf("%v-%v: %d packets, want the one SYN", c.First, c.Last, c.Packets)
		}
	}
}

// After a crash the sets' content is unknown. spfd adds what it wants
// without reading first, and reads in the background for leftovers:
// syncs go on during that read, leftovers are deleted after it and are
// not counted as repairs. An interval that overlaps a different one
// already there makes the adds fail; spfd then reads first.
func TestNFTablesSettleAfterCrash(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	before := setOf("10.0.0.0/29", "10.0.0.8/31", "192.0.2.1/32", "192.0.2.3/32", "2001:db8::/64")
	crashed, err := NewNFTables("spfdsettle")
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.Sync(ctx, "black", before); err != nil {
		t.Fatal(err)
	}
	crashed.Close()
	nft(t, "add", "table", "ip", "someoneelse") // the mark no longer proves anything

	n, err := NewNFTables("spfdsettle")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	started, release, drifted := holdReads(n)
	// 192.0.2.3 went while spfd was down; 198.18.0.1 came.
	want := setOf("10.0.0.0/29", "10.0.0.8/31", "192.0.2.1/32", "198.18.0.1/32", "2001:db8::/64")
	if err := n.Sync(ctx, "black", want); err != nil {
		t.Fatal(err)
	}
	<-started
	got := kernelSet(t, "spfdsettle", "black")
	if !slices.Contains(got, netip.MustParsePrefix("198.18.0.1/32")) || !slices.Contains(got, netip.MustParsePrefix("192.0.2.3/32")) {
		t.Fatalf("while the read runs the kernel should hold the lists and the leftover: %v", got)
	}
	during := setOf("10.0.0.0/29", "10.0.0.8/31", "198.18.0.1/32", "198.18.0.2/32", "2001:db8::/64")
	if err := n.Sync(ctx, "black", during); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfdsettle", "black"); !slices.Contains(got, netip.MustParsePrefix("198.18.0.2/32")) || slices.Contains(got, netip.MustParsePrefix("192.0.2.1/32")) {
		t.Fatalf("a sync during the read did not reach the kernel: %v", got)
	}
	close(release)
	<-drifted
	n.wg.Wait()
	if err := n.Sync(ctx, "black", during); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfdsettle", "black"); !slices.Equal(got, during.Prefixes()) {
		t.Fatalf("after the read and a sync the kernel holds %v, want %v", got, during.Prefixes())
	}
	if r := n.Repairs("black"); r != 0 {
		t.Fatalf("leftovers counted as %d repairs", r)
	}
	n.Close()

	// The range 10.0.0.0-10.0.0.9 is there; 10.0.0.0-10.0.0.11 cannot be
	// added over it.
	nft(t, "add", "table", "ip", "someoneelse2")
	third, err := NewNFTables("spfdsettle")
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.beforeRead = func() { t.Error("read in the background: the overlapping adds did not fail") }
	wider := setOf("10.0.0.0/29", "10.0.0.8/30", "198.18.0.1/32")
	if err := third.Sync(ctx, "black", wider); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfdsettle", "black"); !slices.Equal(got, wider.Prefixes()) {
		t.Fatalf("after an overlapping interval the kernel holds %v, want %v", got, wider.Prefixes())
	}
	third.wg.Wait()
}

// The mark is written at most every MarkEvery, and by Close. A crash
// after later syncs leaves a mark that proves nothing, as those syncs
// moved the generation: the next start must not take the old content
// as the kernel's, even when it pushes that very content.
func TestNFTablesStaleMarkProvesNothing(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	s1 := setOf("192.0.2.1/32", "198.51.100.0/24")
	s2 := setOf("192.0.2.1/32", "192.0.2.2/32", "198.51.100.0/24")
	a, err := NewNFTables("spfdstale")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx, "black", s1); err != nil { // the first sync writes the mark
		t.Fatal(err)
	}
	marked := a.markAt["black"]
	if marked.IsZero() {
		t.Fatal("no mark after the first sync")
	}
	if err := a.Sync(ctx, "black", s2); err != nil {
		t.Fatal(err)
	}
	if !a.markAt["black"].Equal(marked) {
		t.Fatal("the mark was written again within MarkEvery")
	}
	// A crash: everything closed, no mark written.
	a.cancel()
	a.wg.Wait()
	a.genConn.Close()
	a.owner.Close()
	a.conn.CloseLasting()

	b, err := NewNFTables("spfdstale")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Sync(ctx, "black", s1); err != nil {
		t.Fatal(err)
	}
	if b.reads != 1 {
		t.Fatalf("%d reads: the stale mark was taken as proof", b.reads)
	}
	b.wg.Wait()
	if err := b.Sync(ctx, "black", s1); err != nil {
		t.Fatal(err)
	}
	if got := kernelSet(t, "spfdstale", "black"); !slices.Equal(got, s1.Prefixes()) {
		t.Fatalf("kernel holds %v, want %v", got, s1.Prefixes())
	}
}
