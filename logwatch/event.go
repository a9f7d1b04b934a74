// Package logwatch follows log files and turns their lines into events:
// one pure parser per log family (sshd, httpd, mail), a follower that
// survives rotation, and the journal reader.
package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Kind names what an event says happened. It is a small integer, not a
// string, because the rules switch on it for every line of a big log.
type Kind uint8

// Event kinds.
const (
	NoKind         Kind = iota
	SSHInvalidUser      // Invalid user U from IP
	SSHFailed           // Failed <method> for U from IP
	SSHMaxAuth          // maximum authentication attempts exceeded
	SSHPreauth          // invalid/authenticating user went away before auth
	HTTPStatus          // a request answered 403 or 404
	HTTPRequest         // any other request (probe paths are matched on it)
	MailSent            // outbound mail delivered to a remote domain
	MailRecipient       // a remote client tried to deliver to an address
	numKinds
)

var kindNames = [numKinds]string{"", "ssh-invalid-user", "ssh-failed", "ssh-max-auth", "ssh-preauth", "http-status", "http-request", "mail-sent", "mail-recipient"}

// String returns the name spfctl scan prints: ssh-failed, http-status, ...
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is what one log line says, with the client address taken from its
// fixed position in the line.
type Event struct {
	Kind Kind
	Time time.Time // from the line; zero when the line has none
	Addr netip.Addr
	Port int // sshd: the client port, which identifies the connection
	PID  int // sshd: the logging process, one per connection (0: unknown)

	User    string // sshd: the user name tried (attacker-chosen)
	Invalid bool   // sshd: the user does not exist
	Method  string // sshd: password, publickey, keyboard-interactive/pam, ...

	Status    int    // httpd: the response status
	Path      string // httpd: the request path
	Forwarded string // httpd: X-Forwarded-For, if logged

	Sender    string // mail: envelope sender
	Recipient string // mail: envelope recipient
	// Bounce: the sender is known to be empty (from=<>), which anyone can
	// forge through a third party's MTA.
	Bounce bool
	// Submitted says how an outbound message entered the MTA, for
	// capture: by a local program (sendmail, pickup), in an authenticated
	// session, or from Addr; zero when the log did not say.
	Submitted Submission
}

// Submission is how a message entered the mail system.
type Submission uint8

// How a message was submitted.
const (
	SubmittedUnknown       Submission = iota
	SubmittedLocally                  // sendmail(8), Postfix pickup, OpenSMTPD's local socket
	SubmittedAuthenticated            // an SMTP session that authenticated
	SubmittedBy                       // an unauthenticated SMTP session from Addr
)

// Domain returns the domain of the recipient address.
func (e Event) Domain() string {
	_, d, ok := strings.Cut(e.Recipient, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(d)
}

// Addr is an IP address.
type Addr = netip.Addr

// MaxLine bounds the lines parsers look at; longer ones are dropped.
const MaxLine = 8192

// parseAddr accepts an IPv4 or IPv6 address, unmapping ::ffff:a.b.c.d,
// and refuses zones and unspecified addresses.
func parseAddr(s string) (netip.Addr, bool) {
	if a, ok := parseIPv4(s); ok {
		return a, !a.IsUnspecified()
	}
	a, ok := parseIPv6Hex(s)
	if !ok {
		// Zones, embedded IPv4, and whatever is not an address.
		var err error
		if a, err = netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// parseIPv4 reads a dotted quad as netip.ParseAddr does (four decimal
// fields of 0-255, no leading zeros), a few times faster: most addresses
// in an attacked log are IPv4. Anything else is left to netip.
func parseIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	i := 0
	for f := range 4 {
		// One to three digits, no leading zero, at most 255.
		if i >= len(s) || s[i]-'0' > 9 {
			return netip.Addr{}, false
		}
		v := uint(s[i] - '0')
		i++
		if i < len(s) && s[i]-'0' <= 9 {
			if v == 0 {
				return netip.Addr{}, false // leading zero
			}
			v = v*10 + uint(s[i]-'0')
			i++
			if i < len(s) && s[i]-'0' <= 9 {
				v = v*10 + uint(s[i]-'0')
				i++
				if v > 255 {
					return netip.Addr{}, false
				}
			}
		}
		b[f] = byte(v)
		if f < 3 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// parseIPv6Hex reads an IPv6 address written in hex groups alone (no
// zone, no embedded IPv4) as netip.ParseAddr does, at a fraction of its
// cost. It refuses what it does not handle; netip decides those.
func parseIPv6Hex(s string) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // where "::" stands, in bytes of ip
	i, n := 0, 0   // read from s, written to ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, i = 0, 2
		if len(s) == 2 {
			return netip.IPv6Unspecified(), true
		}
	}
	for n < 16 {
		// A group: one to four hex digits.
		v, digits := 0, 0
		for ; digits < 4 && i < len(s); digits++ {
			h := hexDigit[s[i]]
			if h < 0 {
				break
			}
			v = v<<4 | int(h)
			i++
		}
		if digits == 0 {
			return netip.Addr{}, false
		}
		ip[n], ip[n+1] = byte(v>>8), byte(v)
		n += 2
		if i == len(s) {
			break
		}
		if s[i] != ':' {
			return netip.Addr{}, false
		}
		i++
		if i < len(s) && s[i] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = n
			i++
			if i == len(s) {
				break
			}
		} else if i == len(s) {
			return netip.Addr{}, false // a lone ':' at the end
		}
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	switch {
	case ellipsis >= 0 && n < 16:
		gap := 16 - n
		copy(ip[ellipsis+gap:], ip[ellipsis:n])
		clear(ip[ellipsis : ellipsis+gap])
	case ellipsis >= 0 || n < 16:
		return netip.Addr{}, false // "::" standing for no group, or too few
	}
	return netip.AddrFrom16(ip), true
}

// hexDigit is a hex digit's value, or -1.
var hexDigit = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// parsePort accepts a decimal port 1-65535 without leading zeros.
func parsePort(s string) (int, bool) {
	if s == "" || s[0] == '0' {
		return 0, false
	}
	n, ok := decimal(s, 5)
	return n, ok && n <= 65535
}

// decimal reads 1 to maxDigits decimal digits, without strconv's sign
// and underscore handling.
func decimal(s string, maxDigits int) (int, bool) {
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		d := uint(s[i]) - '0' // wraps for bytes below '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int(d)
	}
	return n, true
}

// twoDigits reads a two-digit field ("07", or " 7" for a day).
func twoDigits(s string, spacePad bool) (int, bool) {
	a, b := s[0], s[1]
	if a == ' ' && spacePad {
		a = '0'
	}
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

// Header is the syslog header of a line.
type Header struct {
	Time    time.Time
	Host    string
	Program string
	PID     int
	Message string
}

// month reads a syslog month name; a switch is several times faster than
// a map on every line of a big log.
func month(s string) (time.Month, bool) {
	switch s {
	case "Jan":
		return time.January, true
	case "Feb":
		return time.February, true
	case "Mar":
		return time.March, true
	case "Apr":
		return time.April, true
	case "May":
		return time.May, true
	case "Jun":
		return time.June, true
	case "Jul":
		return time.July, true
	case "Aug":
		return time.August, true
	case "Sep":
		return time.September, true
	case "Oct":
		return time.October, true
	case "Nov":
		return time.November, true
	case "Dec":
		return time.December, true
	}
	return 0, false
}

// ParseSyslog splits a syslog line: "Nov 27 20:06:52 host prog[pid]: msg"
// (BSD, OpenBSD authlog, classic Debian) or "2026-11-27T20:06:52.1+00:00
// host prog[pid]: msg" (RFC 3339, Debian 12 and later). The program tag
// must stand at its fixed place: text that merely looks like a tag later
// in the line is message text. year fills in the classic format's
// missing year (a date in the future means last year).
func ParseSyslog(line string, now time.Time) (Header, bool) {
	return parseSyslog(line, now, nil)
}

// A stampCache remembers the last classic timestamp a parser read, and
// its time: a log has many lines a second, and reading a timestamp costs
// more than the rest of the header. One parser owns it; the zero value
// is empty.
type stampCache struct {
	// "Nov  1 00:00:00", the day padded, as two overlapping words:
	// bytes 0-7 and 7-14, compared with two loads.
	stamp [2]uint64
	// The clock when read, to the second: the year, and whether a date
	// ahead is last year's, follow from it. A scan's clock stands still.
	now   int64
	loc   *time.Location
	t     time.Time
	valid bool
}

// lookup returns the time of stamp (a padded classic timestamp, 15 bytes
// or more) at now, if it is the one remembered.
func (c *stampCache) lookup(stamp string, now time.Time) (time.Time, bool) {
	if c == nil || !c.valid || le64(stamp) != c.stamp[0] || le64(stamp[7:]) != c.stamp[1] ||
		c.now != now.Unix() || c.loc != now.Location() {
		return time.Time{}, false
	}
	return c.t, true
}

// store remembers that stamp means t at now (on a nil cache, nothing).
func (c *stampCache) store(stamp string, now, t time.Time) {
	if c != nil {
		*c = stampCache{stamp: [2]uint64{le64(stamp), le64(stamp[7:])}, now: now.Unix(), loc: now.Location(), t: t, valid: true}
	}
}

// parseSyslog is ParseSyslog with a timestamp cache (nil: none).
func parseSyslog(line string, now time.Time, cache *stampCache) (Header, bool) {
	var h Header
	if len(line) > MaxLine {
		return h, false
	}
	rest := line
	// Some syslog templates write a day below 10 unpadded ("Feb 7"):
	// read it as the padded form.
	if len(rest) >= 15 && rest[3] == ' ' && rest[5] == ' ' && rest[4] >= '1' && rest[4] <= '9' && rest[8] == ':' && rest[11] == ':' && rest[14] == ' ' {
		rest = rest[:4] + " " + rest[4:]
	}
	if len(rest) >= 16 && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' && rest[12] == ':' && rest[15] == ' ' {
		if t, ok := cache.lookup(rest, now); ok {
			h.Time = t
		} else {
			mon, ok := month(rest[:3])
			if !ok {
				return h, false
			}
			day, ok1 := twoDigits(rest[4:6], true)
			hh, ok2 := twoDigits(rest[7:9], false)
			mm, ok3 := twoDigits(rest[10:12], false)
			ss, ok4 := twoDigits(rest[13:15], false)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				return h, false
			}
			h.Time = classicTime(now, mon, day, hh, mm, ss)
			cache.store(rest, now, h.Time)
		}
		rest = rest[16:]
	} else {
		ts, after, ok := strings.Cut(rest, " ")
		if !ok || len(ts) < 19 || ts[4] != '-' || ts[10] != 'T' {
			return h, false
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return h, false
		}
		h.Time = t
		rest = after
	}
	host, rest, ok := strings.Cut(rest, " ")
	if !ok || host == "" {
		return h, false
	}
	h.Host = host
	// The tag ends at the first ": ". A colon is rare before it, so
	// finding colons (IndexByte, vectorised) beats a byte loop.
	end := -1
	for from := 0; ; {
		i := strings.IndexByte(rest[from:], ':')
		if i < 0 || from+i+1 >= len(rest) {
			break
		}
		if rest[from+i+1] == ' ' {
			end = from + i
			break
		}
		from += i + 1
	}
	if end < 0 {
		return h, false
	}
	tag, msg := rest[:end], rest[end+2:]
	prog := tag
	if i := strings.IndexByte(tag, '['); i >= 0 {
		if tag[len(tag)-1] != ']' {
			return h, false
		}
		pid, ok := decimal(tag[i+1:len(tag)-1], 10)
		if !ok {
			return h, false
		}
		prog, h.PID = tag[:i], pid
	}
	if prog == "" {
		return h, false
	}
	for i := 0; i < len(prog); i++ { // no '[': prog ends before the first
		if c := prog[i]; c == ' ' || c == ']' {
			return h, false
		}
	}
	h.Program = prog
	h.Message = msg
	return h, true
}

// le64 reads the first 8 bytes of s as a little-endian word (the compiler
// makes it one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// syslogDay caches the start of the day classic timestamps fall on.
// time.Date costs more than the rest of a header together, and a log has
// thousands of lines a day; the cache is checked per line and replaced
// when the day (or the clock's quarter-hour, which fixes the year) moves.
type syslogDay struct {
	quarter  int64 // now.Unix() / 900: the key's "now"; zone offsets are whole quarters
	loc      *time.Location
	mon      time.Month
	day      int
	midnight int64 // Unix seconds
	uniform  bool  // no zone change that day: seconds add up to wall time
}

var lastSyslogDay atomic.Pointer[syslogDay]

// classicTime returns the time of a classic syslog timestamp, which has
// no year: the current one, or last year's for a date more than two days
// ahead.
func classicTime(now time.Time, mon time.Month, day, hh, mm, ss int) time.Time {
	nowSec := now.Unix()
	loc := now.Location()
	d := lastSyslogDay.Load()
	if d == nil || d.quarter != nowSec/900 || d.loc != loc || d.mon != mon || d.day != day {
		year := now.Year()
		start := time.Date(year, mon, day, 0, 0, 0, 0, loc)
		next := time.Date(year, mon, day+1, 0, 0, 0, 0, loc)
		_, off1 := start.Zone()
		_, off2 := next.Zone()
		d = &syslogDay{quarter: nowSec / 900, loc: loc, mon: mon, day: day, midnight: start.Unix(),
			uniform: off1 == off2 && start.Day() == day && start.Hour() == 0}
		lastSyslogDay.Store(d)
	}
	sec := d.midnight + int64(hh*3600+mm*60+ss)
	if !d.uniform || hh > 23 || mm > 59 || ss > 60 || sec > nowSec+48*3600 {
		// A zone change that day, a time to normalise, or last year.
		t := time.Date(now.Year(), mon, day, hh, mm, ss, 0, loc)
		if t.After(now.Add(48 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t
	}
	return time.Unix(sec, 0).In(loc)
}
