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
	var e Event
	ok := parseSSHDLine(line, now, &e, nil)
	return e, ok
}

// parseSSHDLine is ParseSSHDLine writing into e, with a timestamp cache
// (nil: none).
func parseSSHDLine(line string, now time.Time, e *Event, stamps *stampCache) bool {
	h, ok := parseSyslog(line, now, stamps)
	if !ok || !IsSSHDProgram(h.Program) {
		return false
	}
	if !parseSSHD(h.Message, e) {
		return false
	}
	e.Time, e.PID = h.Time, h.PID
	return true
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
var keySuffix = regexp.MustCompile(`^[A-Z0-9-]+ ((SHA256|MD5):[A-Za-z0-9+/=:$]+|[0-9a-f]{2}(:[0-9a-f]{2}){15})$`)

// hostSuffix starts what follows "ssh2: " for hostbased authentication:
// the key, then the client's own user and host names (its text).
var hostSuffix = regexp.MustCompile(`^[A-Z0-9-]+ ((SHA256|MD5):[A-Za-z0-9+/=:$]+|[0-9a-f]{2}(:[0-9a-f]{2}){15}), client user "`)

// certSuffix starts what follows "ssh2: " for a certificate: type and
// fingerprint, then " ID " and the key ID, which the client chose and
// which may hold anything, a fake address clause included.
var certSuffix = regexp.MustCompile(`^[A-Z0-9-]+-CERT (SHA256|MD5):[A-Za-z0-9+/=:]+ ID `)

// sshNearCut is where a message may have been cut short. sshd writes
// control bytes in user names as octal escapes (5 bytes each after
// syslog's own escaping), so a user name of 100 bytes can grow past 500,
// and syslog daemons cut messages at their own limits (about 500 bytes
// is common; busybox's 256-byte buffer leaves a little over 200 after
// the header): the end of a message that long, where sshd writes the
// client's address, may be text the attacker placed at the cut. Such a
// message names nobody; honest ones are far shorter. spfd assumes the
// syslog daemon keeps at least this much of a message.
const sshNearCut = 200

// ParseSSHD parses an sshd message (the text after "sshd[pid]: ", or a
// journal MESSAGE). User names are chosen by the attacker and may hold
// spaces, "from" and whole fake address clauses, so the address is always
// taken at the end of the message, where sshd writes the real one; a
// message that does not end exactly as sshd ends it yields nothing.
func ParseSSHD(msg string) (Event, bool) {
	var e Event
	ok := parseSSHD(msg, &e)
	return e, ok
}

// parseSSHD is ParseSSHD writing into e (all of it, on success).
func parseSSHD(msg string, e *Event) bool {
	// Solaris and illumos put a message id after the tag.
	if rest, ok := strings.CutPrefix(msg, "[ID "); ok {
		if _, after, found := strings.Cut(rest, "] "); found {
			msg = after
		}
	}
	if msg == "" {
		return false
	}
	// The first byte picks the few messages a line can be: most lines of
	// a busy log (sessions, key exchanges) are none of them, and are
	// turned away without a string compared.
	switch msg[0] {
	case 'R', 'r':
		// Messages whose address stands before any text the client
		// chose can be read at any length; the others not near the cut.
		return parseSSHDAddressFirst(msg, e)
	case 'e':
		if strings.HasPrefix(msg, "error: Received ") {
			return parseSSHDAddressFirst(msg, e)
		}
	case 'U', 'I', 'F', 'm', 'C', 'D':
	default:
		return false
	}
	if len(msg) >= sshNearCut {
		return false
	}
	switch msg[0] {
	case 'U':
		return parseSSHDMore(msg, e)
	case 'I':
		rest, ok := strings.CutPrefix(msg, "Invalid user ")
		if !ok {
			return false
		}
		// Invalid user U from IP port N (older: without the port)
		user, addr, port, ok := cutFromAddrPort(rest, true)
		if !ok {
			return false
		}
		*e = Event{Kind: SSHInvalidUser, Addr: addr, Port: port, User: user, Invalid: true}
		return true
	case 'F':
		rest, ok := strings.CutPrefix(msg, "Failed ")
		if !ok {
			return false
		}
		return parseSSHDFailed(rest, e)
	case 'e':
		if strings.HasPrefix(msg, "error: PAM: ") {
			return parseSSHDMore(msg, e)
		}
		rest, ok := strings.CutPrefix(msg, "error: ")
		return ok && parseSSHDMaxAuth(rest, e)
	case 'm':
		return parseSSHDMaxAuth(msg, e)
	case 'D':
		if strings.HasPrefix(msg, "Disconnecting ") {
			return parseSSHDMore(msg, e)
		}
		rest, ok := strings.CutPrefix(msg, "Disconnected from ")
		return ok && parseSSHDPreauth(rest, e)
	case 'C':
		rest, ok := strings.CutPrefix(msg, "Connection closed by ")
		if !ok {
			rest, ok = strings.CutPrefix(msg, "Connection reset by ")
		}
		return ok && parseSSHDPreauth(rest, e)
	}
	return false
}

// parseSSHDFailed reads what follows "Failed ": "<method> for [invalid
// user ]U from IP port N ssh2[: KEY FP]".
func parseSSHDFailed(rest string, e *Event) bool {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || !authMethod(method) {
		return false
	}
	invalid := false
	if r, ok := strings.CutPrefix(rest, "invalid user "); ok {
		rest, invalid = r, true
	} else if r, ok := strings.CutPrefix(rest, "<invalid username> "); ok {
		rest, invalid = "<invalid username> "+r, true // Solaris
	}
	user, addr, port, ok := cutFailed(rest)
	if !ok {
		return false
	}
	*e = Event{Kind: SSHFailed, Addr: addr, Port: port, User: user, Invalid: invalid, Method: method}
	return true
}

// parseSSHDMaxAuth reads "maximum authentication attempts exceeded for
// [invalid user ]U from IP port N ssh2 [preauth]" (after "error: " in
// current versions).
func parseSSHDMaxAuth(msg string, e *Event) bool {
	rest, ok := strings.CutPrefix(msg, "maximum authentication attempts exceeded for ")
	if !ok {
		return false
	}
	invalid := false
	if r, ok := strings.CutPrefix(rest, "invalid user "); ok {
		rest, invalid = r, true
	}
	base, ok := strings.CutSuffix(rest, " ssh2 [preauth]")
	if !ok {
		return false
	}
	user, addr, port, ok := cutFromAddrPort(base, false)
	if !ok {
		return false
	}
	*e = Event{Kind: SSHMaxAuth, Addr: addr, Port: port, User: user, Invalid: invalid}
	return true
}

// parseSSHDPreauth reads what follows "Connection closed by ",
// "Connection reset by " or "Disconnected from ": "invalid|authenticating
// user U IP port N [preauth]". A bare "Connection closed by IP port N" is
// a normal scan or probe.
func parseSSHDPreauth(rest string, e *Event) bool {
	invalid := false
	switch {
	case strings.HasPrefix(rest, "invalid user "):
		rest, invalid = rest[len("invalid user "):], true
	case strings.HasPrefix(rest, "authenticating user "):
		rest = rest[len("authenticating user "):]
	default:
		return false
	}
	base, ok := strings.CutSuffix(rest, " [preauth]")
	if !ok {
		return false
	}
	user, addr, port, ok := cutAddrPort(base)
	if !ok {
		return false
	}
	*e = Event{Kind: SSHPreauth, Addr: addr, Port: port, User: user, Invalid: invalid}
	return true
}

// cutFailed splits what follows "Failed <method> for [invalid user ]":
// "U from IP port N ssh2", "... ssh2: TYPE FP", or, for a certificate,
// "... ssh2: TYPE-CERT FP ID <key id> (serial N) CA TYPE FP", where both
// the user name before and the key ID after are the attacker's. The
// clause sshd wrote is taken only when it is the one place that reads
// " from IP port N ssh2" followed by what sshd writes there; a second
// such place means one was forged, and then nobody is named.
func cutFailed(rest string) (user string, addr Addr, port int, ok bool) {
	// The common case, at a fraction of the cost: one " ssh", at the end.
	if base, end := strings.CutSuffix(rest, " ssh2"); end && !strings.Contains(base, " ssh") {
		return cutFromAddrPort(base, false)
	}
	found := 0
	for _, proto := range []string{" ssh2", " ssh1"} {
		for i := 0; ; {
			j := strings.Index(rest[i:], proto)
			if j < 0 {
				break
			}
			end := i + j
			i = end + len(proto)
			after := rest[i:]
			switch {
			case after == "":
			case strings.HasPrefix(after, ": ") && (keySuffix.MatchString(after[2:]) || certSuffix.MatchString(after[2:]) || hostSuffix.MatchString(after[2:])):
			case proto == " ssh1" && strings.HasPrefix(after, ": ruser "):
			default:
				continue
			}
			u, a, p, good := cutFromAddrPort(rest[:end], false)
			if !good {
				continue
			}
			found++
			user, addr, port = u, a, p
		}
	}
	// Old versions end without a protocol ("... port N"), or without a
	// port ("... from A"). A current sshd never ends so, so a user name
	// that could have forged the end (it holds " from ") names nobody.
	if found == 0 && strings.Count(rest, " from ") == 1 {
		return cutFromAddrPort(rest, true)
	}
	return user, addr, port, found == 1
}

// sshdDenyReasons end "User U from A not allowed because ..." (auth.c).
var sshdDenyReasons = []string{
	" not allowed because not listed in AllowUsers",
	" not allowed because listed in DenyUsers",
	" not allowed because a group is listed in DenyGroups",
	" not allowed because none of user's groups are listed in AllowGroups",
}

// parseSSHDAddressFirst reads messages whose address stands before any
// text the client chose, or that hold no such text.
func parseSSHDAddressFirst(msg string, e *Event) bool {
	// ROOT LOGIN REFUSED FROM A [port N] [[preauth]] (old OpenSSH)
	if rest, ok := strings.CutPrefix(msg, "ROOT LOGIN REFUSED FROM "); ok {
		rest = strings.TrimSuffix(rest, " [preauth]")
		a, portText, hasPort := strings.Cut(rest, " port ")
		addr, ok := parseAddr(a)
		port := 0
		if hasPort {
			port, ok = parsePortOK(portText, ok)
		}
		if !ok {
			return false
		}
		*e = Event{Kind: SSHFailed, Addr: addr, Port: port, User: "root", Method: "root-refused"}

		return true
	}
	// [error: ]Received disconnect from A[ port N]:3: <client text>: Auth
	// fail|Auth cancel [preauth]: the client's own words, after its
	// address, that its authentication failed.
	if rest, ok := strings.CutPrefix(strings.TrimPrefix(msg, "error: "), "Received disconnect from "); ok {
		// The address runs to the first space ("A port N:3: ...") or,
		// in the old form, to the colon before it ("A: 3: ..."); an IPv6
		// address holds colons of its own, so never cut it at the first.
		a, after, found := strings.Cut(rest, " ")
		if !found {
			return false
		}
		var addr Addr
		port, ok, reason := 0, false, ""
		if portText, newForm := strings.CutPrefix(after, "port "); newForm {
			portText, reason, found = strings.Cut(portText, ":")
			addr, ok = parseAddr(a)
			port, ok = parsePortOK(portText, ok && found)
		} else if a, found = strings.CutSuffix(a, ":"); found {
			addr, ok = parseAddr(a)
			reason = after
		}
		reason = strings.TrimSuffix(strings.TrimSpace(reason), " [preauth]")
		code, text, _ := strings.Cut(reason, ":")
		if !ok || strings.TrimSpace(code) != "3" ||
			!(strings.HasSuffix(text, ": Auth fail") || strings.HasSuffix(text, ": Auth cancel")) {
			return false
		}
		*e = Event{Kind: SSHFailed, Addr: addr, Port: port, Method: "client-reported"}

		return true
	}
	// refused connect from HOST (A) (tcp wrappers): HOST is a name from
	// DNS, which holds no parentheses.
	if rest, ok := strings.CutPrefix(msg, "refused connect from "); ok {
		i := strings.LastIndex(rest, " (")
		if i < 0 || !strings.HasSuffix(rest, ")") || strings.ContainsAny(rest[:i], "()") {
			return false
		}
		addr, ok := parseAddr(rest[i+2 : len(rest)-1])
		if !ok {
			return false
		}
		*e = Event{Kind: SSHFailed, Addr: addr, Method: "refused"}

		return true
	}
	return false
}

// parseSSHDMore reads the messages added after the first version: users
// not allowed, PAM failures, and a change of user name. Each has the
// client's text before the address, so the address is read at the end.
func parseSSHDMore(msg string, e *Event) bool {
	if rest, ok := strings.CutPrefix(msg, "User "); ok {
		for _, reason := range sshdDenyReasons {
			head, found := strings.CutSuffix(rest, reason)
			if !found {
				continue
			}
			i := strings.LastIndex(head, " from ")
			if i < 0 {
				return false
			}
			addr, ok := parseAddr(head[i+len(" from "):]) // a host name: nobody
			if !ok {
				return false
			}
			*e = Event{Kind: SSHFailed, Addr: addr, User: head[:i], Method: "not-allowed"}

			return true
		}
		return false
	}
	// error: PAM: Authentication failure|error for [illegal user ]U from
	// A[ via B]; error: PAM: User not known to the underlying
	// authentication module for illegal user U from A. The same attempt's
	// "Failed ..." line comes from the same sshd process: one strike.
	if rest, ok := strings.CutPrefix(msg, "error: PAM: "); ok {
		var found bool
		for _, p := range []string{"Authentication failure for ", "authentication failure for ", "Authentication error for ",
			"authentication error for ", "User not known to the underlying authentication module for "} {
			if rest, found = strings.CutPrefix(rest, p); found {
				break
			}
		}
		if !found {
			return false
		}
		invalid := false
		if r, ok := strings.CutPrefix(rest, "illegal user "); ok {
			rest, invalid = r, true
		}
		rest = strings.TrimSpace(rest)
		if i := strings.LastIndex(rest, " via "); i >= 0 {
			if _, ok := parseAddr(rest[i+len(" via "):]); ok {
				rest = rest[:i]
			}
		}
		i := strings.LastIndex(rest, " from ")
		if i < 0 {
			return false
		}
		addr, ok := parseAddr(rest[i+len(" from "):])
		if !ok {
			return false
		}
		*e = Event{Kind: SSHFailed, Addr: addr, User: rest[:i], Invalid: invalid, Method: "pam"}

		return true
	}
	// Disconnecting invalid user U A port N: Change of username or service
	// not allowed: (U,S) -> (V,T) [preauth]: both user names are the
	// client's, so the clause must be the only one of its kind.
	if rest, ok := strings.CutPrefix(msg, "Disconnecting invalid user "); ok {
		const mark = ": Change of username or service not allowed"
		if strings.Count(rest, mark) != 1 {
			return false
		}
		head, _, _ := strings.Cut(rest, mark)
		user, addr, port, ok := cutAddrPort(head)
		if !ok {
			return false
		}
		*e = Event{Kind: SSHFailed, Addr: addr, Port: port, User: user, Invalid: true, Method: "user-change"}

		return true
	}
	return false
}

// parsePortOK parses a port when ok still holds.
func parsePortOK(s string, ok bool) (int, bool) {
	if !ok {
		return 0, false
	}
	return parsePort(s)
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
