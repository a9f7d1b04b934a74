package ctl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/prefixset"
)

// scanner holds one processor per log family and what they concluded.
type scanner struct {
	procs   map[string]*logwatch.Processor
	typ     string
	now     time.Time
	out     *bufio.Writer
	buf     []byte
	lines   int
	events  int
	bans    map[netip.Addr]*banSummary
	capture map[string]int
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
	s := newScanner(cfg, *typ, env.Stdout)
	if *followFile {
		// Live: windows over arrival times, as the daemon counts them.
		for _, p := range s.procs {
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

func newScanner(cfg *config.Config, typ string, w io.Writer) *scanner {
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
		procs:   make(map[string]*logwatch.Processor),
		typ:     typ,
		now:     time.Now(),
		out:     bufio.NewWriterSize(w, 256<<10),
		bans:    make(map[netip.Addr]*banSummary),
		capture: make(map[string]int),
	}
	for _, parser := range []string{"sshd", "httpd", "maillog"} {
		src := config.DefaultLogSource(parser)
		src.Capture = true // report what capture would learn
		for _, l := range cfg.Logs {
			if l.Parser == parser {
				src = l
				break
			}
		}
		p := logwatch.NewProcessor(src, exempt)
		p.UseLineTime = true // windows over the lines' own times
		s.procs[parser] = p
	}
	return s
}

// family picks the parser for a line in auto mode: by the syslog program,
// else an access log.
func (s *scanner) family(line string) string {
	if s.typ != "auto" {
		return s.typ
	}
	if h, ok := logwatch.ParseSyslog(line, s.now); ok {
		switch {
		case logwatch.IsSSHDProgram(h.Program):
			return "sshd"
		case h.Program == "smtpd" || strings.HasPrefix(h.Program, "postfix"):
			return "maillog"
		}
		return ""
	}
	return "httpd"
}

// chunk is a run of whole lines handed to a parse worker. Its buffer and
// parsed slice are recycled once the in-order stage is done with them, so
// scanning a big file allocates almost nothing per line; text points into
// buf, and nothing keeps a string of it past the chunk (mail lines, whose
// parser keeps ids, are copied).
type chunk struct {
	seq       int
	firstLine int
	buf       []byte
	text      string
	parsed    []parsedLine
	done      chan struct{}
}

var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, 0, chunkSize)} }}

type parsedLine struct {
	line int
	fam  string
	ev   logwatch.Event
	raw  string // maillog lines: parsed in order, the parser joins lines
}

const chunkSize = 256 << 10

// scan reads r in chunks of whole lines, parses them on every core (sshd
// and httpd parsers are pure), and applies the rules in line order.
func (s *scanner) scan(r io.Reader, prefix string) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *chunk, workers)
	ordered := make(chan *chunk, workers+1)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				s.parseChunk(c)
				close(c.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		readErr <- s.readChunks(r, jobs, ordered)
	}()
	var outcomes []logwatch.Outcome
	for c := range ordered {
		<-c.done
		for _, p := range c.parsed {
			outcomes = outcomes[:0]
			if p.raw != "" {
				outcomes = append(outcomes, s.procs[p.fam].Line(p.raw, s.now)...)
			} else {
				outcomes = s.procs[p.fam].AppendEvent(outcomes, p.ev, s.now)
			}
			for _, o := range outcomes {
				s.report(prefix, p.line, o)
			}
		}
		clear(c.parsed) // drop references into the buffer before reuse
		c.parsed, c.text = c.parsed[:0], ""
		chunkPool.Put(c)
	}
	wg.Wait()
	return <-readErr
}

// readChunks cuts r into chunks at line ends and queues each twice: to a
// worker, and to the in-order consumer.
func (s *scanner) readChunks(r io.Reader, jobs, ordered chan<- *chunk) error {
	buf := make([]byte, chunkSize)
	var carry []byte // a partial line, carried into the next chunk
	line := 1
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return err
		}
		data := append(carry, buf[:n]...)
		carry = nil
		if !eof {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				if len(data) <= 4*chunkSize {
					carry = data // a very long line: keep reading
				}
				continue
			}
			carry = append([]byte(nil), data[i+1:]...)
			data = data[:i+1]
		}
		if len(data) > 0 {
			c := chunkPool.Get().(*chunk)
			c.buf = append(c.buf[:0], data...)
			c.seq, c.firstLine, c.text, c.done = seq, line, unsafe.String(unsafe.SliceData(c.buf), len(c.buf)), make(chan struct{})
			lines := strings.Count(c.text, "\n")
			if !strings.HasSuffix(c.text, "\n") {
				lines++
			}
			line += lines
			s.lines += lines
			jobs <- c
			ordered <- c
		}
		if eof {
			return nil
		}
	}
}

// parseChunk parses a chunk's lines; mail lines wait for the in-order
// stage, whose parser joins them by session and queue id.
func (s *scanner) parseChunk(c *chunk) {
	text := c.text
	for n := c.firstLine; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		fam := s.family(line)
		switch fam {
		case "":
		case "maillog":
			c.parsed = append(c.parsed, parsedLine{line: n, fam: fam, raw: strings.Clone(line)})
		default:
			if ev, ok := s.procs[fam].Parse(line, s.now); ok {
				c.parsed = append(c.parsed, parsedLine{line: n, fam: fam, ev: ev})
			}
		}
	}
}

// report prints LINENO TAB TYPE TAB ADDRESS-or-DOMAIN TAB REASON.
func (s *scanner) report(prefix string, n int, o logwatch.Outcome) {
	s.events++
	b := append(s.buf[:0], prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '\t')
	b = append(b, o.Kind...)
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
		bs := s.bans[o.Addr]
		if bs == nil {
			bs = &banSummary{}
			s.bans[o.Addr] = bs
		}
		if !slices.Contains(bs.rules, o.Rule) {
			bs.rules = append(bs.rules, o.Rule)
		}
		bs.ttl = max(bs.ttl, o.TTL)
		bs.events++
	case logwatch.Capture:
		b = append(b, " => capture"...)
		s.capture[o.Domain]++
	}
	b = append(b, '\n')
	s.out.Write(b)
	s.buf = b
}

func (s *scanner) summary() {
	fmt.Fprintf(s.out, "# %d lines, %d events\n", s.lines, s.events)
	addrs := make([]netip.Addr, 0, len(s.bans))
	for a := range s.bans {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	fmt.Fprintf(s.out, "# would blacklist %d addresses\n", len(addrs))
	for _, a := range addrs {
		bs := s.bans[a]
		rules := slices.Sorted(slices.Values(bs.rules))
		fmt.Fprintf(s.out, "# blacklist %s\t%s\tttl %s\n", a, strings.Join(rules, ","), bs.ttl)
	}
	domains := make([]string, 0, len(s.capture))
	for d := range s.capture {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	fmt.Fprintf(s.out, "# would capture %d domains\n", len(domains))
	for _, d := range domains {
		fmt.Fprintf(s.out, "# capture %s\n", d)
	}
}
