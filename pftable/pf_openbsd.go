package pftable

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// devPF is /dev/pf, opened before pledge.
type devPF struct{ f *os.File }

// ioctl calls ioctl(2) through x/sys's libc-backed helper: OpenBSD 7.5
// removed indirect syscall(2), so syscall.Syscall(SYS_IOCTL) would kill
// the process. The argument's address travels as the helper's integer
// argument; the struct stays alive across the call.
func (d devPF) ioctl(cmd uintptr, arg *pfiocTable) error {
	err := unix.IoctlSetInt(int(d.f.Fd()), uint(cmd), int(uintptr(unsafe.Pointer(arg))))
	runtime.KeepAlive(arg)
	return err
}

// OpenPF opens /dev/pf; call it before pledge("pf").
func OpenPF() (*PF, error) {
	f, err := os.OpenFile("/dev/pf", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/pf: %w", err)
	}
	return newPF(devPF{f}), nil
}

// Close implements Backend.
func (p *PF) Close() error {
	if d, ok := p.dev.(devPF); ok {
		return d.f.Close()
	}
	return nil
}
