package logwatch

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// MailParser reads OpenSMTPD and Postfix logs. Outbound deliveries and
// inbound recipients are spread over several lines joined by a session or
// queue id; the joins are held in bounded tables, so a flood of sessions
// that never finish cannot exhaust memory.
type MailParser struct {
	sessions *boundedMap // OpenSMTPD session id or Postfix queue id -> client address
	senders  *boundedMap // Postfix queue id -> envelope sender
	// origins: how a message was submitted (OpenSMTPD message id or
	// Postfix queue id -> "local", "auth" or the client's address);
	// authed: OpenSMTPD sessions that authenticated.
	origins *boundedMap
	authed  *boundedMap
	// traffic counts what the MTA did since the last TakeTraffic.
	traffic MailTraffic
}

// MailTraffic is what a mail log says the MTA did: SMTP connections it
// accepted from clients, and messages it delivered (locally or on to
// another server). spfd compares them with what its lists stopped.
type MailTraffic struct {
	Connections int
	Deliveries  int
}

// TakeTraffic returns the traffic counted since the last call.
func (m *MailParser) TakeTraffic() MailTraffic {
	t := m.traffic
	m.traffic = MailTraffic{}
	return t
}

// maxJoins bounds each join table.
const maxJoins = 20_000

// NewMailParser returns a parser with empty join tables.
func NewMailParser() *MailParser {
	return &MailParser{sessions: newBoundedMap(maxJoins), senders: newBoundedMap(maxJoins),
		origins: newBoundedMap(maxJoins), authed: newBoundedMap(maxJoins)}
}

// Parse reads one syslog line of smtpd or postfix.
func (m *MailParser) Parse(line string, now time.Time) (Event, bool) {
	h, ok := ParseSyslog(line, now)
	if !ok {
		return Event{}, false
	}
	var e Event
	switch {
	case h.Program == "smtpd":
		e, ok = m.parseSMTPD(h.Message)
	case strings.HasPrefix(h.Program, "postfix/") || strings.HasPrefix(h.Program, "postfix-"):
		_, daemon, _ := strings.Cut(h.Program, "/")
		e, ok = m.parsePostfix(daemon, h.Message)
	default:
		return Event{}, false
	}
	e.Time = h.Time
	return e, ok
}

// kv parses "key=value key="quoted value" key=<addr>" pairs. A key given
// twice makes the line ambiguous: nothing is returned.
func kv(s string) (map[string]string, bool) {
	out := make(map[string]string)
	for s != "" {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexAny(s, " ,")
		if eq <= 0 || (sp >= 0 && sp < eq) {
			// A bare word: skip it.
			if sp < 0 {
				break
			}
			s = s[sp:]
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		switch {
		case strings.HasPrefix(s, `"`):
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, false
			}
			val, s = s[1:end+1], s[end+2:]
		case strings.HasPrefix(s, "<"):
			end := strings.IndexByte(s, '>')
			if end < 0 {
				return nil, false
			}
			val, s = s[1:end], s[end+1:]
		default:
			end := strings.IndexAny(s, " ,")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if _, dup := out[key]; dup {
			return nil, false
		}
		out[key] = val
	}
	return out, true
}

// isLoopbackRelay recognises a content filter hop: relay=127.0.0.1[...],
// "localhost [::1]", and the like.
func isLoopbackRelay(relay string) bool {
	i := strings.LastIndexByte(relay, '[')
	j := strings.LastIndexByte(relay, ']')
	if i < 0 || j < i {
		return false
	}
	a, ok := parseAddr(relay[i+1 : j])
	return ok && a.IsLoopback()
}

func validMailbox(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " <>\"") && !strings.Contains(domain, "@")
}

func (m *MailParser) parseSMTPD(msg string) (Event, bool) {
	// Older OpenSMTPD: "relay: Ok for <evpid>: session=..., from=<s>, to=<r>, ..."
	if rest, ok := strings.CutPrefix(msg, "relay: Ok for "); ok {
		_, pairs, ok := strings.Cut(rest, ": ")
		if !ok {
			return Event{}, false
		}
		return m.smtpdDelivery(pairs, true)
	}
	sid, rest, ok := strings.Cut(msg, " ")
	if !ok || !isHex(sid) {
		return Event{}, false
	}
	switch {
	case strings.HasPrefix(rest, "mta delivery "):
		// 6.4+: mta delivery evpid=... from=<s> to=<r> ... result="Ok"
		return m.smtpdDelivery(rest[len("mta delivery "):], false)
	case strings.HasPrefix(rest, "mda delivery "):
		// A local delivery: counted, nothing to capture.
		if f, ok := kv(rest[len("mda delivery "):]); ok && f["result"] == "Ok" {
			m.traffic.Deliveries++
		}
		return Event{}, false
	case strings.HasPrefix(rest, "event=delivery "):
		return m.smtpdDelivery(rest[len("event=delivery "):], false)
	case strings.HasPrefix(rest, "smtp connected "):
		f, ok := kv(rest[len("smtp connected "):])
		if !ok {
			return Event{}, false
		}
		if a, ok := parseAddr(f["address"]); ok {
			m.sessions.put(sid, a.String())
			m.traffic.Connections++
		} else if f["address"] == "local" {
			m.sessions.put(sid, "local") // the enqueuer's socket: sendmail(8)
		}
		return Event{}, false
	case strings.HasPrefix(rest, "smtp disconnected"):
		m.sessions.del(sid)
		m.authed.del(sid)
		return Event{}, false
	case strings.HasPrefix(rest, "smtp authentication "):
		if f, ok := kv(rest[len("smtp authentication "):]); ok && f["result"] == "ok" {
			m.authed.put(sid, "1")
		}
		return Event{}, false
	case strings.HasPrefix(rest, "smtp envelope "):
		// An accepted recipient: of a remote client (spamtraps), and how
		// the message was submitted (capture of its deliveries).
		f, ok := kv(rest[len("smtp envelope "):])
		if !ok || !validMailbox(f["to"]) {
			return Event{}, false
		}
		if evpid := f["evpid"]; len(evpid) == 16 && isHex(evpid) {
			m.noteOrigin(evpid[:8], sid)
		}
		if a, _ := m.sessions.get(sid); a == "local" {
			return Event{}, false
		}
		e, ok := m.inbound(sid, f["from"], f["to"])
		_, hasFrom := f["from"]
		e.Bounce = hasFrom && f["from"] == ""
		return e, ok
	case strings.HasPrefix(rest, "smtp failed-command "):
		// A refused RCPT TO names no sender (OpenSMTPD does not log MAIL
		// FROM): a forged bounce, sent to a trap through a third party's
		// MTA, looks just like spam. Traps must be accepted addresses,
		// whose envelope line gives the sender.
		return Event{}, false
	}
	return Event{}, false
}

// noteOrigin records how the message id was submitted, from the session.
func (m *MailParser) noteOrigin(msgid, sid string) {
	a, ok := m.sessions.get(sid)
	switch {
	case !ok:
	case a == "local":
		m.origins.put(msgid, "local")
	case m.authed.has(sid):
		m.origins.put(msgid, "auth")
	default:
		m.origins.put(msgid, a)
	}
}

// submission says how the message id (or Postfix queue id) came in.
func (m *MailParser) submission(id string) (Submission, netip.Addr) {
	o, ok := m.origins.get(id)
	switch {
	case !ok:
		return SubmittedUnknown, netip.Addr{}
	case o == "local":
		return SubmittedLocally, netip.Addr{}
	case o == "auth":
		return SubmittedAuthenticated, netip.Addr{}
	}
	a, ok := parseAddr(o)
	if !ok {
		return SubmittedUnknown, netip.Addr{}
	}
	return SubmittedBy, a
}

func (m *MailParser) inbound(sid, from, to string) (Event, bool) {
	a, ok := m.sessions.get(sid)
	if !ok {
		return Event{}, false
	}
	addr, ok := parseAddr(a)
	if !ok {
		return Event{}, false
	}
	return Event{Kind: MailRecipient, Addr: addr, Sender: from, Recipient: strings.ToLower(to)}, true
}

// smtpdDelivery reads the pairs of a delivery line: a remote delivery that
// succeeded, from a real sender, to a remote relay that is not a local
// content filter.
func (m *MailParser) smtpdDelivery(pairs string, old bool) (Event, bool) {
	f, ok := kv(pairs)
	if !ok {
		return Event{}, false
	}
	if old {
		if !strings.HasPrefix(f["stat"], "Sent") {
			return Event{}, false
		}
	} else if f["result"] != "Ok" {
		return Event{}, false
	}
	m.traffic.Deliveries++
	from, to, relay := f["from"], f["to"], f["relay"]
	if relay == "" || isLoopbackRelay(relay) || !validMailbox(from) || !validMailbox(to) {
		return Event{}, false
	}
	e := Event{Kind: MailSent, Sender: strings.ToLower(from), Recipient: strings.ToLower(to)}
	// The envelope id's first half is the message id the smtp session
	// logged with its envelope.
	if evpid := f["evpid"]; len(evpid) == 16 && isHex(evpid) {
		e.Submitted, e.Addr = m.submission(evpid[:8])
	}
	return e, true
}

func (m *MailParser) parsePostfix(daemon, msg string) (Event, bool) {
	if rest, ok := strings.CutPrefix(msg, "NOQUEUE: reject: RCPT from "); ok {
		// NOQUEUE: reject: RCPT from host[IP]: 550 ...; from=<s> to=<r> proto=...
		a, after, ok := bracketAddr(rest)
		if !ok {
			return Event{}, false
		}
		i := strings.LastIndex(after, "; from=<")
		if i < 0 {
			return Event{}, false
		}
		f, ok := kv(after[i+2:])
		if !ok || !validMailbox(f["to"]) {
			return Event{}, false
		}
		_, hasFrom := f["from"]
		return Event{Kind: MailRecipient, Addr: a, Sender: f["from"], Recipient: strings.ToLower(f["to"]),
			Bounce: hasFrom && f["from"] == ""}, true
	}
	if rest, ok := strings.CutPrefix(msg, "connect from "); ok && (daemon == "smtpd" || strings.HasSuffix(daemon, "/smtpd")) {
		if _, _, ok := bracketAddr(rest); ok {
			m.traffic.Connections++
		}
		return Event{}, false
	}
	qid, rest, ok := strings.Cut(msg, ": ")
	if !ok || !isQueueID(qid) {
		return Event{}, false
	}
	switch {
	case (daemon == "smtpd" || strings.HasSuffix(daemon, "/smtpd")) && strings.HasPrefix(rest, "client="):
		// client=host[ip][, sasl_method=M, sasl_username=U]
		a, after, ok := bracketAddr(rest[len("client="):])
		if ok {
			m.sessions.put(qid, a.String())
			m.origins.put(qid, a.String())
			if f, ok := kv(after); ok && f["sasl_username"] != "" {
				m.origins.put(qid, "auth")
			}
		}
		return Event{}, false
	case daemon == "pickup" && strings.HasPrefix(rest, "uid="):
		// sendmail(1) through the maildrop: a local user's own mail.
		m.origins.put(qid, "local")
		return Event{}, false
	case daemon == "qmgr" && strings.HasPrefix(rest, "from=<"):
		f, ok := kv(rest)
		if ok {
			m.senders.put(qid, f["from"])
		}
		return Event{}, false
	case daemon == "qmgr" && rest == "removed":
		m.senders.del(qid)
		m.sessions.del(qid)
		m.origins.del(qid)
		return Event{}, false
	case strings.HasPrefix(rest, "to=<"):
		// The remote server's reply in parentheses is its own text.
		if i := strings.Index(rest, " ("); i >= 0 {
			rest = rest[:i]
		}
		f, ok := kv(rest)
		if !ok || !validMailbox(f["to"]) {
			return Event{}, false
		}
		status, _, _ := strings.Cut(f["status"], " ")
		if status == "sent" {
			m.traffic.Deliveries++
		}
		if daemon == "smtp" {
			from, known := m.senders.get(qid)
			relay := f["relay"]
			if status != "sent" || !known || !validMailbox(from) || relay == "" || relay == "none" || isLoopbackRelay(relay) {
				return Event{}, false
			}
			e := Event{Kind: MailSent, Sender: strings.ToLower(from), Recipient: strings.ToLower(f["to"])}
			e.Submitted, e.Addr = m.submission(qid)
			return e, true
		}
		// Local delivery (local, virtual, lmtp, pipe) of mail a remote
		// client handed in.
		from, known := m.senders.get(qid)
		e, ok := m.inbound(qid, from, f["to"])
		e.Bounce = known && from == ""
		return e, ok
	}
	return Event{}, false
}

// bracketAddr reads "host[IP]" and returns the address and what follows,
// which must be the end of the line, ":" or ",". The host is a name
// Postfix checked (letters, digits, dots, dashes) or "unknown"; a line
// where it holds brackets is not Postfix's own, and names nobody.
func bracketAddr(s string) (Addr, string, bool) {
	i := strings.IndexByte(s, '[')
	if i < 0 || strings.ContainsAny(s[:i], "] ") {
		return Addr{}, "", false
	}
	j := strings.IndexByte(s[i:], ']')
	if j < 0 {
		return Addr{}, "", false
	}
	j += i
	after := s[j+1:]
	if after != "" && after[0] != ':' && after[0] != ',' {
		return Addr{}, "", false
	}
	a, ok := parseAddr(strings.TrimPrefix(s[i+1:j], "IPv6:"))
	return a, after, ok
}

func isHex(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isQueueID accepts Postfix queue ids: short hex (ABC123DEF) or long
// (4WxYz5Abc6z1).
func isQueueID(s string) bool {
	if len(s) < 5 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// boundedMap is a string map that forgets its oldest keys past a limit.
type boundedMap struct {
	limit int
	m     map[string]string
	order []string // insertion order, oldest first; may hold deleted keys
}

func newBoundedMap(limit int) *boundedMap {
	return &boundedMap{limit: limit, m: make(map[string]string)}
}

func (b *boundedMap) put(k, v string) {
	if _, ok := b.m[k]; !ok {
		b.order = append(b.order, k)
	}
	b.m[k] = v
	for len(b.m) > b.limit && len(b.order) > 0 {
		delete(b.m, b.order[0])
		b.order = b.order[1:]
	}
	if len(b.order) > 2*b.limit {
		// Drop deleted keys and all but the newest copy of each live one.
		seen := make(map[string]bool, len(b.m))
		var live []string
		for i := len(b.order) - 1; i >= 0; i-- {
			k := b.order[i]
			if _, ok := b.m[k]; ok && !seen[k] {
				seen[k] = true
				live = append(live, k)
			}
		}
		slices.Reverse(live)
		b.order = live
	}
}

func (b *boundedMap) get(k string) (string, bool) {
	v, ok := b.m[k]
	return v, ok
}

func (b *boundedMap) del(k string) { delete(b.m, k) }

func (b *boundedMap) has(k string) bool {
	_, ok := b.m[k]
	return ok
}

func (b *boundedMap) len() int { return len(b.m) }
