package logwatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

func TestParseJournalJSON(t *testing.T) {
	e, ok := ParseJournalJSON([]byte(`{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1764273600000000","_COMM":"sshd-session","_SYSTEMD_UNIT":"ssh.service","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Invalid user a from 203.0.113.5 port 22"}`))
	if !ok || e.Comm != "sshd-session" || e.Unit != "ssh.service" || e.Cursor != "s=abc;i=1" || e.Time.Unix() != 1764273600 {
		t.Fatalf("%+v %v", e, ok)
	}
	// MESSAGE as a byte array (not UTF-8 in the journal).
	e, ok = ParseJournalJSON([]byte(`{"__CURSOR":"c","MESSAGE":[104,105],"_COMM":"sshd"}`))
	if !ok || e.Message != "hi" {
		t.Fatalf("byte array message: %+v", e)
	}
	if _, ok := ParseJournalJSON([]byte(`not json`)); ok {
		t.Fatal("garbage accepted")
	}
}

// A process that calls itself sshd (SYSLOG_IDENTIFIER) is not sshd: only
// the kernel-supplied _COMM counts.
func TestJournalTrustsCommNotIdentifier(t *testing.T) {
	p := NewProcessor(config.LogSource{Parser: "sshd", Threshold: 1, Window: time.Hour, TTL: time.Hour}, nil)
	forged := JournalEntry{Message: "Invalid user x from 203.0.113.50 port 22", Comm: "logger", Unit: "ssh.service", Cursor: "c"}
	if out := p.Message(forged, testNow); len(out) != 0 {
		t.Fatalf("forged entry counted: %+v", out)
	}
	real := JournalEntry{Message: "Invalid user x from 203.0.113.51 port 22", Comm: "sshd", Unit: "ssh.service", Cursor: "c"}
	if out := p.Message(real, testNow); len(out) != 1 || out[0].Action != Ban {
		t.Fatalf("sshd entry: %+v", out)
	}
}

// The journal reader runs journalctl (here a stand-in script), filters on
// _SYSTEMD_UNIT, remembers the cursor, and restarts journalctl after the
// saved cursor when it exits.
func TestJournalFollow(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := filepath.Join(dir, "journalctl")
	os.WriteFile(script, []byte(`#!/bin/sh
echo "$@" >> `+argsFile+`
echo '{"__CURSOR":"c1","_COMM":"sshd","_SYSTEMD_UNIT":"ssh.service","MESSAGE":"Invalid user a from 203.0.113.5 port 22"}'
echo '{"__CURSOR":"c2","_COMM":"systemd","_SYSTEMD_UNIT":"init.scope","MESSAGE":"ssh.service: Started"}'
# A record over the 1 MiB bound is skipped, and the next still read.
{ head -c 1100000 /dev/zero | tr '\0' x; echo; } | sed 's/^/{"__CURSOR":"cbig","_COMM":"sshd","_SYSTEMD_UNIT":"ssh.service","MESSAGE":"/; s/$/ from 203.0.113.99 port 1"}/'
echo '{"__CURSOR":"c3","_COMM":"sshd","_SYSTEMD_UNIT":"ssh.service","MESSAGE":"Invalid user b from 203.0.113.6 port 22"}'
`), 0o755)
	j := &Journal{Unit: "ssh.service", Command: script}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []JournalEntry)
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx, out) }()
	var msgs []string
	for len(msgs) < 3 {
		select {
		case es := <-out:
			for _, e := range es {
				msgs = append(msgs, e.Message)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %q", msgs)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if msgs[0] != "Invalid user a from 203.0.113.5 port 22" || msgs[1] != "Invalid user b from 203.0.113.6 port 22" || msgs[2] != msgs[0] {
		// (msgs[1] is c3's: the over-long record between them was skipped.)
		t.Errorf("messages %q", msgs)
	}
	args, _ := os.ReadFile(argsFile)
	lines := strings.Split(strings.TrimSpace(string(args)), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "-u ssh.service") || !strings.Contains(lines[0], "-n 0") ||
		!strings.Contains(lines[1], "--after-cursor=c3") {
		t.Errorf("journalctl runs: %q", lines)
	}
}
