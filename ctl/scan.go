package ctl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/prefixset"
)

// Log families, as indexes into a shard's processors.
const (
	famNone = iota
	famSSHD
	famHTTPD
	famMail
	numFams
)

var famNames = [numFams]string{"", "sshd", "httpd", "maillog"}

func famIndex(name string) int {
	for i, n := range famNames {
		if n == name {
			return i
		}
	}
	return famNone
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

	readSize int // chunkSize; smaller in tests
}

// shard is the rules' state for its part of the addresses.
type shard struct {
	procs    [numFams]*logwatch.Processor
	outcomes []logwatch.Outcome
	events   int
	bans     map[netip.Addr]*banSummary
	capture  map[string]int

	lastBan     *banSummary
	lastBanAddr netip.Addr
}

type banSummary struct {
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
	switch *typ {
	case "sshd", "httpd", "maillog", "auto":
	default:
		fmt.Fprintf(env.Stderr, "spfctl scan: unknown type %q (want sshd, httpd, maillog or auto)\n", *typ)
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
		for _, p := range s.shards[0].procs[famSSHD:] {
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
		if err := s.scan(env.Stdin, ""); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: standard input: %v\n", err)
			code = ExitFailure
		}
	}
	for _, path := range inputs {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: %v\n", err)
			code = ExitFailure
			continue
		}
		prefix := ""
		if len(inputs) > 1 {
			prefix = path + ":"
		}
		if err := s.scan(f, prefix); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl scan: %s: %v\n", path, err)
			code = ExitFailure
		}
		f.Close()
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
	exempt := func(a netip.Addr) bool { return exemptSet.Contains(netip.PrefixFrom(a, a.BitLen())) }
	s := &scanner{
		typ: famIndex(typ),
		now: time.Now(),
		out: bufio.NewWriterSize(w, 256<<10),

		readSize: chunkSize,
	}
	for range max(1, shards) {
		sh := &shard{bans: make(map[netip.Addr]*banSummary), capture: make(map[string]int)}
		for fam := famSSHD; fam < numFams; fam++ {
			src := config.DefaultLogSource(famNames[fam])
			src.Capture = true // report what capture would learn
			for _, l := range cfg.Logs {
				if l.Parser == famNames[fam] {
					src = l
					break
				}
			}
			p := logwatch.NewProcessor(src, exempt)
			p.UseLineTime = true // windows over the lines' own times
			sh.procs[fam] = p
		}
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
		switch {
		case logwatch.IsSSHDProgram(h.Program):
			return famSSHD
		case h.Program == "smtpd" || strings.HasPrefix(h.Program, "postfix"):
			return famMail
		}
		return famNone
	}
	return famHTTPD
}

// shardOf picks the shard that owns an event: by the address the rules
// charge it to.
func (s *scanner) shardOf(fam int, ev logwatch.Event) int {
	if len(s.shards) == 1 || fam == famMail {
		return 0
	}
	a := ev.Addr
	if fam == famHTTPD {
		if client, ok := s.shards[0].procs[famHTTPD].Client(ev); ok {
			a = client
		}
	}
	b := a.As16()
	x := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	x *= 0x9e3779b97f4a7c15 // Fibonacci hashing spreads neighbouring addresses
	return int((x >> 32) % uint64(len(s.shards)))
}

// chunk is a run of whole lines on its way through the stages: parsed by
// any worker, its events split by shard; each shard applies its rules and
// formats its reports; the writer merges those by line number. Its
// buffers are recycled once written, so scanning a big file allocates
// almost nothing per line. text points into buf, and nothing keeps a
// string of it past the chunk (mail lines, whose parser keeps ids, are
// copied).
type chunk struct {
	firstLine int
	buf       []byte
	text      string
	events    [][]parsedLine // by shard
	out       [][]byte       // by shard: formatted reports
	marks     [][]mark       // by shard: where each report ends
	parsed    chan struct{}  // closed once events are filled in
	pending   atomic.Int32   // shards not done with the chunk
	applied   chan struct{}  // closed by the last shard
}

type parsedLine struct {
	line int
	fam  int
	ev   logwatch.Event
	raw  string // maillog lines: parsed in order, the parser joins lines
}

// mark ends a report of line in its shard's output.
type mark struct{ line, end int }

var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, 0, chunkSize)} }}

// chunkSize is how much the scanner reads at a time; lines longer than
// four times that are dropped.
const chunkSize = 64 << 10

// scan reads r in chunks of whole lines, parses them on every core (sshd
// and httpd parsers are pure), applies the rules in shards, and writes the
// reports in line order.
func (s *scanner) scan(r io.Reader, prefix string) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *chunk, workers)
	toShard := make([]chan *chunk, len(s.shards))
	for i := range toShard {
		toShard[i] = make(chan *chunk, workers+1)
	}
	toWriter := make(chan *chunk, 2*workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				s.parseChunk(c)
				close(c.parsed)
			}
		}()
	}
	for i, sh := range s.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range toShard[i] {
				<-c.parsed
				sh.apply(c, i, prefix, s.now)
				if c.pending.Add(-1) == 0 {
					close(c.applied)
				}
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(toWriter)
		defer func() {
			close(jobs)
			for _, ch := range toShard {
				close(ch)
			}
		}()
		readErr <- s.readChunks(r, func(c *chunk) {
			jobs <- c
			for _, ch := range toShard {
				ch <- c
			}
			toWriter <- c
		})
	}()
	for c := range toWriter {
		<-c.applied
		s.writeMerged(c)
		for i := range c.events {
			clear(c.events[i]) // drop references into the buffer before reuse
			c.events[i], c.out[i], c.marks[i] = c.events[i][:0], c.out[i][:0], c.marks[i][:0]
		}
		c.text = ""
		chunkPool.Put(c)
	}
	wg.Wait()
	return <-readErr
}

// readChunks cuts r into chunks at line ends and hands each on. It reads
// straight into the chunk's buffer: the only copy of a line is the short
// tail carried over to the next chunk.
func (s *scanner) readChunks(r io.Reader, send func(*chunk)) error {
	var carry []byte // a partial line, carried into the next chunk
	line := 1
	skipping := false // the rest of an over-long line is dropped
	for {
		c := chunkPool.Get().(*chunk)
		buf := append(c.buf[:0], carry...)
		buf = slices.Grow(buf, s.readSize) // more only for a long line carried over
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+s.readSize])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			chunkPool.Put(c)
			return err
		}
		carry = carry[:0]
		if skipping {
			// Never parse the tail of a line as a line of its own: its
			// start, where the header is, was cut off.
			i := bytes.IndexByte(buf, '\n')
			if i < 0 && !eof {
				c.buf = buf[:0]
				chunkPool.Put(c)
				continue
			}
			skipping = false
			line++
			s.lines++
			if i < 0 {
				buf = buf[:0]
			} else {
				buf = buf[:copy(buf, buf[i+1:])]
			}
		}
		if !eof {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				// A very long line: keep reading, up to a bound.
				if len(buf) <= 4*s.readSize {
					carry = append(carry, buf...)
				} else {
					skipping = true
				}
				c.buf = buf[:0]
				chunkPool.Put(c)
				continue
			}
			carry = append(carry, buf[i+1:]...)
			buf = buf[:i+1]
		}
		if len(buf) == 0 {
			c.buf = buf
			chunkPool.Put(c)
			return nil
		}
		c.buf = buf
		c.firstLine, c.text = line, unsafe.String(unsafe.SliceData(c.buf), len(c.buf))
		c.parsed, c.applied = make(chan struct{}), make(chan struct{})
		c.pending.Store(int32(len(s.shards)))
		for len(c.events) < len(s.shards) {
			c.events, c.out, c.marks = append(c.events, nil), append(c.out, nil), append(c.marks, nil)
		}
		lines := strings.Count(c.text, "\n")
		if !strings.HasSuffix(c.text, "\n") {
			lines++
		}
		line += lines
		s.lines += lines
		send(c)
		if eof {
			return nil
		}
	}
}

// parseChunk parses a chunk's lines and sorts the events by shard; mail
// lines wait for shard 0, whose parser joins them by session and queue id.
func (s *scanner) parseChunk(c *chunk) {
	text := c.text
	parser := s.shards[0]
	for n := c.firstLine; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		switch fam := s.family(line); fam {
		case famNone:
		case famMail:
			c.events[0] = append(c.events[0], parsedLine{line: n, fam: fam, raw: strings.Clone(line)})
		default:
			if ev, ok := parser.procs[fam].Parse(line, s.now); ok {
				i := s.shardOf(fam, ev)
				c.events[i] = append(c.events[i], parsedLine{line: n, fam: fam, ev: ev})
			}
		}
	}
}

// apply runs the shard's rules over its events of c, in line order, and
// formats the reports.
func (sh *shard) apply(c *chunk, i int, prefix string, now time.Time) {
	out, marks := c.out[i], c.marks[i]
	for _, p := range c.events[i] {
		sh.outcomes = sh.outcomes[:0]
		if p.raw != "" {
			sh.outcomes = append(sh.outcomes, sh.procs[p.fam].Line(p.raw, now)...)
		} else {
			sh.outcomes = sh.procs[p.fam].AppendEvent(sh.outcomes, p.ev, now)
		}
		for _, o := range sh.outcomes {
			out = sh.appendReport(out, prefix, p.line, o)
			marks = append(marks, mark{p.line, len(out)})
		}
	}
	c.out[i], c.marks[i] = out, marks
}

// writeMerged writes a chunk's reports, merging the shards' by line.
func (s *scanner) writeMerged(c *chunk) {
	if len(s.shards) == 1 {
		s.out.Write(c.out[0])
		return
	}
	next := make([]int, len(s.shards)) // per shard: the next mark
	for {
		best := -1
		for i := range s.shards {
			if next[i] < len(c.marks[i]) && (best < 0 || c.marks[i][next[i]].line < c.marks[best][next[best]].line) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		// Take the best shard's run of reports up to the next line another
		// shard has.
		limit := math.MaxInt
		for i := range s.shards {
			if i != best && next[i] < len(c.marks[i]) {
				limit = min(limit, c.marks[i][next[i]].line)
			}
		}
		ms := c.marks[best]
		start := 0
		if next[best] > 0 {
			start = ms[next[best]-1].end
		}
		j := next[best]
		for j < len(ms) && ms[j].line < limit {
			j++
		}
		s.out.Write(c.out[best][start:ms[j-1].end])
		next[best] = j
	}
}

// appendReport formats LINENO TAB TYPE TAB ADDRESS-or-DOMAIN TAB REASON.
func (sh *shard) appendReport(b []byte, prefix string, n int, o logwatch.Outcome) []byte {
	sh.events++
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '\t')
	b = append(b, o.Kind.String()...)
	b = append(b, '\t')
	if o.Domain != "" {
		b = append(b, o.Domain...)
	} else {
		b = o.Addr.AppendTo(b)
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
		// An offender's lines come in runs: remember the last one.
		bs := sh.lastBan
		if bs == nil || sh.lastBanAddr != o.Addr {
			if bs = sh.bans[o.Addr]; bs == nil {
				bs = &banSummary{}
				sh.bans[o.Addr] = bs
			}
			sh.lastBan, sh.lastBanAddr = bs, o.Addr
		}
		if n := len(bs.rules); n == 0 || bs.rules[n-1] != o.Rule && !slices.Contains(bs.rules, o.Rule) {
			bs.rules = append(bs.rules, o.Rule)
		}
		bs.ttl = max(bs.ttl, o.TTL)
		bs.events++
	case logwatch.Capture:
		b = append(b, " => capture"...)
		sh.capture[o.Domain]++
	}
	return append(b, '\n')
}

func (s *scanner) summary() {
	events := 0
	bans := make(map[netip.Addr]*banSummary)
	capture := make(map[string]int)
	for _, sh := range s.shards {
		events += sh.events
		for a, b := range sh.bans {
			if have := bans[a]; have != nil { // mail and sshd in two shards
				for _, r := range b.rules {
					if !slices.Contains(have.rules, r) {
						have.rules = append(have.rules, r)
					}
				}
				have.ttl, have.events = max(have.ttl, b.ttl), have.events+b.events
				continue
			}
			bans[a] = b
		}
		for d, n := range sh.capture {
			capture[d] += n
		}
	}
	fmt.Fprintf(s.out, "# %d lines, %d events\n", s.lines, events)
	addrs := slices.SortedFunc(maps.Keys(bans), netip.Addr.Compare)
	fmt.Fprintf(s.out, "# would blacklist %d addresses\n", len(addrs))
	for _, a := range addrs {
		bs := bans[a]
		rules := slices.Sorted(slices.Values(bs.rules))
		fmt.Fprintf(s.out, "# blacklist %s\t%s\tttl %s\n", a, strings.Join(rules, ","), bs.ttl)
	}
	domains := slices.Sorted(maps.Keys(capture))
	fmt.Fprintf(s.out, "# would capture %d domains\n", len(domains))
	for _, d := range domains {
		fmt.Fprintf(s.out, "# capture %s\n", d)
	}
}
