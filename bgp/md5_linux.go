package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// setMD5 sets the TCP-MD5 key (RFC 2385) for segments to and from addr
// on the socket fd: on a listening socket, for the connections it takes.
func setMD5(fd int, addr netip.Addr, key string) error {
	sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
	copy(sig.Key[:], key)
	if addr.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafePointer(&sig.Addr))
		sa.Family = unix.AF_INET
		sa.Addr = addr.As4()
	} else {
		sa := (*unix.RawSockaddrInet6)(unsafePointer(&sig.Addr))
		sa.Family = unix.AF_INET6
		sa.Addr = addr.As16()
	}
	if err := unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig); err != nil {
		return fmt.Errorf("setting the TCP-MD5 key for %s: %w", addr, err)
	}
	return nil
}

// CheckMD5 makes sure a TCP-MD5 key for addr can be set on a plain TCP
// socket here (a kernel without TCP_MD5SIG refuses it), before spfd
// starts with a neighbor that must not run unsigned.
func CheckMD5(addr netip.Addr) error {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // as the speaker's sockets are
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(loopbackOf(addr), "0"))
	if err != nil {
		return fmt.Errorf("checking TCP-MD5: %w", err)
	}
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return fmt.Errorf("checking TCP-MD5: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = setMD5(int(fd), addr, "test") }); err != nil {
		return fmt.Errorf("checking TCP-MD5: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("this system cannot set a TCP-MD5 key (%w): a neighbor with a password would run unsigned", serr)
	}
	return nil
}

// loopbackOf is the loopback address of addr's family, to listen on.
func loopbackOf(addr netip.Addr) string {
	if addr.Is4() {
		return "127.0.0.1"
	}
	return "::1"
}
