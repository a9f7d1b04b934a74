package bgp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// unsafePointer views a sockaddr storage as a concrete sockaddr.
func unsafePointer(s *unix.SockaddrStorage) unsafe.Pointer { return unsafe.Pointer(s) }
