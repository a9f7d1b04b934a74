package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// dialIn opens a TCP connection from local to remote inside the network
// namespace of process pid, from a thread of its own that is then
// thrown away: a thread that entered another namespace must not run
// anything else.
func dialIn(pid, local, remote string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := os.Open("/proc/" + pid + "/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
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
