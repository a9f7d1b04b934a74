//go:build unix

package bgp

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// setTTL sets the TTL (hop limit) of the socket's packets to addr.
func setTTL(fd int, addr netip.Addr, ttl int) error {
	if addr.Is4() {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, ttl)
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
}
