package ctl

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

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
	rules  map[string]bool
	ttl    time.Duration
	events int
}

func runScan(env Env, args []string) int {
	fs := newFlagSet(env, "scan")
	typ := fs.String("t", "auto", "log type: sshd, httpd, maillog or auto")
	confPath := fs.String("c", "", "take the rules from this spfd.conf")
	if err := fs.Parse(args); err != nil {
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
	s := newScanner(cfg, *typ, env.Stdout)
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

func (s *scanner) scan(r io.Reader, prefix string) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// An over-long line: skip the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			s.lines++
			text := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
			if fam := s.family(text); fam != "" {
				for _, o := range s.procs[fam].Line(text, s.now) {
					s.report(prefix, n, o)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// report prints LINENO TAB TYPE TAB ADDRESS-or-DOMAIN TAB REASON.
func (s *scanner) report(prefix string, n int, o logwatch.Outcome) {
	s.events++
	b := append(s.buf[:0], prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '\t')
	b = append(b, o.Event.Kind...)
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
			bs = &banSummary{rules: make(map[string]bool)}
			s.bans[o.Addr] = bs
		}
		bs.rules[o.Rule] = true
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
		var rules []string
		for r := range bs.rules {
			rules = append(rules, r)
		}
		sort.Strings(rules)
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
