package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/internal/syntax"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/prefixset"
)

// Log families, as indexes into a shard's processors: famNone, then
// logwatch's families in their order.
const famNone = 0

var fams = append([]logwatch.Family{{}}, logwatch.Families()...)

func famIndex(name string) int {
	for i, f := range fams {
		if i != famNone && f.Name == name {
			return i
		}
	}
	return famNone
}

// famNames lists the families for messages: "sshd, httpd or maillog".
func famNames(last string) string {
	var names []string
	for _, f := range fams[1:] {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ") + " or " + last
}

// scanner reads logs and reports what the rules make of them. The rules
// run in shards, each owning the addresses that hash to it (its own
// processors, trackers and summaries), so they run on every core and still
// see each address's events in line order; mail lines, which the parser
// joins by queue id, all go to shard 0.
type scanner struct {
	typ    int // a family, or famNone for auto
	now    time.Time
	out    *bufio.Writer
	shards []*shard
	lines  int
	// newProcs makes a processor per family. Shards apply the rules with
	// theirs; each parsing worker has its own too, as a parser keeps
	// state (the last timestamp it read).
	newProcs func() []*logwatch.Processor
	parsers  [][]*logwatch.Processor // by worker

	readSize int // chunkSize; smaller in tests
}

// shard is the rules' state for its part of the addresses.
type shard struct {
	procs    []*logwatch.Processor // by family index
	outcomes []logwatch.Outcome
	events   int
	// bans by address: IPv4 by its 32 bits (v4), IPv6 by its 16 bytes.
	bans4   map[uint32]*banSummary
	bans6   map[[16]byte]*banSummary
	capture map[string]int

	lastBan     *banSummary
	lastBanAddr netip.Addr
	// The last address reported, formatted: one connection's lines come
	// together, so most reports name the address of the one before.
	lastAddr     netip.Addr
	lastAddrText []byte
}

type banSummary struct {
	addr   netip.Addr
	text   []byte   // addr, formatted
	rules  []string // a handful at most
	ttl    time.Duration
	events int
}

func runScan(env Env, args []string) int {
	fs := newFlagSet(env, "scan")
	typ := fs.String("t", "auto", "log type: sshd, httpd, maillog or auto")
	confPath := fs.String("c", "", "take the rules from this spfd.conf")
	followFile := fs.Bool("f", false, "follow one file as tail -F does and report events live")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *followFile && fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "spfctl scan: -f follows exactly one file")
		return ExitUsage
	}
	if *typ != "auto" && famIndex(*typ) == famNone {
		fmt.Fprintf(env.Stderr, "spfctl scan: unknown type %q (want %s)\n", *typ, famNames("auto"))
		return ExitUsage
	}
	cfg := config.Default()
	if *confPath != "" {
		var err error
		if cfg, err = config.ParseFile(*confPath, config.Options{}); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: %v\n", err)
			return ExitUsage
		}
	}
	// A batch tool over a big file: a soft memory limit keeps the heap
	// small at little cost in speed (unless GOMEMLIMIT says otherwise).
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(32 << 20)
	}
	s := newScanner(cfg, *typ, env.Stdout, runtime.GOMAXPROCS(0))
	if *followFile {
		// Live: windows over arrival times, as the daemon counts them.
		for _, p := range s.shards[0].procs[famNone+1:] {
			p.UseLineTime = false
		}
		if err := s.follow(env, fs.Arg(0)); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: %v\n", err)
			return ExitFailure
		}
		s.summary()
		s.out.Flush()
		return ExitOK
	}
	inputs := fs.Args()
	code := ExitOK
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, path := range inputs {
		if env.Ctx.Err() != nil {
			fmt.Fprintln(env.Stderr, "spfctl scan: interrupted")
			code = ExitFailure
			break
		}
		var r io.Reader = env.Stdin
		name := "standard input"
		var f *os.File
		if path != "-" {
			var err error
			if f, err = os.Open(path); err != nil {
				fmt.Fprintf(env.Stderr, "spfctl scan: %v\n", err)
				code = ExitFailure
				continue
			}
			r, name = f, path
		}
		prefix := ""
		if len(inputs) > 1 {
			prefix = path + ":"
		}
		err := s.scan(env.Ctx, r, prefix)
		if f != nil {
			f.Close()
		}
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(env.Stderr, "spfctl scan: interrupted")
			code = ExitFailure
			break
		} else if err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: %s: %v\n", name, err)
			code = ExitFailure
		}
	}
	s.summary()
	if err := s.out.Flush(); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl scan: %v\n", err)
		return ExitFailure
	}
	return code
}

func newScanner(cfg *config.Config, typ string, w io.Writer, shards int) *scanner {
	// Exempt what the configuration whitelists or ignores; SPF networks
	// are not walked offline.
	var b prefixset.Builder
	for _, p := range append(append([]netip.Prefix{}, cfg.StaticWhite...), cfg.Ignore...) {
		b.Add(p)
	}
	for _, p := range []string{"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"} {
		b.Add(netip.MustParsePrefix(p))
	}
	exemptSet := b.Set()
	exempt := exemptSet.ContainsAddr
	s := &scanner{
		typ: famIndex(typ),
		now: time.Now(),
		out: bufio.NewWriterSize(w, 256<<10),

		readSize: chunkSize,
	}
	s.newProcs = func() []*logwatch.Processor {
		procs := make([]*logwatch.Processor, len(fams))
		for fam := famNone + 1; fam < len(fams); fam++ {
			src := config.DefaultLogSource(fams[fam].Name)
			if m, ok := src.Settings.(logwatch.MailSettings); ok {
				m.Capture = true // report what capture would learn
				src.Settings = m
			}
			for _, l := range cfg.Logs {
				if l.Parser == fams[fam].Name {
					src = l
					break
				}
			}
			p := logwatch.NewProcessor(src, exempt)
			p.UseLineTime = true // windows over the lines' own times
			procs[fam] = p
		}
		return procs
	}
	for range max(1, shards) {
		sh := &shard{bans4: make(map[uint32]*banSummary), bans6: make(map[[16]byte]*banSummary), capture: make(map[string]int)}
		sh.procs = s.newProcs()
		s.shards = append(s.shards, sh)
	}
	return s
}

// family picks the parser for a line in auto mode: by the syslog program,
// else an access log.
func (s *scanner) family(line string) int {
	if s.typ != famNone {
		return s.typ
	}
	if h, ok := logwatch.ParseSyslog(line, s.now); ok {
		for i, f := range fams {
			if i != famNone && f.Program != nil && f.Program(h.Program) {
				return i
			}
		}
		return famNone
	}
	for i, f := range fams {
		if i != famNone && f.Headerless {
			return i
		}
	}
	return famNone
}

// appendReport formats LINENO TAB TYPE TAB ADDRESS-or-DOMAIN TAB REASON.
func (sh *shard) appendReport(b []byte, prefix string, n int, o *logwatch.Outcome) []byte {
	sh.events++
	var bs *banSummary
	if o.Action == logwatch.Ban {
		bs = sh.banOf(o)
	}
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '\t')
	b = append(b, o.Kind.String()...)
	b = append(b, '\t')
	switch {
	case o.Domain != "":
		b = append(b, o.Domain...)
	case bs != nil:
		b = append(b, bs.text...) // formatted once per address
	default:
		if o.Addr != sh.lastAddr {
			sh.lastAddr, sh.lastAddrText = o.Addr, o.Addr.AppendTo(sh.lastAddrText[:0])
		}
		b = append(b, sh.lastAddrText...)
	}
	b = append(b, '\t')
	b = append(b, o.Reason...)
	if o.Count > 0 {
		b = append(b, " ["...)
		b = strconv.AppendInt(b, int64(o.Count), 10)
		b = append(b, ']')
	}
	switch o.Action {
	case logwatch.Ban:
		b = append(b, " => blacklist ("...)
		b = append(b, o.Rule...)
		b = append(b, ')')
	case logwatch.Capture:
		b = append(b, " => capture"...)
		sh.capture[o.Domain]++
	}
	return append(b, '\n')
}

// banOf records a ban in its address's summary and returns the summary.
func (sh *shard) banOf(o *logwatch.Outcome) *banSummary {
	// An offender's lines come in runs: remember the last one.
	bs := sh.lastBan
	if bs == nil || sh.lastBanAddr != o.Addr {
		if bs = sh.ban(o.Addr); bs == nil {
			bs = &banSummary{addr: o.Addr, text: o.Addr.AppendTo(nil)}
			sh.setBan(o.Addr, bs)
		}
		sh.lastBan, sh.lastBanAddr = bs, o.Addr
	}
	if n := len(bs.rules); n == 0 || bs.rules[n-1] != o.Rule && !slices.Contains(bs.rules, o.Rule) {
		bs.rules = append(bs.rules, o.Rule)
	}
	bs.ttl = max(bs.ttl, o.TTL)
	bs.events++
	return bs
}

// ban returns a's summary, or nil. Parsers unmap addresses, so an IPv4
// address is always in bans4.
func (sh *shard) ban(a netip.Addr) *banSummary {
	if a.Is4() {
		return sh.bans4[v4(a)]
	}
	return sh.bans6[a.As16()]
}

func (sh *shard) setBan(a netip.Addr, bs *banSummary) {
	if a.Is4() {
		sh.bans4[v4(a)] = bs
	} else {
		sh.bans6[a.As16()] = bs
	}
}

// v4 is an IPv4 address's 32 bits, a key that hashes and compares in a
// fraction of the time of 16 bytes.
func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// eachBan calls f with every summary, until f returns false.
func (sh *shard) eachBan(f func(*banSummary) bool) {
	for _, m := range []func(func(*banSummary) bool){maps.Values(sh.bans4), maps.Values(sh.bans6)} {
		for b := range m {
			if !f(b) {
				return
			}
		}
	}
}

func (s *scanner) summary() {
	events := 0
	var bans []*banSummary
	capture := make(map[string]int)
	for _, sh := range s.shards {
		events += sh.events
		for b := range sh.eachBan {
			bans = append(bans, b)
		}
		for d, n := range sh.capture {
			capture[d] += n
		}
	}
	// Sorted, an address that two shards banned (mail and sshd) stands
	// twice in a row: merge those. It runs after the last line, on one
	// core, so it builds no map and formats without fmt.
	slices.SortFunc(bans, func(a, b *banSummary) int { return a.addr.Compare(b.addr) })
	merged := bans[:0]
	for _, b := range bans {
		if n := len(merged); n > 0 && merged[n-1].addr == b.addr {
			have := merged[n-1]
			for _, r := range b.rules {
				if !slices.Contains(have.rules, r) {
					have.rules = append(have.rules, r)
				}
			}
			have.ttl, have.events = max(have.ttl, b.ttl), have.events+b.events
			continue
		}
		merged = append(merged, b)
	}
	fmt.Fprintf(s.out, "# %s, %s\n", syntax.Count(s.lines, "line", "lines"), syntax.Count(events, "event", "events"))
	fmt.Fprintf(s.out, "# would blacklist %s\n", syntax.Count(len(merged), "address", "addresses"))
	var line []byte
	var ttl time.Duration
	var ttlText string
	for _, bs := range merged {
		slices.Sort(bs.rules)
		if bs.ttl != ttl || ttlText == "" {
			ttl, ttlText = bs.ttl, bs.ttl.String()
		}
		line = append(line[:0], "# blacklist "...)
		line = append(line, bs.text...)
		line = append(line, '\t')
		for i, r := range bs.rules {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, r...)
		}
		line = append(line, "\tttl "...)
		line = append(line, ttlText...)
		line = append(line, '\n')
		s.out.Write(line)
	}
	domains := slices.Sorted(maps.Keys(capture))
	fmt.Fprintf(s.out, "# would capture %s\n", syntax.Count(len(domains), "domain", "domains"))
	for _, d := range domains {
		fmt.Fprintf(s.out, "# capture %s\n", d)
	}
}
