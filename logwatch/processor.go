package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/prefixset"
)

// Action says what an outcome asks for.
type Action int

// Actions.
const (
	// Note: an event worth reporting (spfctl scan), nothing to do yet.
	Note Action = iota
	// Ban: blacklist Addr for TTL under Rule.
	Ban
	// Capture: walk Domain, which local users send mail to.
	Capture
)

// Outcome is what one line led to.
type Outcome struct {
	Action Action
	Kind   Kind   // the event's kind
	Rule   string // sshd, httpd, httpd-probe, spamtrap, capture
	Addr   netip.Addr
	Domain string
	TTL    time.Duration
	Count  int
	Reason string
	// Evidence is where a capture came from (file and line), filled in
	// by the caller that read the line.
	Evidence string
}

// Processor applies one log source's rules to its lines. It is not safe
// for concurrent use: one follower feeds it.
type Processor struct {
	src       config.LogSource
	mailOpts  MailSettings
	exempt    func(netip.Addr) bool
	parser    Parser
	ssh       *SSHRules
	broad     *Tracker
	probe     *Tracker
	probes    ProbeMatcher
	trusted   *prefixset.Set
	spamtraps map[string]bool
	local     map[string]bool
	domains   map[string][]time.Time // capture: recent mail per domain
	// UseLineTime takes event times from the lines (offline scans); a
	// live follower uses the clock.
	UseLineTime bool
	// LocalNet reports the networks whose unauthenticated SMTP sessions
	// submit local users' mail (the host's own and ignore networks);
	// loopback always does.
	LocalNet func(netip.Addr) bool
}

// maxCaptureDomains bounds the domains counted for capture.
const maxCaptureDomains = 50_000

// NewProcessor returns a processor for src. exempt reports addresses that
// are never counted (whitelisted or ignored); it may be nil.
func NewProcessor(src config.LogSource, exempt func(netip.Addr) bool) *Processor {
	http, mail := httpSettings(src), MailOptions(src)
	p := &Processor{
		src:       src,
		mailOpts:  mail,
		exempt:    exempt,
		ssh:       NewSSHRules(sshSettings(src).AllowUsers),
		broad:     NewTracker(src.Threshold, src.Window, DefaultMaxTracked),
		probe:     NewTracker(http.ProbeThreshold, src.Window, DefaultMaxTracked),
		probes:    ProbeMatcher(http.Probes),
		spamtraps: make(map[string]bool),
		local:     make(map[string]bool),
		domains:   make(map[string][]time.Time),
	}
	if f, ok := FamilyOf(src.Parser); ok {
		p.parser = f.NewParser(src)
	}
	var b prefixset.Builder
	for _, n := range http.TrustProxy {
		b.Add(n)
	}
	p.trusted = b.Set()
	for _, t := range mail.Spamtraps {
		p.spamtraps[t] = true
	}
	for _, d := range mail.LocalDomains {
		p.local[d] = true
	}
	return p
}

// Parse turns a line into an event with the source's family's parser.
func (p *Processor) Parse(line string, now time.Time) (Event, bool) {
	var e Event
	ok := p.ParseInto(line, now, &e)
	return e, ok
}

// ParseInto is Parse writing into e, for callers that parse millions of
// lines into slots of their own.
func (p *Processor) ParseInto(line string, now time.Time, e *Event) bool {
	return p.parser != nil && p.parser.Line(line, now, e)
}

// TakeMailTraffic returns what a mail log said the MTA did since the last
// call (nothing for other families).
func (p *Processor) TakeMailTraffic() MailTraffic {
	if mp, ok := p.parser.(mailParser); ok {
		return mp.m.TakeTraffic()
	}
	return MailTraffic{}
}

// Line processes one line at time now.
func (p *Processor) Line(line string, now time.Time) []Outcome {
	var e Event
	if !p.ParseInto(line, now, &e) {
		return nil
	}
	return p.AppendEvent(nil, &e, now)
}

// Event applies the rules to one event.
func (p *Processor) Event(e Event, now time.Time) []Outcome { return p.AppendEvent(nil, &e, now) }

// AppendEvent applies the rules to one event and appends the outcomes to
// dst, so a busy caller can reuse one slice.
func (p *Processor) AppendEvent(dst []Outcome, e *Event, now time.Time) []Outcome {
	t := now
	if p.UseLineTime && !e.Time.IsZero() {
		t = e.Time
	}
	switch e.Kind {
	case SSHInvalidUser, SSHFailed, SSHMaxAuth, SSHPreauth:
		return p.sshEvent(dst, e, t)
	case HTTPStatus, HTTPRequest:
		return p.httpEvent(dst, e, t)
	case MailSent:
		return p.captureEvent(dst, e, t)
	case MailRecipient:
		if !p.spamtraps[e.Recipient] {
			return dst
		}
		if e.Bounce {
			// Anyone can make a third party's MTA send a bounce to a
			// trap, by forging the trap as sender: that MTA is no spammer.
			return append(dst, Outcome{Action: Note, Kind: e.Kind, Rule: "spamtrap", Addr: e.Addr, Reason: "bounce to spamtrap " + e.Recipient + " (not counted)"})
		}
		if p.exempt != nil && p.exempt(e.Addr) {
			return append(dst, Outcome{Action: Note, Kind: e.Kind, Rule: "spamtrap", Addr: e.Addr, Reason: "spamtrap " + e.Recipient + " (exempt)"})
		}
		return append(dst, Outcome{Action: Ban, Kind: e.Kind, Rule: "spamtrap", Addr: e.Addr, TTL: p.src.TTL, Count: 1, Reason: "mail to spamtrap " + e.Recipient})
	}
	return dst
}

func (p *Processor) sshEvent(dst []Outcome, e *Event, t time.Time) []Outcome {
	immediate, reason := p.ssh.Classify(e)
	if reason == "" {
		return dst // normal use
	}
	if p.exempt != nil && p.exempt(e.Addr) {
		return append(dst, Outcome{Action: Note, Kind: e.Kind, Rule: "sshd", Addr: e.Addr, Reason: reasonVariant(e, p.ssh.AllowUsers, 2)})
	}
	conn := e.Port
	if e.PID > 0 {
		conn = e.PID
	}
	// A PAM line and the "Failed ..." line of one attempt come from one
	// process: the PAM line only makes sure the connection counts once.
	added, count, fire := p.broad.AttemptOn(e.Addr, conn, e.Kind == SSHFailed && e.Method != "pam", t)
	if added == 0 && !immediate {
		return append(dst, Outcome{Action: Note, Kind: e.Kind, Rule: "sshd", Addr: e.Addr, Reason: reasonVariant(e, p.ssh.AllowUsers, 1)})
	}
	o := Outcome{Action: Note, Kind: e.Kind, Rule: "sshd", Addr: e.Addr, Count: count, Reason: reason}
	if fire || immediate {
		o.Action, o.TTL = Ban, p.src.TTL
	}
	return append(dst, o)
}

// submittedLocally reports whether a local user sent the message: from
// this host (sendmail, pickup), in an authenticated session, or in a
// session from loopback or the local networks.
func (p *Processor) submittedLocally(e *Event) bool {
	switch e.Submitted {
	case SubmittedLocally, SubmittedAuthenticated:
		return true
	case SubmittedBy:
		return e.Addr.IsLoopback() || (p.LocalNet != nil && p.LocalNet(e.Addr))
	}
	return false
}

// Client returns the address an httpd event is charged to: the logged
// client, or the real one behind a trusted proxy. It only reads what
// NewProcessor set up, so it is safe for concurrent use.
func (p *Processor) Client(e *Event) (netip.Addr, bool) {
	return ClientBehind(e, func(a netip.Addr) bool { return p.trusted.ContainsAddr(a) })
}

func (p *Processor) httpEvent(dst []Outcome, e *Event, t time.Time) []Outcome {
	client, ok := p.Client(e)
	if !ok {
		return dst
	}
	e.Addr = client
	if p.exempt != nil && p.exempt(client) {
		return dst
	}
	pat := p.probes.Match(e.Path)
	if e.Status == 400 {
		// A request the server could not parse: TLS or RDP bytes sent
		// to a plain HTTP port, an empty request line, a scanner.
		pat = "400 bad request"
	}
	if pat != "" {
		count, fire := p.probe.Strike(client, t, 1)
		o := Outcome{Action: Note, Kind: e.Kind, Rule: "httpd-probe", Addr: client, Count: count, Reason: "probe " + pat}
		if fire {
			o.Action, o.TTL = Ban, p.src.TTL
		}
		dst = append(dst, o)
	}
	if e.Kind == HTTPStatus {
		count, fire := p.broad.Strike(client, t, 1)
		o := Outcome{Action: Note, Kind: e.Kind, Rule: "httpd", Addr: client, Count: count, Reason: "status " + strconv.Itoa(e.Status)}
		if fire {
			o.Action, o.TTL = Ban, p.src.TTL
		}
		dst = append(dst, o)
	}
	return dst
}

func (p *Processor) captureEvent(dst []Outcome, e *Event, t time.Time) []Outcome {
	if !p.mailOpts.Capture {
		return dst
	}
	_, senderDomain, _ := strings.Cut(e.Sender, "@")
	if len(p.local) > 0 && !p.local[senderDomain] {
		return dst // not from a local sender (forwarded mail, say)
	}
	if !p.submittedLocally(e) {
		// Mail relayed from outside (through an alias or a forward)
		// names domains an outsider chose: it never widens the walk.
		return dst
	}
	d := e.Domain()
	if d == "" || p.local[d] {
		return dst
	}
	times, known := p.domains[d]
	if !known && len(p.domains) >= maxCaptureDomains {
		return dst
	}
	since := t.Add(-p.mailOpts.CaptureWindow)
	kept := times[:0]
	for _, x := range times {
		if !x.Before(since) {
			kept = append(kept, x)
		}
	}
	if len(kept) < p.mailOpts.CaptureThreshold {
		kept = append(kept, t)
	} else {
		kept = append(kept[1:], t)
	}
	p.domains[d] = kept
	o := Outcome{Action: Note, Kind: e.Kind, Rule: "capture", Domain: d, Count: len(kept), Reason: "mail from " + e.Sender}
	if len(kept) >= p.mailOpts.CaptureThreshold {
		o.Action = Capture
	}
	return append(dst, o)
}
