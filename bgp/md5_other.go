//go:build !linux && !openbsd

package bgp

import (
	"errors"
	"net/netip"
)

// CheckMD5 refuses where spfd does not know how to set TCP-MD5 keys.
func CheckMD5(netip.Addr) error {
	return errors.New("neighbor passwords (TCP-MD5) are not supported on this system")
}

func setMD5(int, netip.Addr, string) error { return CheckMD5(netip.Addr{}) }
