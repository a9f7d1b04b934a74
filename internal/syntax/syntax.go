// Package syntax reads the small values that spfd.conf, spfctl's
// arguments and SPF records share: domain names, resolver addresses,
// prefixes and durations. It imports nothing of spfd, so the
// configuration, the control protocol and the SPF walker can all use it.
package syntax

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// NormalizeDomain lower-cases a domain and drops the trailing dot.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// ValidateDomain checks a normalised domain name for use in a query.
func ValidateDomain(d string) error {
	if d == "" {
		return errors.New("empty domain name")
	}
	if _, ok := dns.IsDomainName(d); !ok || len(d) > 253 {
		return fmt.Errorf("%q: invalid domain name", d)
	}
	for _, c := range []byte(d) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%q: invalid domain name", d)
		}
	}
	return nil
}

// ParseServer normalises a resolver address: "192.0.2.1", "192.0.2.1:5353",
// "2001:db8::1", "[2001:db8::1]:5353". Port 53 is the default.
func ParseServer(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		// A host name as resolver would need a resolver to find it.
		return "", fmt.Errorf("invalid resolver %q: want an IP address, optionally with :port", s)
	}
	return ap.String(), nil
}

// ParsePrefix accepts an address or a CIDR prefix; host bits must be zero
// so a typo is not silently widened or narrowed.
func ParsePrefix(v string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address or prefix %q", v)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", v, p.Masked())
	}
	return p, nil
}

// ParseDuration accepts a number with a unit: 30s, 15m, 24h, 7d, 2w.
func ParseDuration(v string) (time.Duration, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30s, 15m, 24h, 7d)", v)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[v[len(v)-1]]
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 32)
	if unit == 0 || err != nil || (len(v) > 2 && v[0] == '0') {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30s, 15m, 24h, 7d)", v)
	}
	d := time.Duration(n) * unit
	if d/unit != time.Duration(n) || d > 10*365*24*time.Hour {
		return 0, fmt.Errorf("duration %q too long", v)
	}
	return d, nil
}

// Count writes n with the noun in the number it takes: "1 domain",
// "0 domains", "2 addresses".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
