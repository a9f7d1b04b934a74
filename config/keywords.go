package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/internal/syntax"
)

// LogSource is one followed log and its rules.
type LogSource struct {
	Parser  string   // the log family: sshd, httpd, maillog
	Files   []string // files to follow
	Journal string   // or: a systemd unit read from the journal
	// Threshold strikes within Window blacklist an address for TTL.
	Threshold int
	Window    time.Duration
	TTL       time.Duration
	// Settings are the family's own options as the family read them: a
	// struct value of the family's type (see LogFamily).
	Settings any
}

// A LogFamily is a kind of log spfd reads. The package that reads it
// registers it, with the options its log statement takes, so that this
// parser knows no family's options: adding a family is one registration.
type LogFamily struct {
	Name string
	// Threshold and Window are the defaults of the common option
	// "threshold N within D".
	Threshold int
	Window    time.Duration
	// Options name the family's own options, for messages.
	Options []string
	// Settings returns the family's settings at their defaults: a struct
	// value, so that two sources with the same settings compare equal.
	Settings func() any
	// Option reads one option (its name is read already) from args and
	// returns the settings with it.
	Option func(settings any, option string, args *Args) (any, error)
}

var logFamilies = map[string]LogFamily{}

// RegisterLogFamily makes a log family known to the parser. It is called
// from init functions, before any configuration is read.
func RegisterLogFamily(f LogFamily) { logFamilies[f.Name] = f }

// LogFamilies lists the registered families' names, sorted.
func LogFamilies() []string {
	names := make([]string, 0, len(logFamilies))
	for n := range logFamilies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DefaultLogSource returns the default rules of a family ("" settings
// for a family nobody registered).
func DefaultLogSource(parser string) LogSource {
	l := LogSource{Parser: parser, TTL: DefaultBlacklistTTL, Threshold: 1, Window: time.Hour}
	if f, ok := logFamilies[parser]; ok {
		l.Threshold, l.Window = f.Threshold, f.Window
		if f.Settings != nil {
			l.Settings = f.Settings()
		}
	}
	return l
}

// Args reads the rest of a statement for a log family's option.
type Args struct{ s *stmt }

// More reports whether the statement has more words.
func (a *Args) More() bool { return a.s.more() }

// Value reads one word; what names it in an error.
func (a *Args) Value(what string) (string, error) { return a.s.value(what) }

// Values reads one word or a { list }.
func (a *Args) Values(what string) ([]string, error) { return a.s.values(what) }

// Number reads an integer from lo to hi.
func (a *Args) Number(what string, lo, hi int) (int, error) { return a.s.number(what, lo, hi) }

// Duration reads a duration (30s, 15m, 24h, 7d, 2w).
func (a *Args) Duration() (time.Duration, error) { return a.s.duration() }

// YesNo reads yes or no.
func (a *Args) YesNo() (bool, error) { return a.s.yesno() }

// Keyword reads the word want.
func (a *Args) Keyword(want string) error { return a.s.keyword(want) }

// keywords maps each statement's first word to its parser.
var keywords map[string]func(*stmt) error

func init() {
	keywords = map[string]func(*stmt) error{
		"socket":            (*stmt).socket,
		"state-directory":   (*stmt).stateDirectory,
		"resolver":          (*stmt).resolver,
		"walk":              (*stmt).walk,
		"table":             (*stmt).table,
		"domain":            (*stmt).domain,
		"domain-file":       (*stmt).domainFile,
		"capture":           (*stmt).capture,
		"whitelist":         func(s *stmt) error { return s.list("whitelist", &s.p.cfg.StaticWhite) },
		"blacklist":         func(s *stmt) error { return s.list("blacklist", &s.p.cfg.StaticBlack) },
		"whitelist-file":    func(s *stmt) error { return s.listFiles(&s.p.cfg.WhiteFiles) },
		"blacklist-file":    func(s *stmt) error { return s.listFiles(&s.p.cfg.BlackFiles) },
		"ignore":            func(s *stmt) error { return s.static(&s.p.cfg.Ignore) },
		"blacklist-ttl":     (*stmt).blacklistTTL,
		"repeat-offenders":  (*stmt).repeatOffenders,
		"metrics":           (*stmt).metrics,
		"log":               (*stmt).log,
		"nftables-table":    (*stmt).nftablesTable,
		"nftables-rules":    (*stmt).nftablesRules,
		"nftables-counters": (*stmt).nftablesCounters,
		"feed":              (*stmt).feed,
		"bgp":               (*stmt).bgp,
		"export":            (*stmt).export,
		"include":           nil, // handled by the parser itself
	}
}

// socket "path" [group name] [mode 0660]
func (s *stmt) socket() error {
	c := s.p.cfg
	path, err := s.value("a socket path")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("socket path %q must be absolute", path)
	}
	c.Socket = path
	for s.more() {
		switch opt, _ := s.value("an option"); opt {
		case "group":
			if c.SocketGroup, err = s.value("a group name"); err != nil {
				return err
			}
		case "mode":
			v, err := s.value("a mode")
			if err != nil {
				return err
			}
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m > 0o777 || m&0o600 != 0o600 || m&0o002 != 0 {
				return fmt.Errorf("invalid socket mode %q (octal; owner read-write, not world-writable)", v)
			}
			c.SocketMode = fileMode(m)
		default:
			return fmt.Errorf("unknown socket option %q (want group or mode)", opt)
		}
	}
	return nil
}

func (s *stmt) stateDirectory() error {
	dir, err := s.value("a directory")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("state directory %q must be absolute", dir)
	}
	s.p.cfg.StateDir = dir
	return s.end()
}

// resolver addr | resolver { addr ... }
func (s *stmt) resolver() error {
	vals, err := s.values("a resolver address")
	if err != nil {
		return err
	}
	for _, v := range vals {
		addr, err := syntax.ParseServer(v)
		if err != nil {
			return err
		}
		s.p.cfg.Resolvers = append(s.p.cfg.Resolvers, addr)
	}
	return s.end()
}

// walk min-interval D | max-interval D | concurrency N | timeout D |
// retries N | grace D | floor inet N | floor inet6 N | lenient yes|no |
// max-lookups N | max-addresses inet N|/LEN inet6 /LEN
func (s *stmt) walk() error {
	w := &s.p.cfg.Walk
	opt, err := s.value("a walk option")
	if err != nil {
		return err
	}
	switch opt {
	case "min-interval":
		w.MinInterval, err = s.duration()
	case "max-interval":
		w.MaxInterval, err = s.duration()
	case "grace":
		w.Grace, err = s.duration()
	case "timeout":
		w.Timeout, err = s.duration()
		if err == nil && (w.Timeout < time.Second || w.Timeout > time.Minute) {
			err = fmt.Errorf("timeout must be from 1s to 1m")
		}
	case "concurrency":
		w.Concurrency, err = s.number("concurrency", 1, 1024)
	case "retries":
		w.Retries, err = s.number("retries", 0, 10)
	case "lenient":
		w.Lenient, err = s.yesno()
	case "max-lookups":
		w.MaxLookups, err = s.number("max-lookups", 1, 100)
	case "max-addresses":
		for err == nil && s.more() {
			var family, v string
			if family, err = s.value("inet or inet6"); err != nil {
				break
			}
			if v, err = s.value("a limit"); err != nil {
				break
			}
			switch family {
			case "inet":
				w.MaxAddresses4, err = parseMaxAddresses4(v)
			case "inet6":
				w.MaxCover6Len, err = parsePrefixLen(v, 128)
			default:
				err = fmt.Errorf("expected inet or inet6, got %q", family)
			}
		}
	case "floor":
		err = s.familyLengths(&w.FloorIPv4, &w.FloorIPv6, 1, "floor")
	default:
		return fmt.Errorf("unknown walk option %q", opt)
	}
	if err != nil {
		return err
	}
	return s.end()
}

// table white|black file "path" [command { argv ... }]
// table white|black pf "name"
// table white|black nftables "name"
func (s *stmt) table() error {
	which, err := s.value("white or black")
	if err != nil {
		return err
	}
	var t *Table
	switch which {
	case "white":
		t = &s.p.cfg.White
	case "black":
		t = &s.p.cfg.Black
	default:
		return fmt.Errorf("expected white or black, got %q", which)
	}
	*t = Table{}
	if t.Backend, err = s.value("a backend (file, pf, nftables)"); err != nil {
		return err
	}
	switch t.Backend {
	case "file":
		if t.Path, err = s.value("a file name"); err != nil {
			return err
		}
		if !filepath.IsAbs(t.Path) {
			return fmt.Errorf("table file %q must be absolute", t.Path)
		}
		if s.more() {
			if kw, _ := s.value("command"); kw != "command" {
				return fmt.Errorf("expected command, got %q", kw)
			}
			if t.Command, err = s.values("a command argument"); err != nil {
				return err
			}
			if !filepath.IsAbs(t.Command[0]) {
				return fmt.Errorf("command %q must be an absolute path", t.Command[0])
			}
		}
	case "pf", "nftables":
		if t.Name, err = s.value("a table name"); err != nil {
			return err
		}
		if len(t.Name) == 0 || len(t.Name) > 31 || strings.ContainsAny(t.Name, " \t/") {
			return fmt.Errorf("invalid table name %q (1 to 31 characters)", t.Name)
		}
	default:
		return fmt.Errorf("unknown backend %q (want file, pf or nftables)", t.Backend)
	}
	return s.end()
}

func (s *stmt) domain() error { return s.domainList(&s.p.cfg.Domains) }

// capture ignore DOMAIN|{ DOMAIN ... }
func (s *stmt) capture() error {
	if err := s.keyword("ignore"); err != nil {
		return err
	}
	return s.domainList(&s.p.cfg.CaptureIgnore)
}

// domainList reads DOMAIN|{ DOMAIN ... }, normalised and checked, to
// the end of the statement.
func (s *stmt) domainList(dst *[]string) error {
	vals, err := s.values("a domain")
	if err != nil {
		return err
	}
	for _, v := range vals {
		d := syntax.NormalizeDomain(v)
		if err := syntax.ValidateDomain(d); err != nil {
			return err
		}
		*dst = append(*dst, d)
	}
	return s.end()
}

// CaptureIgnored reports whether name is one of the ignored domains or
// below one.
func CaptureIgnored(ignore []string, name string) bool {
	for _, d := range ignore {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func (s *stmt) domainFile() error { return s.files(&s.p.cfg.DomainFiles) }

func (s *stmt) files(dst *[]string) error {
	vals, err := s.values("a file name")
	if err != nil {
		return err
	}
	for _, v := range vals {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("file %q must be an absolute path", v)
		}
		*dst = append(*dst, v)
	}
	return s.end()
}

func (s *stmt) static(dst *[]netip.Prefix) error {
	ps, err := s.prefixes()
	if err != nil {
		return err
	}
	*dst = append(*dst, ps...)
	return s.end()
}

// whitelist|blacklist ADDR|{ ADDR ... } [force]
func (s *stmt) list(what string, dst *[]netip.Prefix) error {
	first := s.toks[0]
	ps, err := s.prefixes()
	if err != nil {
		return err
	}
	forced, err := s.force()
	if err != nil {
		return err
	}
	for _, p := range ps {
		s.p.cfg.statics = append(s.p.cfg.statics, staticEntry{
			where: fmt.Sprintf("%s:%d", first.file, first.line), what: what, prefix: p, forced: forced})
	}
	*dst = append(*dst, ps...)
	return nil
}

// whitelist-file|blacklist-file PATH|{ PATH ... } [force]
func (s *stmt) listFiles(dst *[]string) error {
	vals, err := s.values("a file name")
	if err != nil {
		return err
	}
	forced, err := s.force()
	if err != nil {
		return err
	}
	for _, v := range vals {
		if !filepath.IsAbs(v) {
			return fmt.Errorf("file %q must be an absolute path", v)
		}
		*dst = append(*dst, v)
		if forced {
			if s.p.cfg.ForcedFiles == nil {
				s.p.cfg.ForcedFiles = make(map[string]bool)
			}
			s.p.cfg.ForcedFiles[v] = true
		}
	}
	return nil
}

// force reads an optional trailing "force" and the end of the statement.
func (s *stmt) force() (bool, error) {
	if !s.more() {
		return false, nil
	}
	if err := s.keyword("force"); err != nil {
		return false, err
	}
	return true, s.end()
}

func (s *stmt) blacklistTTL() error {
	d, err := s.duration()
	if err != nil {
		return err
	}
	if d < time.Minute {
		return fmt.Errorf("blacklist-ttl must be at least 1m")
	}
	s.p.cfg.BlacklistTTL = d
	return s.end()
}

// repeat-offenders no | [factor F] [max-ttl D] [within D] [remember N]
func (s *stmt) repeatOffenders() error {
	r := &s.p.cfg.RepeatOffenders
	for s.more() {
		opt, err := s.value("an option")
		if err != nil {
			return err
		}
		switch opt {
		case "no":
			r.Factor = 1
		case "factor":
			v, err := s.value("a factor")
			if err != nil {
				return err
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 1 || f > 16 {
				return fmt.Errorf("factor must be a number from 1 to 16, got %q", v)
			}
			r.Factor = f
		case "max-ttl":
			if r.MaxTTL, err = s.duration(); err != nil {
				return err
			}
		case "within":
			if r.Within, err = s.duration(); err != nil {
				return err
			}
		case "remember":
			if r.Remember, err = s.number("remember", 1000, 100_000_000); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown repeat-offenders option %q (want no, factor, max-ttl, within or remember)", opt)
		}
	}
	return s.end()
}

// metrics listen ADDRESS:PORT [public]
func (s *stmt) metrics() error {
	if err := s.keyword("listen"); err != nil {
		return err
	}
	v, err := s.value("an address:port")
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return fmt.Errorf("metrics listen: want an address and a port (127.0.0.1:9154, [::1]:9154), got %q", v)
	}
	c := s.p.cfg
	c.MetricsListen, c.MetricsPublic = ap.String(), false
	if s.more() {
		if err := s.keyword("public"); err != nil {
			return err
		}
		c.MetricsPublic = true
	}
	if !ap.Addr().IsLoopback() && !c.MetricsPublic {
		return fmt.Errorf("metrics listen %s is not a loopback address: anyone who reaches it reads spfd's lists' sizes and sources; add \"public\" if they may", v)
	}
	return s.end()
}

func fileMode(m uint64) os.FileMode { return os.FileMode(m) }

// log FAMILY file PATH|{ PATH ... } | journal UNIT [options]
//
// common options: threshold N within D, ttl D; the rest belong to the
// family (see LogFamily).
func (s *stmt) log() error {
	names := strings.Join(LogFamilies(), ", ")
	parser, err := s.value("a log family (" + names + ")")
	if err != nil {
		return err
	}
	fam, ok := logFamilies[parser]
	if !ok {
		return fmt.Errorf("unknown log parser %q (want %s)", parser, names)
	}
	l := DefaultLogSource(parser)
	l.TTL = 0 // the blacklist-ttl default, filled in by validate
	switch kind, _ := s.value("file or journal"); kind {
	case "file":
		if l.Files, err = s.values("a log file"); err != nil {
			return err
		}
		for _, f := range l.Files {
			if !filepath.IsAbs(f) {
				return fmt.Errorf("log file %q must be an absolute path", f)
			}
		}
	case "journal":
		if l.Journal, err = s.value("a systemd unit"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("expected file or journal, got %q", kind)
	}
	for s.more() {
		opt, _ := s.value("an option")
		switch {
		case opt == "threshold":
			if l.Threshold, err = s.number("threshold", 1, 100000); err == nil {
				err = s.keyword("within")
			}
			if err == nil {
				l.Window, err = s.duration()
			}
		case opt == "ttl":
			l.TTL, err = s.duration()
			if err == nil && l.TTL < time.Minute {
				err = fmt.Errorf("ttl must be at least 1m")
			}
		case slices.Contains(fam.Options, opt):
			l.Settings, err = fam.Option(l.Settings, opt, &Args{s})
		default:
			err = fmt.Errorf("unknown log option %q", opt)
			for _, other := range LogFamilies() {
				if slices.Contains(logFamilies[other].Options, opt) {
					err = fmt.Errorf("%s does not apply to %s logs", opt, parser)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	s.p.cfg.Logs = append(s.p.cfg.Logs, l)
	return nil
}

func (s *stmt) keyword(want string) error {
	v, err := s.value(want)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("expected %s, got %q", want, v)
	}
	return nil
}

// nftables-table NAME: the inet table holding spfd's sets.
func (s *stmt) nftablesTable() error {
	name, err := s.value("a table name")
	if err != nil {
		return err
	}
	if name == "" || len(name) > 31 || strings.ContainsAny(name, " \t/") {
		return fmt.Errorf("invalid nftables table name %q", name)
	}
	s.p.cfg.NFTable = name
	return s.end()
}

// Feed is a list file or URL in spamd-setup's format.
type Feed struct {
	Name    string
	List    string // white or black
	Path    string
	URL     string
	Refresh time.Duration
	TTL     time.Duration // entries live this long after the last good fetch; 0: until replaced
	MaxSize int64
}

// feed NAME white|black file PATH | url URL [refresh D] [ttl D] [max-size BYTES]
func (s *stmt) feed() error {
	name, err := s.value("a feed name")
	if err != nil {
		return err
	}
	if !macroName.MatchString(strings.ReplaceAll(name, "-", "_")) {
		return fmt.Errorf("invalid feed name %q", name)
	}
	for _, f := range s.p.cfg.Feeds {
		if f.Name == name {
			return fmt.Errorf("feed %q defined twice", name)
		}
	}
	f := Feed{Name: name, Refresh: time.Hour}
	if f.List, err = s.value("white or black"); err != nil {
		return err
	}
	if f.List != "white" && f.List != "black" {
		return fmt.Errorf("expected white or black, got %q", f.List)
	}
	kind, _ := s.value("file or url")
	switch kind {
	case "file":
		if f.Path, err = s.value("a file name"); err == nil && !filepath.IsAbs(f.Path) {
			err = fmt.Errorf("feed file %q must be an absolute path", f.Path)
		}
	case "url":
		if f.URL, err = s.value("a URL"); err == nil && !strings.HasPrefix(f.URL, "http://") && !strings.HasPrefix(f.URL, "https://") {
			err = fmt.Errorf("feed URL %q: want http:// or https://", f.URL)
		}
	default:
		err = fmt.Errorf("expected file or url, got %q", kind)
	}
	if err != nil {
		return err
	}
	for err == nil && s.more() {
		switch opt, _ := s.value("an option"); opt {
		case "refresh":
			if f.Refresh, err = s.duration(); err == nil && f.Refresh < time.Minute {
				err = fmt.Errorf("refresh must be at least 1m")
			}
		case "ttl":
			f.TTL, err = s.duration()
		case "max-size":
			var n int
			if n, err = s.number("max-size", 1024, 1<<30); err == nil {
				f.MaxSize = int64(n)
			}
		default:
			err = fmt.Errorf("unknown feed option %q", opt)
		}
	}
	if err != nil {
		return err
	}
	s.p.cfg.Feeds = append(s.p.cfg.Feeds, f)
	return nil
}

// export white|black PATH: also write the pushed list to PATH.
func (s *stmt) export() error {
	which, err := s.value("white or black")
	if err != nil {
		return err
	}
	path, err := s.value("a file name")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("export file %q must be an absolute path", path)
	}
	switch which {
	case "white":
		s.p.cfg.ExportWhite = path
	case "black":
		s.p.cfg.ExportBlack = path
	default:
		return fmt.Errorf("expected white or black, got %q", which)
	}
	return s.end()
}

// nftables-rules [ports { PORT ... }]: manage the base chain, on the
// SMTP port unless told otherwise.
func (s *stmt) nftablesRules() error {
	if !s.more() {
		s.p.cfg.NFTRulePorts = []uint16{25}
		return nil
	}
	if kw, err := s.value("ports"); err != nil || kw != "ports" {
		return fmt.Errorf("expected ports { PORT ... }")
	}
	vals, err := s.values("a TCP port")
	if err != nil {
		return err
	}
	for _, v := range vals {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", v)
		}
		s.p.cfg.NFTRulePorts = append(s.p.cfg.NFTRulePorts, uint16(n))
	}
	return s.end()
}

// nftables-counters elements|rules: where per-list counts come from.
func (s *stmt) nftablesCounters() error {
	v, err := s.value("elements or rules")
	if err != nil {
		return err
	}
	switch v {
	case "elements":
		s.p.cfg.NFTElementCounters = true
	case "rules":
		s.p.cfg.NFTElementCounters = false
	default:
		return fmt.Errorf("expected elements or rules, got %q", v)
	}
	return s.end()
}

// BGP configures the embedded BGP speaker.
type BGP struct {
	ASN       uint32
	RouterID  string
	Listen    []string
	Port      int32
	Hold      time.Duration
	Neighbors []BGPNeighbor
	// White and Black are the lists' communities as ASN:VALUE.
	White, Black string
	// Announce names the lists whose local findings are announced.
	Announce []string
	// WhitePrefixlen and BlackPrefixlen are the broadest routes each list
	// takes; the walk floor holds for both in any case.
	WhitePrefixlen, BlackPrefixlen Prefixlen
}

// Prefixlen is the shortest prefix length taken per address family.
type Prefixlen struct{ IPv4, IPv6 int }

// DefaultBlackPrefixlen: list feeds such as bgp-spamd's carry single
// hosts, with the odd /24; a broader route for the blacklist is a mistake
// or an attack on the owner's own reach.
var DefaultBlackPrefixlen = Prefixlen{IPv4: 24, IPv6: 48}

// BGPNeighbor is one peer.
type BGPNeighbor struct {
	Address      string
	ASN          uint32
	Password     string
	Multihop     uint32
	LocalAddress string
	Port         uint32
	// MaxPrefix is how many routes of one family the neighbor may send;
	// one more and the session is torn down, as OpenBGPD's max-prefix
	// does. 0 lifts the limit.
	MaxPrefix uint32
}

// DefaultMaxPrefix bounds what one neighbor can make spfd hold: well
// above the largest real list feeds, well below what exhausts memory.
const DefaultMaxPrefix = 250000

func (s *stmt) asn() (uint32, error) {
	n, err := s.number("an AS number", 1, 1<<31-1)
	return uint32(n), err
}

func (s *stmt) addr(what string) (string, error) {
	v, err := s.value(what)
	if err != nil {
		return "", err
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("invalid %s %q", what, v)
	}
	return a.String(), nil
}

func communityOK(v string) bool {
	a, b, ok := strings.Cut(v, ":")
	_, err1 := strconv.ParseUint(a, 10, 16)
	_, err2 := strconv.ParseUint(b, 10, 16)
	return ok && err1 == nil && err2 == nil
}

// bgp as N router-id A [listen { A ... }] [port N] [hold D]
// bgp neighbor A as N [password S] [multihop N] [local-address A] [port N] [max-prefix N]
// bgp community white|black ASN:VALUE
// bgp prefixlen white|black [inet N] [inet6 N]
// bgp announce { white black }
func (s *stmt) bgp() error {
	b := s.p.cfg.BGP
	if b == nil {
		b = &BGP{Port: 179, Hold: 5 * time.Minute, White: "65066:42", Black: "65066:666", BlackPrefixlen: DefaultBlackPrefixlen}
		s.p.cfg.BGP = b
	}
	what, err := s.value("as, neighbor, community or announce")
	if err != nil {
		return err
	}
	switch what {
	case "as":
		if b.ASN, err = s.asn(); err != nil {
			return err
		}
		if kw, _ := s.value("router-id"); kw != "router-id" {
			return fmt.Errorf("expected router-id")
		}
		if b.RouterID, err = s.addr("router id"); err != nil {
			return err
		}
		for err == nil && s.more() {
			switch opt, _ := s.value("an option"); opt {
			case "listen":
				var vals []string
				if vals, err = s.values("an address"); err == nil {
					b.Listen = vals
				}
			case "port":
				var n int
				if n, err = s.number("port", 1, 65535); err == nil {
					b.Port = int32(n)
				}
			case "hold":
				b.Hold, err = s.duration()
			default:
				err = fmt.Errorf("unknown bgp option %q", opt)
			}
		}
		return err
	case "neighbor":
		n := BGPNeighbor{MaxPrefix: DefaultMaxPrefix}
		if n.Address, err = s.addr("neighbor address"); err != nil {
			return err
		}
		if kw, _ := s.value("as"); kw != "as" {
			return fmt.Errorf("expected as")
		}
		if n.ASN, err = s.asn(); err != nil {
			return err
		}
		for err == nil && s.more() {
			switch opt, _ := s.value("an option"); opt {
			case "password":
				n.Password, err = s.value("a password")
			case "multihop":
				var v int
				if v, err = s.number("multihop", 1, 255); err == nil {
					n.Multihop = uint32(v)
				}
			case "local-address":
				n.LocalAddress, err = s.addr("local address")
			case "max-prefix":
				var v int
				if v, err = s.number("max-prefix", 0, 1<<31-1); err == nil {
					n.MaxPrefix = uint32(v)
				}
			case "port":
				var v int
				if v, err = s.number("port", 1, 65535); err == nil {
					n.Port = uint32(v)
				}
			default:
				err = fmt.Errorf("unknown neighbor option %q", opt)
			}
		}
		if err != nil {
			return err
		}
		b.Neighbors = append(b.Neighbors, n)
		return nil
	case "community":
		list, err := s.value("white or black")
		if err != nil {
			return err
		}
		c, err := s.value("a community")
		if err != nil {
			return err
		}
		if !communityOK(c) {
			return fmt.Errorf("invalid community %q (want ASN:VALUE)", c)
		}
		switch list {
		case "white":
			b.White = c
		case "black":
			b.Black = c
		default:
			return fmt.Errorf("expected white or black, got %q", list)
		}
		return s.end()
	case "prefixlen":
		list, err := s.value("white or black")
		if err != nil {
			return err
		}
		pl := &b.WhitePrefixlen
		switch list {
		case "white":
		case "black":
			pl = &b.BlackPrefixlen
		default:
			return fmt.Errorf("expected white or black, got %q", list)
		}
		if !s.more() {
			return fmt.Errorf("expected inet or inet6")
		}
		return s.familyLengths(&pl.IPv4, &pl.IPv6, 0, "prefix length")
	case "announce":
		vals, err := s.values("white or black")
		if err != nil {
			return err
		}
		for _, v := range vals {
			if v != "white" && v != "black" {
				return fmt.Errorf("expected white or black, got %q", v)
			}
		}
		b.Announce = vals
		return s.end()
	}
	return fmt.Errorf("unknown bgp statement %q", what)
}

// familyLengths reads "inet N" and "inet6 N" pairs to the end of the
// statement, each length from min up to the family's bits.
func (s *stmt) familyLengths(v4, v6 *int, min int, what string) error {
	for s.more() {
		family, err := s.value("inet or inet6")
		if err != nil {
			return err
		}
		switch family {
		case "inet":
			*v4, err = s.number("inet "+what, min, 32)
		case "inet6":
			*v6, err = s.number("inet6 "+what, min, 128)
		default:
			err = fmt.Errorf("expected inet or inet6, got %q", family)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseMaxAddresses4 reads an IPv4 address count, or "/LEN" for as many
// addresses as one prefix of that length holds.
func parseMaxAddresses4(v string) (uint64, error) {
	if strings.HasPrefix(v, "/") {
		n, err := parsePrefixLen(v, 32)
		if err != nil {
			return 0, err
		}
		return 1 << (32 - n), nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 || n > 1<<32 {
		return 0, fmt.Errorf("max-addresses inet takes a count from 1 to 4294967296 or /LEN, got %q", v)
	}
	return n, nil
}

// parsePrefixLen reads "/LEN" with LEN from 1 to bits.
func parsePrefixLen(v string, bits int) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "/"))
	if !strings.HasPrefix(v, "/") || err != nil || n < 1 || n > bits {
		return 0, fmt.Errorf("expected /LEN with LEN from 1 to %d, got %q", bits, v)
	}
	return n, nil
}
