package control

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// peerUID returns the user of the process at the other end. OpenBSD's
// SO_PEERCRED yields struct sockpeercred { uid_t uid; gid_t gid; pid_t
// pid; }; x/sys has no helper for it, and the kernel copies out as much as
// asked, so the first eight bytes (uid and gid) are read as one uint64.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var v uint64
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		v, optErr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if optErr != nil {
		return -1, optErr
	}
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v)
	return int(binary.NativeEndian.Uint32(b[:4])), nil
}
