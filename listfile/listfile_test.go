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
203.0.113.77/24
10.0.0.0 - 10.0.0.9
2001:db8::/32

not-an-address
192.0.2.300
10.0.0.9 - 10.0.0.1
::ffff:192.0.2.5
192.0.2.1 extra
` + strings.Repeat("9", MaxLine+5) + "\n"
	got, errs := Read(strings.NewReader(in))
	want := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("10.0.0.0/29"),
		netip.MustParsePrefix("10.0.0.8/31"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.5/32"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.SplitN(e.Error(), ":", 2)[0])
	}
	if want := []string{"line 8", "line 9", "line 10", "line 12", "line 13"}; !slices.Equal(lines, want) {
		t.Errorf("errors %v, want lines %v", errs, want)
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
