package prefixset

import (
	"net/netip"
	"testing"
)

func TestAddresses(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		v4, v6   string
	}{
		{"empty", nil, "0", "0"},
		{"one host each", []string{"192.0.2.1/32", "2001:db8::1/128"}, "1", "1"},
		{"overlap counts once", []string{"10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/9"}, "16777216", "0"},
		{"4096 /12s are all of IPv4", func() []string {
			var out []string
			for i := range 4096 {
				out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 4), byte(i << 4), 0, 0}), 12).String())
			}
			return out
		}(), "4294967296", "0"},
		{"a /64 and a /63", []string{"2001:db8::/64", "2001:db8:0:2::/63"}, "0", "55340232221128654848"},
		{"all of IPv6 saturates", []string{"::/0"}, "0", "340282366920938463463374607431768211455"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			for _, p := range tt.prefixes {
				b.Add(netip.MustParsePrefix(p))
			}
			v4, v6 := b.Set().Addresses()
			if v4.String() != tt.v4 || v6.String() != tt.v6 {
				t.Errorf("Addresses() = %s, %s; want %s, %s", v4, v6, tt.v4, tt.v6)
			}
		})
	}
}

func TestPrefixCountOrder(t *testing.T) {
	for h := 1; h <= 128; h++ {
		if PrefixCount(h).Cmp(PrefixCount(h-1)) <= 0 {
			t.Fatalf("PrefixCount(%d) = %s is not above PrefixCount(%d) = %s", h, PrefixCount(h), h-1, PrefixCount(h-1))
		}
	}
}
