// Package logwatch follows log files and turns their lines into events:
// one pure parser per log family (sshd, httpd, mail), a follower that
// survives rotation, and the journal reader.
package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind names what an event says happened.
type Kind string

// Event kinds.
const (
	SSHInvalidUser Kind = "ssh-invalid-user" // Invalid user U from IP
	SSHFailed      Kind = "ssh-failed"       // Failed <method> for U from IP
	SSHMaxAuth     Kind = "ssh-max-auth"     // maximum authentication attempts exceeded
	SSHPreauth     Kind = "ssh-preauth"      // invalid/authenticating user went away before auth
	HTTPStatus     Kind = "http-status"      // a request answered 403 or 404
	HTTPRequest    Kind = "http-request"     // any other request (probe paths are matched on it)
	MailSent       Kind = "mail-sent"        // outbound mail delivered to a remote domain
	MailRecipient  Kind = "mail-recipient"   // a remote client tried to deliver to an address
)

// Event is what one log line says, with the client address taken from its
// fixed position in the line.
type Event struct {
	Kind Kind
	Time time.Time // from the line; zero when the line has none
	Addr netip.Addr
	Port int // sshd: the client port, which identifies the connection

	User    string // sshd: the user name tried (attacker-chosen)
	Invalid bool   // sshd: the user does not exist
	Method  string // sshd: password, publickey, keyboard-interactive/pam, ...

	Status    int    // httpd: the response status
	Path      string // httpd: the request path
	Forwarded string // httpd: X-Forwarded-For, if logged

	Sender    string // mail: envelope sender
	Recipient string // mail: envelope recipient
}

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
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// parsePort accepts a decimal port 1-65535 without leading zeros.
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
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
	var h Header
	if len(line) > MaxLine {
		return h, false
	}
	rest := line
	if len(rest) >= 16 && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' && rest[12] == ':' && rest[15] == ' ' {
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
		h.Time = time.Date(now.Year(), mon, day, hh, mm, ss, 0, now.Location())
		if h.Time.After(now.Add(48 * time.Hour)) {
			h.Time = h.Time.AddDate(-1, 0, 0)
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
	tag, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return h, false
	}
	prog := tag
	if i := strings.IndexByte(tag, '['); i >= 0 {
		if !strings.HasSuffix(tag, "]") {
			return h, false
		}
		pid, err := strconv.Atoi(tag[i+1 : len(tag)-1])
		if err != nil || pid < 0 {
			return h, false
		}
		prog, h.PID = tag[:i], pid
	}
	if prog == "" || strings.ContainsAny(prog, " []") {
		return h, false
	}
	h.Program = prog
	h.Message = msg
	return h, true
}
