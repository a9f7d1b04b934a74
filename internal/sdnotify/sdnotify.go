// Package sdnotify sends service state to systemd (sd_notify(3)) when
// NOTIFY_SOCKET is set.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Notify sends state to $NOTIFY_SOCKET; without it, it does nothing.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Reloading is the message that starts a reload: systemd wants the
// monotonic clock with it (Type=notify-reload).
func Reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	usec := ts.Nano() / int64(time.Microsecond)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec)
}
