package listfile

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	in := `# spamd-setup format
192.0.2.1
198.51.100.0/24   # a network
203.0.113.77/30
10.0.0.0 - 10.0.0.9
2001:db8::/32
1.10.16.0/20 ; SBL256894
192.0.2.40 spammer
192.0.2.50-192.0.2.51
  # an indented comment

not-an-address
192.0.2.300
10.0.0.9 - 10.0.0.1
::ffff:192.0.2.5
` + strings.Repeat("9", MaxLine+5) + "\n"
	got, errs := Read(strings.NewReader(in))
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("198.51.100.0/24"),
		// spamd-setup's meaning of host bits: 4 addresses from .77
		netip.MustParsePrefix("203.0.113.77/32"),
		netip.MustParsePrefix("203.0.113.78/31"),
		netip.MustParsePrefix("203.0.113.80/32"),
		netip.MustParsePrefix("10.0.0.0/29"),
		netip.MustParsePrefix("10.0.0.8/31"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("1.10.16.0/20"),
		netip.MustParsePrefix("192.0.2.40/32"),
		netip.MustParsePrefix("192.0.2.50/31"),
		netip.MustParsePrefix("192.0.2.5/32"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.SplitN(e.Error(), ":", 2)[0])
	}
	if want := []string{"line 12", "line 13", "line 14", "line 16"}; !slices.Equal(lines, want) {
		t.Errorf("errors %v, want lines %v", errs, want)
	}
}

// Host bits mean what spamd-setup makes of them: the prefix's size,
// starting at the address given.
func TestHostBitsAsSpamdSetup(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"10.1.2.3/16", []string{"10.1.2.3/32", "10.1.2.4/30", "10.1.2.8/29", "10.1.2.16/28", "10.1.2.32/27", "10.1.2.64/26", "10.1.2.128/25", "10.1.3.0/24",
			"10.1.4.0/22", "10.1.8.0/21", "10.1.16.0/20", "10.1.32.0/19", "10.1.64.0/18", "10.1.128.0/17", "10.2.0.0/23", "10.2.2.0/31", "10.2.2.2/32"}},
		{"255.255.255.254/30", []string{"255.255.255.254/31"}},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}},
	} {
		got, err := ParseLine(tt.line)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || !slices.Equal(s, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.line, s, err, tt.want)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")}
	var buf bytes.Buffer
	if err := Write(&buf, ps); err != nil {
		t.Fatal(err)
	}
	got, errs := Read(&buf)
	if len(errs) > 0 || !slices.Equal(got, ps) {
		t.Fatalf("%v %v", got, errs)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "10.0.0.0 - 10.0.0.255", "2001:db8::/32 # x", "# c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ps, err := ParseLine(line)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" {
				t.Fatalf("%q gave %v", line, p)
			}
		}
	})
}
