//go:build !windows && !plan9

package main

import (
	"log/syslog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"
)

// Each level reaches syslog at its own priority (daemon facility 3):
// <27> is LOG_ERR, <28> LOG_WARNING, <30> LOG_INFO, <31> LOG_DEBUG.
func TestSyslogPriorities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, err := syslog.Dial("unixgram", path, syslog.LOG_DAEMON|syslog.LOG_INFO, "spfd")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l := newSyslogLoggerTo(w)
	for _, tt := range []struct {
		log  func() error
		want string
	}{
		{func() error { return level.Error(l).Log("msg", "reload failed") }, "<27>"},
		{func() error { return level.Warn(l).Log("msg", "careful") }, "<28>"},
		{func() error { return level.Info(l).Log("msg", "walked domains") }, "<30>"},
		{func() error { return level.Debug(l).Log("msg", "detail") }, "<31>"},
		{func() error { return l.Log("msg", "no level") }, "<30>"},
	} {
		if err := tt.log(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, tt.want) || !strings.Contains(got, "spfd") || !strings.Contains(got, "msg=") {
			t.Errorf("got %q, want priority %s", got, tt.want)
		}
	}
}
