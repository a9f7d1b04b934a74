package logwatch

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for the tests on machines without tzdata
)

var testNow = time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)

func TestParseSyslog(t *testing.T) {
	tests := []struct {
		line     string
		prog     string
		pid      int
		msg      string
		wantTime time.Time
	}{
		{"Nov 27 20:06:52 mx1 sshd[4242]: Invalid user a from 192.0.2.1 port 1", "sshd", 4242, "Invalid user a from 192.0.2.1 port 1",
			time.Date(2026, 11, 27, 20, 6, 52, 0, time.UTC)},
		{"Nov  7 01:02:03 mx1 sshd-session[7]: x", "sshd-session", 7, "x", time.Date(2026, 11, 7, 1, 2, 3, 0, time.UTC)},
		{"Dec 31 23:59:59 mx1 sshd[1]: last year", "sshd", 1, "last year", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2026-11-27T20:06:52.123456+01:00 deb sshd[99]: m", "sshd", 99, "m",
			time.Date(2026, 11, 27, 19, 6, 52, 123456000, time.UTC)},
		{"Nov 27 20:06:52 mx1 smtpd: no pid", "smtpd", 0, "no pid", time.Date(2026, 11, 27, 20, 6, 52, 0, time.UTC)},
	}
	for _, tt := range tests {
		h, ok := ParseSyslog(tt.line, testNow)
		if !ok || h.Program != tt.prog || h.PID != tt.pid || h.Message != tt.msg || !h.Time.Equal(tt.wantTime) {
			t.Errorf("ParseSyslog(%q) = %+v, %v", tt.line, h, ok)
		}
	}
	for _, bad := range []string{
		"", "garbage", "Foo 27 20:06:52 host sshd[1]: x", "Nov 27 20:06:52 host sshd[x]: m",
		"Nov 27 20:06:52 host sshd[1] no colon", "2026-13-01T00:00:00Z host sshd[1]: m",
		"Nov 27 20:06:52 host : empty program",
	} {
		if h, ok := ParseSyslog(bad, testNow); ok {
			t.Errorf("ParseSyslog(%q) accepted: %+v", bad, h)
		}
	}
}

// TestStampCacheAgrees parses a sequence of lines with one timestamp
// cache and checks every header against a parse without it: repeated
// stamps, a clock that moves into the next year (the same stamp then
// means another year), a clock in another zone, and bad stamps between
// good ones.
func TestStampCacheAgrees(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	dec31 := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	jan1 := time.Date(2027, 1, 1, 0, 0, 10, 0, time.UTC)
	steps := []struct {
		line string
		now  time.Time
	}{
		{"Dec 31 22:59:59 mx1 sshd[1]: a", dec31},
		{"Dec 31 22:59:59 mx1 sshd[2]: b", dec31},
		// A clock a little behind the logger's at New Year: the stamp is
		// this year's first second until the clock's year turns too.
		{"Jan  1 00:00:05 mx1 sshd[3]: c", dec31.Add(59*time.Minute + 59*time.Second)},
		{"Jan  1 00:00:05 mx1 sshd[3]: d", dec31.Add(59*time.Minute + 59*time.Second)},
		{"Jan  1 00:00:05 mx1 sshd[3]: e", jan1},
		{"Jan  1 00:00:05 mx1 sshd[3]: f", jan1.In(berlin)},
		{"Dec 31 22:59:59 mx1 sshd[3]: g", dec31},
		// A date two days ahead is this year's; a second later, last
		// year's: the clock's every second counts, not its quarter hour.
		{"Nov 29 21:05:00 mx1 sshd[3]: ahead", time.Date(2026, 11, 27, 21, 5, 0, 0, time.UTC)},
		{"Nov 29 21:05:00 mx1 sshd[3]: ahead", time.Date(2026, 11, 27, 21, 4, 59, 0, time.UTC)},
		{"Dec 31 22:59:60 mx1 sshd[3]: leap", dec31},
		{"Dex 31 22:59:59 mx1 sshd[3]: bad month", dec31},
		{"Dec 31 22:59:59 mx1 sshd[3]: again", dec31},
		{"Dec 31 22:59:59 mx1 sshd[3]: and again", dec31},
		{"Dec  1 00:00:00 mx1 sshd[3]: padded", dec31},
		{"Dec 1 00:00:00 mx1 sshd[3]: unpadded", dec31},
		{"2026-12-31T22:59:59Z mx1 sshd[3]: rfc3339", dec31},
		{"Dec 31 22:59:59 mx1 sshd[3]: after", dec31},
	}
	var cache stampCache
	hits := 0
	for _, st := range steps {
		_, hit := cache.lookup(st.line, st.now)
		got, gotOK := parseSyslog(st.line, st.now, &cache)
		want, wantOK := ParseSyslog(st.line, st.now)
		if gotOK != wantOK || got != want {
			t.Errorf("%q at %v: cached %+v %v, uncached %+v %v", st.line, st.now, got, gotOK, want, wantOK)
		}
		if hit {
			hits++
		}
	}
	if hits < 3 {
		t.Errorf("the cache answered %d times, want at least 3: it is not used", hits)
	}
}

// FuzzStampCacheAgrees parses lines in turn with one cache and a clock
// that moves by the fuzzer's steps; each header must equal an uncached
// parse.
func FuzzStampCacheAgrees(f *testing.F) {
	// The clock steps back to Nov 27 21:05:00, where the stamp is 48 hours
	// ahead (this year's), then a second more (last year's).
	f.Add("Nov 29 21:05:00 h sshd[1]: a", "Nov 29 21:05:00 h sshd[1]: b", "Dec  1 00:00:00 h sshd[1]: c", int64(-2948094), int64(-1), int64(3600))
	f.Add("Jan  1 00:00:05 h sshd[1]: a", "Jan 1 00:00:05 h sshd[1]: b", "2026-01-01T00:00:05Z h sshd[1]: c", int64(0), int64(11), int64(0))
	base := time.Date(2026, 12, 31, 23, 59, 54, 0, time.UTC)
	f.Fuzz(func(t *testing.T, l1, l2, l3 string, d1, d2, d3 int64) {
		var cache stampCache
		now := base
		for i, st := range []struct {
			line string
			step int64
		}{{l1, d1}, {l2, d2}, {l3, d3}, {l1, 0}, {l2, 0}} {
			now = now.Add(time.Duration(st.step%(400*24*3600)) * time.Second)
			got, gotOK := parseSyslog(st.line, now, &cache)
			want, wantOK := ParseSyslog(st.line, now)
			if gotOK != wantOK || got != want {
				t.Fatalf("step %d, %q at %v: cached %+v %v, uncached %+v %v", i, st.line, now, got, gotOK, want, wantOK)
			}
		}
	})
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseSSHD(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Event // Time is checked apart
	}{
		// OpenBSD authlog and classic Linux auth.log.
		{"invalid user", "Nov 27 20:06:52 mx1 sshd[4242]: Invalid user admin from 203.0.113.5 port 50122",
			Event{Kind: SSHInvalidUser, Addr: addr("203.0.113.5"), Port: 50122, User: "admin", Invalid: true}},
		{"invalid user, old OpenSSH without port", "Nov 27 20:06:52 mx1 sshd[4242]: Invalid user admin from 203.0.113.5",
			Event{Kind: SSHInvalidUser, Addr: addr("203.0.113.5"), User: "admin", Invalid: true}},
		{"failed password, invalid user", "Nov 27 20:06:52 mx1 sshd[4242]: Failed password for invalid user admin from 203.0.113.5 port 50122 ssh2",
			Event{Kind: SSHFailed, Addr: addr("203.0.113.5"), Port: 50122, User: "admin", Invalid: true, Method: "password"}},
		{"failed password for root", "Nov 27 20:06:52 mx1 sshd[4242]: Failed password for root from 198.51.100.23 port 41000 ssh2",
			Event{Kind: SSHFailed, Addr: addr("198.51.100.23"), Port: 41000, User: "root", Method: "password"}},
		{"keyboard-interactive on Debian", "Nov 27 20:06:52 deb sshd[9]: Failed keyboard-interactive/pam for invalid user git from 203.0.113.9 port 2222 ssh2",
			Event{Kind: SSHFailed, Addr: addr("203.0.113.9"), Port: 2222, User: "git", Invalid: true, Method: "keyboard-interactive/pam"}},
		{"publickey with fingerprint", "Nov 27 20:06:52 mx1 sshd[1]: Failed publickey for alice from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:AbCdEf0123456789+/xyz",
			Event{Kind: SSHFailed, Addr: addr("192.0.2.7"), Port: 50000, User: "alice", Method: "publickey"}},
		{"none method", "Nov 27 20:06:52 mx1 sshd[1]: Failed none for invalid user x from 203.0.113.5 port 1 ssh2",
			Event{Kind: SSHFailed, Addr: addr("203.0.113.5"), Port: 1, User: "x", Invalid: true, Method: "none"}},
		{"max auth, error prefix", "Nov 27 20:06:52 mx1 sshd[1]: error: maximum authentication attempts exceeded for root from 203.0.113.5 port 4000 ssh2 [preauth]",
			Event{Kind: SSHMaxAuth, Addr: addr("203.0.113.5"), Port: 4000, User: "root"}},
		{"max auth, invalid user", "Nov 27 20:06:52 mx1 sshd[1]: maximum authentication attempts exceeded for invalid user ftp from 203.0.113.5 port 4000 ssh2 [preauth]",
			Event{Kind: SSHMaxAuth, Addr: addr("203.0.113.5"), Port: 4000, User: "ftp", Invalid: true}},
		{"connection closed, invalid user", "Nov 27 20:06:52 mx1 sshd[1]: Connection closed by invalid user oracle 203.0.113.5 port 33000 [preauth]",
			Event{Kind: SSHPreauth, Addr: addr("203.0.113.5"), Port: 33000, User: "oracle", Invalid: true}},
		{"disconnected, authenticating user", "Nov 27 20:06:52 mx1 sshd[1]: Disconnected from authenticating user root 203.0.113.5 port 33000 [preauth]",
			Event{Kind: SSHPreauth, Addr: addr("203.0.113.5"), Port: 33000, User: "root"}},
		{"connection reset", "Nov 27 20:06:52 mx1 sshd[1]: Connection reset by invalid user pi 203.0.113.5 port 33000 [preauth]",
			Event{Kind: SSHPreauth, Addr: addr("203.0.113.5"), Port: 33000, User: "pi", Invalid: true}},
		// Debian 12+ ISO timestamps and OpenSSH 9.8+ sshd-session.
		{"ISO header, sshd-session", "2026-11-27T20:06:52.000123+00:00 deb sshd-session[31337]: Invalid user test from 2001:db8::77 port 50122",
			Event{Kind: SSHInvalidUser, Addr: addr("2001:db8::77"), Port: 50122, User: "test", Invalid: true}},
		{"IPv4-mapped IPv6 is unmapped", "Nov 27 20:06:52 mx1 sshd[1]: Failed password for root from ::ffff:203.0.113.5 port 22 ssh2",
			Event{Kind: SSHFailed, Addr: addr("203.0.113.5"), Port: 22, User: "root", Method: "password"}},
		{"user name with spaces", "Nov 27 20:06:52 mx1 sshd[1]: Invalid user john smith from 203.0.113.5 port 50122",
			Event{Kind: SSHInvalidUser, Addr: addr("203.0.113.5"), Port: 50122, User: "john smith", Invalid: true}},
		{"empty user name", "Nov 27 20:06:52 mx1 sshd[1]: Invalid user  from 203.0.113.5 port 50122",
			Event{Kind: SSHInvalidUser, Addr: addr("203.0.113.5"), Port: 50122, User: "", Invalid: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseSSHDLine(tt.line, testNow)
			if !ok {
				t.Fatalf("no event from %q", tt.line)
			}
			if got.Time.IsZero() || got.PID == 0 {
				t.Errorf("no time or pid: %+v", got)
			}
			got.Time, got.PID = time.Time{}, 0
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Crafted user names must yield the real client, or nothing: never an
// address the attacker chose.
func TestParseSSHDInjection(t *testing.T) {
	// sshd writes the real client last; whatever the user name holds
	// comes before it. want is that client, or "" for no event.
	tests := []struct {
		name string
		msg  string
		want string
	}{
		{"from clause in invalid user", "Invalid user x from 203.0.113.50 from 198.51.100.7 port 4444", "198.51.100.7"},
		{"from and port in invalid user", "Invalid user x from 203.0.113.50 port 22 from 198.51.100.7 port 4444", "198.51.100.7"},
		{"whole clause in failed user", "Failed password for invalid user x from 203.0.113.50 port 22 ssh2 from 198.51.100.7 port 4444 ssh2", "198.51.100.7"},
		{"root-looking user", "Failed password for invalid user root from 203.0.113.50 port 22 ssh2 from 198.51.100.7 port 4444 ssh2", "198.51.100.7"},
		{"fake preauth in user", "Connection closed by invalid user x 203.0.113.50 port 22 [preauth] 198.51.100.7 port 4444 [preauth]", "198.51.100.7"},
		{"fake max-auth clause", "maximum authentication attempts exceeded for invalid user x from 203.0.113.50 port 1 ssh2 [preauth] from 198.51.100.7 port 4444 ssh2 [preauth]", "198.51.100.7"},
		{"fake key suffix in user", "Failed publickey for invalid user x from 203.0.113.50 port 22 ssh2: RSA SHA256:abc from 198.51.100.7 port 4444 ssh2: RSA SHA256:def", "198.51.100.7"},
		{"user ending like a key line", "Failed publickey for invalid user x from 203.0.113.50 port 4444 ssh2: RSA SHA256:abc from 198.51.100.7 port 22 ssh2", "198.51.100.7"},
		{"text after ssh2: that is not a key", "Failed password for root from 198.51.100.7 port 4444 ssh2: from 203.0.113.50", ""},
		{"certificate text after the key", "Failed publickey for root from 198.51.100.7 port 4444 ssh2: RSA-CERT SHA256:x ID evil from 203.0.113.50 port 22 (serial 1) CA RSA SHA256:y", "198.51.100.7"},
		{"certificate key ID forging a whole clause", "Failed publickey for invalid user x from 198.51.100.7 port 4444 ssh2: ED25519-CERT SHA256:x ID y from 203.0.113.50 port 22 ssh2 (serial 1) CA ED25519 SHA256:z", "198.51.100.7"},
		{"certificate key ID forging a key line", "Failed publickey for invalid user x from 198.51.100.7 port 4444 ssh2: ED25519-CERT SHA256:x ID y from 203.0.113.50 port 22 ssh2: RSA SHA256:abc", ""},
		{"certificate with an honest key ID", "Failed publickey for invalid user x from 198.51.100.7 port 4444 ssh2: ED25519-CERT SHA256:x ID ops@example.org (serial 7) CA ED25519 SHA256:z", "198.51.100.7"},
		// sshd escapes control bytes in user names (\\001, five bytes
		// after syslog's escaping) and syslog cuts long messages: the
		// attacker's fake clause can end up last, the real one cut off.
		{"cut after a fake preauth clause", "Connection closed by invalid user " + strings.Repeat(`\\001`, 90) + " 203.0.113.50 port 22 [preauth]", ""},
		{"cut after a fake invalid-user clause", "Invalid user " + strings.Repeat(`\\001`, 80) + " from 203.0.113.50 port 22", ""},
		{"cut after a fake failed clause", "Failed password for invalid user " + strings.Repeat(`\\001`, 80) + " from 203.0.113.50 port 22 ssh2", ""},
		{"address in the port's place", "Invalid user x from 198.51.100.7 port 203.0.113.50", ""},
		{"zone", "Invalid user x from fe80::1%eth0 port 22", ""},
		{"host name instead of address", "Invalid user x from evil.example port 22", ""},
		{"unknown method", "Failed magic for root from 198.51.100.7 port 4444 ssh2", ""},
		{"leading zero port", "Invalid user x from 198.51.100.7 port 022", ""},
		{"port out of range", "Invalid user x from 198.51.100.7 port 70000", ""},
		{"unspecified address", "Invalid user x from 0.0.0.0 port 22", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ParseSSHD(tt.msg)
			if tt.want == "" {
				if ok {
					t.Fatalf("event %+v from an ambiguous or malformed line", e)
				}
				return
			}
			if !ok || e.Addr != addr(tt.want) {
				t.Fatalf("got %v (ok %v), the real client is %s", e.Addr, ok, tt.want)
			}
		})
	}
	// A message from another program that quotes sshd is not sshd's.
	line := "Nov 27 20:06:52 mx1 cron[1]: sshd[2]: Invalid user x from 203.0.113.50 port 22"
	if e, ok := ParseSSHDLine(line, testNow); ok {
		t.Fatalf("another program's line parsed as sshd: %+v", e)
	}
}

// What sshd logs on normal use yields no event.
func TestParseSSHDNormal(t *testing.T) {
	for _, msg := range []string{
		"Accepted publickey for alice from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:abc",
		"Accepted password for bob from 192.0.2.7 port 50000 ssh2",
		"Connection closed by 203.0.113.5 port 33000 [preauth]",
		"Received disconnect from 203.0.113.5 port 33000:11: Bye Bye [preauth]",
		"Disconnected from user alice 192.0.2.7 port 50000",
		"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
		"pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
		"Server listening on 0.0.0.0 port 22.",
		"Connection from 203.0.113.5 port 33000 on 192.0.2.1 port 22",
		"banner exchange: Connection from 203.0.113.5 port 33000: invalid format",
	} {
		if e, ok := ParseSSHD(msg); ok {
			t.Errorf("%q gave %+v", msg, e)
		}
	}
}

func FuzzParseSSHD(f *testing.F) {
	for _, s := range []string{
		"Invalid user admin from 203.0.113.5 port 50122",
		"Failed password for invalid user x from 203.0.113.50 port 22 ssh2",
		"Failed publickey for alice from 192.0.2.7 port 50000 ssh2: ED25519 SHA256:abc",
		"Connection closed by invalid user oracle 203.0.113.5 port 33000 [preauth]",
		"error: maximum authentication attempts exceeded for root from 203.0.113.5 port 4000 ssh2 [preauth]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		e, ok := ParseSSHD(msg)
		if !ok {
			return
		}
		if !e.Addr.IsValid() || e.Addr.Is4In6() || e.Addr.Zone() != "" {
			t.Fatalf("%q: bad address %v", msg, e.Addr)
		}
		// The address and port are taken from the message, never made up.
		found := false
		for _, tok := range strings.Fields(msg) {
			if a, err := netip.ParseAddr(tok); err == nil && a.Unmap() == e.Addr {
				found = true
			}
		}
		if !found {
			t.Fatalf("%q: address %v not in the message", msg, e.Addr)
		}
		if e.Port != 0 && !strings.Contains(msg, " port "+strconv.Itoa(e.Port)) {
			t.Fatalf("%q: port %d not in the message", msg, e.Port)
		}
	})
}

// classicTime's cache must give what time.Date gives: across a zone's
// daylight-saving change, at the year boundary, and for dates to
// normalise.
func TestClassicTimeMatchesTimeDate(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	reference := func(now time.Time, mon time.Month, day, hh, mm, ss int) time.Time {
		r := time.Date(now.Year(), mon, day, hh, mm, ss, 0, now.Location())
		if r.After(now.Add(48 * time.Hour)) {
			r = r.AddDate(-1, 0, 0)
		}
		return r
	}
	nows := []time.Time{
		time.Date(2026, 3, 29, 12, 0, 0, 5, berlin),  // the spring change
		time.Date(2026, 10, 25, 12, 0, 0, 0, berlin), // the autumn change
		time.Date(2027, 1, 1, 0, 10, 0, 0, berlin),   // just after New Year
		time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC),
	}
	for _, now := range nows {
		for _, d := range []struct {
			mon  time.Month
			day  int
			hour int
		}{{3, 29, 1}, {3, 29, 2}, {3, 29, 3}, {10, 25, 2}, {10, 25, 3}, {12, 31, 23}, {1, 1, 0}, {1, 3, 5}, {2, 30, 4}, {11, 29, 23}, {11, 27, 19}} {
			for _, mm := range []int{0, 30, 59} {
				got := classicTime(now, d.mon, d.day, d.hour, mm, 7)
				want := reference(now, d.mon, d.day, d.hour, mm, 7)
				if !got.Equal(want) || got.Location() != want.Location() {
					t.Errorf("now %v, %s %d %02d:%02d:07: got %v, want %v", now, d.mon, d.day, d.hour, mm, got, want)
				}
			}
		}
	}
}

// sshdTemplates are messages as sshd writes them for the attacker
// 198.51.100.7; %[1]s is the user name, %[2]s a certificate's key ID,
// both the attacker's choice.
var sshdTemplates = []string{
	"Invalid user %[1]s from 198.51.100.7 port 4242",
	"Failed password for invalid user %[1]s from 198.51.100.7 port 4242 ssh2",
	"Failed keyboard-interactive/pam for %[1]s from 198.51.100.7 port 4242 ssh2",
	"Failed publickey for invalid user %[1]s from 198.51.100.7 port 4242 ssh2: ED25519-CERT SHA256:abc ID %[2]s (serial 1) CA ED25519 SHA256:def",
	"Connection closed by invalid user %[1]s 198.51.100.7 port 4242 [preauth]",
	"Disconnected from authenticating user %[1]s 198.51.100.7 port 4242 [preauth]",
	"error: maximum authentication attempts exceeded for invalid user %[1]s from 198.51.100.7 port 4242 ssh2 [preauth]",
}

// sshdEscape does to a user name what sshd (strnvis) and syslog do to
// control bytes: \001 becomes the five bytes \\001.
func sshdEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, `\\%03o`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// No user name or key ID, escaped as sshd and syslog escape them and cut
// wherever a syslog daemon cuts, makes the parser name the victim
// 203.0.113.50: only the attacker 198.51.100.7, or nobody.
func FuzzSSHDNeverNamesTheVictim(f *testing.F) {
	for _, seed := range []struct {
		user, id string
		cut      uint16
	}{
		{"x from 203.0.113.50 port 22", "ops", 0},
		{strings.Repeat("\x01", 90) + " 203.0.113.50 port 22 [preauth]", "", 500},
		{strings.Repeat("\x01", 80) + " from 203.0.113.50 port 22 ssh2", "", 480},
		{"x", "y from 203.0.113.50 port 22 ssh2: RSA SHA256:abc", 0},
		{"x from 203.0.113.50 port 22 ssh2: RSA SHA256:abc", "z", 0},
	} {
		for i := range sshdTemplates {
			f.Add(uint8(i), seed.user, seed.id, seed.cut)
		}
	}
	victim := netip.MustParseAddr("203.0.113.50")
	f.Fuzz(func(t *testing.T, tmpl uint8, user, keyID string, cut uint16) {
		msg := fmt.Sprintf(sshdTemplates[int(tmpl)%len(sshdTemplates)], sshdEscape(user), keyID)
		// A syslog daemon cuts at its limit, and spfd assumes the limit
		// is no lower than sshNearCut.
		if int(cut) >= sshNearCut && int(cut) < len(msg) {
			msg = msg[:cut]
		}
		if e, ok := ParseSSHD(msg); ok && e.Addr == victim {
			t.Fatalf("%q names the victim", msg)
		}
	})
}

// Every message sshd writes about an attacking client counts on its own,
// in the forms OpenSSH 6.x to 9.x write it (auth.c, auth2.c, auth-pam.c,
// sshd.c, packet.c), behind the syslog, ISO-timestamp, journal and
// Solaris headers; want is the client, or "" where the line must not
// count.
func TestSSHDCoverage(t *testing.T) {
	msgs := []struct {
		msg, want string
	}{
		{"User root from 198.51.100.7 not allowed because not listed in AllowUsers", "198.51.100.7"},
		{"User root from 198.51.100.7 not allowed because listed in DenyUsers", "198.51.100.7"},
		{"User bin from 198.51.100.7 not allowed because a group is listed in DenyGroups", "198.51.100.7"},
		{"User bin from 198.51.100.7 not allowed because none of user's groups are listed in AllowGroups", "198.51.100.7"},
		{"User root from host.example not allowed because not listed in AllowUsers", ""}, // UseDNS: a name, nobody
		{"ROOT LOGIN REFUSED FROM 198.51.100.7", "198.51.100.7"},
		{"ROOT LOGIN REFUSED FROM 198.51.100.7 port 4242 [preauth]", "198.51.100.7"},
		{"ROOT LOGIN REFUSED FROM ::ffff:198.51.100.7", "198.51.100.7"},
		{"Failed password for root from 198.51.100.7 port 4242 ssh2", "198.51.100.7"},
		{"Failed password for root from 198.51.100.7 port 4242 ssh1", "198.51.100.7"},
		{"Failed password for invalid user ROOT from 198.51.100.7 port 4242", "198.51.100.7"},
		{"Failed password for invalid user ROOT from 198.51.100.7", "198.51.100.7"},
		{"Failed keyboard-interactive/pam for invalid user x from 198.51.100.7 port 4242 ssh2", "198.51.100.7"},
		{"Failed keyboard-interactive for <invalid username> from 198.51.100.7 port 4242 ssh2", "198.51.100.7"},
		{"Failed hostbased for dan from 198.51.100.7 port 4242 ssh2: RSA 8c:e3:aa:0f:64:51:02:f7:14:79:89:3f:65:84:7c:30, client user \"dan\", client host \"h\"", "198.51.100.7"},
		{"Failed publickey for invalid user graysky from 198.51.100.7 port 4242 ssh2: RSA SHA256:v3dpapGleDaUKf4V1vKyR9ZyUgjaJAmoCTcb2PLljI", "198.51.100.7"},
		{"Failed publickey for alice from 198.51.100.7 port 4242 ssh2: RSA SHA256:v3dpapGleDaUKf4V1vKyR9ZyUgjaJAmoCTcb2PLljI", ""}, // an existing user's keys
		{"error: PAM: Authentication failure for root from 198.51.100.7", "198.51.100.7"},
		{"error: PAM: authentication error for illegal user x from 198.51.100.7 via 192.0.2.1", "198.51.100.7"},
		{"error: PAM: User not known to the underlying authentication module for illegal user x from 198.51.100.7", "198.51.100.7"},
		{"Received disconnect from 198.51.100.7 port 4242:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", "198.51.100.7"},
		{"error: Received disconnect from 198.51.100.7: 3: Ha ha: Auth cancel [preauth]", "198.51.100.7"},
		{"Received disconnect from 198.51.100.7 port 4242:11: Bye Bye [preauth]", ""},
		{"Disconnecting invalid user admin 198.51.100.7 port 4242: Change of username or service not allowed: (admin,ssh-connection) -> (user,ssh-connection) [preauth]", "198.51.100.7"},
		{"refused connect from host.example (198.51.100.7)", "198.51.100.7"},
		{"Connection closed by authenticating user alice 198.51.100.7 port 4242 [preauth]", ""}, // its failures count on their own lines
		{"Accepted publickey for alice from 198.51.100.7 port 4242 ssh2: ED25519 SHA256:abc", ""},
	}
	// Each message again from an IPv6 client: its colons must not be
	// taken for the separators sshd writes after the address.
	for _, m := range msgs {
		if strings.Contains(m.msg, "198.51.100.7") && !strings.Contains(m.msg, "::ffff:") {
			want := ""
			if m.want != "" {
				want = "2001:db8::7"
			}
			msgs = append(msgs, struct{ msg, want string }{strings.ReplaceAll(m.msg, "198.51.100.7", "2001:db8::7"), want})
		}
	}
	headers := []string{
		"Nov 27 20:00:01 host sshd[4242]: %s",
		"2026-11-27T20:00:01.123456+00:00 host sshd-session[4242]: %s",
		"Nov 27 20:00:01 host sshd[4242]: [ID 800047 auth.info] %s",
		"Feb 7 20:00:01 host sshd[4242]: %s", // an unpadded day
	}
	for _, m := range msgs {
		for _, h := range headers {
			line := fmt.Sprintf(h, m.msg)
			p := NewProcessor(sshSource(), nil)
			got := ""
			for _, o := range p.Line(line, testNow) {
				if o.Count > 0 {
					got = o.Addr.String()
				}
			}
			if got != m.want {
				t.Errorf("%s\n charged %q, want %q", line, got, m.want)
			}
		}
		// The journal gives the message alone, with sshd's _COMM.
		p := NewProcessor(sshSource(), nil)
		got := ""
		for _, o := range p.Message(JournalEntry{Message: m.msg, Comm: "sshd", PID: 4242, Cursor: "c"}, testNow) {
			if o.Count > 0 {
				got = o.Addr.String()
			}
		}
		if got != m.want {
			t.Errorf("journal %q\n charged %q, want %q", m.msg, got, m.want)
		}
	}
}
