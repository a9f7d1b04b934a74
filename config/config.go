package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/internal/syntax"
)

// Table says where one list is pushed.
type Table struct {
	Backend string // "file", "pf", "nftables"
	// Name is the pf table or nftables set base name; Path the file
	// backend's file.
	Name    string
	Path    string
	Command []string // file backend: run after each change
}

// Walk holds the SPF walk schedule and limits.
type Walk struct {
	MinInterval time.Duration
	MaxInterval time.Duration
	Concurrency int
	Timeout     time.Duration
	Retries     int
	Grace       time.Duration
	FloorIPv4   int
	FloorIPv6   int
	// MaxLookups is RFC 7208's limit of DNS-querying terms (10 unless
	// raised).
	MaxLookups int
	// MaxAddresses4 and MaxCover6Len bound what one domain may add to
	// the whitelist as a whole: IPv4 addresses, and a prefix length whose
	// size is the IPv6 limit.
	MaxAddresses4 uint64
	MaxCover6Len  int
	Lenient       bool
}

// Config is a parsed spfd.conf.
type Config struct {
	Socket      string
	SocketGroup string // empty: the daemon's own group
	SocketMode  os.FileMode
	StateDir    string
	Resolvers   []string // host:port; empty means /etc/resolv.conf
	Walk        Walk
	White       Table
	Black       Table
	// NFTable is the nftables table (family inet) that holds the sets.
	NFTable string
	// NFTRulePorts, when set, make spfd manage a base chain in NFTable
	// that accepts the whitelist and drops the blacklist on these ports.
	NFTRulePorts []uint16
	// NFTElementCounters gives every set element a counter (the
	// default), at twice the cost of filling the sets; otherwise the
	// counters of the rules that use the sets are reported.
	NFTElementCounters bool
	Domains            []string
	DomainFiles        []string
	// StaticWhite and StaticBlack are entries written in the file.
	StaticWhite, StaticBlack []netip.Prefix
	// Files are the configuration file and the files it includes, in the
	// order read: what a reload reads again.
	Files []string
	// CaptureIgnore are domains (and their subdomains) that outbound mail
	// never adds to the walk.
	CaptureIgnore []string
	// ForcedFiles are list files whose statement says force: their lines
	// may be broader than the walk floor.
	ForcedFiles map[string]bool
	// statics remember where each static entry was written, to check
	// them against the floor once the whole file is read.
	statics []staticEntry
	// where remembers the file:line of statements that validate judges
	// together ("walk max-interval", "table black", "bgp").
	where map[string]string
	// WhiteFiles and BlackFiles are list files in spamd-setup's format.
	WhiteFiles, BlackFiles []string
	Ignore                 []netip.Prefix
	// BlacklistTTL is the default TTL of log-mined entries.
	BlacklistTTL time.Duration
	// RepeatOffenders holds addresses that logs list again longer.
	RepeatOffenders RepeatOffenders
	// MetricsListen is the address Prometheus metrics are served on
	// ("" for none); a non-loopback one needs MetricsPublic.
	MetricsListen string
	MetricsPublic bool
	// Logs are the log sources to follow.
	Logs []LogSource
	// Feeds are list files and URLs fetched on a schedule.
	Feeds []Feed
	// BGP shares lists with BGP neighbors; nil: no BGP.
	BGP *BGP
	// ExportWhite and ExportBlack are files the pushed lists are also
	// written to, in spamd-setup's format.
	ExportWhite, ExportBlack string
	// Warnings are problems that do not stop spfd: missing files.
	Warnings []string
}

// RepeatOffenders says how an address that logs list again, within
// Within of its last listing, is held longer: Factor times the hold of
// its last listing, up to MaxTTL. Remember bounds the offenders kept.
type RepeatOffenders struct {
	Factor   float64 // 1: no growth
	MaxTTL   time.Duration
	Within   time.Duration
	Remember int
}

// TTL returns the hold for an address listed for the count-th time
// (count from 1) under a rule whose own TTL is base.
func (r RepeatOffenders) TTL(base time.Duration, count int) time.Duration {
	ttl := base
	for i := 1; i < count && r.Factor > 1; i++ {
		next := time.Duration(float64(ttl) * r.Factor)
		if next >= r.MaxTTL || next < ttl { // capped, or overflowed
			return max(base, r.MaxTTL)
		}
		ttl = next
	}
	return ttl
}

// Defaults.
const (
	DefaultSocket       = "/var/run/spfd.sock"
	DefaultStateDir     = "/var/db/spfd"
	DefaultBlacklistTTL = 24 * time.Hour
)

// Default returns the configuration an empty file gives.
func Default() *Config {
	return &Config{
		Socket:     DefaultSocket,
		SocketMode: 0o660,
		StateDir:   DefaultStateDir,
		NFTable:    "spfd",
		// Per-element counters, as the issue asks and as pfctl -vvsT
		// shows them; "nftables-counters rules" halves the fill time.
		NFTElementCounters: true,
		Walk: Walk{
			MinInterval: time.Hour,
			MaxInterval: 24 * time.Hour,
			Concurrency: 16,
			Timeout:     2 * time.Second,
			Retries:     2,
			Grace:       7 * 24 * time.Hour,
			// The walker's own defaults (package spf); a daemon test
			// keeps the two in step.
			FloorIPv4:     12,
			FloorIPv6:     24,
			MaxLookups:    10,
			MaxAddresses4: 1 << 24,
			MaxCover6Len:  20,
		},
		BlacklistTTL: DefaultBlacklistTTL,
		// Doubling, as sshguard and fail2ban's bantime.increment do.
		RepeatOffenders: RepeatOffenders{Factor: 2, MaxTTL: 30 * 24 * time.Hour, Within: 30 * 24 * time.Hour, Remember: 1_000_000},
	}
}

// Options control parsing.
type Options struct {
	// Macros are set before the file is read (spfd -D name=value) and
	// win over definitions in the file.
	Macros map[string]string
	// ReadFile reads included files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
}

// maxIncludeDepth stops include loops.
const maxIncludeDepth = 8

// maxErrors is how many errors one parse reports before giving up.
const maxErrors = 10

// ParseFile reads and parses the configuration file at path.
func ParseFile(path string, opts Options) (*Config, error) {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	src, err := opts.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, string(src), opts)
}

// Parse parses a configuration from r; name is used in error messages and
// to resolve relative include paths.
func Parse(name string, r io.Reader, opts Options) (*Config, error) {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	src, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	return parse(name, string(src), opts)
}

// maxFileSize bounds a configuration file.
const maxFileSize = 1 << 20

func parse(name, src string, opts Options) (*Config, error) {
	p := &parser{cfg: Default(), opts: opts, macros: make(map[string]string), fixed: opts.Macros}
	p.file(name, src, 0)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if err := p.cfg.validate(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

type parser struct {
	cfg    *Config
	opts   Options
	macros map[string]string
	fixed  map[string]string // from the command line
	errs   []error
}

func (p *parser) errorf(t token, format string, args ...any) {
	if len(p.errs) == maxErrors {
		p.errs = append(p.errs, errors.New("too many errors"))
	}
	if len(p.errs) > maxErrors {
		return
	}
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", t.file, t.line, fmt.Sprintf(format, args...)))
}

func (p *parser) file(name, src string, depth int) {
	p.cfg.Files = append(p.cfg.Files, name)
	if len(src) > maxFileSize {
		p.errs = append(p.errs, fmt.Errorf("%s: larger than %d bytes", name, maxFileSize))
		return
	}
	toks, err := lex(name, src)
	if err != nil {
		p.errs = append(p.errs, err)
		return
	}
	var stmt []token
	for _, t := range toks {
		if t.kind == tokEOF {
			break
		}
		if t.kind != tokNewline {
			stmt = append(stmt, t)
			continue
		}
		if len(stmt) > 0 {
			p.statement(stmt, name, depth)
		}
		stmt = stmt[:0]
	}
}

var macroName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// statement runs one statement: a macro definition, an include, or a
// keyword with arguments.
func (p *parser) statement(toks []token, file string, depth int) {
	if len(toks) >= 2 && toks[1].kind == tokEquals {
		name := toks[0]
		if name.kind != tokWord || !macroName.MatchString(name.text) {
			p.errorf(name, "invalid macro name %s", name)
			return
		}
		if _, isKeyword := keywords[name.text]; isKeyword {
			p.errorf(name, "macro name %s is a keyword", name)
			return
		}
		if len(toks) != 3 || (toks[2].kind != tokString && toks[2].kind != tokWord) {
			p.errorf(name, "macro %s: expected one value", name.text)
			return
		}
		if _, ok := p.fixed[name.text]; !ok {
			p.macros[name.text] = toks[2].text
		}
		return
	}
	expanded, err := p.expand(toks, 0)
	if err != nil {
		p.errorf(toks[0], "%v", err)
		return
	}
	if len(expanded) == 0 {
		p.errorf(toks[0], "statement is empty after macro expansion")
		return
	}
	s := &stmt{p: p, toks: expanded}
	kw := s.next()
	if kw.kind != tokWord {
		p.errorf(kw, "expected a keyword, got %s", kw)
		return
	}
	if kw.text == "include" {
		s.include(file, depth)
		return
	}
	key := kw.text
	if key == "walk" || key == "table" {
		key += " " + s.peek().text
	}
	if p.cfg.where == nil {
		p.cfg.where = make(map[string]string)
	}
	p.cfg.where[key] = fmt.Sprintf("%s:%d", kw.file, kw.line)
	handler, ok := keywords[kw.text]
	if !ok {
		p.errorf(kw, "unknown keyword %s", kw)
		return
	}
	if err := handler(s); err != nil {
		p.errorf(s.last(), "%s: %v", kw.text, err)
	}
}

// expand replaces $name words by the macro's value, lexed again.
func (p *parser) expand(toks []token, depth int) ([]token, error) {
	if depth > 8 {
		return nil, errors.New("macros nested too deeply")
	}
	var out []token
	for _, t := range toks {
		if t.kind != tokWord || !strings.HasPrefix(t.text, "$") {
			out = append(out, t)
			continue
		}
		name := t.text[1:]
		v, ok := p.fixed[name]
		if !ok {
			v, ok = p.macros[name]
		}
		if !ok {
			return nil, fmt.Errorf("undefined macro %s", t.text)
		}
		sub, err := lex(t.file, v)
		if err != nil {
			return nil, fmt.Errorf("in macro %s: %v", t.text, err)
		}
		var inner []token
		for _, s := range sub {
			if s.kind == tokWord || s.kind == tokString || s.kind == tokOpen || s.kind == tokClose {
				s.line = t.line
				inner = append(inner, s)
			}
		}
		inner, err = p.expand(inner, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
	}
	return out, nil
}

// stmt is a cursor over one statement's tokens.
type stmt struct {
	p    *parser
	toks []token
	pos  int
}

func (s *stmt) next() token {
	if s.pos >= len(s.toks) {
		t := token{kind: tokNewline}
		if len(s.toks) > 0 {
			t.file, t.line = s.toks[len(s.toks)-1].file, s.toks[len(s.toks)-1].line
		}
		return t
	}
	t := s.toks[s.pos]
	s.pos++
	return t
}

func (s *stmt) peek() token {
	t := s.next()
	if t.kind != tokNewline {
		s.pos--
	}
	return t
}

func (s *stmt) more() bool { return s.pos < len(s.toks) }

func (s *stmt) last() token {
	if s.pos == 0 || len(s.toks) == 0 {
		return s.next()
	}
	return s.toks[min(s.pos, len(s.toks))-1]
}

// value takes one word or string.
func (s *stmt) value(what string) (string, error) {
	t := s.next()
	if t.kind != tokWord && t.kind != tokString {
		return "", fmt.Errorf("expected %s, got %s", what, t)
	}
	return t.text, nil
}

// values takes one value or a { } list of them.
func (s *stmt) values(what string) ([]string, error) {
	if s.peek().kind != tokOpen {
		v, err := s.value(what)
		return []string{v}, err
	}
	s.next()
	var out []string
	for {
		t := s.next()
		switch t.kind {
		case tokClose:
			if len(out) == 0 {
				return nil, fmt.Errorf("empty list")
			}
			return out, nil
		case tokWord, tokString:
			out = append(out, t.text)
		default:
			return nil, fmt.Errorf("expected %s or }, got %s", what, t)
		}
	}
}

func (s *stmt) end() error {
	if s.more() {
		return fmt.Errorf("unexpected %s", s.next())
	}
	return nil
}

func (s *stmt) include(file string, depth int) {
	path, err := s.value("a file name")
	if err == nil {
		err = s.end()
	}
	if err != nil {
		s.p.errorf(s.last(), "include: %v", err)
		return
	}
	if depth+1 > maxIncludeDepth {
		s.p.errorf(s.last(), "include: nested more than %d deep", maxIncludeDepth)
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(file), path)
	}
	src, err := s.p.opts.ReadFile(path)
	if err != nil {
		s.p.errorf(s.last(), "include: %v", err)
		return
	}
	s.p.file(path, string(src), depth+1)
}

func (s *stmt) duration() (time.Duration, error) {
	v, err := s.value("a duration")
	if err != nil {
		return 0, err
	}
	return syntax.ParseDuration(v)
}

func (s *stmt) number(what string, lo, hi int) (int, error) {
	v, err := s.value(what)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be a number from %d to %d, got %q", what, lo, hi, v)
	}
	return n, nil
}

func (s *stmt) yesno() (bool, error) {
	v, err := s.value("yes or no")
	if err != nil {
		return false, err
	}
	switch v {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("expected yes or no, got %q", v)
}

func (s *stmt) prefixes() ([]netip.Prefix, error) {
	vals, err := s.values("an address or prefix")
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, v := range vals {
		p, err := syntax.ParsePrefix(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// staticEntry is a static prefix and the statement it came from.
type staticEntry struct {
	where  string // file:line
	what   string // whitelist, blacklist
	prefix netip.Prefix
	forced bool
}

// Broad reports whether p is broader than the walk floor: such a prefix
// in a list switches the blacklist off (whitelist) or blocks a whole
// provider (blacklist), so it needs the admin to say force.
func (w Walk) Broad(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() < w.FloorIPv4
	}
	return p.Bits() < w.FloorIPv6
}

// Floor is the floor's length for p's family.
func (w Walk) Floor(p netip.Prefix) int {
	if p.Addr().Is4() {
		return w.FloorIPv4
	}
	return w.FloorIPv6
}

func (c *Config) validate() error {
	var errs []error
	for _, e := range c.statics {
		if !e.forced && c.Walk.Broad(e.prefix) {
			errs = append(errs, fmt.Errorf("%s: %s %s is broader than the walk floor /%d; add force to the statement if you mean it",
				e.where, e.what, e.prefix, c.Walk.Floor(e.prefix)))
		}
	}
	c.statics = nil
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.BGP != nil && (c.BGP.ASN == 0 || c.BGP.RouterID == "") {
		return fmt.Errorf("%sbgp needs 'bgp as N router-id ADDRESS'", c.at("bgp"))
	}
	for i := range c.Logs {
		if c.Logs[i].TTL == 0 {
			c.Logs[i].TTL = c.BlacklistTTL // the blacklist-ttl default
		}
	}
	if r := c.RepeatOffenders; r.MaxTTL < time.Minute || r.Within < time.Minute {
		return fmt.Errorf("%srepeat-offenders max-ttl and within must be at least 1m", c.at("repeat-offenders"))
	}
	w := c.Walk
	if w.MinInterval > w.MaxInterval {
		return fmt.Errorf("%swalk min-interval %s is longer than max-interval %s", c.at("walk max-interval", "walk min-interval"),
			FormatDuration(w.MinInterval), FormatDuration(w.MaxInterval))
	}
	if c.White.Backend == "" {
		c.White = Table{Backend: "file", Path: filepath.Join(c.StateDir, "white.txt")}
	}
	if c.Black.Backend == "" {
		c.Black = Table{Backend: "file", Path: filepath.Join(c.StateDir, "black.txt")}
	}
	tables := c.at("table black", "table white")
	if c.White.Backend != c.Black.Backend {
		return fmt.Errorf("%sboth tables must use one backend (white: %s, black: %s)", tables, c.White.Backend, c.Black.Backend)
	}
	if c.White.Backend == "file" && c.White.Path == c.Black.Path {
		return fmt.Errorf("%swhite and black tables write the same file %s", tables, c.White.Path)
	}
	if c.White.Backend != "file" && c.White.Name == c.Black.Name {
		return fmt.Errorf("%swhite and black tables have the same name %q", tables, c.White.Name)
	}
	return nil
}

// at returns "file:line: " of the first of keys that was written, the
// statement an error is about; "" for defaults.
func (c *Config) at(keys ...string) string {
	for _, k := range keys {
		if w, ok := c.where[k]; ok {
			return w + ": "
		}
	}
	return ""
}

// FormatDuration writes a duration as people write them in spfd.conf:
// 30s, 15m, 24h, 7d, or the largest unit that divides it.
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{7 * 24 * time.Hour, "w"}, {24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d != 0 && d%u.unit == 0 {
			return fmt.Sprintf("%d%s", d/u.unit, u.name)
		}
	}
	return d.String()
}

// CheckFiles adds a warning for each file the configuration names that
// cannot be read yet; spfd retries them later.
func (c *Config) CheckFiles() {
	check := func(what, path string) {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s does not exist (yet)", what, path))
			} else {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s: %v", what, path, err))
			}
		}
	}
	for _, f := range c.DomainFiles {
		check("domain file", f)
	}
	for _, f := range c.WhiteFiles {
		check("whitelist file", f)
	}
	for _, f := range c.BlackFiles {
		check("blacklist file", f)
	}
	for _, l := range c.Logs {
		for _, f := range l.Files {
			check("log file", f)
		}
	}
}
