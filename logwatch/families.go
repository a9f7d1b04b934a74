package logwatch

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/internal/syntax"
)

// A Family is one kind of log: its name and options (registered with the
// configuration parser), the parser that turns its lines into events, and
// how spfctl scan recognises its lines. The rules apply by event kind
// (processor.go). Adding a family is one value in families.
type Family struct {
	config.LogFamily
	// NewParser returns a parser for one source: stateful parsers (mail,
	// which joins lines by queue id) get their own per source.
	NewParser func(src config.LogSource) Parser
	// Program says whether a syslog program name writes this family's
	// lines; Headerless whether lines without a syslog header (access
	// logs) are this family's. spfctl scan -t auto uses them.
	Program    func(name string) bool
	Headerless bool
	// Joins: the parser joins lines (by session or queue id), so one
	// parser must see all of a log's lines in order.
	Joins bool
}

// Parser turns a log line, or a journal entry, into an event.
type Parser interface {
	// Line fills in e from a line; on false, e is undefined. It writes
	// into e, not a returned copy: an Event is a few hundred bytes, and
	// a busy log has millions of lines.
	Line(line string, now time.Time, e *Event) bool
	// Journal reads an entry the journal gave, trusting only its
	// kernel-supplied fields (_COMM, _SYSTEMD_UNIT) for the program.
	Journal(e JournalEntry, now time.Time) (Event, bool)
}

// SSHSettings are the sshd family's options.
type SSHSettings struct {
	// AllowUsers may log in; a failure for anyone else counts at once.
	AllowUsers []string
}

// HTTPSettings are the httpd family's options.
type HTTPSettings struct {
	// Probes are the narrow rule's path patterns; ProbeThreshold its
	// threshold.
	Probes         []string
	ProbeThreshold int
	// TrustProxy are proxies whose X-Forwarded-For is believed.
	TrustProxy []netip.Prefix
}

// MailSettings are the maillog family's options.
type MailSettings struct {
	// Capture learns the domains local users send to.
	Capture          bool
	CaptureThreshold int
	CaptureWindow    time.Duration
	CaptureExpire    time.Duration
	LocalDomains     []string // senders that count as local; empty: any
	// Spamtraps are addresses that only spammers write to.
	Spamtraps []string
}

// DefaultProbes are the narrow httpd rule's patterns when none are given:
// paths no legitimate visitor of a mail host asks for.
var DefaultProbes = []string{"/wp-admin", "/wp-login.php", "/xmlrpc.php", "phpmyadmin", "mysql-admin",
	"/tmunblock.cgi", "/.env", "/.git/", "/cgi-bin/luci", "/boaform/", "/hnap1"}

// families are the log families spfd reads.
var families = []Family{
	{
		LogFamily: config.LogFamily{
			Name: "sshd", Threshold: 3, Window: time.Hour,
			Options:  []string{"allow-users"},
			Settings: func() any { return SSHSettings{} },
			Option: func(v any, opt string, a *config.Args) (any, error) {
				s := v.(SSHSettings)
				var err error
				s.AllowUsers, err = a.Values("a user name")
				return s, err
			},
		},
		NewParser: func(config.LogSource) Parser { return &sshdParser{} },
		Program:   IsSSHDProgram,
	},
	{
		LogFamily: config.LogFamily{
			Name: "httpd", Threshold: 20, Window: 10 * time.Minute,
			Options:  []string{"probes", "probe-threshold", "trust-proxy"},
			Settings: func() any { return HTTPSettings{Probes: DefaultProbes, ProbeThreshold: 1} },
			Option:   httpOption,
		},
		NewParser:  func(config.LogSource) Parser { return httpdParser{} },
		Headerless: true,
	},
	{
		LogFamily: config.LogFamily{
			Name: "maillog", Threshold: 1, Window: time.Hour,
			Options: []string{"capture", "capture-threshold", "capture-expire", "local-domains", "spamtraps"},
			Settings: func() any {
				return MailSettings{CaptureThreshold: 1, CaptureWindow: 30 * 24 * time.Hour, CaptureExpire: 30 * 24 * time.Hour}
			},
			Option: mailOption,
		},
		NewParser: func(config.LogSource) Parser { return mailParser{NewMailParser()} },
		Program:   func(p string) bool { return p == "smtpd" || strings.HasPrefix(p, "postfix") },
		Joins:     true,
	},
}

func init() {
	for _, f := range families {
		config.RegisterLogFamily(f.LogFamily)
	}
}

// Families returns the log families, in a fixed order.
func Families() []Family { return families }

// FamilyOf returns the family named name.
func FamilyOf(name string) (Family, bool) {
	for _, f := range families {
		if f.Name == name {
			return f, true
		}
	}
	return Family{}, false
}

func httpOption(v any, opt string, a *config.Args) (any, error) {
	s := v.(HTTPSettings)
	var err error
	switch opt {
	case "probes":
		s.Probes, err = a.Values("a path pattern")
	case "probe-threshold":
		s.ProbeThreshold, err = a.Number("probe-threshold", 1, 100000)
	case "trust-proxy":
		var vals []string
		if vals, err = a.Values("a proxy network"); err == nil {
			s.TrustProxy = nil
			for _, v := range vals {
				p, perr := syntax.ParsePrefix(v)
				if perr != nil {
					return s, perr
				}
				s.TrustProxy = append(s.TrustProxy, p)
			}
		}
	}
	return s, err
}

func mailOption(v any, opt string, a *config.Args) (any, error) {
	s := v.(MailSettings)
	var err error
	switch opt {
	case "capture":
		s.Capture, err = a.YesNo()
	case "capture-threshold":
		if s.CaptureThreshold, err = a.Number("capture-threshold", 1, 100000); err == nil {
			err = a.Keyword("within")
		}
		if err == nil {
			s.CaptureWindow, err = a.Duration()
		}
	case "capture-expire":
		s.CaptureExpire, err = a.Duration()
	case "local-domains":
		var vals []string
		if vals, err = a.Values("a domain"); err == nil {
			for _, v := range vals {
				d := syntax.NormalizeDomain(v)
				if derr := syntax.ValidateDomain(d); derr != nil {
					return s, derr
				}
				s.LocalDomains = append(s.LocalDomains, d)
			}
		}
	case "spamtraps":
		var vals []string
		if vals, err = a.Values("a mail address"); err == nil {
			for _, v := range vals {
				if !strings.Contains(v, "@") || strings.ContainsAny(v, " <>") {
					return s, fmt.Errorf("invalid spamtrap address %q", v)
				}
				s.Spamtraps = append(s.Spamtraps, strings.ToLower(v))
			}
		}
	}
	return s, err
}

// Settings of the source's family, at their defaults where the source
// has none (a source built by hand in a test or by spfctl scan).
func sshSettings(src config.LogSource) SSHSettings {
	s, _ := src.Settings.(SSHSettings)
	return s
}

func httpSettings(src config.LogSource) HTTPSettings {
	if s, ok := src.Settings.(HTTPSettings); ok {
		return s
	}
	return HTTPSettings{Probes: DefaultProbes, ProbeThreshold: 1}
}

// MailOptions returns a maillog source's settings (zero for others).
func MailOptions(src config.LogSource) MailSettings {
	s, _ := src.Settings.(MailSettings)
	return s
}

// sshdParser keeps the last timestamp it read, so one goroutine uses it.
type sshdParser struct{ stamps stampCache }

func (p *sshdParser) Line(line string, now time.Time, e *Event) bool {
	return parseSSHDLine(line, now, e, &p.stamps)
}

func (*sshdParser) Journal(e JournalEntry, _ time.Time) (Event, bool) {
	if !IsSSHDProgram(e.Comm) {
		return Event{}, false
	}
	ev, ok := ParseSSHD(e.Message)
	ev.PID = e.PID
	return ev, ok
}

type httpdParser struct{}

func (httpdParser) Line(line string, _ time.Time, e *Event) bool {
	var ok bool
	*e, ok = ParseHTTPD(line)
	return ok
}

func (httpdParser) Journal(e JournalEntry, _ time.Time) (Event, bool) { return ParseHTTPD(e.Message) }

type mailParser struct{ m *MailParser }

func (p mailParser) Line(line string, now time.Time, e *Event) bool {
	var ok bool
	*e, ok = p.m.Parse(line, now)
	return ok
}

func (p mailParser) Journal(e JournalEntry, now time.Time) (Event, bool) {
	prog := e.Comm
	if strings.HasPrefix(e.Unit, "postfix") {
		prog = "postfix/" + e.Comm
	}
	// Rebuild a syslog line for the parser's joins.
	line := fmt.Sprintf("%s journal %s[0]: %s", e.Time.UTC().Format(time.RFC3339Nano), prog, e.Message)
	return p.m.Parse(line, now)
}
