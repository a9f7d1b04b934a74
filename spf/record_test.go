package spf

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIsSPF(t *testing.T) {
	tests := []struct {
		txt  string
		want bool
	}{
		{"v=spf1", true},
		{"v=spf1 -all", true},
		{"V=SPF1 ip4:192.0.2.1", true},
		{"v=spf10 -all", false},
		{"v=spf1\t-all", false},
		{"spf2.0/pra ip4:192.0.2.1", false},
		{" v=spf1 -all", false},
		{"v=spf", false},
		{"google-site-verification=abc", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSPF(tt.txt); got != tt.want {
			t.Errorf("IsSPF(%q) = %v, want %v", tt.txt, got, tt.want)
		}
	}
}

func TestParseRecordMechanisms(t *testing.T) {
	tests := []struct {
		name string
		txt  string
		want []Mechanism // Text is filled in from the record
	}{
		{
			name: "ip4 with and without length",
			txt:  "v=spf1 ip4:192.0.2.1 ip4:198.51.100.0/24 -all",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindIP4, Prefix: netip.MustParsePrefix("192.0.2.1/32"), V4Len: 32, V6Len: 128},
				{Qualifier: Pass, Kind: KindIP4, Prefix: netip.MustParsePrefix("198.51.100.0/24"), V4Len: 32, V6Len: 128},
				{Qualifier: Fail, Kind: KindAll, V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "host bits are masked and reported",
			txt:  "v=spf1 ip4:207.68.169.173/30 ip6:2001:db8::1/32",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindIP4, Prefix: netip.MustParsePrefix("207.68.169.172/30"), Masked: true, V4Len: 32, V6Len: 128},
				{Qualifier: Pass, Kind: KindIP6, Prefix: netip.MustParsePrefix("2001:db8::/32"), Masked: true, V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "dual cidr on a and mx",
			txt:  "v=spf1 a/24 a:mail.example.org//64 mx/26//48 mx:example.net",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindA, V4Len: 24, V6Len: 128},
				{Qualifier: Pass, Kind: KindA, Domain: "mail.example.org", V4Len: 32, V6Len: 64},
				{Qualifier: Pass, Kind: KindMX, V4Len: 26, V6Len: 48},
				{Qualifier: Pass, Kind: KindMX, Domain: "example.net", V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "qualifiers and case",
			txt:  "V=Spf1 +INCLUDE:_spf.Example.COM ~include:soft.example -Include:x.example ?a",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindInclude, Domain: "_spf.Example.COM", V4Len: 32, V6Len: 128},
				{Qualifier: SoftFail, Kind: KindInclude, Domain: "soft.example", V4Len: 32, V6Len: 128},
				{Qualifier: Fail, Kind: KindInclude, Domain: "x.example", V4Len: 32, V6Len: 128},
				{Qualifier: Neutral, Kind: KindA, V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "ptr, exists and macros parse",
			txt:  "v=spf1 ptr ptr:example.org exists:%{i}._spf.example.org include:%{d}.example",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindPTR, V4Len: 32, V6Len: 128},
				{Qualifier: Pass, Kind: KindPTR, Domain: "example.org", V4Len: 32, V6Len: 128},
				{Qualifier: Pass, Kind: KindExists, Domain: "%{i}._spf.example.org", V4Len: 32, V6Len: 128},
				{Qualifier: Pass, Kind: KindInclude, Domain: "%{d}.example", V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "several spaces and unknown modifiers",
			txt:  "v=spf1   ip6:2001:db8::/32  foo=bar exp=explain.example  ",
			want: []Mechanism{
				{Qualifier: Pass, Kind: KindIP6, Prefix: netip.MustParsePrefix("2001:db8::/32"), V4Len: 32, V6Len: 128},
			},
		},
		{
			name: "bare version",
			txt:  "v=spf1",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := ParseRecord(tt.txt)
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tt.txt, err)
			}
			if len(rec.Mechanisms) != len(tt.want) {
				t.Fatalf("got %d mechanisms %+v, want %d", len(rec.Mechanisms), rec.Mechanisms, len(tt.want))
			}
			for i, got := range rec.Mechanisms {
				want := tt.want[i]
				want.Text = got.Text
				if got != want {
					t.Errorf("mechanism %d (%s): got %+v, want %+v", i, got.Text, got, want)
				}
				if !strings.Contains(tt.txt, got.Text) || got.Text == "" {
					t.Errorf("mechanism %d: Text %q not from the record", i, got.Text)
				}
			}
		})
	}
}

func TestParseRecordModifiers(t *testing.T) {
	rec, err := ParseRecord("v=spf1 include:a.example redirect=_spf.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Redirect != "_spf.example.com" || rec.HasAll {
		t.Errorf("got redirect %q hasAll %v", rec.Redirect, rec.HasAll)
	}
	rec, err = ParseRecord("v=spf1 ?all redirect=_spf.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.HasAll {
		t.Error("HasAll not set for ?all")
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct {
		txt    string
		reason string
	}{
		{"v=spf1 ip4:192.0.2.0/33", "exceeds 32"},
		{"v=spf1 ip4:192.0.2.0/024", "invalid prefix length"},
		{"v=spf1 ip4:192.0.2.0/", "invalid prefix length"},
		{"v=spf1 ip4:192.0.02.1", "invalid address"},
		{"v=spf1 ip4:2001:db8::1", "not an IPv4"},
		{"v=spf1 ip6:192.0.2.1", "not an IPv6"},
		{"v=spf1 ip6:2001:db8::/129", "exceeds 128"},
		{"v=spf1 ip6:fe80::1%eth0", "zoned address"},
		{"v=spf1 ip4", "needs an address"},
		{"v=spf1 ip4:", "needs an address"},
		{"v=spf1 a/33", "exceeds 32"},
		{"v=spf1 a//129", "exceeds 128"},
		{"v=spf1 mx/24//", "invalid prefix length"},
		{"v=spf1 a:", "empty domain"},
		{"v=spf1 a:/24", "empty domain"},
		{"v=spf1 include", "needs a domain"},
		{"v=spf1 include:", "needs a domain"},
		{"v=spf1 include:a..example", "empty label"},
		{"v=spf1 all:foo", "no argument"},
		{"v=spf1 all/24", "no argument"},
		{"v=spf1 ptr/24", "no CIDR"},
		{"v=spf1 foo:bar", "unknown mechanism"},
		{"v=spf1 ip4:192.0.2.1 redirect=a.example redirect=b.example", "more than one redirect"},
		{"v=spf1 redirect=", "empty domain"},
		{"v=spf1 ip4:192.0.2.1\x00", "invalid character"},
		{"v=spf1 +", "unknown mechanism"},
		{"v=spf1 " + strings.Repeat("a", MaxRecordLength), "longer than"},
		{"v=spf10", "not an SPF"},
	}
	for _, tt := range tests {
		_, err := ParseRecord(tt.txt)
		if err == nil {
			t.Errorf("ParseRecord(%q): no error, want %q", tt.txt, tt.reason)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("ParseRecord(%q): error %q, want it to say %q", tt.txt, err, tt.reason)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, seed := range []string{
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24//64 include:x.example redirect=y.example -all",
		"v=spf1 a:%{d}.example/24 exists:%{i}.x ptr ?all exp=e.example",
		"v=spf1 ip4:207.68.169.173/30",
		"V=SPF1 mx:example.org//48",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseRecord(txt)
		if err != nil {
			return
		}
		for _, m := range rec.Mechanisms {
			switch m.Kind {
			case KindIP4, KindIP6:
				if !m.Prefix.IsValid() || m.Prefix != m.Prefix.Masked() {
					t.Fatalf("%q: unmasked or invalid prefix %v", txt, m.Prefix)
				}
				if m.Kind == KindIP4 != m.Prefix.Addr().Is4() {
					t.Fatalf("%q: %s holds %v", txt, m.Kind, m.Prefix)
				}
			case KindA, KindMX:
				if m.V4Len < 0 || m.V4Len > 32 || m.V6Len < 0 || m.V6Len > 128 {
					t.Fatalf("%q: lengths %d/%d", txt, m.V4Len, m.V6Len)
				}
			}
			if !strings.Contains(txt, m.Text) {
				t.Fatalf("%q: term %q not in record", txt, m.Text)
			}
		}
	})
}

func TestCheckDomainSpec(t *testing.T) {
	for spec, ok := range map[string]bool{
		"example.org": true, "example.org.": true, "_spf.example.org": true, "%{d}.example.org": true,
		"": false, ".": false, "a..": false, "a..b": false, ".a": false, "example..org.": false,
		strings.Repeat("a", 63) + ".org": true, strings.Repeat("a", 64) + ".org": false,
	} {
		if err := checkDomainSpec(spec); (err == nil) != ok {
			t.Errorf("checkDomainSpec(%q) = %v, want ok %v", spec, err, ok)
		}
	}
}
