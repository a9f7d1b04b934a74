package logwatch

import (
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

func parseMail(t *testing.T, lines string) []Event {
	t.Helper()
	m := NewMailParser()
	var out []Event
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		if e, ok := m.Parse(strings.TrimSpace(l), testNow); ok {
			e.Time = e.Time.UTC()
			out = append(out, e)
		}
	}
	return out
}

func TestMailOutbound(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		want  []string // sender -> recipient
	}{
		{"OpenSMTPD 6.4+ mta delivery", `
Nov 27 20:00:01 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f2e3d4c5b6a7980 from=<alice@example.org> to=<bob@gmail.com> rcpt=<-> source="192.0.2.1" relay="gmail-smtp-in.l.google.com [142.250.1.26]" delay=1s result="Ok" stat="250 2.0.0 OK 1700000000 x"
Nov 27 20:00:02 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f2e3d4c5b6a7981 from=<alice@example.org> to=<carol@outlook.com> rcpt=<-> source="192.0.2.1" relay="x.outlook.com [52.101.1.1]" delay=1s result="TempFail" stat="451 try later"
Nov 27 20:00:03 mx smtpd[123]: 6d1b2c3d4e5f6a7c mta delivery evpid=1f2e3d4c5b6a7982 from=<> to=<bounce@yahoo.com> rcpt=<-> source="192.0.2.1" relay="mx.yahoo.com [98.136.1.1]" delay=1s result="Ok" stat="250 ok"
Nov 27 20:00:04 mx smtpd[123]: 6d1b2c3d4e5f6a7d mta delivery evpid=1f2e3d4c5b6a7983 from=<alice@example.org> to=<filter@example.org> rcpt=<-> source="127.0.0.1" relay="localhost [127.0.0.1]" delay=0s result="Ok" stat="250 ok"
Nov 27 20:00:05 mx smtpd[123]: 6d1b2c3d4e5f6a7e mda delivery evpid=1f2e3d4c5b6a7984 from=<x@icloud.com> to=<alice@example.org> rcpt=<alice@example.org> user=alice delay=0s result=Ok stat=Delivered`,
			[]string{"alice@example.org -> bob@gmail.com"}},
		{"older OpenSMTPD relay: Ok", `
Nov 27 20:00:01 mx smtpd[123]: relay: Ok for 1a2b3c4d5e6f7a8b: session=6d1b2c3d4e5f6a7b, from=<alice@example.org>, to=<bob@GMX.net>, rcpt=<->, source=192.0.2.1, relay=mx00.gmx.net [212.227.15.1] (mx00.gmx.net), delay=2s, stat=Sent (250 Requested mail action okay)`,
			[]string{"alice@example.org -> bob@gmx.net"}},
		{"Postfix smtp joined to qmgr", `
Nov 27 20:00:01 mx postfix/qmgr[200]: 4ABCDEF123: from=<alice@example.org>, size=1234, nrcpt=2 (queue active)
Nov 27 20:00:02 mx postfix/smtp[201]: 4ABCDEF123: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK to=<x@evil.example>)
Nov 27 20:00:02 mx postfix/smtp[201]: 4ABCDEF123: to=<carol@yahoo.com>, relay=mx.yahoo.com[98.136.1.1]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=4.7.0, status=deferred (421 try later)
Nov 27 20:00:03 mx postfix/qmgr[200]: 5BCDEF1234: from=<>, size=1234, nrcpt=1 (queue active)
Nov 27 20:00:03 mx postfix/smtp[201]: 5BCDEF1234: to=<bounced@aol.com>, relay=mx.aol.com[1.2.3.4]:25, delay=1, dsn=2.0.0, status=sent (250 ok)
Nov 27 20:00:04 mx postfix/qmgr[200]: 6CDEF12345: from=<alice@example.org>, size=10, nrcpt=1 (queue active)
Nov 27 20:00:04 mx postfix/smtp[201]: 6CDEF12345: to=<dave@icloud.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.1, dsn=2.0.0, status=sent (250 2.0.0 from amavis)
Nov 27 20:00:05 mx postfix/smtp[201]: 7DEF123456: to=<erin@live.com>, relay=x[1.2.3.4]:25, delay=1, dsn=2.0.0, status=sent (250 ok)`,
			[]string{"alice@example.org -> bob@gmail.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range parseMail(t, tt.lines) {
				if e.Kind != MailSent {
					t.Errorf("unexpected %+v", e)
					continue
				}
				got = append(got, e.Sender+" -> "+e.Recipient)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if d := (Event{Recipient: "bob@Gmail.COM"}).Domain(); d != "gmail.com" {
		t.Errorf("Domain() = %q", d)
	}
}

func TestMailInbound(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		want  []string // address recipient
	}{
		{"OpenSMTPD accepted recipients; a refused one names no sender, so nobody", `
Nov 27 20:00:01 mx smtpd[123]: 0a1b2c3d4e5f6071 smtp connected address=203.0.113.5 host=<unknown>
Nov 27 20:00:02 mx smtpd[123]: 0a1b2c3d4e5f6071 smtp envelope evpid=aa11bb22cc33dd44 from=<spam@spam.example> to=<trap@example.org>
Nov 27 20:00:03 mx smtpd[123]: 0a1b2c3d4e5f6071 smtp failed-command command="RCPT TO:<Other@Example.org>" result="550 Invalid recipient: <other@example.org>"
Nov 27 20:00:04 mx smtpd[123]: 0a1b2c3d4e5f6071 smtp disconnected reason=quit
Nov 27 20:00:05 mx smtpd[123]: 0a1b2c3d4e5f6071 smtp envelope evpid=aa11bb22cc33dd45 from=<x@y.example> to=<trap@example.org>`,
			[]string{"203.0.113.5 trap@example.org"}},
		{"Postfix NOQUEUE reject and accepted mail", `
Nov 27 20:00:01 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 550 5.1.1 <trap@example.org>: Recipient address rejected: User unknown; from=<spam@x.example> to=<trap@example.org> proto=ESMTP helo=<x>
Nov 27 20:00:02 mx postfix/smtpd[300]: 8ABCDEF999: client=mail.evil.example[2001:db8::66]
Nov 27 20:00:03 mx postfix/qmgr[200]: 8ABCDEF999: from=<spam@x.example>, size=10, nrcpt=1 (queue active)
Nov 27 20:00:04 mx postfix/local[301]: 8ABCDEF999: to=<trap@example.org>, relay=local, delay=0.1, dsn=2.0.0, status=sent (delivered to mailbox)`,
			[]string{"203.0.113.9 trap@example.org", "2001:db8::66 trap@example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range parseMail(t, tt.lines) {
				if e.Kind != MailRecipient {
					t.Errorf("unexpected %+v", e)
					continue
				}
				got = append(got, e.Addr.String()+" "+e.Recipient)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMailRejectsAmbiguous(t *testing.T) {
	for _, l := range []string{
		`Nov 27 20:00:01 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1 from=<a@example.org> to=<b@gmail.com> to=<c@evil.example> relay="x [1.2.3.4]" result="Ok"`,
		`Nov 27 20:00:01 mx smtpd[123]: nothex mta delivery from=<a@example.org> to=<b@gmail.com> relay="x [1.2.3.4]" result="Ok"`,
		`Nov 27 20:00:01 mx sendmail[1]: 6d1b2c3d4e5f6a7b mta delivery from=<a@example.org> to=<b@gmail.com> relay="x [1.2.3.4]" result="Ok"`,
		`Nov 27 20:00:01 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from unknown[not-an-ip]: 550 x; from=<a@b.c> to=<trap@example.org>`,
	} {
		if got := parseMail(t, l); len(got) != 0 {
			t.Errorf("%q gave %+v", l, got)
		}
	}
}

func TestBoundedMap(t *testing.T) {
	b := newBoundedMap(3)
	for _, k := range []string{"a", "b", "c", "d"} {
		b.put(k, k)
	}
	if _, ok := b.get("a"); ok || b.len() != 3 {
		t.Fatalf("oldest not evicted: len %d", b.len())
	}
	for i := 0; i < 100; i++ {
		b.put("x", "y")
		b.del("x")
	}
	if len(b.order) > 2*3+1 {
		t.Fatalf("order list grew to %d", len(b.order))
	}
}

func FuzzMailParser(f *testing.F) {
	f.Add(`Nov 27 20:00:01 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f from=<alice@example.org> to=<bob@gmail.com> rcpt=<-> source="192.0.2.1" relay="g [142.250.1.26]" delay=1s result="Ok" stat="250 ok"`)
	f.Add(`Nov 27 20:00:01 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 550 5.1.1 <t@e.org>: x; from=<s@x.example> to=<t@e.org> proto=ESMTP helo=<x>`)
	f.Fuzz(func(t *testing.T, line string) {
		m := NewMailParser()
		e, ok := m.Parse(line, testNow)
		if !ok {
			return
		}
		if e.Kind == MailRecipient && !e.Addr.IsValid() {
			t.Fatalf("%q: recipient event without an address", line)
		}
		if e.Kind == MailSent && (e.Domain() == "" || !strings.Contains(strings.ToLower(line), e.Recipient)) {
			t.Fatalf("%q: bad recipient %q", line, e.Recipient)
		}
	})
}

// Lines built from OpenSMTPD's and Postfix's templates, with every field
// the client chooses (HELO, MAIL FROM, RCPT TO, the reply text) random and
// holding the victim's address, never get the victim 203.0.113.50
// blacklisted: only the client 198.51.100.7, or nobody.
func FuzzMailNeverBansTheVictim(f *testing.F) {
	f.Add("x@203.0.113.50", "trap@example.org", "203.0.113.50")
	f.Add("", "trap@example.org", "[203.0.113.50]")
	f.Add("a> address=203.0.113.50 <b", "trap@example.org> from=<x", "h")
	victim := addr("203.0.113.50")
	f.Fuzz(func(t *testing.T, from, to, helo string) {
		for _, s := range []string{from, to, helo} {
			if strings.ContainsAny(s, "\n\r") {
				return
			}
		}
		src := config.LogSource{Parser: "maillog", TTL: time.Hour, Threshold: 1, Window: time.Hour,
			Settings: MailSettings{Spamtraps: []string{"trap@example.org"}}}
		p := NewProcessor(src, nil)
		lines := []string{
			"Nov 27 20:00:01 mx smtpd[1]: 0a1b smtp connected address=198.51.100.7 host=" + helo,
			"Nov 27 20:00:02 mx smtpd[1]: 0a1b smtp envelope evpid=0a0a0a0a00000001 from=<" + from + "> to=<" + to + ">",
			"Nov 27 20:00:03 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from " + helo + "[198.51.100.7]: 550 5.1.1 <" + to + ">: Recipient address rejected; from=<" + from + "> to=<" + to + "> proto=ESMTP helo=<" + helo + ">",
			"Nov 27 20:00:04 mx postfix/smtpd[300]: 8ABCDEF999: client=" + helo + "[198.51.100.7]",
			"Nov 27 20:00:05 mx postfix/qmgr[200]: 8ABCDEF999: from=<" + from + ">, size=10, nrcpt=1 (queue active)",
			"Nov 27 20:00:06 mx postfix/local[301]: 8ABCDEF999: to=<" + to + ">, relay=local, delay=0.1, dsn=2.0.0, status=sent (delivered)",
		}
		for _, l := range lines {
			for _, o := range p.Line(l, testNow) {
				if o.Action == Ban && o.Addr == victim {
					t.Fatalf("%q bans the victim", l)
				}
			}
		}
	})
}

// The traffic a mail log shows: client connections the MTA accepted and
// messages it delivered, locally or on, in OpenSMTPD's and Postfix's
// words; a failed delivery, the local enqueuer and a line that is not
// the MTA's own count nothing.
func TestMailTraffic(t *testing.T) {
	tests := []struct {
		name  string
		lines string
		want  MailTraffic
	}{
		{"OpenSMTPD", `
Nov 27 20:00:00 mx smtpd[123]: 0a0b0c0d0e0f1011 smtp connected address=198.51.100.7 host=mail.example.net
Nov 27 20:00:00 mx smtpd[123]: 0a0b0c0d0e0f1012 smtp connected address=2001:db8::7 host=<unknown>
Nov 27 20:00:00 mx smtpd[123]: 0a0b0c0d0e0f1013 smtp connected address=local host=mx
Nov 27 20:00:01 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f2e3d4c5b6a7980 from=<alice@example.org> to=<bob@gmail.com> rcpt=<-> source="192.0.2.1" relay="gmail-smtp-in.l.google.com [142.250.1.26]" delay=1s result="Ok" stat="250 2.0.0 OK"
Nov 27 20:00:02 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f2e3d4c5b6a7981 from=<alice@example.org> to=<carol@outlook.com> rcpt=<-> source="192.0.2.1" relay="x.outlook.com [52.101.1.1]" delay=1s result="TempFail" stat="451 try later"
Nov 27 20:00:05 mx smtpd[123]: 6d1b2c3d4e5f6a7e mda delivery evpid=1f2e3d4c5b6a7984 from=<x@icloud.com> to=<alice@example.org> rcpt=<alice@example.org> user=alice delay=0s result=Ok stat=Delivered
Nov 27 20:00:06 mx smtpd[123]: 6d1b2c3d4e5f6a7f mda delivery evpid=1f2e3d4c5b6a7985 from=<x@icloud.com> to=<bob@example.org> rcpt=<bob@example.org> user=bob delay=0s result=PermFail stat=Error`,
			MailTraffic{Connections: 2, Deliveries: 2}},
		{"Postfix", `
Nov 27 20:00:00 mx postfix/smtpd[300]: connect from mail.example.net[198.51.100.7]
Nov 27 20:00:00 mx postfix/submission/smtpd[301]: connect from unknown[2001:db8::7]
Nov 27 20:00:00 mx postfix/smtpd[300]: connect from evil]x[198.51.100.8]
Nov 27 20:00:00 mx postfix/postscreen[299]: CONNECT from [198.51.100.9]:4242 to [192.0.2.1]:25
Nov 27 20:00:01 mx postfix/qmgr[200]: 4ABCDEF123: from=<alice@example.org>, size=1234, nrcpt=2 (queue active)
Nov 27 20:00:02 mx postfix/smtp[201]: 4ABCDEF123: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK)
Nov 27 20:00:02 mx postfix/smtp[201]: 4ABCDEF123: to=<carol@yahoo.com>, relay=mx.yahoo.com[98.136.1.1]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=4.7.0, status=deferred (421 try later)
Nov 27 20:00:03 mx postfix/local[202]: 5BCDEF1234: to=<alice@example.org>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)
Nov 27 20:00:03 mx sshd[1]: connect from x[198.51.100.10]`,
			MailTraffic{Connections: 2, Deliveries: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMailParser()
			for _, l := range strings.Split(strings.TrimSpace(tt.lines), "\n") {
				m.Parse(strings.TrimSpace(l), testNow)
			}
			if got := m.TakeTraffic(); got != tt.want {
				t.Errorf("traffic %+v, want %+v", got, tt.want)
			}
			if got := m.TakeTraffic(); got != (MailTraffic{}) {
				t.Errorf("taken twice: %+v", got)
			}
		})
	}
}
