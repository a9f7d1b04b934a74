//go:build !windows && !plan9

package main

import (
	"io"
	"log/syslog"
)

// syslogWriter logs to the daemon facility, as an OpenBSD daemon does when
// not in the foreground.
func syslogWriter() (io.Writer, error) {
	return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "spfd")
}
