package logwatch

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

func TestTrackerWindow(t *testing.T) {
	tr := NewTracker(3, time.Hour, 10)
	a := addr("203.0.113.5")
	t0 := testNow
	if _, fire := tr.Strike(a, t0, 1); fire {
		t.Fatal("fired at 1")
	}
	if _, fire := tr.Strike(a, t0.Add(30*time.Minute), 1); fire {
		t.Fatal("fired at 2")
	}
	// The first strike leaves the window before the third arrives.
	if n, fire := tr.Strike(a, t0.Add(61*time.Minute), 1); fire || n != 2 {
		t.Fatalf("count %d fire %v after the window slid", n, fire)
	}
	if n, fire := tr.Strike(a, t0.Add(62*time.Minute), 1); !fire || n != 3 {
		t.Fatalf("count %d fire %v, want 3 true", n, fire)
	}
}

func TestTrackerBounded(t *testing.T) {
	tr := NewTracker(3, time.Hour, 1000)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tr.Strike(a, testNow, 1)
	}
	if tr.Len() != 1000 {
		t.Fatalf("tracking %d addresses, cap 1000", tr.Len())
	}
	// Memory per address is bounded too: many strikes keep threshold slots.
	a := addr("203.0.113.5")
	for range 1000 {
		tr.Strike(a, testNow, 1)
	}
	if got := len(tr.lookup(a).times); got != 3 {
		t.Fatalf("%d timestamps kept, want 3", got)
	}
}

func sshLines(user, ip string, port int, n int) []string {
	var out []string
	// One sshd process per connection, as sshd forks one.
	out = append(out, fmt.Sprintf("Nov 27 20:00:00 h sshd[%d]: Invalid user %s from %s port %d", port, user, ip, port))
	for range n {
		out = append(out, fmt.Sprintf("Nov 27 20:00:01 h sshd[%d]: Failed password for invalid user %s from %s port %d ssh2", port, user, ip, port))
	}
	out = append(out, fmt.Sprintf("Nov 27 20:00:02 h sshd[%d]: Connection closed by invalid user %s %s port %d [preauth]", port, user, ip, port))
	return out
}

func run(p *Processor, lines []string) (bans []Outcome, notes int) {
	for _, l := range lines {
		for _, o := range p.Line(l, testNow) {
			if o.Action == Ban {
				bans = append(bans, o)
			} else {
				notes++
			}
		}
	}
	return bans, notes
}

func sshSource() config.LogSource {
	return config.LogSource{Parser: "sshd", Threshold: 3, Window: time.Hour, TTL: 24 * time.Hour}
}

func TestSSHOneStrikePerAttempt(t *testing.T) {
	p := NewProcessor(sshSource(), nil)
	// Two connections, each with one guessed password and four lines:
	// two strikes, no ban.
	var lines []string
	lines = append(lines, sshLines("admin", "203.0.113.5", 4001, 1)...)
	lines = append(lines, sshLines("admin", "203.0.113.5", 4002, 1)...)
	if bans, _ := run(p, lines); len(bans) != 0 {
		t.Fatalf("banned after two attempts: %+v", bans)
	}
	// A third connection is the third attempt.
	bans, _ := run(p, sshLines("oracle", "203.0.113.5", 4003, 1))
	if len(bans) == 0 || bans[0].Addr != addr("203.0.113.5") || bans[0].TTL != 24*time.Hour || bans[0].Count != 3 {
		t.Fatalf("no ban at the third attempt: %+v", bans)
	}
	// Three passwords on one connection are three attempts.
	p = NewProcessor(sshSource(), nil)
	if bans, _ := run(p, sshLines("root", "198.51.100.9", 5000, 3)); len(bans) == 0 {
		t.Fatal("three passwords in one connection did not ban")
	}
}

func TestSSHNormalUseAndAllowUsers(t *testing.T) {
	p := NewProcessor(sshSource(), nil)
	lines := []string{
		"Nov 27 20:00:00 h sshd[1]: Failed publickey for alice from 192.0.2.7 port 50000 ssh2: RSA SHA256:aaa",
		"Nov 27 20:00:00 h sshd[1]: Failed publickey for alice from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:bbb",
		"Nov 27 20:00:00 h sshd[1]: Failed publickey for alice from 192.0.2.7 port 50000 ssh2: ECDSA SHA256:ccc",
		"Nov 27 20:00:01 h sshd[1]: Accepted publickey for alice from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:ddd",
		"Nov 27 20:00:02 h sshd[1]: Connection closed by 192.0.2.7 port 50001 [preauth]",
		"Nov 27 20:00:03 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7 user=alice",
	}
	if bans, notes := run(p, lines); len(bans)+notes != 0 {
		t.Fatalf("normal use counted: %d bans, %d notes", len(bans), notes)
	}
	src := sshSource()
	src.Settings = SSHSettings{AllowUsers: []string{"alice"}}
	p = NewProcessor(src, nil)
	bans, _ := run(p, []string{"Nov 27 20:00:00 h sshd[1]: Failed password for bob from 192.0.2.8 port 1234 ssh2"})
	if len(bans) != 1 || bans[0].Reason != "ssh-failed (user not allowed)" {
		t.Fatalf("a user outside allow-users did not ban at once: %+v", bans)
	}
	if bans, _ := run(p, []string{"Nov 27 20:00:00 h sshd[1]: Failed password for alice from 192.0.2.9 port 1234 ssh2"}); len(bans) != 0 {
		t.Fatal("an allowed user's mistyped password banned at once")
	}
}

func TestExemptAddressesNeverCount(t *testing.T) {
	exempt := func(a netip.Addr) bool { return a == addr("192.0.2.1") }
	p := NewProcessor(sshSource(), exempt)
	bans, notes := run(p, sshLines("admin", "192.0.2.1", 1, 10))
	if len(bans) != 0 || notes == 0 {
		t.Fatalf("exempt address: %d bans, %d notes", len(bans), notes)
	}
}

func TestHTTPRules(t *testing.T) {
	src := config.LogSource{Parser: "httpd", Threshold: 3, Window: 10 * time.Minute, TTL: time.Hour,
		Settings: HTTPSettings{Probes: DefaultProbes, ProbeThreshold: 1, TrustProxy: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}
	p := NewProcessor(src, nil)
	line := func(client, path string, status int, xff string) string {
		return fmt.Sprintf(`www %s - - [27/Nov/2026:20:06:52 +0000] "GET %s HTTP/1.1" %d 0 "" "UA" %s 443`, client, path, status, xff)
	}
	// One probe bans at once (the narrow rule).
	bans, _ := run(p, []string{line("203.0.113.5", "/%77p-admin/install.php", 404, "-")})
	if len(bans) != 1 || bans[0].Rule != "httpd-probe" {
		t.Fatalf("probe: %+v", bans)
	}
	// 404s count toward the broad rule: the third bans.
	bans, _ = run(p, []string{line("198.51.100.1", "/a", 404, "-"), line("198.51.100.1", "/b", 404, "-"), line("198.51.100.1", "/c", 200, "-")})
	if len(bans) != 0 {
		t.Fatalf("banned early: %+v", bans)
	}
	bans, _ = run(p, []string{line("198.51.100.1", "/d", 403, "-")})
	if len(bans) != 1 || bans[0].Rule != "httpd" {
		t.Fatalf("broad rule: %+v", bans)
	}
	// Behind a trusted proxy the client comes from X-Forwarded-For; an
	// untrusted peer's X-Forwarded-For is ignored.
	bans, _ = run(p, []string{line("127.0.0.1", "/phpMyAdmin/", 404, "203.0.113.77")})
	if len(bans) != 1 || bans[0].Addr != addr("203.0.113.77") {
		t.Fatalf("trusted proxy: %+v", bans)
	}
	bans, _ = run(p, []string{line("192.0.2.50", "/phpMyAdmin/", 404, "203.0.113.88")})
	if len(bans) != 1 || bans[0].Addr != addr("192.0.2.50") {
		t.Fatalf("untrusted forwarded header: %+v", bans)
	}
}

func TestMailRules(t *testing.T) {
	src := config.LogSource{Parser: "maillog", TTL: time.Hour, Settings: MailSettings{Capture: true, CaptureThreshold: 2, CaptureWindow: 24 * time.Hour,
		LocalDomains: []string{"example.org"}, Spamtraps: []string{"trap@example.org"}}}
	p := NewProcessor(src, nil)
	n := 0
	// sent is a local user's mail, submitted over the enqueuer's socket
	// (OpenSMTPD logs address=local), then delivered out.
	sent := func(from, to string) []string {
		n++
		return []string{
			fmt.Sprintf(`Nov 27 20:00:01 mx smtpd[1]: %016x smtp connected address=local host=mx`, n),
			fmt.Sprintf(`Nov 27 20:00:01 mx smtpd[1]: %016x smtp envelope evpid=%08x00000001 from=<%s> to=<%s>`, n, n, from, to),
			fmt.Sprintf(`Nov 27 20:00:01 mx smtpd[1]: 6d1b mta delivery evpid=%08x00000001 from=<%s> to=<%s> rcpt=<-> source="192.0.2.1" relay="mx [142.250.1.26]" delay=1s result="Ok" stat="250 ok"`, n, from, to),
		}
	}
	var captured []string
	for _, l := range slices.Concat(sent("alice@example.org", "a@gmail.com"), sent("x@elsewhere.example", "b@yahoo.com"),
		sent("alice@example.org", "c@gmail.com"), sent("alice@example.org", "d@example.org")) {
		for _, o := range p.Line(l, testNow) {
			if o.Action == Capture {
				captured = append(captured, o.Domain)
			}
		}
	}
	if len(captured) != 1 || captured[0] != "gmail.com" {
		t.Fatalf("captured %v, want gmail.com after its second mail", captured)
	}
	bans, _ := run(p, []string{
		"Nov 27 20:00:01 mx smtpd[1]: 0a1b smtp connected address=203.0.113.5 host=x",
		"Nov 27 20:00:02 mx smtpd[1]: 0a1b smtp envelope evpid=0a0a0a0a00000001 from=<spam@x.example> to=<trap@example.org>",
		"Nov 27 20:00:02 mx smtpd[1]: 0a1b smtp envelope evpid=0a0a0a0a00000002 from=<spam@x.example> to=<alice@example.org>",
	})
	if len(bans) != 1 || bans[0].Rule != "spamtrap" || bans[0].Addr != addr("203.0.113.5") {
		t.Fatalf("spamtrap: %+v", bans)
	}
}

// Framing through mail: a bounce to a trap (anyone can make a third
// party's MTA send one) and mail relayed from outside through a forward
// (its recipient domain is the outsider's choice) count for nothing.
func TestMailFramingVectors(t *testing.T) {
	src := config.LogSource{Parser: "maillog", TTL: time.Hour, Settings: MailSettings{Capture: true, CaptureThreshold: 1, CaptureWindow: 24 * time.Hour,
		Spamtraps: []string{"trap@example.org"}}}
	for _, tt := range []struct {
		name  string
		lines []string
		want  string // "ban ADDR", "capture DOMAIN" or "" for nothing
	}{
		{"OpenSMTPD: a bounce to a trap", []string{
			"Nov 27 20:00:01 mx smtpd[1]: 0a1b smtp connected address=192.0.2.25 host=mx.thirdparty.example",
			"Nov 27 20:00:02 mx smtpd[1]: 0a1b smtp envelope evpid=0a0a0a0a00000001 from=<> to=<trap@example.org>",
		}, ""},
		{"Postfix: a bounce to a trap, refused", []string{
			"Nov 27 20:00:01 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from mx.thirdparty.example[192.0.2.25]: 550 5.1.1 <trap@example.org>: Recipient address rejected; from=<> to=<trap@example.org> proto=ESMTP helo=<x>",
		}, ""},
		{"Postfix: a bounce to a trap, delivered", []string{
			"Nov 27 20:00:01 mx postfix/smtpd[300]: 8ABCDEF999: client=mx.thirdparty.example[192.0.2.25]",
			"Nov 27 20:00:02 mx postfix/qmgr[200]: 8ABCDEF999: from=<>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:03 mx postfix/local[301]: 8ABCDEF999: to=<trap@example.org>, relay=local, delay=0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
		}, ""},
		{"Postfix: spam to a trap, delivered", []string{
			"Nov 27 20:00:01 mx postfix/smtpd[300]: 8ABCDEF998: client=spam.example[198.51.100.7]",
			"Nov 27 20:00:02 mx postfix/qmgr[200]: 8ABCDEF998: from=<win@prize.example>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:03 mx postfix/local[301]: 8ABCDEF998: to=<trap@example.org>, relay=local, delay=0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
		}, "ban 198.51.100.7"},
		{"OpenSMTPD: outside mail forwarded out", []string{
			"Nov 27 20:00:01 mx smtpd[1]: 0a1c smtp connected address=198.51.100.7 host=spam.example",
			"Nov 27 20:00:02 mx smtpd[1]: 0a1c smtp envelope evpid=0b0b0b0b00000001 from=<alice@example.org> to=<fwd@example.org>",
			`Nov 27 20:00:03 mx smtpd[1]: 6d1b mta delivery evpid=0b0b0b0b00000002 from=<alice@example.org> to=<x@evil.example> rcpt=<fwd@example.org> source="192.0.2.1" relay="mx.evil.example [203.0.113.50]" delay=1s result="Ok" stat="250 ok"`,
		}, ""},
		{"OpenSMTPD: a local user's authenticated session", []string{
			"Nov 27 20:00:01 mx smtpd[1]: 0a1d smtp connected address=198.51.100.20 host=laptop.example",
			"Nov 27 20:00:01 mx smtpd[1]: 0a1d smtp authentication user=alice result=ok",
			"Nov 27 20:00:02 mx smtpd[1]: 0a1d smtp envelope evpid=0c0c0c0c00000001 from=<alice@example.org> to=<bob@gmail.com>",
			`Nov 27 20:00:03 mx smtpd[1]: 6d1b mta delivery evpid=0c0c0c0c00000001 from=<alice@example.org> to=<bob@gmail.com> rcpt=<-> source="192.0.2.1" relay="gmail-smtp-in.l.google.com [142.250.1.26]" delay=1s result="Ok" stat="250 ok"`,
		}, "capture gmail.com"},
		{"OpenSMTPD: an outsider's session that failed to authenticate", []string{
			"Nov 27 20:00:01 mx smtpd[1]: 0a1e smtp connected address=198.51.100.7 host=spam.example",
			"Nov 27 20:00:01 mx smtpd[1]: 0a1e smtp authentication user=alice result=permfail",
			"Nov 27 20:00:02 mx smtpd[1]: 0a1e smtp envelope evpid=0d0d0d0d00000001 from=<alice@example.org> to=<x@evil.example>",
			`Nov 27 20:00:03 mx smtpd[1]: 6d1b mta delivery evpid=0d0d0d0d00000001 from=<alice@example.org> to=<x@evil.example> rcpt=<-> source="192.0.2.1" relay="mx.evil.example [203.0.113.50]" delay=1s result="Ok" stat="250 ok"`,
		}, ""},
		{"Postfix: sendmail from a local user (pickup)", []string{
			"Nov 27 20:00:01 mx postfix/pickup[100]: 9ABCDEF111: uid=1000 from=<alice>",
			"Nov 27 20:00:02 mx postfix/qmgr[200]: 9ABCDEF111: from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:03 mx postfix/smtp[201]: 9ABCDEF111: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
		}, "capture gmail.com"},
		{"Postfix: submission with SASL", []string{
			"Nov 27 20:00:01 mx postfix/submission/smtpd[400]: 9ABCDEF222: client=laptop.example[198.51.100.20], sasl_method=PLAIN, sasl_username=alice",
			"Nov 27 20:00:02 mx postfix/qmgr[200]: 9ABCDEF222: from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:03 mx postfix/smtp[201]: 9ABCDEF222: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
		}, "capture gmail.com"},
		{"Postfix: outside mail to a local alias, forwarded out", []string{
			"Nov 27 20:00:01 mx postfix/smtpd[300]: 9ABCDEF333: client=spam.example[198.51.100.7]",
			"Nov 27 20:00:02 mx postfix/qmgr[200]: 9ABCDEF333: from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:03 mx postfix/local[301]: 9ABCDEF333: to=<fwd@example.org>, relay=local, delay=0.1, dsn=2.0.0, status=sent (forwarded as 9ABCDEF444)",
			"Nov 27 20:00:03 mx postfix/qmgr[200]: 9ABCDEF444: from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:04 mx postfix/smtp[201]: 9ABCDEF444: to=<x@evil.example>, relay=mx.evil.example[203.0.113.50]:25, delay=1, dsn=2.0.0, status=sent (250 ok)",
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProcessor(src, nil)
			var got []string
			for _, l := range tt.lines {
				for _, o := range p.Line(l, testNow) {
					switch o.Action {
					case Ban:
						got = append(got, "ban "+o.Addr.String())
					case Capture:
						got = append(got, "capture "+o.Domain)
					}
				}
			}
			if strings.Join(got, ";") != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// IPv4 and IPv6 addresses live in maps of their own; an address counts
// the same in its IPv4-mapped form, and eviction finds either family.
func TestTrackerFamilies(t *testing.T) {
	tr := NewTracker(3, time.Hour, 2)
	v4, v6 := addr("203.0.113.5"), addr("2001:db8::5")
	tr.Strike(v4, testNow, 1)
	if n, _ := tr.Strike(netip.AddrFrom16(v4.As16()), testNow, 1); n != 2 {
		t.Fatalf("the mapped form counted apart: %d strikes", n)
	}
	tr.Strike(v6, testNow, 1)
	if tr.Len() != 2 {
		t.Fatalf("%d tracked", tr.Len())
	}
	tr.Strike(addr("198.51.100.7"), testNow, 1) // evicts v4, the oldest
	if n, _ := tr.Strike(v4, testNow, 1); n != 1 || tr.Len() != 2 {
		t.Fatalf("after eviction: %d strikes, %d tracked", n, tr.Len())
	}
	if n, _ := tr.Strike(v6, testNow, 1); n != 1 { // evicted by v4's return
		t.Fatalf("v6 kept %d strikes past its eviction", n-1)
	}
}
