package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchLines are the shapes that dominate a brute-forced authlog.
var benchLines = []string{
	"Nov  1 00:00:00 mx1 sshd[51892]: Invalid user pi from 155.97.233.173 port 39254",
	"Nov  1 00:00:00 mx1 sshd[51892]: Failed password for invalid user pi from 155.97.233.173 port 39254 ssh2",
	"Nov  1 00:00:00 mx1 sshd[51892]: Connection closed by invalid user pi 155.97.233.173 port 39254 [preauth]",
	"Nov  1 00:00:01 mx1 sshd[13859]: error: maximum authentication attempts exceeded for root from 2001:db8:c09:f0a2::26af port 7838 ssh2 [preauth]",
	"Nov  1 00:00:00 mx1 sshd[23783]: Accepted publickey for alice from 192.0.2.9 port 43897 ssh2: ED25519 SHA256:Xq3mKy5rS0t2u1v0w9xYzAbCdEfGhIjKlMnOpQrStUv",
	"Nov  1 00:00:00 mx1 sshd[45252]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
}

func BenchmarkParse(b *testing.B) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	parsers := []struct {
		name  string
		parse func(string, time.Time) bool
	}{
		{"syslog", func(l string, now time.Time) bool { _, ok := ParseSyslog(l, now); return ok }},
		{"sshd", func(l string, now time.Time) bool { _, ok := ParseSSHDLine(l, now); return ok }},
	}
	for _, p := range parsers {
		for i, line := range benchLines {
			b.Run(p.name+"/"+strconv.Itoa(i), func(b *testing.B) {
				for b.Loop() {
					p.parse(line, now)
				}
			})
		}
	}
}

func BenchmarkSSHEvent(b *testing.B) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var events []Event
	for _, l := range benchLines {
		if e, ok := ParseSSHDLine(l, now); ok {
			events = append(events, e)
		}
	}
	p := NewProcessor(sshSource(), nil)
	var dst []Outcome
	for i := 0; b.Loop(); i++ {
		dst = p.AppendEvent(dst[:0], &events[i%len(events)], now)
	}
}

// parseIPv4 must agree with netip.ParseAddr on every input.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.", "1..2.3", "::ffff:1.2.3.4", "", "1.2.3.04", "0.1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv4(s)
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	})
}

// parseIPv6Hex must agree with netip.ParseAddr wherever it answers, and
// answer for every address netip reads that has no zone and no embedded
// IPv4 (else the fast path would quietly go unused).
func FuzzParseIPv6Hex(f *testing.F) {
	for _, s := range []string{"::", "::1", "1::", "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
		"::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "1::2::3", ":1", "1:", "1:::2", "12345::", "::ffff:1.2.3.4", "::ffff:102:304",
		"fe80::1%eth0", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "", ":", ":::", "g::1", "0000:0000::0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv6Hex(s)
		want, err := netip.ParseAddr(s)
		if ok && (err != nil || got != want) {
			t.Fatalf("parseIPv6Hex(%q) = %v; netip says %v, %v", s, got, want, err)
		}
		if !ok && err == nil && want.Is6() && want.Zone() == "" && !strings.Contains(s, ".") {
			t.Fatalf("parseIPv6Hex(%q) refused what netip reads as %v", s, want)
		}
	})
}
