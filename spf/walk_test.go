package spf

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spfd/spfd/internal/dnstest"
)

func newTestWalker(t *testing.T, srv *dnstest.Server, cfg Config) (*Walker, *Client) {
	t.Helper()
	c := &Client{Servers: []string{srv.Addr}, Timeout: 300 * time.Millisecond}
	return NewWalker(c, cfg), c
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestWalk(t *testing.T) {
	tests := []struct {
		name      string
		zone      string
		behaviors map[string]dnstest.Behavior
		cfg       Config
		domain    string
		want      []netip.Prefix
		status    Status
		errs      []string // substrings expected in Errors
		warns     []string // substrings expected in Warnings
	}{
		{
			name:   "ip4 and ip6 with host bits masked",
			zone:   `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.155/24 ip6:2001:db8::1/32 ip4:198.51.100.7 -all"`,
			domain: "example.com",
			want:   prefixes("192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32"),
			warns:  []string{"host bits set"},
		},
		{
			name: "a with dual cidr: v4 length for A only, v6 for AAAA only",
			zone: `example.com. 300 IN TXT "v=spf1 a/24 a:v6.example.com/24 a:both.example.com/26//64 -all"
example.com. 300 IN A 192.0.2.10
v6.example.com. 300 IN AAAA 2001:db8:1::1
both.example.com. 300 IN A 198.51.100.77
both.example.com. 300 IN AAAA 2001:db8:2:3::5`,
			domain: "example.com",
			want:   prefixes("192.0.2.0/24", "198.51.100.64/26", "2001:db8:1::1/128", "2001:db8:2:3::/64"),
		},
		{
			name: "mx with cname target, null mx skipped, no fallback to A",
			zone: `example.com. 300 IN TXT "v=spf1 mx mx:nullmx.example.com -all"
example.com. 300 IN A 203.0.113.99
example.com. 300 IN MX 10 mx1.example.com.
example.com. 300 IN MX 20 alias.example.com.
mx1.example.com. 300 IN A 192.0.2.25
alias.example.com. 300 IN CNAME real.example.net.
real.example.net. 300 IN A 198.51.100.25
real.example.net. 300 IN AAAA 2001:db8::25
nullmx.example.com. 300 IN MX 0 .
nullmx.example.com. 300 IN A 203.0.113.1`,
			domain: "example.com",
			want:   prefixes("192.0.2.25/32", "198.51.100.25/32", "2001:db8::25/128"),
		},
		{
			name:   "mx with 11 hosts is a permanent failure that yields nothing",
			zone:   mxZone(11),
			domain: "example.com",
			status: PermFail,
			errs:   []string{"names 11 MX hosts, more than 10"},
		},
		{
			name:   "mx with 10 hosts is within the limit",
			zone:   mxZone(10),
			domain: "example.com",
			want:   prefixes("192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/30", "192.0.2.8/31", "192.0.2.10/32"),
		},
		{
			name: "include and redirect chains, case and trailing dots",
			zone: `example.com. 300 IN TXT "v=spf1 include:_SPF.Example.COM. redirect=_rest.example.com"
_spf.example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/25 ~all"
_rest.example.com. 300 IN TXT "V=SPF1 ip4:192.0.2.128/25 -all"`,
			domain: "Example.com.",
			want:   prefixes("192.0.2.0/24"),
		},
		{
			name: "redirect ignored when the record has all",
			zone: `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.1 ?all redirect=other.example.com"
other.example.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
			domain: "example.com",
			want:   prefixes("192.0.2.1/32"),
		},
		{
			name: "only pass terms whitelist",
			zone: `example.com. 300 IN TXT "v=spf1 -ip4:192.0.2.0/24 ~ip4:198.51.100.0/24 ?a -include:bad.example.com +ip4:203.0.113.0/24 -all"
example.com. 300 IN A 192.0.2.80
bad.example.com. 300 IN TXT "v=spf1 ip4:10.0.0.0/8"`,
			domain: "example.com",
			want:   prefixes("203.0.113.0/24"),
		},
		{
			name: "multi-string TXT joined without separator, mid-token",
			zone: `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ip4:19" "8.51.100.0/24 -all"
example.com. 300 IN TXT "google-site-verification=xyz"
example.com. 300 IN TXT "spf2.0/pra ip4:203.0.113.0/24"`,
			domain: "example.com",
			want:   prefixes("192.0.2.0/24", "198.51.100.0/24"),
		},
		{
			name: "not spf: v=spf10 and tab",
			zone: `example.com. 300 IN TXT "v=spf10 ip4:192.0.2.0/24"
example.com. 300 IN TXT "v=spf1	ip4:198.51.100.0/24"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"no SPF record"},
		},
		{
			name: "two SPF records are an error",
			zone: `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
example.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"2 SPF records"},
		},
		{
			name: "two SPF records, lenient union",
			zone: `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
example.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
			cfg:    Config{Lenient: true},
			domain: "example.com",
			want:   prefixes("192.0.2.0/24", "198.51.100.0/24"),
			warns:  []string{"taking their union"},
		},
		{
			name:   "self include loop terminates",
			zone:   `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.1 include:EXAMPLE.com. -all"`,
			domain: "example.com",
			want:   prefixes("192.0.2.1/32"),
			status: PermFail,
			errs:   []string{"loop"},
		},
		{
			name: "mutual include loop terminates",
			zone: `a.example. 300 IN TXT "v=spf1 ip4:192.0.2.1 include:b.example"
b.example. 300 IN TXT "v=spf1 ip4:192.0.2.2 include:a.example"`,
			domain: "a.example",
			want:   prefixes("192.0.2.1/32", "192.0.2.2/32"),
			status: PermFail,
			errs:   []string{"a.example -> b.example includes a.example"},
		},
		{
			name: "diamond include is not a loop",
			zone: `top.example. 300 IN TXT "v=spf1 include:left.example include:right.example -all"
left.example. 300 IN TXT "v=spf1 include:shared.example"
right.example. 300 IN TXT "v=spf1 include:shared.example ip4:198.51.100.1"
shared.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24"`,
			domain: "top.example",
			want:   prefixes("192.0.2.0/24", "198.51.100.1/32"),
		},
		{
			name: "exists, ptr and macros skipped with warnings",
			zone: `example.com. 300 IN TXT "v=spf1 exists:%{i}.x.example.com exists:flag.example.com ptr a:%{d}.example.net include:%{l}.example.org ip4:192.0.2.1 -all"
flag.example.com. 300 IN A 127.0.0.2`,
			domain: "example.com",
			want:   prefixes("192.0.2.1/32"),
			warns:  []string{"exists:flag.example.com names no senders", "ptr cannot be enumerated", "a:%{d}.example.net uses macros"},
		},
		{
			name: "safety floor refuses broad prefixes",
			zone: `example.com. 300 IN TXT "v=spf1 ip4:0.0.0.0/0 ip4:10.0.0.0/8 ip4:172.16.0.0/12 ip6:::/0 ip6:2001:db8::/23 ip6:2001:db8::/24 a/8"
example.com. 300 IN A 192.0.2.1`,
			domain: "example.com",
			want:   prefixes("172.16.0.0/12", "2001:d00::/24"),
			warns:  []string{"0.0.0.0/0 is broader than /12, refused", "::/0 is broader than /24", "192.0.0.0/8 is broader"},
		},
		{
			name:   "configurable safety floor",
			zone:   `example.com. 300 IN TXT "v=spf1 ip4:172.16.0.0/12 ip4:192.0.2.0/24"`,
			cfg:    Config{MinIPv4Len: 16},
			domain: "example.com",
			want:   prefixes("192.0.2.0/24"),
			warns:  []string{"172.16.0.0/12 is broader than /16"},
		},
		{
			name:   "no SPF record",
			zone:   `example.com. 300 IN TXT "hello"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"example.com: no SPF record"},
		},
		{
			name:   "NXDOMAIN at the apex",
			zone:   `other.example. 300 IN TXT "v=spf1 -all"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"NXDOMAIN"},
		},
		{
			name:   "NXDOMAIN in the middle keeps the rest",
			zone:   `example.com. 300 IN TXT "v=spf1 include:gone.example.com ip4:192.0.2.0/24 -all"`,
			domain: "example.com",
			want:   prefixes("192.0.2.0/24"),
			status: PermFail,
			errs:   []string{"gone.example.com: no such domain"},
		},
		{
			name: "syntax error in an include",
			zone: `example.com. 300 IN TXT "v=spf1 include:bad.example.com ip4:192.0.2.0/24 -all"
bad.example.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/33"`,
			domain: "example.com",
			want:   prefixes("192.0.2.0/24"),
			status: PermFail,
			errs:   []string{"exceeds 32"},
		},
		{
			name: "SERVFAIL in the middle is temporary",
			zone: `example.com. 300 IN TXT "v=spf1 include:broken.example.com ip4:192.0.2.0/24 -all"
broken.example.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24"`,
			behaviors: map[string]dnstest.Behavior{"broken.example.com": dnstest.ServFail},
			domain:    "example.com",
			want:      prefixes("192.0.2.0/24"),
			status:    TempFail,
			errs:      []string{"SERVFAIL"},
		},
		{
			name: "REFUSED in the middle is temporary",
			zone: `example.com. 300 IN TXT "v=spf1 a:host.example.net ip4:192.0.2.0/24 -all"
host.example.net. 300 IN A 198.51.100.1`,
			behaviors: map[string]dnstest.Behavior{"host.example.net": dnstest.Refused},
			domain:    "example.com",
			want:      prefixes("192.0.2.0/24"),
			status:    TempFail,
			errs:      []string{"REFUSED"},
		},
		{
			name: "timeout in the middle is temporary and wins over permanent",
			zone: `example.com. 300 IN TXT "v=spf1 mx include:missing.example.com ip4:192.0.2.0/24 -all"
example.com. 300 IN MX 10 slow.example.com.
slow.example.com. 300 IN A 198.51.100.1`,
			behaviors: map[string]dnstest.Behavior{"slow.example.com": dnstest.Drop},
			domain:    "example.com",
			want:      prefixes("192.0.2.0/24"),
			status:    TempFail,
			errs:      []string{"slow.example.com A: temporary DNS failure", "missing.example.com: no such domain"},
		},
		{
			name:      "truncated UDP answer retried over TCP",
			zone:      `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
			behaviors: map[string]dnstest.Behavior{"example.com": dnstest.Truncate},
			domain:    "example.com",
			want:      prefixes("192.0.2.0/24"),
		},
		{
			name:   "10 DNS-querying terms pass",
			zone:   lookupZone(10),
			domain: "example.com",
			want:   prefixes("192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/30", "192.0.2.8/31", "192.0.2.10/32"),
		},
		{
			name:   "11 DNS-querying terms are a permanent failure that yields nothing",
			zone:   lookupZone(11),
			domain: "example.com",
			status: PermFail,
			errs:   []string{"11 DNS-querying terms, more than 10"},
		},
		{
			name:   "an admin may raise the lookup limit",
			zone:   lookupZone(11),
			cfg:    Config{MaxLookups: 20},
			domain: "example.com",
			want:   prefixes("192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/30", "192.0.2.8/30"),
		},
		{
			name: "nested terms count toward the apex's lookups",
			zone: `example.com. 300 IN TXT "v=spf1 include:a.example.com include:b.example.com -all"
a.example.com. 300 IN TXT "v=spf1 a:h.example.com a:h.example.com a:h.example.com a:h.example.com a:h.example.com"
b.example.com. 300 IN TXT "v=spf1 mx:m.example.com mx:m.example.com mx:m.example.com mx:m.example.com"
h.example.com. 300 IN A 192.0.2.1
m.example.com. 300 IN MX 10 h.example.com.`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"11 DNS-querying terms"},
		},
		{
			name:   "2 void lookups pass",
			zone:   voidZone(2),
			domain: "example.com",
			want:   prefixes("192.0.2.1/32"),
		},
		{
			name:   "3 void lookups are a permanent failure that yields nothing",
			zone:   voidZone(3),
			domain: "example.com",
			status: PermFail,
			errs:   []string{"3 void lookups, more than 2"},
		},
		{
			name:   "a union over max-addresses is refused whole",
			zone:   `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.1 ` + slashTwelves(0, 17) + ` -all"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"refused: its networks cover 17825793 IPv4 addresses, more than 16777216"},
		},
		{
			name:   "a union at max-addresses passes",
			zone:   `example.com. 300 IN TXT "v=spf1 ` + slashTwelves(0, 16) + ` -all"`,
			domain: "example.com",
			want:   prefixes("0.0.0.0/8"),
		},
		{
			name:      "4096 /12s through includes (0.0.0.0/0) are refused even with the lookup limit raised",
			zone:      bigTree(32),
			behaviors: truncateAll(32),
			cfg:       Config{MaxLookups: 40},
			domain:    "example.com",
			status:    PermFail,
			errs:      []string{"refused: its networks cover 4294967296 IPv4 addresses"},
		},
		{
			name:      "at RFC limits, 10 includes of 128 /12s are refused",
			zone:      bigTree(10),
			behaviors: truncateAll(10),
			domain:    "example.com",
			status:    PermFail,
			errs:      []string{"refused: its networks cover 1342177280 IPv4 addresses"},
		},
		{
			name:   "an IPv6 union over a /20's worth is refused",
			zone:   `example.com. 300 IN TXT "v=spf1 ip6:2001:db8::/24 ip6:2001:c00::/24 ip6:2001:d00::/24 ip6:2001:e00::/24 ip6:2001:f00::/24 ip6:2001:1000::/24 ip6:2001:1100::/24 ip6:2001:1200::/24 ip6:2001:1300::/24 ip6:2001:1400::/24 ip6:2001:1500::/24 ip6:2001:1600::/24 ip6:2001:1700::/24 ip6:2001:1800::/24 ip6:2001:1900::/24 ip6:2001:1a00::/24 ip6:2001:1b00::/24 ip6:2001:1c00::/24 -all"`,
			domain: "example.com",
			status: PermFail,
			errs:   []string{"more than a /20"},
		},
		{
			name: "hard lookup cap stops runaway trees",
			zone: func() string {
				s := ""
				for i := 0; i < 40; i++ {
					s += fmt.Sprintf("n%d.example. 300 IN TXT \"v=spf1 a:h%d.example include:n%d.example\"\n", i, i, i+1)
				}
				return s
			}(),
			cfg:    Config{MaxQueries: 20, MaxDepth: 100},
			domain: "n0.example",
			status: PermFail,
			errs:   []string{"walk stopped after 20 lookups"},
		},
		{
			name:   "invalid domain",
			zone:   `example.com. 300 IN TXT "v=spf1 -all"`,
			domain: "bad domain..example",
			status: PermFail,
			errs:   []string{"invalid domain name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.Start(t, tt.zone)
			for name, b := range tt.behaviors {
				srv.Set(name, b)
			}
			w, _ := newTestWalker(t, srv, tt.cfg)
			res := w.Walk(context.Background(), tt.domain)
			if !slices.Equal(res.Prefixes, tt.want) {
				t.Errorf("prefixes:\n got %v\nwant %v", res.Prefixes, tt.want)
			}
			if res.Status != tt.status {
				t.Errorf("status %v, want %v (errors %q)", res.Status, tt.status, res.Errors)
			}
			if tt.status == Complete && len(res.Errors) > 0 {
				t.Errorf("complete walk with errors %q", res.Errors)
			}
			for _, want := range tt.errs {
				if !containsSub(res.Errors, want) {
					t.Errorf("errors %q lack %q", res.Errors, want)
				}
			}
			for _, want := range tt.warns {
				if !containsSub(res.Warnings, want) {
					t.Errorf("warnings %q lack %q", res.Warnings, want)
				}
			}
		})
	}
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestWalkTruncationUsesTCP(t *testing.T) {
	srv := dnstest.Start(t, `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
	srv.Set("example.com", dnstest.Truncate)
	w, _ := newTestWalker(t, srv, Config{})
	if res := w.Walk(context.Background(), "example.com"); res.Status != Complete {
		t.Fatalf("status %v: %q", res.Status, res.Errors)
	}
	udp, tcp := srv.Queries()
	if udp != 1 || tcp != 1 {
		t.Errorf("queries: %d over UDP, %d over TCP; want 1 and 1", udp, tcp)
	}
}

// Two apexes including the same target ask DNS once; and a second domain's
// bare mx is resolved for that domain even though the first had one too.
func TestWalkAllSharesCacheButNotResults(t *testing.T) {
	srv := dnstest.Start(t, `
one.example. 300 IN TXT "v=spf1 mx include:_spf.provider.example -all"
one.example. 300 IN MX 10 mx.one.example.
mx.one.example. 300 IN A 192.0.2.1
two.example. 300 IN TXT "v=spf1 mx include:_spf.provider.example -all"
two.example. 300 IN MX 10 mx.two.example.
mx.two.example. 300 IN A 198.51.100.1
_spf.provider.example. 300 IN TXT "v=spf1 ip4:203.0.113.0/24 -all"`)
	w, client := newTestWalker(t, srv, Config{Concurrency: 2})
	results := w.WalkAll(context.Background(), []string{"one.example", "two.example"})
	want := map[string][]netip.Prefix{
		"one.example": prefixes("192.0.2.1/32", "203.0.113.0/24"),
		"two.example": prefixes("198.51.100.1/32", "203.0.113.0/24"),
	}
	for _, r := range results {
		if r.Status != Complete || !slices.Equal(r.Prefixes, want[r.Domain]) {
			t.Errorf("%s: %v %v, want %v", r.Domain, r.Status, r.Prefixes, want[r.Domain])
		}
	}
	if n := srv.Count("_spf.provider.example", dns.TypeTXT); n != 1 {
		t.Errorf("shared include asked %d times, want 1", n)
	}
	if client.Sent() != w.Questions() {
		t.Errorf("sent %d queries for %d distinct questions", client.Sent(), w.Questions())
	}
}

func TestWalkTTLIsMinimum(t *testing.T) {
	srv := dnstest.Start(t, `
example.com. 3600 IN TXT "v=spf1 include:_spf.example.com a -all"
example.com. 900 IN A 192.0.2.1
_spf.example.com. 120 IN TXT "v=spf1 ip4:198.51.100.0/24"`)
	w, _ := newTestWalker(t, srv, Config{})
	res := w.Walk(context.Background(), "example.com")
	// The AAAA lookup of example.com is NODATA with negative TTL 60.
	if res.TTL != 60*time.Second {
		t.Errorf("TTL %v, want 1m0s", res.TTL)
	}
}

func TestCacheHonoursTTL(t *testing.T) {
	srv := dnstest.Start(t, `example.com. 30 IN TXT "v=spf1 ip4:192.0.2.0/24"`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, _ := newTestWalker(t, srv, Config{Now: func() time.Time { return now }})
	w.Walk(context.Background(), "example.com")
	w.Walk(context.Background(), "example.com")
	if n := srv.Count("example.com", dns.TypeTXT); n != 1 {
		t.Fatalf("within TTL: %d queries, want 1", n)
	}
	now = now.Add(31 * time.Second)
	w.Walk(context.Background(), "example.com")
	if n := srv.Count("example.com", dns.TypeTXT); n != 2 {
		t.Fatalf("after TTL: %d queries, want 2", n)
	}
}

func TestTemporaryFailuresAreNotCached(t *testing.T) {
	srv := dnstest.Start(t, `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24"`)
	srv.Set("example.com", dnstest.ServFail)
	w, _ := newTestWalker(t, srv, Config{})
	if res := w.Walk(context.Background(), "example.com"); res.Status != TempFail {
		t.Fatalf("status %v, want TempFail", res.Status)
	}
	srv.Set("example.com", dnstest.Normal)
	if res := w.Walk(context.Background(), "example.com"); res.Status != Complete {
		t.Fatalf("after recovery: status %v %q", res.Status, res.Errors)
	}
}

func TestClientFailsOverToSecondServer(t *testing.T) {
	bad := dnstest.Start(t, `example.com. 300 IN TXT "v=spf1 ip4:203.0.113.0/24"`)
	bad.Set("example.com", dnstest.ServFail)
	good := dnstest.Start(t, `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24"`)
	c := &Client{Servers: []string{bad.Addr, good.Addr}, Timeout: time.Second}
	res := NewWalker(c, Config{}).Walk(context.Background(), "example.com")
	if res.Status != Complete || !slices.Equal(res.Prefixes, prefixes("192.0.2.0/24")) {
		t.Fatalf("got %v %v %q", res.Status, res.Prefixes, res.Errors)
	}
}

func TestWalkCancelled(t *testing.T) {
	srv := dnstest.Start(t, `example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24"`)
	srv.Set("example.com", dnstest.Drop)
	c := &Client{Servers: []string{srv.Addr}, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := NewWalker(c, Config{}).Walk(ctx, "example.com")
	if res.Status != TempFail {
		t.Errorf("status %v, want TempFail", res.Status)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancellation not honoured")
	}
}

func TestServersFromResolvConf(t *testing.T) {
	got, err := ServersFromResolvConf(strings.NewReader("# comment\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ServersFromResolvConf(strings.NewReader("search example.com\n")); err == nil {
		t.Error("no error for resolv.conf without nameservers")
	}
}

// Include targets are memoised across domains until their lowest TTL runs
// out, and a changed record is seen after that.
func TestSubtreeMemoHonoursTTL(t *testing.T) {
	srv := dnstest.Start(t, `
one.example. 3600 IN TXT "v=spf1 include:_spf.provider.example -all"
two.example. 3600 IN TXT "v=spf1 include:_spf.provider.example -all"
_spf.provider.example. 30 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, _ := newTestWalker(t, srv, Config{Now: func() time.Time { return now }})
	for _, d := range []string{"one.example", "two.example"} {
		if r := w.Walk(context.Background(), d); !slices.Equal(r.Prefixes, prefixes("192.0.2.0/24")) || r.TTL != 30*time.Second {
			t.Fatalf("%s: %v ttl %v", d, r.Prefixes, r.TTL)
		}
	}
	srv.Replace(t, "_spf.provider.example", dns.TypeTXT, `_spf.provider.example. 30 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`)
	now = now.Add(31 * time.Second)
	if r := w.Walk(context.Background(), "two.example"); !slices.Equal(r.Prefixes, prefixes("198.51.100.0/24")) {
		t.Fatalf("after the TTL: %v", r.Prefixes)
	}
}

// A subtree reached through a loop depends on the path to it: the walk of
// each domain must still see the whole loop and every network on it.
func TestSubtreeMemoAndLoops(t *testing.T) {
	srv := dnstest.Start(t, `
a.example. 300 IN TXT "v=spf1 ip4:192.0.2.1 include:x.example"
x.example. 300 IN TXT "v=spf1 ip4:192.0.2.2 include:a.example"
b.example. 300 IN TXT "v=spf1 ip4:192.0.2.3 include:x.example"`)
	w, _ := newTestWalker(t, srv, Config{})
	want := map[string][]netip.Prefix{
		"a.example": prefixes("192.0.2.1/32", "192.0.2.2/32"),
		"b.example": prefixes("192.0.2.1/32", "192.0.2.2/31"),
	}
	for _, d := range []string{"a.example", "b.example", "a.example", "b.example"} {
		r := w.Walk(context.Background(), d)
		if !slices.Equal(r.Prefixes, want[d]) || r.Status != PermFail || !containsSub(r.Errors, "loop") {
			t.Errorf("%s: %v %v %q", d, r.Prefixes, r.Status, r.Errors)
		}
	}
}

// mxZone is example.com with "mx" naming n hosts, 192.0.2.1 to .n.
func mxZone(n int) string {
	s := `example.com. 300 IN TXT "v=spf1 mx -all"` + "\n"
	for i := 1; i <= n; i++ {
		s += fmt.Sprintf("example.com. 300 IN MX %d mx%d.example.com.\nmx%d.example.com. 300 IN A 192.0.2.%d\n", i, i, i, i)
	}
	return s
}

// lookupZone is example.com with n a: terms, each one lookup.
func lookupZone(n int) string {
	s := `example.com. 300 IN TXT "v=spf1`
	for i := 1; i <= n; i++ {
		s += fmt.Sprintf(" a:h%d.example.com", i)
	}
	s += ` -all"` + "\n"
	for i := 1; i <= n; i++ {
		s += fmt.Sprintf("h%d.example.com. 300 IN A 192.0.2.%d\n", i, i)
	}
	return s
}

// voidZone is example.com with n a: terms that find nothing and one that
// finds 192.0.2.1.
func voidZone(n int) string {
	s := `example.com. 300 IN TXT "v=spf1 a:ok.example.com`
	for i := 1; i <= n; i++ {
		s += fmt.Sprintf(" a:void%d.example.com", i)
	}
	s += ` -all"` + "\nok.example.com. 300 IN A 192.0.2.1\n"
	for i := 1; i <= n; i++ {
		s += fmt.Sprintf("void%d.example.com. 300 IN TXT \"not an address\"\n", i)
	}
	return s
}

// slashTwelves returns n ip4 terms of consecutive /12s from the first'th.
func slashTwelves(first, n int) string {
	var terms []string
	for i := first; i < first+n; i++ {
		terms = append(terms, fmt.Sprintf("ip4:%d.%d.0.0/12", i>>4, (i&15)<<4))
	}
	return strings.Join(terms, " ")
}

// bigTree is example.com including n records p0 ... of 128 /12s each
// (2.4 KiB: answered over TCP).
func bigTree(n int) string {
	apex := `example.com. 300 IN TXT "v=spf1`
	var recs string
	for i := range n {
		apex += fmt.Sprintf(" include:p%d.example.com", i)
		recs += fmt.Sprintf("p%d.example.com. 300 IN TXT \"v=spf1 %s\"\n", i, slashTwelves(i*128, 128))
	}
	return apex + ` -all"` + "\n" + recs
}

func truncateAll(n int) map[string]dnstest.Behavior {
	m := make(map[string]dnstest.Behavior)
	for i := range n {
		m[fmt.Sprintf("p%d.example.com", i)] = dnstest.Truncate
	}
	return m
}

// A fresh walk (spfctl rewalk) asks the servers again, where a plain one
// answers from the cache until the TTL runs out.
func TestFreshWalkBypassesTheCache(t *testing.T) {
	srv := dnstest.Start(t, `example.com. 3600 IN TXT "v=spf1 include:_spf.example.net -all"
_spf.example.net. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24"`)
	w, _ := newTestWalker(t, srv, Config{})
	ctx := context.Background()
	if r := w.Walk(ctx, "example.com"); !slices.Equal(r.Prefixes, prefixes("192.0.2.0/24")) {
		t.Fatalf("first walk %v", r.Prefixes)
	}
	srv.Replace(t, "_spf.example.net", dns.TypeTXT, `_spf.example.net. 3600 IN TXT "v=spf1 ip4:198.51.100.0/24"`)
	if r := w.Walk(ctx, "example.com"); !slices.Equal(r.Prefixes, prefixes("192.0.2.0/24")) {
		t.Fatalf("a plain walk within the TTL gave %v, not the cached answer", r.Prefixes)
	}
	if r := w.Walk(Fresh(ctx, time.Now()), "example.com"); !slices.Equal(r.Prefixes, prefixes("198.51.100.0/24")) {
		t.Fatalf("a fresh walk gave %v, want the servers' new answer", r.Prefixes)
	}
	if r := w.Walk(ctx, "example.com"); !slices.Equal(r.Prefixes, prefixes("198.51.100.0/24")) {
		t.Fatalf("the walk after a fresh one gave %v", r.Prefixes)
	}
}
