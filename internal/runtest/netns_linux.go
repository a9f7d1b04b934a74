package runtest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialFromNetns opens a TCP connection from local to remote inside the
// network namespace at nsPath (/run/netns/NAME, /proc/PID/ns/net), as a
// client on another host would, and closes it; a refused or dropped
// connection is no error. It runs on a thread of its own that is then
// thrown away: a thread that entered another namespace must run nothing
// else.
func DialFromNetns(nsPath, local, remote string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open(nsPath)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", nsPath, err)
			return
		}
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		if c, err := d.Dial("tcp", remote); err == nil {
			c.Close()
		}
		errc <- nil
	}()
	return <-errc
}
