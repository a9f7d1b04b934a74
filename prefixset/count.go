package prefixset

import (
	"math/big"
	"math/bits"
)

// Count is a number of addresses, up to 2^128-1 (all of IPv6 saturates
// there, one short).
type Count struct{ Hi, Lo uint64 }

// PrefixCount is the number of addresses in a prefix with hostBits host
// bits (32-len for IPv4, 128-len for IPv6).
func PrefixCount(hostBits int) Count {
	switch {
	case hostBits <= 0:
		return Count{Lo: 1}
	case hostBits >= 128:
		return Count{^uint64(0), ^uint64(0)}
	case hostBits >= 64:
		return Count{Hi: 1 << (hostBits - 64)}
	}
	return Count{Lo: 1 << hostBits}
}

// Cmp compares c and o.
func (c Count) Cmp(o Count) int {
	switch {
	case c.Hi != o.Hi:
		if c.Hi < o.Hi {
			return -1
		}
		return 1
	case c.Lo != o.Lo:
		if c.Lo < o.Lo {
			return -1
		}
		return 1
	}
	return 0
}

// add returns c+o, saturating.
func (c Count) add(o Count) Count {
	lo, carry := bits.Add64(c.Lo, o.Lo, 0)
	hi, over := bits.Add64(c.Hi, o.Hi, carry)
	if over != 0 {
		return Count{^uint64(0), ^uint64(0)}
	}
	return Count{hi, lo}
}

func (c Count) String() string {
	if c.Hi == 0 {
		return new(big.Int).SetUint64(c.Lo).String()
	}
	n := new(big.Int).SetUint64(c.Hi)
	n.Lsh(n, 64)
	return n.Or(n, new(big.Int).SetUint64(c.Lo)).String()
}

// Addresses counts the addresses s covers, IPv4 and IPv6 apart. The
// ranges are merged, so overlapping prefixes count once.
func (s *Set) Addresses() (v4, v6 Count) {
	if s == nil {
		return
	}
	for _, r := range s.v4 {
		v4 = v4.add(Count{Lo: uint64(r.hi-r.lo) + 1})
	}
	for _, r := range s.v6 {
		hi, borrow := bits.Sub64(r.hi.lo, r.lo.lo, 0)
		top, _ := bits.Sub64(r.hi.hi, r.lo.hi, borrow)
		v6 = v6.add(Count{top, hi}).add(Count{Lo: 1})
	}
	return v4, v6
}
