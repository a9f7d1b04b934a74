//go:build !unix

package bgp

import "net/netip"

func setTTL(int, netip.Addr, int) error { return nil }
