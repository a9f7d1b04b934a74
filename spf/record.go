// Package spf parses SPF records (RFC 7208) and walks their include,
// redirect, a and mx trees to find the networks a domain allows to send
// its mail.
package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxRecordLength bounds the SPF text we are willing to parse. DNS TXT data
// is limited by the message size; anything larger is hostile.
const MaxRecordLength = 4096

// Qualifier is the result an SPF term yields when it matches.
type Qualifier byte

// Qualifiers as written in records.
const (
	Pass     Qualifier = '+'
	Fail     Qualifier = '-'
	SoftFail Qualifier = '~'
	Neutral  Qualifier = '?'
)

// Kind names a mechanism.
type Kind string

// Mechanisms of RFC 7208 section 5.
const (
	KindAll     Kind = "all"
	KindInclude Kind = "include"
	KindA       Kind = "a"
	KindMX      Kind = "mx"
	KindPTR     Kind = "ptr"
	KindIP4     Kind = "ip4"
	KindIP6     Kind = "ip6"
	KindExists  Kind = "exists"
)

// Mechanism is one parsed directive of a record.
type Mechanism struct {
	// Text is the term as written, for messages.
	Text      string
	Qualifier Qualifier
	Kind      Kind
	// Domain is the domain-spec of include, a, mx, ptr and exists; empty
	// means the current domain. It is kept as written, macros included.
	Domain string
	// Prefix is set for ip4 and ip6, host bits masked.
	Prefix netip.Prefix
	// Masked reports that the written ip4/ip6 value had host bits set.
	Masked bool
	// V4Len and V6Len are the dual-CIDR lengths of a and mx (32 and 128
	// when not given).
	V4Len, V6Len int
}

// HasMacro reports whether the domain-spec uses macro expansion, which a
// walker cannot enumerate.
func (m Mechanism) HasMacro() bool { return strings.Contains(m.Domain, "%") }

// Record is a parsed SPF record.
type Record struct {
	Mechanisms []Mechanism
	// Redirect is the redirect= modifier's domain, empty when absent.
	Redirect string
	// HasAll reports an "all" mechanism with any qualifier; it makes
	// redirect= irrelevant (RFC 7208 section 6.1).
	HasAll bool
}

// SyntaxError describes why a record does not parse.
type SyntaxError struct {
	Term   string
	Reason string
}

func (e *SyntaxError) Error() string {
	if e.Term == "" {
		return "SPF syntax error: " + e.Reason
	}
	return fmt.Sprintf("SPF syntax error in %q: %s", e.Term, e.Reason)
}

// IsSPF reports whether a TXT record's joined text is an SPF version 1
// record: "v=spf1" in any case, followed by a space or the end.
func IsSPF(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// ParseRecord parses the text of an SPF record, version tag included.
func ParseRecord(txt string) (*Record, error) {
	if len(txt) > MaxRecordLength {
		return nil, &SyntaxError{Reason: fmt.Sprintf("record longer than %d bytes", MaxRecordLength)}
	}
	if !IsSPF(txt) {
		return nil, &SyntaxError{Reason: "not an SPF version 1 record"}
	}
	rest := txt[6:]
	rec := &Record{Mechanisms: make([]Mechanism, 0, strings.Count(rest, " ")+1)}
	redirects := 0
	// RFC 7208 separates terms by one or more spaces, and only spaces.
	for rest != "" {
		var term string
		term, rest, _ = strings.Cut(rest, " ")
		if term == "" {
			continue
		}
		if err := checkChars(term); err != nil {
			return nil, err
		}
		if name, value, ok := modifier(term); ok {
			switch strings.ToLower(name) {
			case "redirect":
				redirects++
				if redirects > 1 {
					return nil, &SyntaxError{Term: term, Reason: "more than one redirect= modifier"}
				}
				if err := checkDomainSpec(value); err != nil {
					return nil, &SyntaxError{Term: term, Reason: err.Error()}
				}
				rec.Redirect = value
			case "exp":
				if err := checkDomainSpec(value); err != nil {
					return nil, &SyntaxError{Term: term, Reason: err.Error()}
				}
			}
			// Unknown modifiers are ignored (RFC 7208 section 6).
			continue
		}
		m, err := parseMechanism(term)
		if err != nil {
			return nil, err
		}
		if m.Kind == KindAll {
			rec.HasAll = true
		}
		rec.Mechanisms = append(rec.Mechanisms, m)
	}
	return rec, nil
}

func checkChars(term string) error {
	for i := 0; i < len(term); i++ {
		c := term[i]
		if c < 0x21 || c > 0x7e {
			return &SyntaxError{Term: term, Reason: fmt.Sprintf("invalid character %q", c)}
		}
	}
	return nil
}

// modifier splits name=value when term is a modifier. A modifier's name is
// ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) and comes before any ':' or '/'.
func modifier(term string) (name, value string, ok bool) {
	eq := strings.IndexByte(term, '=')
	if eq <= 0 {
		return "", "", false
	}
	name = term[:eq]
	if !isAlpha(name[0]) {
		return "", "", false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return name, term[eq+1:], true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func parseMechanism(term string) (Mechanism, error) {
	m := Mechanism{Text: term, Qualifier: Pass, V4Len: 32, V6Len: 128}
	rest := term
	switch Qualifier(rest[0]) {
	case Pass, Fail, SoftFail, Neutral:
		m.Qualifier = Qualifier(rest[0])
		rest = rest[1:]
	}
	name := rest
	arg, hasArg := "", false
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		name = rest[:i]
		if rest[i] == ':' {
			arg, hasArg = rest[i+1:], true
		} else {
			arg = rest[i:]
		}
	}
	m.Kind = Kind(strings.ToLower(name))
	fail := func(reason string) (Mechanism, error) {
		return Mechanism{}, &SyntaxError{Term: term, Reason: reason}
	}
	switch m.Kind {
	case KindAll:
		if arg != "" || hasArg {
			return fail("all takes no argument")
		}
	case KindInclude, KindExists:
		if !hasArg || arg == "" {
			return fail(string(m.Kind) + " needs a domain")
		}
		if err := checkDomainSpec(arg); err != nil {
			return fail(err.Error())
		}
		m.Domain = arg
	case KindPTR:
		if hasArg {
			if err := checkDomainSpec(arg); err != nil {
				return fail(err.Error())
			}
			m.Domain = arg
		} else if arg != "" {
			return fail("ptr takes no CIDR length")
		}
	case KindA, KindMX:
		domain, cidr := arg, ""
		if hasArg {
			if i := strings.IndexByte(arg, '/'); i >= 0 {
				domain, cidr = arg[:i], arg[i:]
			}
			if domain == "" {
				return fail("empty domain")
			}
			if err := checkDomainSpec(domain); err != nil {
				return fail(err.Error())
			}
			m.Domain = domain
		} else {
			cidr = arg
		}
		v4, v6, err := parseDualCIDR(cidr)
		if err != nil {
			return fail(err.Error())
		}
		m.V4Len, m.V6Len = v4, v6
	case KindIP4, KindIP6:
		if !hasArg || arg == "" {
			return fail(string(m.Kind) + " needs an address")
		}
		p, masked, err := parseNetwork(m.Kind, arg)
		if err != nil {
			return fail(err.Error())
		}
		m.Prefix, m.Masked = p, masked
	default:
		return fail("unknown mechanism")
	}
	return m, nil
}

// parseDualCIDR parses "", "/n", "//m" or "/n//m".
func parseDualCIDR(s string) (v4, v6 int, err error) {
	v4, v6 = 32, 128
	if s == "" {
		return v4, v6, nil
	}
	if v6part, ok := strings.CutPrefix(s, "//"); ok {
		v6, err = parseLength(v6part, 128)
		return v4, v6, err
	}
	s = s[1:] // the caller guarantees a leading '/'
	v4part, v6part, dual := strings.Cut(s, "//")
	if v4, err = parseLength(v4part, 32); err != nil {
		return 0, 0, err
	}
	if dual {
		if v6, err = parseLength(v6part, 128); err != nil {
			return 0, 0, err
		}
	}
	return v4, v6, nil
}

// parseLength accepts a decimal prefix length without leading zeros.
func parseLength(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("invalid prefix length %q", s)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, fmt.Errorf("invalid prefix length %q", s)
		}
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("prefix length %d exceeds %d", n, max)
	}
	return n, nil
}

func parseNetwork(kind Kind, s string) (netip.Prefix, bool, error) {
	addrPart, lenPart, hasLen := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("invalid address %q", addrPart)
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, false, fmt.Errorf("zoned address %q", addrPart)
	}
	bits := 32
	if kind == KindIP4 {
		if !addr.Is4() {
			return netip.Prefix{}, false, fmt.Errorf("%q is not an IPv4 address", addrPart)
		}
	} else {
		// ip6 takes IPv6 syntax only; a dotted quad is an ip4 mistake.
		if !addr.Is6() {
			return netip.Prefix{}, false, fmt.Errorf("%q is not an IPv6 address", addrPart)
		}
		bits = 128
	}
	n := bits
	if hasLen {
		if n, err = parseLength(lenPart, bits); err != nil {
			return netip.Prefix{}, false, err
		}
	}
	p := netip.PrefixFrom(addr, n)
	masked := p.Masked()
	return masked, masked.Addr() != addr, nil
}

var errEmptyLabel = errors.New("empty label in domain")

// checkDomainSpec applies the light checks a walker needs: a domain-spec
// made of labels, possibly with macros. Full macro syntax is not validated;
// macro terms are skipped anyway.
func checkDomainSpec(s string) error {
	if s == "" {
		return errors.New("empty domain")
	}
	if len(s) > 253*2 {
		return errors.New("domain too long")
	}
	if strings.Contains(s, "%") {
		return nil
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errEmptyLabel
	}
	for more := true; more; {
		var label string
		label, name, more = strings.Cut(name, ".")
		if label == "" {
			return errEmptyLabel
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 bytes")
		}
	}
	return nil
}
