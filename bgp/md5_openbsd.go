package bgp

import (
	"errors"
	"net/netip"
)

// CheckMD5 refuses. OpenBSD takes TCP-MD5 keys as security associations
// through a PF_KEY socket, which pledge(2) does not allow
// (kern_pledge.c), and drops signed segments on a socket without the
// TCP_MD5SIG option (tcp_dooptions in tcp_input.c), so associations made
// with ipsecctl(8) do not help either.
func CheckMD5(netip.Addr) error {
	return errors.New("TCP-MD5 is not available to spfd on OpenBSD (pledge forbids PF_KEY): " +
		"leave password out and protect the session with an IPsec flow (ipsec.conf(5)) or pf rules that admit only the neighbor to port 179")
}

func setMD5(int, netip.Addr, string) error { return CheckMD5(netip.Addr{}) }
