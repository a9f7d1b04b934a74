package logwatch

import (
	"regexp"
	"strings"
	"time"
)

// IsSSHDProgram reports whether a syslog program name is sshd's: sshd,
// sshd-session since OpenSSH 9.8, sshd-auth since 10.0.
func IsSSHDProgram(p string) bool {
	switch p {
	case "sshd", "sshd-session", "sshd-auth":
		return true
	}
	return false
}

// ParseSSHDLine parses one syslog line of sshd.
func ParseSSHDLine(line string, now time.Time) (Event, bool) {
	h, ok := ParseSyslog(line, now)
	if !ok || !IsSSHDProgram(h.Program) {
		return Event{}, false
	}
	e, ok := ParseSSHD(h.Message)
	e.Time = h.Time
	return e, ok
}

// authMethod reports the methods sshd names in "Failed <method> for".
func authMethod(m string) bool {
	switch m {
	case "password", "publickey", "keyboard-interactive/pam", "keyboard-interactive", "none", "hostbased", "gssapi-with-mic":
		return true
	}
	return false
}

// keySuffix is what follows "ssh2: " on publickey failures: a key type
// and fingerprint sshd writes itself, with no room for other text.
var keySuffix = regexp.MustCompile(`^[A-Z0-9-]+(-CERT)? (SHA256|MD5):[A-Za-z0-9+/=:]+$`)

// ParseSSHD parses an sshd message (the text after "sshd[pid]: ", or a
// journal MESSAGE). User names are chosen by the attacker and may hold
// spaces, "from" and whole fake address clauses, so the address is always
// taken at the end of the message, where sshd writes the real one; a
// message that does not end exactly as sshd ends it yields nothing.
func ParseSSHD(msg string) (Event, bool) {
	if len(msg) > MaxLine {
		return Event{}, false
	}
	if rest, ok := strings.CutPrefix(msg, "Invalid user "); ok {
		// Invalid user U from IP port N (older: without the port)
		user, addr, port, ok := cutFromAddrPort(rest, true)
		if !ok {
			return Event{}, false
		}
		return Event{Kind: SSHInvalidUser, Addr: addr, Port: port, User: user, Invalid: true}, true
	}
	if rest, ok := strings.CutPrefix(msg, "Failed "); ok {
		// Failed <method> for [invalid user ]U from IP port N ssh2[: KEY FP]
		method, rest, ok := strings.Cut(rest, " for ")
		if !ok || !authMethod(method) {
			return Event{}, false
		}
		invalid := false
		if r, ok := strings.CutPrefix(rest, "invalid user "); ok {
			rest, invalid = r, true
		}
		base, ok := strings.CutSuffix(rest, " ssh2")
		if !ok {
			i := strings.LastIndex(rest, " ssh2: ")
			if i < 0 || !keySuffix.MatchString(rest[i+len(" ssh2: "):]) {
				return Event{}, false
			}
			base = rest[:i]
		}
		user, addr, port, ok := cutFromAddrPort(base, false)
		if !ok {
			return Event{}, false
		}
		return Event{Kind: SSHFailed, Addr: addr, Port: port, User: user, Invalid: invalid, Method: method}, true
	}
	rest := strings.TrimPrefix(msg, "error: ")
	if rest, ok := strings.CutPrefix(rest, "maximum authentication attempts exceeded for "); ok {
		invalid := false
		if r, ok := strings.CutPrefix(rest, "invalid user "); ok {
			rest, invalid = r, true
		}
		base, ok := strings.CutSuffix(rest, " ssh2 [preauth]")
		if !ok {
			return Event{}, false
		}
		user, addr, port, ok := cutFromAddrPort(base, false)
		if !ok {
			return Event{}, false
		}
		return Event{Kind: SSHMaxAuth, Addr: addr, Port: port, User: user, Invalid: invalid}, true
	}
	for _, prefix := range []string{"Connection closed by ", "Connection reset by ", "Disconnected from "} {
		rest, ok := strings.CutPrefix(msg, prefix)
		if !ok {
			continue
		}
		// ... invalid|authenticating user U IP port N [preauth]; a bare
		// "Connection closed by IP port N" is a normal scan or probe.
		invalid := false
		switch {
		case strings.HasPrefix(rest, "invalid user "):
			rest, invalid = rest[len("invalid user "):], true
		case strings.HasPrefix(rest, "authenticating user "):
			rest = rest[len("authenticating user "):]
		default:
			return Event{}, false
		}
		base, ok := strings.CutSuffix(rest, " [preauth]")
		if !ok {
			return Event{}, false
		}
		user, addr, port, ok := cutAddrPort(base)
		if !ok {
			return Event{}, false
		}
		return Event{Kind: SSHPreauth, Addr: addr, Port: port, User: user, Invalid: invalid}, true
	}
	return Event{}, false
}

// cutFromAddrPort splits "U from IP port N" at its end. With portOptional,
// "U from IP" is accepted too (OpenSSH before 7.5).
func cutFromAddrPort(s string, portOptional bool) (user string, addr Addr, port int, ok bool) {
	if head, a, p, ok := cutAddrPort(s); ok {
		user, found := strings.CutSuffix(head, " from")
		if !found {
			return "", Addr{}, 0, false
		}
		return user, a, p, true
	}
	if !portOptional {
		return "", Addr{}, 0, false
	}
	i := strings.LastIndex(s, " from ")
	if i < 0 {
		return "", Addr{}, 0, false
	}
	a, ok := parseAddr(s[i+len(" from "):])
	if !ok {
		return "", Addr{}, 0, false
	}
	return s[:i], a, 0, true
}

// cutAddrPort splits "HEAD IP port N" at its end.
func cutAddrPort(s string) (head string, addr Addr, port int, ok bool) {
	// The port is the run of digits at the end, after " port ".
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	port, ok = parsePort(s[i:])
	if !ok || !strings.HasSuffix(s[:i], " port ") {
		return "", Addr{}, 0, false
	}
	s = s[:i-len(" port ")]
	j := strings.LastIndexByte(s, ' ')
	if j < 0 {
		return "", Addr{}, 0, false
	}
	addr, ok = parseAddr(s[j+1:])
	if !ok {
		return "", Addr{}, 0, false
	}
	return s[:j], addr, port, true
}
