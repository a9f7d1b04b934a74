package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/syntax"
)

func parseString(t *testing.T, src string, files map[string]string) (*Config, error) {
	t.Helper()
	return Parse("/etc/spfd.conf", strings.NewReader(src), Options{
		ReadFile: func(path string) ([]byte, error) {
			if s, ok := files[path]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		},
	})
}

func TestParseFull(t *testing.T) {
	src := `# spfd.conf
state = "/var/spfd"
provider = "{ gmail.com outlook.com }"

socket "/var/run/spfd.sock" group _spfd mode 0660
state-directory $state
resolver { 127.0.0.1 "[::1]:5353" }
resolver 192.0.2.53
walk min-interval 30m
walk max-interval 2d
walk concurrency 8
walk timeout 3s
walk retries 1
walk grace 1w
walk floor inet 16 inet6 32
walk max-lookups 20
walk max-addresses inet /10 inet6 /24
walk lenient yes
table white file "/var/spfd/white" command { "/sbin/pfctl" -t spfd-white \
	-T replace -f "/var/spfd/white" }
table black file "/var/spfd/black"
domain $provider
domain Yahoo.COM.
domain-file "/etc/spfd/domains"
whitelist { 192.0.2.0/24
	2001:db8::/32 }
blacklist 203.0.113.7
whitelist-file "/etc/mail/nospamd"
blacklist-file { "/etc/spfd/black1" "/etc/spfd/black2" }
ignore 10.0.0.0/8
blacklist-ttl 12h
include "extra.conf"
`
	cfg, err := parseString(t, src, map[string]string{"/etc/extra.conf": "domain icloud.com\n"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Socket", cfg.Socket, "/var/run/spfd.sock")
	check("SocketGroup", cfg.SocketGroup, "_spfd")
	check("SocketMode", cfg.SocketMode, os.FileMode(0o660))
	check("StateDir", cfg.StateDir, "/var/spfd")
	check("Resolvers", cfg.Resolvers, []string{"127.0.0.1:53", "[::1]:5353", "192.0.2.53:53"})
	check("Walk", cfg.Walk, Walk{MinInterval: 30 * time.Minute, MaxInterval: 48 * time.Hour, Concurrency: 8,
		Timeout: 3 * time.Second, Retries: 1, Grace: 7 * 24 * time.Hour, FloorIPv4: 16, FloorIPv6: 32,
		MaxLookups: 20, MaxAddresses4: 1 << 22, MaxCover6Len: 24, Lenient: true})
	check("White", cfg.White, Table{Backend: "file", Path: "/var/spfd/white",
		Command: []string{"/sbin/pfctl", "-t", "spfd-white", "-T", "replace", "-f", "/var/spfd/white"}})
	check("Black", cfg.Black, Table{Backend: "file", Path: "/var/spfd/black"})
	check("Domains", cfg.Domains, []string{"gmail.com", "outlook.com", "yahoo.com", "icloud.com"})
	check("DomainFiles", cfg.DomainFiles, []string{"/etc/spfd/domains"})
	check("StaticWhite", cfg.StaticWhite, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")})
	check("StaticBlack", cfg.StaticBlack, []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")})
	check("WhiteFiles", cfg.WhiteFiles, []string{"/etc/mail/nospamd"})
	check("BlackFiles", cfg.BlackFiles, []string{"/etc/spfd/black1", "/etc/spfd/black2"})
	check("Ignore", cfg.Ignore, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	check("BlacklistTTL", cfg.BlacklistTTL, 12*time.Hour)
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case []netip.Prefix:
		return slices.Equal(a, b.([]netip.Prefix))
	case Table:
		bt := b.(Table)
		return a.Backend == bt.Backend && a.Name == bt.Name && a.Path == bt.Path && slices.Equal(a.Command, bt.Command)
	}
	return a == b
}

// testFamily is a log family for this package's tests: the real ones
// register from logwatch, which imports config.
func init() {
	type settings struct{ Users []string }
	RegisterLogFamily(LogFamily{
		Name: "testlog", Threshold: 4, Window: 2 * time.Hour, Options: []string{"users"},
		Settings: func() any { return settings{} },
		Option: func(v any, _ string, a *Args) (any, error) {
			s := v.(settings)
			var err error
			s.Users, err = a.Values("a user")
			return s, err
		},
	})
	RegisterLogFamily(LogFamily{Name: "otherlog", Options: []string{"probes"}})
}

// The log statement's common part: family, files or journal, threshold,
// ttl; the family's own options are handed to it.
func TestParseLogStatement(t *testing.T) {
	cfg, err := parseString(t, `blacklist-ttl 12h
log testlog file "/var/log/a" threshold 5 within 30m users { alice bob }
log testlog journal "ssh.service" ttl 2d
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, j := cfg.Logs[0], cfg.Logs[1]
	if a.Parser != "testlog" || a.Threshold != 5 || a.Window != 30*time.Minute || a.TTL != 12*time.Hour ||
		!slices.Equal(a.Files, []string{"/var/log/a"}) || fmt.Sprint(a.Settings) != "{[alice bob]}" {
		t.Errorf("file source: %+v", a)
	}
	if j.Journal != "ssh.service" || j.TTL != 48*time.Hour || j.Threshold != 4 || j.Window != 2*time.Hour || fmt.Sprint(j.Settings) != "{[]}" {
		t.Errorf("journal source: %+v", j)
	}
	for _, bad := range []struct{ src, want string }{
		{"log ftpd file \"/x\"\n", "unknown log parser \"ftpd\" (want otherlog, testlog)"},
		{"log testlog \"/x\"\n", "expected file or journal"},
		{"log testlog file relative.log\n", "must be an absolute path"},
		{"log testlog file \"/x\" probes { /x }\n", "probes does not apply to testlog"},
		{"log testlog file \"/x\" frobnicate 1\n", "unknown log option \"frobnicate\""},
		{"log testlog file \"/x\" threshold 5 during 1h\n", "expected within"},
		{"log testlog file \"/x\" ttl 5s\n", "at least 1m"},
	} {
		if _, err := parseString(t, bad.src, nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := parseString(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Socket != DefaultSocket || cfg.StateDir != DefaultStateDir || cfg.BlacklistTTL != 24*time.Hour {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.White.Path != "/var/db/spfd/white.txt" || cfg.Black.Path != "/var/db/spfd/black.txt" {
		t.Errorf("default tables: %+v %+v", cfg.White, cfg.Black)
	}
	if cfg.Walk.MinInterval != time.Hour || cfg.Walk.MaxInterval != 24*time.Hour || cfg.Walk.Grace != 7*24*time.Hour {
		t.Errorf("default walk: %+v", cfg.Walk)
	}
}

func TestCommandLineMacrosWin(t *testing.T) {
	cfg, err := Parse("x.conf", strings.NewReader("dir = \"/a\"\nstate-directory $dir\n"),
		Options{Macros: map[string]string{"dir": "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/b" {
		t.Errorf("StateDir %q, want /b", cfg.StateDir)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"bogus 1\n", "/etc/spfd.conf:1: unknown keyword \"bogus\""},
		{"\n\nwalk timeout 5\n", "/etc/spfd.conf:3: walk: invalid duration \"5\""},
		{"walk min-interval 2d\nwalk max-interval 1d\n", "/etc/spfd.conf:2: walk min-interval 2d is longer than max-interval 1d"},
		{"domain example.com\nwhitelist {\n192.0.2.1\n\n", "/etc/spfd.conf:2: missing }: the { opened here is never closed"},
		{"\ntable white pf spfd\n", "/etc/spfd.conf:2: both tables must use one backend"},
		{"whitelist 192.0.2.1/24\n", "host bits set (did you mean 192.0.2.0/24?)"},
		{"\nwhitelist { 192.0.2.0/24 0.0.0.0/0 }\n", "/etc/spfd.conf:2: whitelist 0.0.0.0/0 is broader than the walk floor /12; add force"},
		{"whitelist ::/0\n", "whitelist ::/0 is broader than the walk floor /24"},
		{"blacklist 10.0.0.0/8\n", "/etc/spfd.conf:1: blacklist 10.0.0.0/8 is broader than the walk floor /12"},
		{"walk floor inet 16\nwhitelist 10.0.0.0/12\n", "/etc/spfd.conf:2: whitelist 10.0.0.0/12 is broader than the walk floor /16"},
		{"whitelist 10.0.0.0/8 forced\n", "expected force, got \"forced\""},
		{"whitelist-file \"/x\" force now\n", "unexpected \"now\""},
		{"whitelist { }\n", "empty list"},
		{"whitelist { 192.0.2.1\n", "missing }"},
		{"}\n", "unbalanced }"},
		{"domain \"unterminated\n", "newline in string"},
		{"domain $nope\n", "undefined macro $nope"},
		{"domain = \"x\"\n", "macro name \"domain\" is a keyword"},
		{"9x = \"x\"\n", "invalid macro name"},
		{"socket relative.sock\n", "must be absolute"},
		{"socket \"/s\" mode 0666\n", "invalid socket mode"},
		{"socket \"/s\" owner x\n", "unknown socket option"},
		{"table grey file \"/x\"\n", "expected white or black"},
		{"table white carrier-pigeon x\n", "unknown backend"},
		{"table white file \"/x\" command { sh -c }\n", "must be an absolute path"},
		{"table white file \"/x\"\ntable black file \"/x\"\n", "same file"},
		{"table white pf a-very-long-table-name-over-31-chars\ntable black pf b\n", "invalid table name"},
		{"resolver ns.example.com\n", "invalid resolver"},
		{"walk floor inet 40\n", "inet floor must be a number from 1 to 32"},
		{"walk concurrency 0\n", "from 1 to 1024"},
		{"walk max-lookups 0\n", "max-lookups must be a number from 1 to 100"},
		{"walk max-addresses inet 0\n", "count from 1 to 4294967296"},
		{"walk max-addresses inet /0\n", "LEN from 1 to 32"},
		{"walk max-addresses inet6 1000\n", "expected /LEN"},
		{"walk max-addresses inet\n", "a limit"},
		{"walk lenient maybe\n", "expected yes or no"},
		{"walk frobnicate 1\n", "unknown walk option"},
		{"domain bad..name\n", "invalid domain name"},
		{"domain-file relative\n", "must be an absolute path"},
		{"state-directory /var/db/spfd extra\n", "unexpected \"extra\""},
		{"include \"missing.conf\"\n", "/etc/spfd.conf:1: include: open /etc/missing.conf"},
		{"include \"loop.conf\"\n", "nested more than 8 deep"},
		{"blacklist-ttl 10s\n", "at least 1m"},
		{"repeat-offenders factor 0.5\n", "factor must be a number from 1 to 16"},
		{"repeat-offenders factor x\n", "factor must be a number from 1 to 16"},
		{"repeat-offenders remember 10\n", "remember must be a number from 1000"},
		{"repeat-offenders max-ttl 10s\n", "/etc/spfd.conf:1: repeat-offenders max-ttl and within must be at least 1m"},
		{"repeat-offenders often\n", "unknown repeat-offenders option"},
		{"metrics listen 0.0.0.0:9154\n", "not a loopback address"},
		{"metrics listen 192.0.2.1:9154\n", "add \"public\" if they may"},
		{"metrics listen 127.0.0.1\n", "want an address and a port"},
		{"metrics listen localhost:9154\n", "want an address and a port"},
		{"metrics listen 127.0.0.1:9154 open\n", "expected public"},
		{"metrics 127.0.0.1:9154\n", "expected listen"},
		{"domain \"a\x01\"\n", "control character"},
	}
	files := map[string]string{"/etc/loop.conf": "include \"loop.conf\"\n"}
	for _, tt := range tests {
		_, err := parseString(t, tt.src, files)
		if err == nil {
			t.Errorf("%q: no error, want %q", tt.src, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %q, want %q", tt.src, err, tt.want)
		}
	}
}

func TestParseErrorsNameIncludedFileAndLine(t *testing.T) {
	_, err := parseString(t, "domain gmail.com\ninclude \"sub.conf\"\n", map[string]string{"/etc/sub.conf": "\nwalk grace forever\n"})
	if err == nil || !strings.Contains(err.Error(), "/etc/sub.conf:2: walk: invalid duration") {
		t.Fatalf("error %v, want /etc/sub.conf:2", err)
	}
}

func TestParseReportsSeveralErrors(t *testing.T) {
	_, err := parseString(t, "bogus\nwalk grace x\nalso-bogus\n", nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{":1:", ":2:", ":3:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %s", err, want)
		}
	}
}

func TestCheckFilesWarns(t *testing.T) {
	cfg, err := parseString(t, "domain-file \"/nonexistent/domains\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CheckFiles()
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "does not exist") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"domain gmail.com\nwhitelist { 192.0.2.0/24 }\n",
		"a = \"{ x y }\"\ndomain $a\n",
		"table white file \"/x\" command { \"/bin/true\" }\ntable black file \"/y\"\n",
		"walk floor inet 12 inet6 24\nsocket \"/s\" group g mode 0660\n",
		"include \"x\"\n",
		"repeat-offenders factor 1.5 max-ttl 30d within 2d remember 1000000\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("fuzz.conf", strings.NewReader(src), Options{
			ReadFile: func(string) ([]byte, error) { return nil, errors.New("no includes") },
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.conf") && !strings.Contains(err.Error(), "both tables") &&
				!strings.Contains(err.Error(), "min-interval") && !strings.Contains(err.Error(), "same") {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		for _, p := range append(append(cfg.StaticWhite, cfg.StaticBlack...), cfg.Ignore...) {
			if !p.IsValid() || p.Masked() != p {
				t.Fatalf("bad prefix %v", p)
			}
		}
	})
}

func TestParseNFTablesRules(t *testing.T) {
	cfg, err := parseString(t, "nftables-rules ports { 25 587 }\n", nil)
	if err != nil || !slices.Equal(cfg.NFTRulePorts, []uint16{25, 587}) {
		t.Fatalf("%v %v", cfg, err)
	}
	if cfg, err := parseString(t, "nftables-rules\n", nil); err != nil || !slices.Equal(cfg.NFTRulePorts, []uint16{25}) {
		t.Fatalf("bare nftables-rules: %v %v", cfg.NFTRulePorts, err)
	}
	for _, bad := range []string{"nftables-rules { 25 }\n", "nftables-rules ports 70000\n", "nftables-rules ports\n"} {
		if _, err := parseString(t, bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseNFTablesCounters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		ok   bool
	}{
		{"", true, true},
		{"nftables-counters rules\n", false, true},
		{"nftables-counters elements\n", true, true},
		{"nftables-counters elements\nnftables-counters rules\n", false, true},
		{"nftables-counters\n", false, false},
		{"nftables-counters packets\n", false, false},
		{"nftables-counters rules extra\n", false, false},
	} {
		cfg, err := parseString(t, tc.in, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if err == nil && cfg.NFTElementCounters != tc.want {
			t.Errorf("%q: element counters %v, want %v", tc.in, cfg.NFTElementCounters, tc.want)
		}
	}
}

func TestParseFeedsAndExport(t *testing.T) {
	cfg, err := parseString(t, `feed spamhaus black url "https://www.example.org/drop.txt" refresh 12h ttl 2d max-size 1048576
feed local white file "/etc/mail/nospamd"
export black "/var/www/htdocs/black.txt"
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Feeds) != 2 || cfg.Feeds[0] != (Feed{Name: "spamhaus", List: "black", URL: "https://www.example.org/drop.txt", Refresh: 12 * time.Hour, TTL: 48 * time.Hour, MaxSize: 1 << 20}) ||
		cfg.Feeds[1] != (Feed{Name: "local", List: "white", Path: "/etc/mail/nospamd", Refresh: time.Hour}) || cfg.ExportBlack != "/var/www/htdocs/black.txt" {
		t.Fatalf("%+v %q", cfg.Feeds, cfg.ExportBlack)
	}
	for _, bad := range []struct{ src, want string }{
		{"feed x grey file \"/x\"\n", "white or black"},
		{"feed x black url \"ftp://x\"\n", "want http"},
		{"feed x black file \"/x\"\nfeed x white file \"/y\"\n", "defined twice"},
		{"feed x black file \"/x\" refresh 10s\n", "at least 1m"},
		{"export grey \"/x\"\n", "white or black"},
	} {
		if _, err := parseString(t, bad.src, nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.want)
		}
	}
}

func TestParseBGP(t *testing.T) {
	cfg, err := parseString(t, `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 } port 1179 hold 1m
bgp neighbor 127.0.0.3 as 65066 password "s3cret" multihop 2 local-address 127.0.0.2 port 1180 max-prefix 5000
bgp neighbor 127.0.0.4 as 65067
bgp community black 65066:666
bgp prefixlen white inet6 32
bgp announce { black }
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.BGP
	if b.ASN != 65001 || b.RouterID != "127.0.0.2" || b.Port != 1179 || b.Hold != time.Minute || !slices.Equal(b.Listen, []string{"127.0.0.2"}) ||
		len(b.Neighbors) != 2 || b.Neighbors[0] != (BGPNeighbor{Address: "127.0.0.3", ASN: 65066, Password: "s3cret", Multihop: 2, LocalAddress: "127.0.0.2", Port: 1180, MaxPrefix: 5000}) ||
		b.Neighbors[1] != (BGPNeighbor{Address: "127.0.0.4", ASN: 65067, MaxPrefix: DefaultMaxPrefix}) ||
		b.White != "65066:42" || b.Black != "65066:666" || !slices.Equal(b.Announce, []string{"black"}) ||
		b.WhitePrefixlen != (Prefixlen{IPv6: 32}) || b.BlackPrefixlen != DefaultBlackPrefixlen {
		t.Fatalf("%+v", b)
	}
	for _, bad := range []struct{ src, want string }{
		{"bgp neighbor 127.0.0.3 as 65066\n", "bgp needs"},
		{"bgp as 65001 router-id nope\n", "invalid router id"},
		{"bgp community black 65066\n", "invalid community"},
		{"bgp announce { grey }\n", "white or black"},
		{"bgp as 1 router-id 127.0.0.2\nbgp neighbor 127.0.0.3 as 2 max-prefix -1\n", "max-prefix"},
		{"bgp as 1 router-id 127.0.0.2\nbgp prefixlen grey inet 24\n", "white or black"},
		{"bgp as 1 router-id 127.0.0.2\nbgp prefixlen black inet 33\n", "inet prefix length"},
		{"bgp as 1 router-id 127.0.0.2\nbgp prefixlen black\n", "inet or inet6"},
	} {
		if _, err := parseString(t, bad.src, nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.want)
		}
	}
}

func TestForceAllowsBroadStaticEntries(t *testing.T) {
	cfg, err := parseString(t, "whitelist { 10.0.0.0/8 } force\nblacklist 0.0.0.0/0 force\nwhitelist-file \"/etc/wide\" force\nwhitelist-file \"/etc/narrow\"\nwalk floor inet 8\nwhitelist 11.0.0.0/8\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.StaticWhite) != 2 || len(cfg.StaticBlack) != 1 {
		t.Errorf("static white %v black %v", cfg.StaticWhite, cfg.StaticBlack)
	}
	if !cfg.ForcedFiles["/etc/wide"] || cfg.ForcedFiles["/etc/narrow"] {
		t.Errorf("forced files %v", cfg.ForcedFiles)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{24 * time.Hour, "1d"}, {48 * time.Hour, "2d"}, {14 * 24 * time.Hour, "2w"}, {90 * time.Minute, "90m"}, {time.Hour, "1h"},
		{30 * time.Second, "30s"}, {1500 * time.Millisecond, "1.5s"}, {0, "0s"}} {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if tt.d >= time.Second && tt.d%time.Second == 0 {
			if back, err := syntax.ParseDuration(FormatDuration(tt.d)); err != nil || back != tt.d {
				t.Errorf("%q does not read back as %v: %v %v", FormatDuration(tt.d), tt.d, back, err)
			}
		}
	}
}

// Repeat offenders are held longer by default, doubling from the rule's
// TTL up to 30 days; the statement changes or disables it.
func TestRepeatOffenders(t *testing.T) {
	def := Default().RepeatOffenders
	day := 24 * time.Hour
	for count, want := range []time.Duration{1: day, 2: 2 * day, 3: 4 * day, 4: 8 * day, 5: 16 * day, 6: 30 * day, 7: 30 * day, 60: 30 * day} {
		if want == 0 {
			continue
		}
		if got := def.TTL(day, count); got != want {
			t.Errorf("offence %d: hold %v, want %v", count, got, want)
		}
	}
	if got := def.TTL(45*day, 3); got != 45*day {
		t.Errorf("a rule TTL above the cap: %v", got)
	}
	cfg, err := parseString(t, "repeat-offenders factor 1.5 max-ttl 7d within 2d remember 5000\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.RepeatOffenders
	if r != (RepeatOffenders{Factor: 1.5, MaxTTL: 7 * day, Within: 2 * day, Remember: 5000}) {
		t.Fatalf("%+v", r)
	}
	if got := r.TTL(day, 3); got != 2*day+6*time.Hour {
		t.Errorf("factor 1.5, third offence: %v", got)
	}
	cfg, err = parseString(t, "repeat-offenders no\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.RepeatOffenders.TTL(day, 9); got != day {
		t.Errorf("repeat-offenders no: hold %v", got)
	}
}

// Metrics are off by default, on loopback when asked, and on another
// address only with "public".
func TestMetricsListen(t *testing.T) {
	if Default().MetricsListen != "" {
		t.Fatal("metrics on by default")
	}
	for src, want := range map[string]string{
		"metrics listen 127.0.0.1:9154\n":      "127.0.0.1:9154",
		"metrics listen [::1]:9154\n":          "[::1]:9154",
		"metrics listen 0.0.0.0:9154 public\n": "0.0.0.0:9154",
		"metrics listen [::]:9154 public\n":    "[::]:9154",
	} {
		cfg, err := parseString(t, src, nil)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if cfg.MetricsListen != want || cfg.MetricsPublic != strings.Contains(src, "public") {
			t.Errorf("%q: %q public %v", src, cfg.MetricsListen, cfg.MetricsPublic)
		}
	}
}
