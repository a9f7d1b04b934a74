//go:build !windows && !plan9

package main

import (
	"bytes"
	"fmt"
	"log/syslog"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// syslogLogger writes each record as one logfmt line to syslog's daemon
// facility, at the priority of its level: errors at LOG_ERR, warnings at
// LOG_WARNING, debug at LOG_DEBUG, the rest at LOG_INFO, so syslog.conf
// and journalctl -p sort them as they do an OpenBSD daemon's.
type syslogLogger struct {
	mu  sync.Mutex
	w   *syslog.Writer
	buf bytes.Buffer
	fmt log.Logger
}

func newSyslogLogger() (log.Logger, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "spfd")
	if err != nil {
		return nil, err
	}
	return newSyslogLoggerTo(w), nil
}

func newSyslogLoggerTo(w *syslog.Writer) *syslogLogger {
	l := &syslogLogger{w: w}
	l.fmt = log.NewLogfmtLogger(&l.buf)
	return l
}

func (l *syslogLogger) Log(keyvals ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	if err := l.fmt.Log(keyvals...); err != nil {
		return err
	}
	msg := string(bytes.TrimSuffix(l.buf.Bytes(), []byte("\n")))
	switch levelOf(keyvals) {
	case level.ErrorValue().String():
		return l.w.Err(msg)
	case level.WarnValue().String():
		return l.w.Warning(msg)
	case level.DebugValue().String():
		return l.w.Debug(msg)
	}
	return l.w.Info(msg)
}

// levelOf returns the record's level, "" when it has none.
func levelOf(keyvals []any) string {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == level.Key() {
			return fmt.Sprint(keyvals[i+1])
		}
	}
	return ""
}
