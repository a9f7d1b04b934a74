package bgp

import (
	"errors"
	"net/netip"
)

// CheckMD5 refuses. GoBGP sets a password up by opening a PF_KEY socket,
// which pledge(2) does not allow (kern_pledge.c), and without its
// TCP_MD5SIG socket option OpenBSD drops signed segments (tcp_dooptions in
// tcp_input.c), so security associations made with ipsecctl(8) do not
// help either.
func CheckMD5(netip.Addr) error {
	return errors.New("TCP-MD5 is not available to spfd on OpenBSD (pledge forbids PF_KEY): " +
		"leave password out and protect the session with an IPsec flow (ipsec.conf(5)) or pf rules that admit only the neighbor to port 179")
}
